// PUBLISH at QoS 0, 1 and 2 in both directions, payload integrity and ordering.

#include "raw_packets.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

using namespace tern::test;

TEST_CASE("QoS 0/1/2 round trips keep the payload intact", "[broker][publish][MQTT-4.3]") {
    broker_process broker;
    const int version = GENERATE(MQTT_PROTOCOL_V311, MQTT_PROTOCOL_V5);
    const int qos = GENERATE(0, 1, 2);
    CAPTURE(version, qos);
    mqtt_client sub("sub", version);
    mqtt_client pub("pub", version);
    REQUIRE(sub.connect(broker.port()) == 0);
    REQUIRE(pub.connect(broker.port()) == 0);
    REQUIRE(sub.subscribe("data/#", qos) == qos);

    const std::string payload = make_payload(1000, static_cast<unsigned>(qos));
    std::string binary(256, '\0');
    for (std::size_t i = 0; i < binary.size(); ++i) {
        binary[i] = static_cast<char>(i); // every byte value, including 0x00
    }
    REQUIRE(pub.publish("data/text", payload, qos));
    REQUIRE(pub.publish("data/binary", binary, qos));
    REQUIRE(pub.publish("data/empty", "", qos));

    const auto a = sub.next_message();
    REQUIRE(a);
    CHECK(a->topic == "data/text");
    CHECK(a->payload == payload);
    CHECK(a->qos == qos);
    CHECK_FALSE(a->retain);
    const auto b = sub.next_message();
    REQUIRE(b);
    CHECK(b->payload == binary);
    const auto c = sub.next_message();
    REQUIRE(c);
    CHECK(c->topic == "data/empty");
    CHECK(c->payload.empty());
}

TEST_CASE("delivery QoS is the minimum of published and granted QoS", "[broker][publish]") {
    broker_process broker;
    const int version = GENERATE(MQTT_PROTOCOL_V311, MQTT_PROTOCOL_V5);
    const int granted = GENERATE(0, 1, 2);
    const int published = GENERATE(0, 1, 2);
    CAPTURE(version, granted, published);
    mqtt_client sub("sub", version);
    mqtt_client pub("pub", version);
    REQUIRE(sub.connect(broker.port()) == 0);
    REQUIRE(pub.connect(broker.port()) == 0);
    REQUIRE(sub.subscribe("q", granted) == granted);
    REQUIRE(pub.publish("q", "m", published));
    const auto m = sub.next_message();
    REQUIRE(m);
    CHECK(m->qos == std::min(granted, published));
}

TEST_CASE("a 1 MiB payload arrives intact", "[broker][publish][large]") {
    broker_process broker;
    const int version = GENERATE(MQTT_PROTOCOL_V311, MQTT_PROTOCOL_V5);
    const int qos = GENERATE(0, 2);
    CAPTURE(version, qos);
    mqtt_client sub("sub", version);
    mqtt_client pub("pub", version);
    REQUIRE(sub.connect(broker.port()) == 0);
    REQUIRE(pub.connect(broker.port()) == 0);
    REQUIRE(sub.subscribe("big", qos) == qos);
    const std::string payload = make_payload(1024 * 1024, 42);
    REQUIRE(pub.publish("big", payload, qos));
    const auto m = sub.next_message(10s);
    REQUIRE(m);
    CHECK(m->payload.size() == payload.size());
    CHECK(m->payload == payload);
}

// Per QoS level: libmosquitto hands an inbound QoS 2 message to the application only at PUBREL,
// so mixing QoS 1 and 2 would reorder them inside the client.
TEST_CASE("many QoS 1/2 messages arrive once each and in order", "[broker][publish][MQTT-4.6]") {
    broker_process broker;
    const int version = GENERATE(MQTT_PROTOCOL_V311, MQTT_PROTOCOL_V5);
    const int qos = GENERATE(1, 2);
    CAPTURE(version, qos);
    mqtt_client sub("sub", version);
    mqtt_client pub("pub", version);
    REQUIRE(sub.connect(broker.port()) == 0);
    REQUIRE(pub.connect(broker.port()) == 0);
    REQUIRE(sub.subscribe("seq", 2) == 2);
    constexpr int count = 300;
    for (int i = 0; i < count; ++i) {
        REQUIRE(pub.publish("seq", std::to_string(i), qos));
    }
    for (int i = 0; i < count; ++i) {
        const auto m = sub.next_message();
        REQUIRE(m);
        REQUIRE(m->payload == std::to_string(i));
        REQUIRE(m->qos == qos);
    }
    CHECK(sub.no_message_within(100ms));
}

TEST_CASE("a PUBLISH arriving one byte at a time is decoded", "[broker][publish]") {
    broker_process broker;
    mqtt_client sub("sub", MQTT_PROTOCOL_V311);
    REQUIRE(sub.connect(broker.port()) == 0);
    REQUIRE(sub.subscribe("slow", 1) == 1);

    raw_socket s(broker.port());
    REQUIRE(s.send(connect_packet(4, "byte-by-byte")));
    REQUIRE(s.read_packet());
    // QoS 1 PUBLISH "slow", packet id 7, payload "drip", sent in single-byte writes.
    for (const std::uint8_t b : hex("32 0c 00 04 73 6c 6f 77 00 07 64 72 69 70")) {
        REQUIRE(s.send({b}));
    }
    const auto ack = s.read_packet();
    REQUIRE(ack);
    CHECK(*ack == hex("40 02 00 07"));
    const auto m = sub.next_message();
    REQUIRE(m);
    CHECK(m->payload == "drip");
}

TEST_CASE("v5 PUBLISH properties are forwarded unchanged",
          "[broker][publish][v5][MQTT-3.3.2-17][MQTT-3.3.2-18]") {
    broker_process broker;
    raw_socket sub(broker.port());
    REQUIRE(sub.send(connect_packet(5, "raw-sub")));
    REQUIRE(sub.read_packet());
    // SUBSCRIBE id 1, no properties, "t" at QoS 0.
    REQUIRE(sub.send(hex("82 07 00 01 00 00 01 74 00")));
    const auto suback = sub.read_packet();
    REQUIRE(suback);
    CHECK(*suback == hex("90 04 00 01 00 00"));

    raw_socket pub(broker.port());
    REQUIRE(pub.send(connect_packet(5, "raw-pub")));
    REQUIRE(pub.read_packet());
    // PUBLISH "t" QoS 0; properties: Content Type "c", User Property ("k", "v"),
    // Response Topic "r"; payload "p".
    REQUIRE(pub.send(hex("30 14 00 01 74 0f 03 00 01 63 26 00 01 6b 00 01 76 08 00 01 72 70")));
    const auto publish = sub.read_packet();
    REQUIRE(publish);
    const std::string bytes(publish->begin(), publish->end());
    CHECK((*publish)[0] == 0x30);
    CHECK(bytes.find(std::string("\x03\x00\x01"
                                 "c",
                                 4)) != std::string::npos);
    CHECK(bytes.find(std::string("\x26\x00\x01"
                                 "k"
                                 "\x00\x01"
                                 "v",
                                 7)) != std::string::npos);
    CHECK(bytes.find(std::string("\x08\x00\x01"
                                 "r",
                                 4)) != std::string::npos);
    CHECK(bytes.back() == 'p');
    // Same packet length as sent: nothing added, nothing dropped.
    CHECK(publish->size() == 22);
}
