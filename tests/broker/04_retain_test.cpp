// Retained messages: set, replace, clear, wildcard matching, and retain_available false.

#include "raw_client.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

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

TEST_CASE("a retained message is replaced by the next one on its topic",
          "[broker][retain][MQTT-3.3.1-5]") {
    broker_process broker;
    const int version = GENERATE(MQTT_PROTOCOL_V311, MQTT_PROTOCOL_V5);
    CAPTURE(version);
    mqtt_client pub("pub", version);
    REQUIRE(pub.connect(broker.port()) == 0);
    REQUIRE(pub.publish("r/t", "first", 1, true));
    REQUIRE(pub.publish("r/t", "second", 0, true));
    REQUIRE(pub.publish("r/t", "not retained", 1, false)); // leaves the retained one alone
    pub.disconnect(); // retained messages outlive their publisher

    mqtt_client sub("sub", version);
    REQUIRE(sub.connect(broker.port()) == 0);
    REQUIRE(sub.subscribe("r/t", 1) == 1);
    const auto m = sub.next_message();
    REQUIRE(m);
    CHECK(m->payload == "second");
    CHECK(m->retain);
    CHECK(m->qos == 0); // the stored message's QoS
    CHECK(sub.no_message_within(300ms));
}

TEST_CASE("retained messages match wildcard filters, at the lower of both QoS",
          "[broker][retain][MQTT-3.3.1-9][MQTT-4.7.2-1]") {
    broker_process broker;
    const int version = GENERATE(MQTT_PROTOCOL_V311, MQTT_PROTOCOL_V5);
    CAPTURE(version);
    mqtt_client pub("pub", version);
    REQUIRE(pub.connect(broker.port()) == 0);
    REQUIRE(pub.publish("w/a", "wa", 2, true));
    REQUIRE(pub.publish("w/b", "wb", 1, true));
    REQUIRE(pub.publish("w/a/deep", "wad", 2, true));
    REQUIRE(pub.publish("other", "o", 2, true));

    const auto retained_topics = [&](const std::string& filter, int qos) {
        mqtt_client sub("sub-" + std::to_string(qos), version);
        REQUIRE(sub.connect(broker.port()) == 0);
        REQUIRE(sub.subscribe(filter, qos) == qos);
        std::vector<std::string> topics;
        while (auto m = sub.next_message(300ms)) {
            CHECK(m->retain);
            CHECK(m->qos <= qos);
            if (m->topic == "w/a") {
                CHECK(m->qos == std::min(2, qos));
            }
            topics.push_back(m->topic);
        }
        std::sort(topics.begin(), topics.end());
        return topics;
    };
    CHECK(retained_topics("w/+", 1) == std::vector<std::string>{"w/a", "w/b"});
    CHECK(retained_topics("w/#", 2) == std::vector<std::string>{"w/a", "w/a/deep", "w/b"});
    // '#' leaves out the broker's own retained $SYS topics, if it has any [MQTT-4.7.2-1].
    auto all = retained_topics("#", 0);
    CHECK(all == std::vector<std::string>{"other", "w/a", "w/a/deep", "w/b"});
}

// retain_available false: the v5 CONNACK says Retain Available 0, and a PUBLISH with RETAIN 1 is
// then a Protocol Error answered with DISCONNECT 0x9A Retain not supported (MQTT 5 section
// 3.2.2.3.5). 3.1.1 cannot be told: the connection is closed. Mosquitto 2.0.11 does both.
TEST_CASE("retain_available false: v5 Retain Available 0, retained PUBLISH -> DISCONNECT 0x9A",
          "[broker][retain][v5][limits]") {
    broker_settings settings;
    settings.retain_available = false;
    broker_process broker(settings);
    mqtt_client sub("sub", MQTT_PROTOCOL_V5);
    REQUIRE(sub.connect(broker.port()) == 0);
    REQUIRE(sub.subscribe("ra/#", 1) == 1);

    const std::uint8_t level = GENERATE(std::uint8_t{4}, std::uint8_t{5});
    CAPTURE(int{level});
    raw_client pub(broker.port(), level);
    const auto ack = pub.connect("retainer");
    REQUIRE(ack);
    CHECK(ack->reason == 0);
    if (level == 5) {
        REQUIRE(ack->props.count(0x25) == 1);
        CHECK(ack->props.at(0x25) == std::vector<std::uint8_t>{0});
    }
    // Non-retained messages flow.
    REQUIRE(pub.publish("ra/t", "plain", 1, false, 1));
    REQUIRE(pub.expect(pkt_puback));
    auto m = sub.next_message();
    REQUIRE(m);
    CHECK(m->payload == "plain");

    REQUIRE(pub.publish("ra/t", "kept?", 1, true, 2));
    check_closed_with(pub, {0x9A});
    CHECK(sub.no_message_within(300ms)); // not distributed either
}
