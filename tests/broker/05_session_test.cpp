// Persistent sessions: subscriptions and messages that outlive a connection (3.1.1 Clean Session
// 0; MQTT 5 Clean Start 0 with a Session Expiry Interval), redelivery with DUP, QoS 2 resumption,
// queue bounds and session expiry.

#include "raw_client.hpp"
#include "raw_packets.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

using namespace tern::test;

namespace {

/// CONNECT properties of a persistent v5 session (nothing for 3.1.1).
properties session_props(int version, std::uint32_t expiry = 300) {
    properties p;
    if (version == MQTT_PROTOCOL_V5) {
        p.add_int32(MQTT_PROP_SESSION_EXPIRY_INTERVAL, expiry);
    }
    return p;
}

/// The same for a raw client.
std::vector<std::uint8_t> raw_session_props(std::uint8_t level, std::uint32_t expiry = 300) {
    if (level != 5) {
        return {};
    }
    return property_writer().u32(0x11, expiry).bytes();
}

/// Payloads of every message arriving until none comes for `quiet`.
std::vector<std::string> payloads(mqtt_client& c, clock::duration quiet = 500ms) {
    std::vector<std::string> out;
    auto m = c.next_message();
    while (m) {
        out.push_back(m->payload);
        m = c.next_message(quiet);
    }
    return out;
}

} // namespace

TEST_CASE("a persistent session keeps subscriptions and queues QoS 1/2 (not QoS 0) while offline",
          "[broker][session][MQTT-3.1.2-4][MQTT-3.1.2-5]") {
    broker_process broker;
    const int version = GENERATE(MQTT_PROTOCOL_V311, MQTT_PROTOCOL_V5);
    CAPTURE(version);
    {
        mqtt_client sub("persistent", version, false);
        REQUIRE(sub.connect(broker.port(), 30, session_props(version)) == 0);
        REQUIRE(sub.subscribe("p/#", 2) == 2);
        sub.disconnect();
    }
    mqtt_client pub("pub", version);
    REQUIRE(pub.connect(broker.port()) == 0);
    REQUIRE(pub.publish("p/0", "qos0", 0));
    REQUIRE(pub.publish("p/1", "qos1", 1));
    REQUIRE(pub.publish("p/2", "qos2", 2));

    mqtt_client sub("persistent", version, false);
    REQUIRE(sub.connect(broker.port(), 30, session_props(version)) == 0);
    CHECK(sub.session_present()); // [MQTT-3.2.2-3]
    auto got = payloads(sub);
    std::sort(got.begin(), got.end()); // libmosquitto hands QoS 2 over at PUBREL
    // QoS 0 is not queued for an offline client (the spec's MAY; Mosquitto's default
    // queue_qos0_messages false, and tern's).
    CHECK(got == std::vector<std::string>{"qos1", "qos2"});

    // The subscription itself survived: live messages arrive without a new SUBSCRIBE.
    REQUIRE(pub.publish("p/live", "live", 1));
    const auto m = sub.next_message();
    REQUIRE(m);
    CHECK(m->payload == "live");
}

