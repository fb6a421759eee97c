// Shared subscriptions are not supported yet: refused per subscription, not per connection.

#include "support.hpp"

#include <catch2/catch.hpp>

using namespace tern::test;

TEST_CASE("$share filters are refused with 0x9E (v5) / 0x80 (3.1.1)",
          "[broker][shared][MQTT-4.8.2]") {
    broker_process broker;
    SECTION("v5") {
        mqtt_client c("shared-v5", MQTT_PROTOCOL_V5);
        REQUIRE(c.connect(broker.port()) == 0);
        CHECK(c.subscribe("$share/group/jobs/#", 1) == 0x9E);
        CHECK(c.subscribe("jobs/#", 1) == 1); // the connection keeps working
        CHECK(c.connected());
    }
    SECTION("3.1.1") {
        mqtt_client c("shared-v311", MQTT_PROTOCOL_V311);
        REQUIRE(c.connect(broker.port()) == 0);
        CHECK(c.subscribe("$share/group/jobs/#", 1) == 0x80);
        CHECK(c.subscribe("jobs/#", 1) == 1);
        CHECK(c.connected());
    }
}
