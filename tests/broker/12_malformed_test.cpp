// Bad input closes only the offending connection; the broker and other clients carry on.

#include "healthy_pair.hpp"
#include "raw_packets.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

using namespace tern::test;

TEST_CASE("bad bytes close only the offending connection", "[broker][malformed]") {
    broker_process broker;
    healthy_pair healthy(broker.port(), "healthy");

    SECTION("garbage instead of CONNECT") {
        raw_socket s(broker.port());
        s.send(hex("47 45 54 20 2f 20 48 54 54 50 2f 31 2e 31 0d 0a 0d 0a")); // "GET / HTTP/1.1"
        CHECK_FALSE(s.read_packet(1s));
        CHECK(s.wait_closed());
    }
    SECTION("a packet before CONNECT [MQTT-3.1.0-1]") {
        raw_socket s(broker.port());
        s.send(hex("c0 00")); // PINGREQ
        CHECK(s.wait_closed());
    }
    SECTION("a remaining length over the CONNECT size cap") {
        raw_socket s(broker.port());
        s.send(hex("10 ff ff ff 7f"));
        CHECK(s.wait_closed());
    }
    SECTION("a five-byte remaining length [MQTT-1.5.5]") {
        raw_socket s(broker.port());
        s.send(connect_packet(4, "varint"));
        REQUIRE(s.read_packet());
        s.send(hex("30 ff ff ff ff 01"));
        CHECK(s.wait_closed());
    }
    SECTION("3.1.1 PUBLISH with QoS 3 [MQTT-3.3.1-4]") {
        raw_socket s(broker.port());
        s.send(connect_packet(4, "qos3-v4"));
        REQUIRE(s.read_packet());
        s.send(hex("36 08 00 03 61 2f 62 00 01 78"));
        CHECK_FALSE(s.read_packet(1s)); // no reply in 3.1.1: just close
        CHECK(s.wait_closed());
    }
    SECTION("v5 PUBLISH with QoS 3 gets DISCONNECT 0x81 Malformed Packet") {
        raw_socket s(broker.port());
        s.send(connect_packet(5, "qos3-v5"));
        REQUIRE(s.read_packet());
        s.send(hex("36 09 00 03 61 2f 62 00 01 00 78"));
        const auto packet = s.read_packet();
        REQUIRE(packet);
        CHECK(disconnect_reason(*packet) == std::uint8_t{0x81});
        CHECK(s.wait_closed());
    }
    SECTION("v5 PUBLISH with a wildcard topic gets DISCONNECT 0x90 [MQTT-3.3.2-2]") {
        raw_socket s(broker.port());
        s.send(connect_packet(5, "wild-v5"));
        REQUIRE(s.read_packet());
        s.send(hex("30 06 00 03 61 2f 23 00")); // topic "a/#", QoS 0, no properties
        const auto packet = s.read_packet();
        REQUIRE(packet);
        CHECK(disconnect_reason(*packet) == std::uint8_t{0x90});
        CHECK(s.wait_closed());
    }
    SECTION("v5 PUBLISH with a Topic Alias above our Topic Alias Maximum (64) gets 0x94") {
        raw_socket s(broker.port());
        s.send(connect_packet(5, "alias-v5"));
        REQUIRE(s.read_packet());
        s.send(hex("30 0a 00 03 61 2f 62 03 23 00 41 78")); // Topic Alias 65 [MQTT-3.3.2-9]
        const auto packet = s.read_packet();
        REQUIRE(packet);
        CHECK(disconnect_reason(*packet) == std::uint8_t{0x94});
        CHECK(s.wait_closed());
    }
    SECTION("a packet truncated by the peer closing") {
        raw_socket s(broker.port());
        s.send(connect_packet(4, "truncated"));
        REQUIRE(s.read_packet());
        s.send(hex("30 20 00 03 61 2f 62"));
    }

    healthy.check("still alive");
    CHECK(broker.alive());
}

TEST_CASE("the broker logs one line per connection closed on error", "[broker][malformed][tern]") {
    TERN_ONLY_TEST("checks the format of tern's log lines");
    broker_process broker;
    {
        raw_socket s(broker.port());
        s.send(connect_packet(5, "logged-client"));
        REQUIRE(s.read_packet());
        s.send(hex("36 09 00 03 61 2f 62 00 01 00 78"));
        REQUIRE(s.read_packet());
        REQUIRE(s.wait_closed());
    }
    const std::string log = broker.log();
    CAPTURE(log);
    CHECK(log.find("logged-client") != std::string::npos);
    CHECK(log.find("0x81") != std::string::npos);
}