TEST_CASE("an unacknowledged QoS 1/2 PUBLISH is resent on reconnect with DUP and the same id",
          "[broker][session][MQTT-4.4.0-1][MQTT-3.3.1-1]") {
    broker_process broker;
    const std::uint8_t level = GENERATE(std::uint8_t{4}, std::uint8_t{5});
    const int qos = GENERATE(1, 2);
    CAPTURE(int{level}, qos);
    std::uint16_t id = 0;
    {
        raw_client sub(broker.port(), level);
        REQUIRE(sub.connect("dup-sub", false, 30, raw_session_props(level)));
        REQUIRE(sub.subscribe("dup", 2) == std::vector<std::uint8_t>{2});
        mqtt_client pub("pub", MQTT_PROTOCOL_V5);
        REQUIRE(pub.connect(broker.port()) == 0);
        REQUIRE(pub.publish("dup", "again", qos));
        const auto m = sub.next_publish();
        REQUIRE(m);
        CHECK_FALSE(m->dup);
        id = m->packet_id;
        sub.close(); // no PUBACK / PUBREC: the message stays in flight
    }
    raw_client sub(broker.port(), level);
    const auto ack = sub.connect("dup-sub", false, 30, raw_session_props(level));
    REQUIRE(ack);
    CHECK(ack->flags == 0x01); // session present
    const auto m = sub.next_publish();
    REQUIRE(m);
    CHECK(m->dup); // [MQTT-3.3.1-1]
    CHECK(m->packet_id == id);
    CHECK(m->qos == qos);
    CHECK(m->payload == "again");
    if (qos == 1) {
        REQUIRE(sub.puback(m->packet_id));
    } else {
        REQUIRE(sub.pubrec(m->packet_id));
        const auto rel = sub.expect(pkt_pubrel);
        REQUIRE(rel);
        REQUIRE(sub.pubcomp(m->packet_id));
    }
    CHECK(sub.no_publish_within(300ms)); // once acknowledged, never again
}

TEST_CASE("QoS 2 to a client resumes with PUBREL after a reconnect",
          "[broker][session][MQTT-4.4.0-1][MQTT-4.3.3]") {
    broker_process broker;
    const std::uint8_t level = GENERATE(std::uint8_t{4}, std::uint8_t{5});
    CAPTURE(int{level});
    std::uint16_t id = 0;
    {
        raw_client sub(broker.port(), level);
        REQUIRE(sub.connect("rel-sub", false, 30, raw_session_props(level)));
        REQUIRE(sub.subscribe("rel", 2) == std::vector<std::uint8_t>{2});
        mqtt_client pub("pub", MQTT_PROTOCOL_V5);
        REQUIRE(pub.connect(broker.port()) == 0);
        REQUIRE(pub.publish("rel", "two-step", 2));
        const auto m = sub.next_publish();
        REQUIRE(m);
        id = m->packet_id;
        REQUIRE(sub.pubrec(id));
        REQUIRE(sub.expect(pkt_pubrel));
        sub.close(); // no PUBCOMP
    }
    raw_client sub(broker.port(), level);
    const auto ack = sub.connect("rel-sub", false, 30, raw_session_props(level));
    REQUIRE(ack);
    CHECK(ack->flags == 0x01);
    const auto first = sub.next_packet();
    REQUIRE(first);
    CHECK(packet_type(*first) == pkt_pubrel); // not the PUBLISH again
    CHECK((*first)[0] == 0x62);
    CHECK(parse_ack(*first)->packet_id == id);
    REQUIRE(sub.pubcomp(id));
    CHECK(sub.no_publish_within(300ms));
}

TEST_CASE("QoS 2 from a client resumes with PUBREL after a reconnect, delivered once",
          "[broker][session][MQTT-4.3.3-10][MQTT-4.4.0-1]") {
    broker_process broker;
    const std::uint8_t level = GENERATE(std::uint8_t{4}, std::uint8_t{5});
    CAPTURE(int{level});
    mqtt_client sub("sub", MQTT_PROTOCOL_V5);
    REQUIRE(sub.connect(broker.port()) == 0);
    REQUIRE(sub.subscribe("in2", 2) == 2);
    {
        raw_client pub(broker.port(), level);
        REQUIRE(pub.connect("in2-pub", false, 30, raw_session_props(level)));
        REQUIRE(pub.publish("in2", "exactly once", 2, false, 7));
        REQUIRE(pub.expect(pkt_pubrec));
        pub.close(); // before PUBREL
    }
    raw_client pub(broker.port(), level);
    const auto ack = pub.connect("in2-pub", false, 30, raw_session_props(level));
    REQUIRE(ack);
    CHECK(ack->flags == 0x01);
    // A resend of the PUBLISH (DUP) must not make a second message [MQTT-4.3.3-10].
    REQUIRE(pub.publish("in2", "exactly once", 2, false, 7, true));
    const auto rec = pub.expect(pkt_pubrec);
    REQUIRE(rec);
    CHECK(parse_ack(*rec)->packet_id == 7);
    REQUIRE(pub.pubrel(7));
    const auto comp = pub.expect(pkt_pubcomp);
    REQUIRE(comp);
    CHECK(parse_ack(*comp)->packet_id == 7);
    CHECK(parse_ack(*comp)->reason == 0);
    const auto m = sub.next_message();
    REQUIRE(m);
    CHECK(m->payload == "exactly once");
    CHECK(sub.no_message_within(300ms));
}

