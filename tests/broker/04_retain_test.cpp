// Retained messages (in memory only).

#include "support.hpp"

#include <catch2/catch.hpp>

using namespace tern::test;

TEST_CASE("a retained message reaches later subscribers with RETAIN set",
          "[broker][retain][MQTT-3.3.1-6][MQTT-3.3.1-9]") {
    broker_process broker;
    const int version = GENERATE(MQTT_PROTOCOL_V311, MQTT_PROTOCOL_V5);
    CAPTURE(version);
    mqtt_client pub("pub", version);
    REQUIRE(pub.connect(broker.port()) == 0);
    REQUIRE(pub.publish("status/door", "open", 1, true));

    mqtt_client sub("sub", version);
    REQUIRE(sub.connect(broker.port()) == 0);
    REQUIRE(sub.subscribe("status/+", 1) == 1);
    const auto m = sub.next_message();
    REQUIRE(m);
    CHECK(m->payload == "open");
    CHECK(m->retain);

    // Live delivery to an existing subscription has RETAIN 0.
    REQUIRE(pub.publish("status/door", "closed", 1, true));
    const auto live = sub.next_message();
    REQUIRE(live);
    CHECK(live->payload == "closed");
    CHECK_FALSE(live->retain);

    // An empty retained payload clears the topic [MQTT-3.3.1-10].
    REQUIRE(pub.publish("status/door", "", 1, true));
    REQUIRE(sub.next_message());
    mqtt_client late("late", version);
    REQUIRE(late.connect(broker.port()) == 0);
    REQUIRE(late.subscribe("status/#", 1) == 1);
    CHECK(late.no_message_within(300ms));
}
