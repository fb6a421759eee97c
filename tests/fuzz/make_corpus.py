#!/usr/bin/env python3
"""Writes the seed corpora of the codec fuzzers into tests/fuzz/corpus/<target>/.

Run once after changing it (the binary files are kept in the repository):
    python3 tests/fuzz/make_corpus.py

Packet seeds (fuzz_decode, fuzz_roundtrip) are one selector byte (see fuzz_common.hpp) followed
by valid MQTT packets of every control packet type, for 3.1.1 and 5 (plus a 3.1 CONNECT and a
few multi-packet streams). Topic seeds (fuzz_topic) are "<filter>\\0<topic>".
"""

import pathlib
import shutil
import struct

HERE = pathlib.Path(__file__).resolve().parent

V31, V311, V5 = 0, 1, 2  # selector bits 0-1
ANY, SERVER, CLIENT = 0 << 2, 1 << 2, 2 << 2  # selector bits 2-3
WHOLE, BYTEWISE, RANDOM = 0 << 6, 1 << 6, 2 << 6  # selector bits 6-7


def vbi(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def u16(n):
    return struct.pack(">H", n)


def u32(n):
    return struct.pack(">I", n)


def s(text):
    raw = text.encode() if isinstance(text, str) else text
    return u16(len(raw)) + raw


def props(*items):
    body = b"".join(items)
    return vbi(len(body)) + body


# Property encoders by wire type [MQTT-2.2.2.2].
def p_byte(pid, v):
    return bytes([pid, v])


def p_u16(pid, v):
    return bytes([pid]) + u16(v)


def p_u32(pid, v):
    return bytes([pid]) + u32(v)


def p_vbi(pid, v):
    return bytes([pid]) + vbi(v)


def p_str(pid, v):
    return bytes([pid]) + s(v)


def p_pair(k, v):
    return b"\x26" + s(k) + s(v)


def packet(first_byte, body):
    return bytes([first_byte]) + vbi(len(body)) + body


def connect(level, client_id, *, clean=True, keep_alive=60, will=None, username=None,
            password=None, connect_props=None, will_props=None):
    name = "MQIsdp" if level == 3 else "MQTT"
    flags = 0x02 if clean else 0
    payload = s(client_id)
    if will is not None:
        topic, msg, qos, retain = will
        flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
        if level == 5:
            payload += will_props if will_props is not None else props()
        payload += s(topic) + s(msg)
    if username is not None:
        flags |= 0x80
        payload += s(username)
    if password is not None:
        flags |= 0x40
        payload += s(password)
    var = s(name) + bytes([level, flags]) + u16(keep_alive)
    if level == 5:
        var += connect_props if connect_props is not None else props()
    return packet(0x10, var + payload)


def publish(version, topic, payload, *, qos=0, retain=False, dup=False, packet_id=1,
            properties=None):
    first = 0x30 | (0x08 if dup else 0) | (qos << 1) | (0x01 if retain else 0)
    body = s(topic)
    if qos:
        body += u16(packet_id)
    if version == 5:
        body += properties if properties is not None else props()
    return packet(first, body + payload)


def ack(first, packet_id, reason=None, properties=None):
    body = u16(packet_id)
    if reason is not None:
        body += bytes([reason])
        if properties is not None:
            body += properties
    return packet(first, body)


def seeds():
    out = {}
    # ---- MQTT 3.1 / 3.1.1 -------------------------------------------------------------------
    out["v31-connect"] = (V31 | SERVER, connect(3, "legacy-device", keep_alive=30))
    out["v311-connect-minimal"] = (V311 | SERVER, connect(4, "", keep_alive=0))
    out["v311-connect-full"] = (V311 | SERVER | BYTEWISE, connect(
        4, "tern-client", clean=False, will=("status/tern-client", b"offline", 1, True),
        username="alice", password=b"s3cr\x00t"))
    out["v311-connack"] = (V311 | CLIENT, packet(0x20, b"\x01\x00"))
    out["v311-connack-refused"] = (V311 | CLIENT, packet(0x20, b"\x00\x05"))
    out["v311-publish-qos0"] = (V311, publish(4, "sensors/temp", b"21.5"))
    out["v311-publish-qos1-retain"] = (V311 | RANDOM, publish(
        4, "a/b/c", b"x" * 40, qos=1, retain=True, packet_id=0x1234))
    out["v311-publish-qos2-dup"] = (V311, publish(4, "t", b"\x00\xff", qos=2, dup=True,
                                                  packet_id=65535))
    out["v311-puback"] = (V311, ack(0x40, 7))
    out["v311-pubrec"] = (V311, ack(0x50, 8))
    out["v311-pubrel"] = (V311, ack(0x62, 9))
    out["v311-pubcomp"] = (V311, ack(0x70, 10))
    out["v311-subscribe"] = (V311 | SERVER, packet(
        0x82, u16(1) + s("sensors/+/temp") + b"\x01" + s("alerts/#") + b"\x02" + s("$SYS/x")
        + b"\x00"))
    out["v311-suback"] = (V311 | CLIENT, packet(0x90, u16(1) + b"\x00\x01\x02\x80"))
    out["v311-unsubscribe"] = (V311 | SERVER, packet(0xA2, u16(2) + s("a/+") + s("b/#")))
    out["v311-unsuback"] = (V311 | CLIENT, packet(0xB0, u16(2)))
    out["v311-pingreq"] = (V311 | SERVER, packet(0xC0, b""))
    out["v311-pingresp"] = (V311 | CLIENT, packet(0xD0, b""))
    out["v311-disconnect"] = (V311, packet(0xE0, b""))
    out["v311-session"] = (V311 | SERVER | RANDOM,
                           connect(4, "c1") + packet(0x82, u16(3) + s("x/#") + b"\x01")
                           + publish(4, "x/y", b"hello", qos=1, packet_id=4)
                           + ack(0x40, 1) + packet(0xC0, b"") + packet(0xE0, b""))

    # ---- MQTT 5 -----------------------------------------------------------------------------
    out["v5-connect-minimal"] = (V5 | SERVER, connect(5, "c"))
    out["v5-connect-full"] = (V5 | SERVER | BYTEWISE, connect(
        5, "tern-client-5", clean=False, keep_alive=120,
        will=("status/tern", b"gone", 2, False), username="bob", password=b"\x01\x02",
        connect_props=props(p_u32(0x11, 3600), p_u16(0x21, 100), p_u32(0x27, 1 << 20),
                            p_u16(0x22, 10), p_byte(0x19, 1), p_byte(0x17, 0),
                            p_pair("region", "eu"), p_pair("region", "us"),
                            p_str(0x15, "SCRAM-SHA-1"), p_str(0x16, b"\x00client-first")),
        will_props=props(p_u32(0x18, 30), p_byte(0x01, 1), p_u32(0x02, 600),
                         p_str(0x03, "text/plain"), p_str(0x08, "reply/here"),
                         p_str(0x09, b"\xde\xad"), p_pair("k", "v"))))
    out["v5-connect-level4-selector"] = (V311 | SERVER, connect(
        5, "upgrade", connect_props=props(p_u32(0x11, 0))))
    out["v5-connack"] = (V5 | CLIENT, packet(0x20, b"\x00\x00" + props()))
    out["v5-connack-props"] = (V5 | CLIENT, packet(0x20, b"\x01\x00" + props(
        p_u32(0x11, 120), p_u16(0x21, 20), p_byte(0x24, 1), p_byte(0x25, 1),
        p_u32(0x27, 65536), p_str(0x12, "auto-1234"), p_u16(0x22, 5), p_str(0x1F, "welcome"),
        p_pair("srv", "tern"), p_byte(0x28, 1), p_byte(0x29, 0), p_byte(0x2A, 1),
        p_u16(0x13, 30), p_str(0x1A, "resp/"), p_str(0x1C, "other:1883"))))
    out["v5-connack-refused"] = (V5 | CLIENT, packet(0x20, b"\x00\x87" + props(
        p_str(0x1F, "not authorized"))))
    out["v5-publish-qos0"] = (V5, publish(5, "sensors/temp", b"21.5"))
    out["v5-publish-props"] = (V5 | RANDOM, publish(
        5, "a/b", b"{\"v\":1}", qos=1, retain=True, packet_id=77, properties=props(
            p_byte(0x01, 1), p_u32(0x02, 3600), p_str(0x03, "application/json"),
            p_str(0x08, "reply/a"), p_str(0x09, b"corr-\x01"), p_pair("trace", "abc"),
            p_vbi(0x0B, 1), p_vbi(0x0B, 268435455))))
    out["v5-publish-alias"] = (V5 | SERVER, publish(
        5, "", b"payload", qos=2, packet_id=5, properties=props(p_u16(0x23, 3))))
    out["v5-puback"] = (V5, ack(0x40, 1))
    out["v5-puback-reason"] = (V5, ack(0x40, 2, 0x10, props(p_str(0x1F, "nobody"))))
    out["v5-pubrec"] = (V5, ack(0x50, 3, 0x80, props()))
    out["v5-pubrel"] = (V5, ack(0x62, 4, 0x92, props(p_pair("a", "b"))))
    out["v5-pubcomp"] = (V5, ack(0x70, 5, 0x00))
    out["v5-subscribe"] = (V5 | SERVER, packet(0x82, u16(10) + props(
        p_vbi(0x0B, 42), p_pair("who", "me")) + s("sensors/+/temp") + b"\x2d"
        + s("$share/group/alerts/#") + b"\x01" + s("a") + b"\x16"))
    out["v5-suback"] = (V5 | CLIENT, packet(0x90, u16(10) + props(p_str(0x1F, "ok"))
                                            + b"\x00\x01\x02\x80\x87\x8f\x91\x97\x9e\xa1\xa2"))
    out["v5-unsubscribe"] = (V5 | SERVER, packet(0xA2, u16(11) + props(p_pair("x", "y"))
                                                 + s("a/+") + s("$share/g/b")))
    out["v5-unsuback"] = (V5 | CLIENT, packet(0xB0, u16(11) + props()
                                              + b"\x00\x11\x80\x83\x87\x8f\x91"))
    out["v5-pingreq"] = (V5 | SERVER, packet(0xC0, b""))
    out["v5-pingresp"] = (V5 | CLIENT, packet(0xD0, b""))
    out["v5-disconnect"] = (V5, packet(0xE0, b""))
    out["v5-disconnect-props"] = (V5, packet(0xE0, b"\x8b" + props(
        p_u32(0x11, 0), p_str(0x1F, "shutting down"), p_str(0x1C, "backup:1883"))))
    out["v5-auth"] = (V5, packet(0xF0, b"\x18" + props(
        p_str(0x15, "SCRAM-SHA-1"), p_str(0x16, b"server-first"), p_str(0x1F, "continue"))))
    out["v5-session"] = (V5 | SERVER | RANDOM,
                         connect(5, "c5", connect_props=props(p_u16(0x22, 4)))
                         + packet(0x82, u16(1) + props() + s("x/#") + b"\x02")
                         + publish(5, "x/y", b"hi", qos=1, packet_id=2,
                                   properties=props(p_u16(0x23, 1)))
                         + publish(5, "", b"again", properties=props(p_u16(0x23, 1)))
                         + packet(0xC0, b"") + packet(0xE0, b"\x00" + props()))
    return out


TOPIC_SEEDS = {
    "plain": b"sport/tennis/player1\0sport/tennis/player1",
    "plus": b"sport/+/player1\0sport/tennis/player1",
    "hash": b"sport/#\0sport",
    "hash-only": b"#\0a/b/c",
    "sys": b"+/monitor/Clients\0$SYS/monitor/Clients",
    "sys-hash": b"$SYS/#\0$SYS/broker/load",
    "empty-levels": b"+/+\0/finance",
    "leading-slash": b"/+\0/finance",
    "shared": b"$share/group/sensors/+\0sensors/1",
    "shared-bad": b"$share/gr+oup/x\0x",
    "bad-hash": b"sport/tennis#\0sport/tennis",
    "bad-plus": b"sport+\0sport",
    "utf8": "caf\u00e9/\u6e29\u5ea6/+\0caf\u00e9/\u6e29\u5ea6/1".encode(),
    "utf8-surrogate": b"a/\xed\xa0\x80\0a/b",
    "utf8-overlong": b"\xc0\xaf\0\xf4\x90\x80\x80",
}


def main():
    corpus = HERE / "corpus"
    packet_seeds = seeds()
    for target in ("fuzz_decode", "fuzz_roundtrip"):
        d = corpus / target
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        for name, (selector, data) in sorted(packet_seeds.items()):
            (d / name).write_bytes(bytes([selector]) + data)
    d = corpus / "fuzz_topic"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    for name, data in sorted(TOPIC_SEEDS.items()):
        (d / name).write_bytes(data)
    print(f"{len(packet_seeds)} packet seeds x 2 targets, {len(TOPIC_SEEDS)} topic seeds")


if __name__ == "__main__":
    main()
