// Bad input closes only the offending connection, with the spec's reason code (v5 DISCONNECT),
// while a healthy publisher/subscriber pair keeps exchanging messages. Extends
// 12_malformed_test.cpp (garbage before CONNECT, PINGREQ first, oversized CONNECT, five-byte
// Remaining Length, QoS 3, '#' in a topic, unknown Topic Alias) without repeating it.
//
// Mosquitto 2.0.11 often closes without the DISCONNECT a server SHOULD send (MQTT 5 section
// 4.13), which check_closed_with allows against it; where it sends another code than the spec's,
// the section names the deviation and the code is checked against tern only.

#include "healthy_pair.hpp"
#include "raw_client.hpp"
#include "raw_packets.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace tern::test;

namespace {

constexpr std::uint8_t malformed_packet = 0x81;
constexpr std::uint8_t protocol_error = 0x82;
constexpr std::uint8_t topic_name_invalid = 0x90;
constexpr std::uint8_t packet_too_large = 0x95;

/// A SUBSCRIBE / UNSUBSCRIBE body start: packet id 1 and (v5) empty properties.
std::vector<std::uint8_t> id_and_props(std::uint8_t level) {
    std::vector<std::uint8_t> body{0x00, 0x01};
    if (level == 5) {
        body.push_back(0x00);
    }
    return body;
}

} // namespace

TEST_CASE("bad packets after CONNECT close only that connection, with the spec's reason",
          "[broker][malformed][bad_input]") {
    broker_process broker;
    healthy_pair healthy(broker.port(), "bad-input");
    const std::uint8_t level = GENERATE(std::uint8_t{4}, std::uint8_t{5});
    CAPTURE(int{level});
    raw_client c(broker.port(), level);
    REQUIRE(c.connect("offender"));

    SECTION("reserved packet type 0") {
        REQUIRE(c.socket().send(hex("00 00")));
        check_closed_with(c, {malformed_packet, protocol_error});
    }
    SECTION("ill-formed UTF-8 in a topic name [MQTT-1.5.4-1]") {
        REQUIRE(c.socket().send(publish_packet(level, "a/\xff", "x", 0)));
        check_closed_with(c, {malformed_packet});
    }
    SECTION("U+0000 in a topic name [MQTT-1.5.4-2]") {
        REQUIRE(c.socket().send(publish_packet(level, std::string("a/\0b", 4), "x", 0)));
        check_closed_with(c, {malformed_packet});
    }
    SECTION("'+' in a PUBLISH topic [MQTT-3.3.2-2]") {
        REQUIRE(c.socket().send(publish_packet(level, "a/+", "x", 1, false, 1)));
        // Mosquitto 2.0.11 answers 0x82 Protocol Error.
        check_closed_with(c, {topic_name_invalid}, "DISCONNECT 0x82 instead of 0x90");
    }
    SECTION("an empty topic name without Topic Alias [MQTT-3.3.2-1]") {
        REQUIRE(c.socket().send(publish_packet(level, "", "x", 0)));
        check_closed_with(c, {protocol_error, topic_name_invalid});
    }
    SECTION("a QoS 1 PUBLISH with packet identifier 0 [MQTT-2.2.1-3]") {
        REQUIRE(c.socket().send(publish_packet(level, "a", "x", 1, false, 0)));
        check_closed_with(c, {malformed_packet, protocol_error});
    }
    SECTION("a SUBSCRIBE without any filter [MQTT-3.8.3-2]") {
        REQUIRE(c.socket().send(frame(0x82, id_and_props(level))));
        // The spec calls it a Protocol Error; Mosquitto 2.0.11 answers 0x81 Malformed Packet.
        check_closed_with(c, {protocol_error}, "DISCONNECT 0x81 instead of 0x82");
    }
    SECTION("an UNSUBSCRIBE without any filter [MQTT-3.10.3-2]") {
        REQUIRE(c.socket().send(frame(0xA2, id_and_props(level))));
        check_closed_with(c, {protocol_error}, "DISCONNECT 0x81 instead of 0x82");
    }
    SECTION("SUBSCRIBE with fixed-header flags 0000 [MQTT-3.8.1-1]") {
        auto body = id_and_props(level);
        put_string(body, "a");
        body.push_back(0x00);
        REQUIRE(c.socket().send(frame(0x80, body)));
        check_closed_with(c, {malformed_packet});
    }
    SECTION("SUBSCRIBE with reserved option bits set [MQTT-3.8.3-5]") {
        auto body = id_and_props(level);
        put_string(body, "a");
        body.push_back(0xC1);
        REQUIRE(c.socket().send(frame(0x82, body)));
        check_closed_with(c, {malformed_packet});
    }
    SECTION("PUBREL with fixed-header flags 0000 [MQTT-3.6.1-1]") {
        REQUIRE(c.socket().send(hex("60 02 00 01")));
        check_closed_with(c, {malformed_packet});
    }
    SECTION("a packet truncated by the peer closing") {
        REQUIRE(c.socket().send(hex("30 20 00 03 61 2f 62")));
        c.close();
    }

    healthy.check("still alive");
    CHECK(broker.alive());
}

