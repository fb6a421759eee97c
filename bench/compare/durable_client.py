#!/usr/bin/env python3
"""MQTT clients for bench/durable.sh: persistent sessions, numbered QoS 1 messages, loss counts.

Plain sockets, hand-encoded MQTT 3.1.1 / 5 packets, one epoll loop (no third-party library;
the same bytes go to both brokers). 127.0.0.1 only.

Subcommands (each prints one JSON object on stdout at the end; progress goes to stderr):

  sessions   create --count persistent sessions "<id-prefix>-<i>" (3.1.1: Clean Session 0;
             5: Session Expiry --expiry), each subscribed at QoS 1 to --topic ({i}: its index),
             then DISCONNECT: the sessions stay in the broker, offline
  publish    --count QoS 1 messages from --publishers connections, message g to topic
             --topic with {t} = g mod --topics: the offline queues fill evenly
  loss-run   persistent subscribers (--online stay connected and acknowledge what they get,
             --offline only subscribe and leave) on "durable/loss/+", then --publishers
             publish numbered messages on "durable/loss/<p>" until every connection is gone
             (the broker was killed) or --seconds; writes --state: what was acknowledged
             (PUBACK) per publisher and what each online subscriber had received
  loss-check after the broker restarted on the same store: reconnect --state's subscribers
             (Clean Session 0), take everything the broker still has, and count per subscriber
             the acknowledged messages never delivered (lost) and the duplicates
  drain      reconnect --count sessions "<id-prefix>-<i>" (--parallel at a time) and take
             their queues: counts delivered, duplicate and missing messages against --expect
             per session

Payload: "DUR1", publisher (u32), sequence number (u64), zero filler to --size.

This is a Python client: at a few tens of thousands of messages per second it can be the
limit of a phase, so every phase reports its own rate and CPU time (bench/durable.sh says which
side was the limit).
"""

import argparse
import base64
import errno
import json
import os
import resource
import selectors
import socket
import struct
import sys
import time
import zlib

MAGIC = b"DUR1"
HEADER = struct.Struct("!4sIQ")
KEEPALIVE = 900  # seconds: no PINGREQ is needed within a phase


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def utf8(s):
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def connect_packet(client_id, version, clean, expiry):
    flags = 0x02 if clean else 0x00
    body = utf8("MQTT") + bytes([version, flags]) + struct.pack("!H", KEEPALIVE)
    if version == 5:
        props = b"\x11" + struct.pack("!I", expiry) if expiry else b""
        body += varint(len(props)) + props
    body += utf8(client_id)
    return b"\x10" + varint(len(body)) + body


def subscribe_packet(packet_id, version, filters):
    body = bytearray(struct.pack("!H", packet_id))
    if version == 5:
        body += b"\x00"
    for f in filters:
        body += utf8(f) + b"\x01"  # QoS 1
    return b"\x82" + varint(len(body)) + bytes(body)


def puback_packet(packet_id):
    return b"\x40\x02" + struct.pack("!H", packet_id)


DISCONNECT = b"\xe0\x00"


class Publish:
    """What the clients need of a received PUBLISH."""
    __slots__ = ("qos", "packet_id", "publisher", "seq")


def parse_publish(flags, body, version):
    p = Publish()
    p.qos = (flags >> 1) & 3
    tlen = (body[0] << 8) | body[1]
    pos = 2 + tlen
    p.packet_id = 0
    if p.qos:
        p.packet_id = (body[pos] << 8) | body[pos + 1]
        pos += 2
    if version == 5:
        n, mult = 0, 1
        while True:
            b = body[pos]
            pos += 1
            n += (b & 0x7F) * mult
            mult <<= 7
            if not b & 0x80:
                break
        pos += n
    if len(body) - pos >= HEADER.size and body[pos:pos + 4] == MAGIC:
        _, p.publisher, p.seq = HEADER.unpack_from(body, pos)
    else:
        p.publisher, p.seq = -1, -1
    return p


