#!/usr/bin/env python3
"""Hold many MQTT subscriptions open on a broker, for `bench/compare.sh --sweep subscriptions`.

Opens CONNECTIONS MQTT 3.1.1 connections (clean session) to HOST:PORT and subscribes each to
its share of COUNT distinct filters, `PREFIX/<conn>/<i>/+`, in SUBSCRIBE packets of up to
--batch filters, pipelined. When every SUBACK is in it prints one JSON line to stdout:

    {"ready": true, "connections": n, "subscriptions": n, "refused": n, "load_s": seconds}

then holds the connections (sending PINGREQ every keep-alive / 2) until it gets SIGTERM (or,
with --hold-stdin, until stdin reaches EOF), sends DISCONNECT and exits 0. On failure it prints
{"ready": false, "error": "..."} and exits 1.

Plain sockets and hand-encoded packets: no third-party MQTT library is needed, and the same
bytes go to both brokers.
"""

import argparse
import json
import os
import select
import signal
import socket
import struct
import sys
import time


def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def utf8(s):
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def connect_packet(client_id, keepalive):
    body = utf8("MQTT") + bytes([4, 0x02]) + struct.pack("!H", keepalive) + utf8(client_id)
    return b"\x10" + varint(len(body)) + body


def subscribe_packet(packet_id, filters):
    body = bytearray(struct.pack("!H", packet_id))
    for f in filters:
        body += utf8(f) + b"\x00"  # QoS 0: the held filters never match the measured topic
    return b"\x82" + varint(len(body)) + bytes(body)


class Reader:
    """Reads whole MQTT packets from a blocking socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("broker closed the connection")
        self.buf += chunk

    def packet(self):
        while True:
            if len(self.buf) >= 2:
                length, mult, i = 0, 1, 1
                complete = False
                while i < len(self.buf) and i <= 4:
                    b = self.buf[i]
                    length += (b & 0x7F) * mult
                    mult *= 128
                    i += 1
                    if not b & 0x80:
                        complete = True
                        break
                if complete and len(self.buf) >= i + length:
                    ptype = self.buf[0] >> 4
                    body = bytes(self.buf[i:i + length])
                    del self.buf[:i + length]
                    return ptype, body
            self._fill()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, required=True, help="subscriptions in total")
    ap.add_argument("--per-connection", type=int, default=1000,
                    help="subscriptions per connection (default 1000)")
    ap.add_argument("--batch", type=int, default=500, help="filters per SUBSCRIBE packet")
    ap.add_argument("--prefix", default="sweep/load")
    ap.add_argument("--keepalive", type=int, default=120)
    ap.add_argument("--client-prefix", default="sub-loader")
    ap.add_argument("--hold-stdin", action="store_true", help="also stop at EOF on stdin")
    args = ap.parse_args()

    stop = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))

    conns = max(1, -(-args.count // args.per_connection))
    socks = []
    refused = 0
    started = time.monotonic()
    try:
        # Connect everything first, then pipeline the SUBSCRIBEs of all connections, then read
        # the SUBACKs: the broker, not this script's round trips, sets the load time.
        readers = []
        for c in range(conns):
            s = socket.create_connection((args.host, args.port), timeout=60)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(connect_packet(f"{args.client_prefix}-{os.getpid()}-{c}", args.keepalive))
            socks.append(s)
            readers.append(Reader(s))
        for r in readers:
            ptype, body = r.packet()
            if ptype != 2 or len(body) < 2 or body[1] != 0:
                raise ConnectionError(f"CONNACK refused: type {ptype} body {body.hex()}")
        expected = []
        for c, s in enumerate(socks):
            first = c * args.per_connection
            last = min(args.count, first + args.per_connection)
            packets = []
            pid = 1
            for start in range(first, last, args.batch):
                filters = [f"{args.prefix}/{c}/{i}/+" for i in range(start, min(last, start + args.batch))]
                packets.append(subscribe_packet(pid, filters))
                pid += 1
            s.sendall(b"".join(packets))
            expected.append(len(packets))
        for r, n in zip(readers, expected):
            for _ in range(n):
                ptype, body = r.packet()
                if ptype != 9:
                    raise ConnectionError(f"expected SUBACK, got packet type {ptype}")
                refused += sum(1 for code in body[2:] if code >= 0x80)
    except (OSError, ConnectionError) as e:
        print(json.dumps({"ready": False, "error": str(e)}), flush=True)
        return 1
    load_s = time.monotonic() - started
    print(json.dumps({"ready": True, "connections": conns, "subscriptions": args.count,
                      "refused": refused, "load_s": round(load_s, 3)}), flush=True)

    # Hold: PINGREQ at half the keep-alive, leave on SIGTERM (or stdin EOF).
    last_ping = time.monotonic()
    watch = ([sys.stdin] if args.hold_stdin else []) + socks
    while not stop["flag"]:
        try:
            ready, _, _ = select.select(watch, [], [], 1.0)
        except InterruptedError:
            continue
        if sys.stdin in ready and not sys.stdin.buffer.read1(4096):
            break
        for s in ready:
            if s is not sys.stdin:
                try:
                    if not s.recv(1 << 16):
                        print(json.dumps({"warning": "broker closed a held connection"}),
                              file=sys.stderr, flush=True)
                        watch.remove(s)
                except OSError:
                    watch.remove(s)
        if time.monotonic() - last_ping > args.keepalive / 2:
            for s in socks:
                try:
                    s.sendall(b"\xc0\x00")
                except OSError:
                    pass
            last_ping = time.monotonic()
    for s in socks:
        try:
            s.sendall(b"\xe0\x00")  # DISCONNECT
            s.close()
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
