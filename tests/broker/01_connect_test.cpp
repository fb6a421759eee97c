// CONNECT / CONNACK, client identifiers, keep-alive, takeover and shutdown against the real
// `tern` binary.

#include "raw_packets.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

using namespace tern::test;

TEST_CASE("libmosquitto connects with MQTT 3.1.1 and 5", "[broker][connect][v5]") {
    broker_process broker;
    const int version = GENERATE(MQTT_PROTOCOL_V311, MQTT_PROTOCOL_V5);
    CAPTURE(version);
    mqtt_client client("connect-test", version);
    REQUIRE(client.connect(broker.port()) == 0);
    client.disconnect();
    CHECK(broker.alive());
}

TEST_CASE("v5 CONNACK assigns a client id and announces the broker's limits",
          "[broker][connect][v5][MQTT-3.2.2.3.7]") {
    broker_process broker;
    raw_socket s(broker.port());
    REQUIRE(s.send(connect_packet(5, "")));
    const auto packet = s.read_packet();
    REQUIRE(packet);
    const auto ack = parse_connack(*packet, true);
    REQUIRE(ack);
    CHECK(ack->reason == 0x00);
    CHECK(ack->flags == 0x00);            // no session present: a new client id
    REQUIRE(ack->props.count(0x12) == 1); // Assigned Client Identifier
    CHECK(ack->props.at(0x12).size() > 2);
    // Absent means available [MQTT-3.2.2.3.13 ff.]: shared subscriptions, subscription
    // identifiers, QoS 2, wildcards, retain.
    CHECK(ack->props.count(0x2A) == 0); // Shared Subscription Available
    CHECK(ack->props.count(0x29) == 0); // Subscription Identifier Available
    CHECK(ack->props.count(0x24) == 0); // Maximum QoS
    CHECK(ack->props.count(0x25) == 0); // Retain Available
    REQUIRE(ack->props.count(0x22) == 1); // Topic Alias Maximum
    CHECK(ack->props.at(0x22) == std::vector<std::uint8_t>{0, 64});
}

TEST_CASE("3.1.1 empty client id with clean session 0 gets return code 2",
          "[broker][connect][MQTT-3.1.3-8]") {
    broker_process broker;
    raw_socket s(broker.port());
    REQUIRE(s.send(connect_packet(4, "", false)));
    const auto packet = s.read_packet();
    REQUIRE(packet);
    CHECK(*packet == hex("20 02 00 02"));
    CHECK(s.wait_closed());
}

TEST_CASE("3.1.1 empty client id with clean session 1 is accepted", "[broker][connect]") {
    broker_process broker;
    raw_socket s(broker.port());
    REQUIRE(s.send(connect_packet(4, "", true)));
    const auto packet = s.read_packet();
    REQUIRE(packet);
    CHECK(*packet == hex("20 02 00 00"));
}

TEST_CASE("an unsupported protocol level gets CONNACK 0x01 and the connection closes",
          "[broker][connect][MQTT-3.1.2-2]") {
    broker_process broker;
    raw_socket s(broker.port());
    REQUIRE(s.send(connect_packet(6, "level-six")));
    const auto packet = s.read_packet();
    REQUIRE(packet);
    CHECK(*packet == hex("20 02 00 01"));
    CHECK(s.wait_closed());
}

TEST_CASE("a second CONNECT is a protocol error (v5 DISCONNECT 0x82)",
          "[broker][connect][v5][MQTT-3.1.0-2]") {
    broker_process broker;
    raw_socket s(broker.port());
    REQUIRE(s.send(connect_packet(5, "twice")));
    REQUIRE(s.read_packet());
    REQUIRE(s.send(connect_packet(5, "twice")));
    const auto packet = s.read_packet();
    REQUIRE(packet);
    CHECK(disconnect_reason(*packet) == std::uint8_t{0x82});
    CHECK(s.wait_closed());
}

TEST_CASE("keep-alive is enforced at 1.5 times the interval (v5 DISCONNECT 0x8D)",
          "[broker][connect][v5][MQTT-3.1.2-24]") {
    broker_process broker;
    raw_socket s(broker.port());
    REQUIRE(s.send(connect_packet(5, "sleepy", true, 1)));
    REQUIRE(s.read_packet());
    const auto start = clock::now();
    const auto packet = s.read_packet(4s);
    REQUIRE(packet);
    CHECK(disconnect_reason(*packet) == std::uint8_t{0x8D});
    CHECK(clock::now() - start >= 1s);
    CHECK(s.wait_closed());
}

TEST_CASE("PINGREQ gets PINGRESP", "[broker][connect]") {
    broker_process broker;
    raw_socket s(broker.port());
    REQUIRE(s.send(connect_packet(4, "pinger")));
    REQUIRE(s.read_packet());
    REQUIRE(s.send(hex("c0 00")));
    const auto packet = s.read_packet();
    REQUIRE(packet);
    CHECK(*packet == hex("d0 00"));
}

TEST_CASE("a new connection with the same client id takes over (v5 DISCONNECT 0x8E)",
          "[broker][connect][v5][MQTT-3.1.4-2]") {
    broker_process broker;
    mqtt_client first("same-id", MQTT_PROTOCOL_V5);
    REQUIRE(first.connect(broker.port()) == 0);
    mqtt_client second("same-id", MQTT_PROTOCOL_V5);
    REQUIRE(second.connect(broker.port()) == 0);
    REQUIRE(first.pump_until([&] { return !first.connected(); }));
    CHECK(first.disconnect_rc() == 0x8E);
    CHECK(second.connected());
}

TEST_CASE("SIGTERM disconnects v5 clients with 0x8B and exits 0", "[broker][connect][v5]") {
    broker_process broker;
    mqtt_client client("shutdown-test", MQTT_PROTOCOL_V5);
    REQUIRE(client.connect(broker.port()) == 0);
    raw_socket v3(broker.port());
    REQUIRE(v3.send(connect_packet(4, "shutdown-v3")));
    REQUIRE(v3.read_packet());

    CHECK(broker.stop() == 0);
    REQUIRE(client.pump_until([&] { return !client.connected(); }));
    CHECK(client.disconnect_rc() == 0x8B);
    CHECK(v3.wait_closed());
}