def receive_maximum(body):
    """The Receive Maximum of a v5 CONNACK body (65535 when absent)."""
    n, mult, pos = 0, 1, 2
    while pos < len(body):
        b = body[pos]
        pos += 1
        n += (b & 0x7F) * mult
        mult <<= 7
        if not b & 0x80:
            break
    end = min(len(body), pos + n)
    sizes = {0x11: 4, 0x21: 2, 0x24: 1, 0x25: 1, 0x27: 4, 0x22: 2, 0x28: 1, 0x29: 1, 0x2A: 1,
             0x13: 2}
    while pos < end:
        ident = body[pos]
        pos += 1
        if ident == 0x21:
            return (body[pos] << 8) | body[pos + 1]
        if ident in sizes:
            pos += sizes[ident]
        elif ident == 0x26:  # user property: two strings
            for _ in range(2):
                pos += 2 + ((body[pos] << 8) | body[pos + 1])
        else:  # strings and binary data: a two-byte length
            pos += 2 + ((body[pos] << 8) | body[pos + 1])
    return 65535


class Conn:
    """One MQTT connection on the loop: a read buffer cut into packets, a write buffer sent as
    far as the socket takes it. The owner gets on_packet(conn, type, flags, body) and
    on_close(conn, why)."""

    def __init__(self, loop, owner, tag):
        self.loop, self.owner, self.tag = loop, owner, tag
        self.rbuf = bytearray()
        self.wbuf = bytearray()
        self.closed = False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        rc = self.sock.connect_ex((loop.host, loop.port))
        if rc not in (0, errno.EINPROGRESS):
            self.sock.close()
            raise ConnectionError(f"connect: {os.strerror(rc)}")
        self.connecting = rc != 0
        self.events = selectors.EVENT_READ | selectors.EVENT_WRITE
        loop.sel.register(self.sock, self.events, self)

    def send(self, data):
        if self.closed:
            return
        self.wbuf += data
        if not self.connecting:
            self.flush()

    def flush(self):
        while self.wbuf and not self.closed:
            try:
                n = self.sock.send(self.wbuf)
            except BlockingIOError:
                break
            except OSError as e:
                self.close(f"send: {e.strerror}")
                return
            del self.wbuf[:n]
        self._want(selectors.EVENT_READ | (selectors.EVENT_WRITE if self.wbuf else 0))

    def _want(self, events):
        if not self.closed and events != self.events:
            self.events = events
            self.loop.sel.modify(self.sock, events, self)

    def on_event(self, mask):
        if mask & selectors.EVENT_WRITE:
            if self.connecting:
                err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    self.close(f"connect: {os.strerror(err)}")
                    return
                self.connecting = False
            self.flush()
        if mask & selectors.EVENT_READ and not self.closed:
            try:
                chunk = self.sock.recv(1 << 18)
            except BlockingIOError:
                return
            except OSError as e:
                self.close(f"recv: {e.strerror}")
                return
            if not chunk:
                self.close("closed by broker")
                return
            self.rbuf += chunk
            self._packets()

    def _packets(self):
        buf = self.rbuf
        pos, end = 0, len(buf)
        while end - pos >= 2 and not self.closed:
            n, mult, i = 0, 1, pos + 1
            while i < end:
                b = buf[i]
                i += 1
                n += (b & 0x7F) * mult
                mult <<= 7
                if not b & 0x80:
                    break
            else:
                break  # length incomplete
            if end - i < n:
                break
            first = buf[pos]
            self.owner.on_packet(self, first >> 4, first & 0x0F, bytes(buf[i:i + n]))
            pos = i + n
        if pos:
            del buf[:pos]

    def close(self, why="closed"):
        if self.closed:
            return
        self.closed = True
        try:
            self.loop.sel.unregister(self.sock)
        except (KeyError, ValueError):
            pass
        self.sock.close()
        self.owner.on_close(self, why)