// max_queued_messages bounds what waits for an offline client; the excess is dropped (not the
// client, not the broker). Mosquitto 2.0.11 keeps exactly max_queued_messages for an offline
// client; tern may count its inflight window on top, hence the range.
TEST_CASE("max_queued_messages bounds an offline client's queue, the excess is dropped",
          "[broker][session][limits]") {
    broker_settings settings;
    settings.max_queued_messages = 5;
    settings.max_inflight_messages = 2;
    broker_process broker(settings);
    const int version = GENERATE(MQTT_PROTOCOL_V311, MQTT_PROTOCOL_V5);
    CAPTURE(version);
    {
        mqtt_client sub("queued", version, false);
        REQUIRE(sub.connect(broker.port(), 30, session_props(version)) == 0);
        REQUIRE(sub.subscribe("q", 1) == 1);
        sub.disconnect();
    }
    mqtt_client pub("pub", version);
    REQUIRE(pub.connect(broker.port()) == 0);
    for (int i = 0; i < 20; ++i) {
        REQUIRE(pub.publish("q", std::to_string(i), 1));
    }
    mqtt_client sub("queued", version, false);
    REQUIRE(sub.connect(broker.port(), 30, session_props(version)) == 0);
    CHECK(sub.session_present());
    const auto got = payloads(sub);
    CAPTURE(got);
    CHECK(got.size() >= 5);
    CHECK(got.size() <= 7);
    for (std::size_t i = 1; i < got.size(); ++i) {
        CHECK(std::stoi(got[i]) > std::stoi(got[i - 1])); // in order, no duplicates
    }
    REQUIRE(pub.publish("q", "after", 1));
    const auto m = sub.next_message();
    REQUIRE(m);
    CHECK(m->payload == "after");
    CHECK(broker.alive());
}

TEST_CASE("v5 session expiry: the session is gone after its interval",
          "[broker][session][v5][expiry][MQTT-3.1.2-23]") {
    broker_process broker;
    {
        mqtt_client sub("short-lived", MQTT_PROTOCOL_V5, false);
        REQUIRE(sub.connect(broker.port(), 30, session_props(MQTT_PROTOCOL_V5, 1)) == 0);
        REQUIRE(sub.subscribe("se/#", 1) == 1);
        sub.disconnect();
    }
    {
        // Within the interval the session is there.
        mqtt_client sub("short-lived", MQTT_PROTOCOL_V5, false);
        REQUIRE(sub.connect(broker.port(), 30, session_props(MQTT_PROTOCOL_V5, 1)) == 0);
        CHECK(sub.session_present());
        sub.disconnect();
    }
    mqtt_client pub("pub", MQTT_PROTOCOL_V5);
    REQUIRE(pub.connect(broker.port()) == 0);
    REQUIRE(pub.publish("se/t", "into the void?", 1));
    let_time_pass(2500ms); // the Session Expiry Interval is what is under test

    mqtt_client sub("short-lived", MQTT_PROTOCOL_V5, false);
    REQUIRE(sub.connect(broker.port(), 30, session_props(MQTT_PROTOCOL_V5, 1)) == 0);
    CHECK_FALSE(sub.session_present());
    CHECK(sub.no_message_within(300ms)); // queued messages went with it
    REQUIRE(pub.publish("se/t", "after", 1));
    CHECK(sub.no_message_within(300ms)); // and so did the subscription
}

