// Will messages: published on abnormal close, discarded on DISCONNECT.

#include "support.hpp"

#include <catch2/catch.hpp>

using namespace tern::test;

TEST_CASE("the will is published when the connection drops without DISCONNECT",
          "[broker][will][MQTT-3.1.2-8]") {
    broker_process broker;
    const int version = GENERATE(MQTT_PROTOCOL_V311, MQTT_PROTOCOL_V5);
    CAPTURE(version);
    mqtt_client watcher("watcher", version);
    REQUIRE(watcher.connect(broker.port()) == 0);
    REQUIRE(watcher.subscribe("wills/#", 1) == 1);

    mqtt_client dying("dying", version);
    dying.set_will("wills/dying", "gone", 1, false);
    REQUIRE(dying.connect(broker.port()) == 0);
    dying.drop_connection();

    const auto m = watcher.next_message();
    REQUIRE(m);
    CHECK(m->topic == "wills/dying");
    CHECK(m->payload == "gone");
    CHECK(m->qos == 1);
}

TEST_CASE("a normal DISCONNECT discards the will", "[broker][will][MQTT-3.1.2-10]") {
    broker_process broker;
    const int version = GENERATE(MQTT_PROTOCOL_V311, MQTT_PROTOCOL_V5);
    CAPTURE(version);
    mqtt_client watcher("watcher", version);
    REQUIRE(watcher.connect(broker.port()) == 0);
    REQUIRE(watcher.subscribe("wills/#", 1) == 1);

    mqtt_client polite("polite", version);
    polite.set_will("wills/polite", "gone", 1, false);
    REQUIRE(polite.connect(broker.port()) == 0);
    polite.disconnect();
    CHECK(watcher.no_message_within(500ms));
}