class Loop:
    def __init__(self, host, port):
        self.host, self.port = host, port
        self.sel = selectors.EpollSelector()
        self.tickers = []

    def run(self, done, deadline):
        """Until done() or the monotonic deadline; tickers run about every 0.2 s."""
        last = 0.0
        while not done():
            now = time.monotonic()
            if now >= deadline:
                return False
            for key, mask in self.sel.select(0.05):
                key.data.on_event(mask)
            if now - last >= 0.2:
                last = now
                for t in self.tickers:
                    t(now)
        return True


class Progress:
    """One status line on stderr: rewritten in place on a terminal, else every 5 s."""

    def __init__(self, what):
        self.what = what
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.shown = False

    def show(self, text, now=None, final=False):
        now = time.monotonic() if now is None else now
        if not final and now - self.last < (1.0 if self.tty else 5.0):
            return
        self.last = now
        if self.tty:
            sys.stderr.write(f"\r  {self.what}: {text}\x1b[K" + ("\n" if final else ""))
        else:
            sys.stderr.write(f"  {self.what}: {text}\n")
        sys.stderr.flush()
        self.shown = True


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def pack_counts(b):
    return base64.b64encode(zlib.compress(bytes(b), 6)).decode()


def unpack_counts(s):
    return bytearray(zlib.decompress(base64.b64decode(s)))


def bump(arrays, key, seq):
    """counts[key][seq] += 1 (saturating at 255), growing the array as needed."""
    a = arrays.get(key)
    if a is None:
        a = arrays[key] = bytearray()
    if seq >= len(a):
        a.extend(bytes(max(seq + 1 - len(a), len(a))))
    if a[seq] < 255:
        a[seq] += 1
    return a[seq]


# ---------------------------------------------------------------------------------------------
# Sessions: CONNECT (persistent), SUBSCRIBE, SUBACK, DISCONNECT
# ---------------------------------------------------------------------------------------------


class SessionMaker:
    """Creates persistent sessions `ids`, `parallel` at a time; each subscribes to its
    filters and leaves. `stay` (a set of indices) keeps those connected as subscribers that
    acknowledge what they receive (loss-run's online subscribers)."""

    def __init__(self, loop, ids, filters, version, expiry, parallel, progress, stay=(),
                 on_message=None):
        self.loop, self.ids, self.filters = loop, ids, filters
        self.version, self.expiry, self.parallel = version, expiry, parallel
        self.progress = progress
        self.stay, self.on_message = set(stay), on_message
        self.next = 0
        self.active = 0
        self.done_count = 0
        self.failed = []
        self.refused = 0
        self.online = {}  # index -> Conn
        self.started = time.monotonic()

    def start(self):
        self._fill()

    def _fill(self):
        while self.active < self.parallel and self.next < len(self.ids):
            i = self.next
            self.next += 1
            try:
                c = Conn(self.loop, self, i)
            except (OSError, ConnectionError) as e:
                self.failed.append(f"{self.ids[i]}: {e}")
                continue
            c.stage = "connack"
            c.send(connect_packet(self.ids[i], self.version, False, self.expiry)
                   + subscribe_packet(1, self.version, self.filters(i)))
            self.active += 1

    def finished(self):
        return self.next >= len(self.ids) and self.active == 0

    def ready(self):
        """Every session made, the online ones still connected."""
        return self.done_count + len(self.failed) >= len(self.ids)

    def on_packet(self, c, ptype, flags, body):
        if ptype == 2:  # CONNACK
            rc = body[1] if len(body) > 1 else 255
            if rc != 0:
                self.failed.append(f"{self.ids[c.tag]}: CONNACK {rc:#x}")
                c.stage = "failed"
                c.close("refused")
        elif ptype == 9:  # SUBACK
            codes = body[3:] if self.version == 5 else body[2:]
            if self.version == 5:  # skip the properties
                n = body[2]
                codes = body[3 + n:]
            self.refused += sum(1 for x in codes if x >= 0x80)
            c.stage = "subscribed"
            self.done_count += 1
            self.progress.show(f"{self.done_count}/{len(self.ids)}")
            if c.tag in self.stay:
                self.online[c.tag] = c
                self.active -= 1
                self._fill()
            else:
                c.send(DISCONNECT)
                c.stage = "leaving"
                c.close("left")  # DISCONNECT is written; the broker sees it before the FIN
        elif ptype == 3 and self.on_message is not None:
            p = parse_publish(flags, body, self.version)
            if p.qos:
                c.send(puback_packet(p.packet_id))
            self.on_message(c.tag, p)

    def on_close(self, c, why):
        if c.tag in self.online:
            del self.online[c.tag]
            return
        if c.stage not in ("leaving", "failed"):
            self.failed.append(f"{self.ids[c.tag]}: {why} before SUBACK")
        self.active -= 1
        self._fill()