TEST_CASE("a packet before CONNECT closes the connection without a reply",
          "[broker][malformed][bad_input][MQTT-3.1.0-1]") {
    broker_process broker;
    healthy_pair healthy(broker.port(), "before-connect");
    raw_client c(broker.port(), 5);
    auto body = id_and_props(5);
    put_string(body, "a");
    body.push_back(0x01);
    REQUIRE(c.socket().send(frame(0x82, body))); // SUBSCRIBE
    CHECK_FALSE(c.expect(pkt_suback, 1s));
    CHECK(c.wait_closed());
    healthy.check("still alive");
}

// The broker's Maximum Packet Size (mosquitto.conf max_packet_size): a larger packet is a
// DISCONNECT 0x95 Packet too large [MQTT-3.2.2-15] decided from the fixed header, before its body
// arrives; 3.1.1 connections are closed.
TEST_CASE("a packet over max_packet_size closes the connection (v5 DISCONNECT 0x95)",
          "[broker][malformed][bad_input][limits]") {
    broker_settings settings;
    settings.max_packet_size = 1000;
    broker_process broker(settings);
    healthy_pair healthy(broker.port(), "too-large");
    const std::uint8_t level = GENERATE(std::uint8_t{4}, std::uint8_t{5});
    CAPTURE(int{level});
    raw_client c(broker.port(), level);
    const auto ack = c.connect("large");
    REQUIRE(ack);
    if (level == 5) {
        REQUIRE(ack->props.count(0x27) == 1); // Maximum Packet Size announced
        CHECK(ack->props.at(0x27) == hex("00 00 03 e8"));
    }
    SECTION("whole packet") {
        c.socket().send(publish_packet(level, "big", std::string(2000, 'x'), 0));
        check_closed_with(c, {packet_too_large});
    }
    SECTION("fixed header only") {
        REQUIRE(c.socket().send(hex("30 a0 1f 00 03"))); // Remaining Length 4000
        check_closed_with(c, {packet_too_large});
    }
    healthy.check("still alive");
}

TEST_CASE("a truncated packet followed by silence: the keep-alive closes the connection",
          "[broker][malformed][bad_input][MQTT-3.1.2-24]") {
    broker_process broker;
    healthy_pair healthy(broker.port(), "truncated");
    raw_client c(broker.port(), 5);
    REQUIRE(c.connect("half-sent", true, 1));
    REQUIRE(c.socket().send(hex("30 20 00 03 61 2f 62"))); // 7 of 34 bytes, then nothing
    // Mosquitto 2.0.11 checks keep-alive about every 5 s.
    check_closed_with(c, {}, nullptr, against_mosquitto() ? 9s : 4s);
    healthy.check("still alive");
}

// A connection that never completes its CONNECT is closed after the connect timeout (tern's
// `connect_timeout`, 10 s by default; 2 s here).
// Mosquitto 2.0.11 gives a new connection its default 60 s keep-alive (closed after ~90 s),
// beyond any bounded wait here.
TEST_CASE("a truncated CONNECT followed by silence is closed after the connect timeout",
          "[broker][malformed][bad_input][tern]") {
    TERN_ONLY_TEST("mosquitto closes a silent pre-CONNECT connection after ~90 s");
    broker_settings settings;
    settings.extra_config.push_back("connect_timeout 2");
    broker_process broker(settings);
    healthy_pair healthy(broker.port(), "silent");
    raw_socket s(broker.port());
    const auto packet = connect_packet(4, "never-finished");
    REQUIRE(s.send(std::vector<std::uint8_t>(packet.begin(), packet.begin() + 6)));
    const auto start = clock::now();
    CHECK(s.wait_closed(6s));
    CHECK(clock::now() - start >= 1500ms); // not closed for the truncation itself
    healthy.check("still alive");
}