TEST_CASE("clean start / clean session 1 discards the stored session",
          "[broker][session][MQTT-3.1.2-4][MQTT-3.1.2-6]") {
    broker_process broker;
    const int version = GENERATE(MQTT_PROTOCOL_V311, MQTT_PROTOCOL_V5);
    CAPTURE(version);
    {
        mqtt_client sub("discarded", version, false);
        REQUIRE(sub.connect(broker.port(), 30, session_props(version)) == 0);
        REQUIRE(sub.subscribe("d/#", 1) == 1);
        sub.disconnect();
    }
    mqtt_client pub("pub", version);
    REQUIRE(pub.connect(broker.port()) == 0);
    REQUIRE(pub.publish("d/t", "queued", 1));

    mqtt_client sub("discarded", version, true);
    REQUIRE(sub.connect(broker.port()) == 0);
    CHECK_FALSE(sub.session_present());
    CHECK(sub.no_message_within(300ms));
    REQUIRE(pub.publish("d/t", "live", 1));
    CHECK(sub.no_message_within(300ms));
}

TEST_CASE("a takeover by a persistent connection keeps the session",
          "[broker][session][MQTT-3.1.4-3]") {
    broker_process broker;
    const int version = GENERATE(MQTT_PROTOCOL_V311, MQTT_PROTOCOL_V5);
    CAPTURE(version);
    mqtt_client first("taken", version, false);
    REQUIRE(first.connect(broker.port(), 30, session_props(version)) == 0);
    REQUIRE(first.subscribe("tk", 1) == 1);
    mqtt_client second("taken", version, false);
    REQUIRE(second.connect(broker.port(), 30, session_props(version)) == 0);
    CHECK(second.session_present());
    REQUIRE(first.pump_until([&] { return !first.connected(); }));
    mqtt_client pub("pub", version);
    REQUIRE(pub.connect(broker.port()) == 0);
    REQUIRE(pub.publish("tk", "to the new one", 1));
    const auto m = second.next_message();
    REQUIRE(m);
    CHECK(m->payload == "to the new one");
}

TEST_CASE("persistent_client_expiration in hours keeps a 3.1.1 session across a reconnect",
          "[broker][session][config]") {
    broker_settings settings;
    settings.persistent_client_expiration = "1h";
    broker_process broker(settings);
    {
        mqtt_client sub("kept-v3", MQTT_PROTOCOL_V311, false);
        REQUIRE(sub.connect(broker.port()) == 0);
        REQUIRE(sub.subscribe("k", 1) == 1);
        sub.disconnect();
    }
    mqtt_client sub("kept-v3", MQTT_PROTOCOL_V311, false);
    REQUIRE(sub.connect(broker.port()) == 0);
    CHECK(sub.session_present());
}

// Mosquitto takes persistent_client_expiration in h/d/w/m/y only, so a short expiry can only be
// tested against tern, which also takes seconds ("1s").
TEST_CASE("persistent_client_expiration removes an offline 3.1.1 session",
          "[broker][session][config][tern]") {
    TERN_ONLY_TEST("mosquitto's shortest persistent_client_expiration is 1h");
    broker_settings settings;
    settings.persistent_client_expiration = "1s";
    broker_process broker(settings);
    {
        mqtt_client sub("expiring-v3", MQTT_PROTOCOL_V311, false);
        REQUIRE(sub.connect(broker.port()) == 0);
        REQUIRE(sub.subscribe("k", 1) == 1);
        sub.disconnect();
    }
    let_time_pass(2500ms); // the expiration is what is under test
    mqtt_client sub("expiring-v3", MQTT_PROTOCOL_V311, false);
    REQUIRE(sub.connect(broker.port()) == 0);
    CHECK_FALSE(sub.session_present());
}