# ---------------------------------------------------------------------------------------------
# Publishers: numbered QoS 1 messages through a window
# ---------------------------------------------------------------------------------------------


class Publishers:
    def __init__(self, loop, count, topic_of, version, size, window, total, progress,
                 id_prefix, stop_at=None):
        self.loop, self.version, self.window = loop, version, window
        self.topic_of = topic_of  # (publisher, seq) -> topic
        self.total = total  # messages in all; 0: until every connection is gone
        self.count = count
        self.filler = bytes(max(0, size - HEADER.size))
        self.progress = progress
        self.sent = [0] * count
        self.acked = [bytearray() for _ in range(count)]
        self.acked_n = [0] * count
        self.refused = 0
        self.inflight = [dict() for _ in range(count)]
        self.free = [list(range(window, 0, -1)) for _ in range(count)]
        self.conns = []
        self.alive = 0
        self.connected = [False] * count
        self.quota = [total // count + (1 if p < total % count else 0) for p in range(count)] \
            if total else [None] * count
        self.lost_reasons = []
        self.started = None
        self.stop_at = stop_at
        self.topic_cache = {}
        for p in range(count):
            c = Conn(loop, self, p)
            c.send(connect_packet(f"{id_prefix}-{p}", version, True, 0))
            self.conns.append(c)
            self.alive += 1

    def all_acked(self):
        return self.total and sum(self.acked_n) >= self.total

    def all_gone(self):
        return self.alive == 0

    def acked_total(self):
        return sum(self.acked_n)

    def _pump(self, p):
        c = self.conns[p]
        if c.closed or not self.connected[p] or len(c.wbuf) > (1 << 20):
            return
        if self.stop_at is not None and time.monotonic() >= self.stop_at:
            return
        free, inflight = self.free[p], self.inflight[p]
        out = []
        quota = self.quota[p]
        v5 = self.version == 5
        while free and (quota is None or self.sent[p] < quota):
            seq = self.sent[p]
            topic = self.topic_of(p, seq)
            th = self.topic_cache.get(topic)
            if th is None:
                th = self.topic_cache[topic] = utf8(topic)
            pid = free.pop()
            inflight[pid] = seq
            body_len = len(th) + 2 + (1 if v5 else 0) + HEADER.size + len(self.filler)
            out.append(b"\x32" + varint(body_len) + th + struct.pack("!H", pid)
                       + (b"\x00" if v5 else b"") + HEADER.pack(MAGIC, p, seq) + self.filler)
            self.sent[p] = seq + 1
        if out:
            c.send(b"".join(out))

    def on_packet(self, c, ptype, flags, body):
        p = c.tag
        if ptype == 2:
            if len(body) < 2 or body[1] != 0:
                self.lost_reasons.append(f"publisher {p}: CONNACK {body.hex()}")
                c.close("refused")
                return
            self.connected[p] = True
            if self.version == 5:  # never more in flight than the broker's Receive Maximum
                cap = receive_maximum(body)
                while len(self.free[p]) > cap:
                    self.free[p].pop(0)
            if self.started is None:
                self.started = time.monotonic()
            self._pump(p)
        elif ptype == 4:  # PUBACK
            pid = (body[0] << 8) | body[1]
            seq = self.inflight[p].pop(pid, None)
            if seq is None:
                return
            if len(body) > 2 and body[2] >= 0x80:
                self.refused += 1  # v5: refused (e.g. the store cannot write): not acknowledged
            else:
                a = self.acked[p]
                if seq >= len(a):
                    a.extend(bytes(max(seq + 1 - len(a), len(a), 1024)))
                a[seq] = 1
                self.acked_n[p] += 1
            self.free[p].append(pid)
            self._pump(p)

    def on_close(self, c, why):
        self.alive -= 1
        self.lost_reasons.append(f"publisher {c.tag}: {why}")

    def tick(self, now):
        for p in range(self.count):
            self._pump(p)
        self.progress.show(self.status(now), now)

    def status(self, now=None):
        now = time.monotonic() if now is None else now
        sent, acked = sum(self.sent), self.acked_total()
        el = now - self.started if self.started else 0
        rate = acked / el if el > 0 else 0
        goal = f"/{self.total}" if self.total else ""
        return f"sent {sent}{goal}, acknowledged {acked} ({rate / 1000:.1f}k/s)"


# ---------------------------------------------------------------------------------------------
# Subcommands
# ---------------------------------------------------------------------------------------------


def emit(doc):
    print(json.dumps(doc, sort_keys=True), flush=True)


def cmd_sessions(a):
    loop = Loop(a.host, a.port)
    ids = [f"{a.id_prefix}-{i}" for i in range(a.count)]
    single = "{i}" not in a.topic
    mk = SessionMaker(loop, ids, lambda i: [a.topic.replace("{i}", str(i))], a.protocol,
                      a.expiry, a.parallel, Progress(a.label or f"creating {a.count} sessions"))
    t0, c0 = time.monotonic(), cpu_seconds()
    mk.start()
    ok = loop.run(mk.finished, t0 + a.seconds)
    el = time.monotonic() - t0
    mk.progress.show(f"{mk.done_count}/{a.count} in {el:.1f} s ({mk.done_count / el:.0f}/s)"
                     + ("" if ok else " (time limit)"), final=True)
    emit({"sessions": mk.done_count, "failed": len(mk.failed), "refused": mk.refused,
          "errors": mk.failed[:5], "seconds": round(el, 3), "per_second": round(mk.done_count / el, 1),
          "client_cpu_s": round(cpu_seconds() - c0, 2), "topics": 1 if single else a.count,
          "complete": ok and not mk.failed})
    return 0 if ok and not mk.failed else 1


def cmd_publish(a):
    loop = Loop(a.host, a.port)
    topics = a.topics

    def topic_of(p, seq):
        g = seq * a.publishers + p
        return a.topic.replace("{t}", str(g % topics))

    pubs = Publishers(loop, a.publishers, topic_of, a.protocol, a.size, a.window, a.count,
                      Progress(a.label or f"publishing {a.count} messages"), a.id_prefix)
    loop.tickers.append(pubs.tick)
    t0, c0 = time.monotonic(), cpu_seconds()
    ok = loop.run(lambda: pubs.all_acked() or pubs.all_gone(), t0 + a.seconds)
    el = time.monotonic() - (pubs.started or t0)
    pubs.progress.show(pubs.status() + f" in {el:.1f} s", final=True)
    for c in pubs.conns:
        c.send(DISCONNECT)
        c.flush()
        c.close("done")
    acked = pubs.acked_total()
    emit({"sent": sum(pubs.sent), "acked": acked, "refused": pubs.refused,
          "seconds": round(el, 3), "per_second": round(acked / el, 1) if el > 0 else 0,
          "client_cpu_s": round(cpu_seconds() - c0, 2),
          "complete": bool(ok and acked == a.count), "errors": pubs.lost_reasons[:5]})
    return 0 if ok and acked == a.count else 1


def loss_ids(a):
    return ([f"{a.id_prefix}-online-{i}" for i in range(a.online)]
            + [f"{a.id_prefix}-offline-{i}" for i in range(a.offline)])


def cmd_loss_run(a):
    loop = Loop(a.host, a.port)
    ids = loss_ids(a)
    received = {i: {} for i in range(a.online)}  # subscriber -> publisher -> counts by seq

    def on_message(tag, p):
        if p.publisher >= 0:
            bump(received[tag], p.publisher, p.seq)

    mk = SessionMaker(loop, ids, lambda i: ["durable/loss/+"], a.protocol, a.expiry, 64,
                      Progress("subscribers"), stay=range(a.online), on_message=on_message)
    t0 = time.monotonic()
    mk.start()
    if not loop.run(mk.ready, t0 + 60) or mk.failed or len(mk.online) != a.online:
        emit({"error": "could not set up the subscribers", "details": mk.failed[:5]})
        return 1
    mk.progress.show(f"{a.online} online + {a.offline} offline persistent subscribers ready",
                     final=True)
    pubs = Publishers(loop, a.publishers, lambda p, seq: f"durable/loss/{p}", a.protocol,
                      a.size, a.window, 0, Progress("publishing until the broker goes"),
                      f"{a.id_prefix}-pub", stop_at=time.monotonic() + a.seconds)
    loop.tickers.append(pubs.tick)
    started_marked = [False]

    def mark(now):
        if pubs.started and not started_marked[0] and a.started_file:
            started_marked[0] = True
            with open(a.started_file, "w") as f:
                f.write(f"{time.time():.3f}\n")

    loop.tickers.insert(0, mark)
    c0 = time.monotonic()
    # Ends when every publisher connection is gone (the broker was killed), or --seconds + 5.
    loop.run(lambda: pubs.all_gone() and not mk.online, c0 + a.seconds + 5)
    for c in list(pubs.conns) + list(mk.online.values()):
        c.close("end of run")
    pubs.progress.show(pubs.status(), final=True)
    state = {"protocol": a.protocol, "publishers": a.publishers, "online": a.online,
             "offline": a.offline, "id_prefix": a.id_prefix, "sent": pubs.sent,
             "acked": [pack_counts(x) for x in pubs.acked], "acked_n": pubs.acked_n,
             "refused": pubs.refused,
             "received": {str(i): {str(p): pack_counts(b) for p, b in r.items()}
                          for i, r in received.items()},
             "publisher_end": pubs.lost_reasons[:3]}
    with open(a.state, "w") as f:
        json.dump(state, f)
    emit({"sent": sum(pubs.sent), "acked": pubs.acked_total(), "refused": pubs.refused,
          "online_received": sum(sum(1 for x in b if x) for r in received.values()
                                 for b in r.values()),
          "state": a.state})
    return 0


class Drainer:
    """Reconnects sessions `ids` (Clean Session 0 / Clean Start 0), `parallel` at a time,
    and takes what the broker delivers: a session is done when it has `expect` messages, or
    after `idle` seconds without one."""

    def __init__(self, loop, ids, version, expiry, parallel, expect, idle, progress):
        self.loop, self.ids, self.version, self.expiry = loop, ids, version, expiry
        self.parallel, self.expect, self.idle = parallel, expect, idle
        self.progress = progress
        self.next = 0
        self.active = {}
        self.finished_n = 0
        self.present = 0
        self.delivered = 0
        self.duplicates = 0
        self.short = 0  # sessions that got fewer than expect
        self.failed = []
        self.counts = {}  # index -> {publisher: bytearray of counts} (kept when wanted)
        self.keep = False
        self.first_at = {}
        self.started = time.monotonic()

    def start(self):
        self._fill()

    def _fill(self):
        while len(self.active) < self.parallel and self.next < len(self.ids):
            i = self.next
            self.next += 1
            try:
                c = Conn(self.loop, self, i)
            except (OSError, ConnectionError) as e:
                self.failed.append(f"{self.ids[i]}: {e}")
                self.finished_n += 1
                continue
            c.got = 0
            c.seen = {}
            c.last = time.monotonic()
            c.done = False
            c.send(connect_packet(self.ids[i], self.version, False, self.expiry))
            self.active[i] = c

    def done(self):
        return self.next >= len(self.ids) and not self.active

    def _finish(self, c):
        if c.done:
            return
        c.done = True
        if self.expect and c.got < self.expect:
            self.short += 1
        if self.keep:
            self.counts[c.tag] = c.seen
        c.send(DISCONNECT)
        c.close("done")

    def on_packet(self, c, ptype, flags, body):
        c.last = time.monotonic()
        if ptype == 2:
            if len(body) < 2 or body[1] != 0:
                self.failed.append(f"{self.ids[c.tag]}: CONNACK {body.hex()}")
                c.done = True
                c.close("refused")
                return
            self.present += body[0] & 1
        elif ptype == 3:
            p = parse_publish(flags, body, self.version)
            if p.qos:
                c.send(puback_packet(p.packet_id))
            self.delivered += 1
            if bump(c.seen, p.publisher, p.seq) > 1:
                self.duplicates += 1
            else:
                c.got += 1
            if self.expect and c.got >= self.expect:
                self._finish(c)

    def on_close(self, c, why):
        if not c.done:
            self.failed.append(f"{self.ids[c.tag]}: {why}")
            c.done = True
        self.active.pop(c.tag, None)
        self.finished_n += 1
        self._fill()

    def tick(self, now):
        for c in list(self.active.values()):
            if now - c.last >= self.idle:
                self._finish(c)
        self._fill()
        el = now - self.started
        self.progress.show(f"{self.finished_n}/{len(self.ids)} sessions, {self.delivered} "
                           f"messages ({self.delivered / el / 1000 if el > 0 else 0:.1f}k/s)", now)


def cmd_drain(a):
    loop = Loop(a.host, a.port)
    ids = [f"{a.id_prefix}-{i}" for i in range(a.count)]
    d = Drainer(loop, ids, a.protocol, a.expiry, a.parallel, a.expect, a.idle,
                Progress(a.label or f"draining {a.count} sessions"))
    loop.tickers.append(d.tick)
    t0, c0 = time.monotonic(), cpu_seconds()
    d.start()
    ok = loop.run(d.done, t0 + a.seconds)
    el = time.monotonic() - t0
    d.progress.show(f"{d.finished_n}/{a.count} sessions, {d.delivered} messages in {el:.1f} s",
                    final=True)
    expected = a.expect * a.count
    unique = d.delivered - d.duplicates
    emit({"sessions": a.count, "session_present": d.present, "delivered": d.delivered,
          "unique": unique, "duplicates": d.duplicates, "expected": expected,
          "missing": max(0, expected - unique) if a.expect else None,
          "short_sessions": d.short, "failed": len(d.failed), "errors": d.failed[:5],
          "seconds": round(el, 3), "per_second": round(d.delivered / el, 1) if el > 0 else 0,
          "client_cpu_s": round(cpu_seconds() - c0, 2), "complete": ok})
    return 0 if ok and not d.failed else 1


def cmd_loss_check(a):
    with open(a.state) as f:
        st = json.load(f)
    loop = Loop(a.host, a.port)

    class Ids:
        pass

    ns = Ids()
    ns.id_prefix, ns.online, ns.offline = st["id_prefix"], st["online"], st["offline"]
    ids = loss_ids(ns)
    d = Drainer(loop, ids, st["protocol"], a.expiry, a.parallel, 0, a.idle,
                Progress("reconnecting the subscribers"))
    d.keep = True
    loop.tickers.append(d.tick)
    t0 = time.monotonic()
    d.start()
    loop.run(d.done, t0 + a.seconds)
    d.progress.show(f"{d.delivered} messages after the restart", final=True)
    acked = [unpack_counts(x) for x in st["acked"]]
    subs = []
    for i, client_id in enumerate(ids):
        online = i < st["online"]
        before = {int(p): unpack_counts(b) for p, b in st["received"].get(str(i), {}).items()} \
            if online else {}
        after = d.counts.get(i, {})
        lost = dup = delivered_unacked = got = 0
        for p, ack in enumerate(acked):
            b = before.get(p, b"")
            c = after.get(p, b"")
            n = max(len(ack), len(b), len(c))
            for s in range(n):
                k = (b[s] if s < len(b) else 0) + (c[s] if s < len(c) else 0)
                was_acked = s < len(ack) and ack[s]
                if k:
                    got += 1
                    dup += k - 1
                    if not was_acked:
                        delivered_unacked += 1
                elif was_acked:
                    lost += 1
        subs.append({"client": client_id, "online": online, "lost": lost, "duplicates": dup,
                     "delivered": got, "delivered_not_acked": delivered_unacked,
                     "before_kill": sum(sum(1 for x in b if x) for b in before.values()),
                     "after_restart": sum(sum(1 for x in c if x) for c in after.values())})
    emit({"acked": sum(st["acked_n"]), "sent": sum(st["sent"]), "subscribers": subs,
          "lost": sum(s["lost"] for s in subs), "duplicates": sum(s["duplicates"] for s in subs),
          "session_present": d.present, "reconnect_failed": len(d.failed),
          "errors": d.failed[:3]})
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--protocol", type=int, choices=(4, 5), default=4)
    ap.add_argument("--expiry", type=int, default=86400,
                    help="MQTT 5 Session Expiry Interval of the persistent sessions (s)")
    ap.add_argument("--seconds", type=float, default=600, help="time limit of the phase")
    ap.add_argument("--label", default="", help="progress line label")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("sessions")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--id-prefix", default="durable")
    p.add_argument("--topic", default="durable/q/{i}")
    p.add_argument("--parallel", type=int, default=200)
    p.set_defaults(fn=cmd_sessions)
    p = sub.add_parser("publish")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--publishers", type=int, default=4)
    p.add_argument("--topic", default="durable/q/{t}")
    p.add_argument("--topics", type=int, default=1)
    p.add_argument("--window", type=int, default=200)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--id-prefix", default="durable-pub")
    p.set_defaults(fn=cmd_publish)
    p = sub.add_parser("loss-run")
    p.add_argument("--publishers", type=int, default=4)
    p.add_argument("--online", type=int, default=1)
    p.add_argument("--offline", type=int, default=1)
    p.add_argument("--window", type=int, default=64)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--id-prefix", default="loss")
    p.add_argument("--state", required=True)
    p.add_argument("--started-file", default="")
    p.set_defaults(fn=cmd_loss_run)
    p = sub.add_parser("loss-check")
    p.add_argument("--state", required=True)
    p.add_argument("--idle", type=float, default=2.0)
    p.add_argument("--parallel", type=int, default=1, help="subscribers reconnecting at once")
    p.set_defaults(fn=cmd_loss_check)
    p = sub.add_parser("drain")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--id-prefix", default="durable")
    p.add_argument("--expect", type=int, default=0, help="messages per session")
    p.add_argument("--parallel", type=int, default=200)
    p.add_argument("--idle", type=float, default=2.0)
    p.set_defaults(fn=cmd_drain)
    a = ap.parse_args()
    if a.host not in ("127.0.0.1", "localhost", "::1"):
        ap.error("--host: loopback only")
    return a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
