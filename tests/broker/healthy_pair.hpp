#pragma once
/// A subscriber and a publisher that must keep working while raw sockets misbehave: bad input
/// closes only the offending connection. Shared by the malformed-input tests.
///
/// Thread contract: test code, one thread.

#include <string>

#include <catch2/catch.hpp>

#include "support.hpp"

namespace tern::test {

struct healthy_pair {
    /// `name` prefixes both client ids, so two suites never take over each other's clients.
    healthy_pair(int port, const std::string& name)
        : sub(name + "-sub", MQTT_PROTOCOL_V5), pub(name + "-pub") {
        REQUIRE(sub.connect(port) == 0);
        REQUIRE(pub.connect(port) == 0);
        REQUIRE(sub.subscribe("health", 1) == 1);
    }
    /// One QoS 1 message goes through and both clients are still connected.
    void check(const std::string& text) {
        REQUIRE(pub.publish("health", text, 1));
        const auto m = sub.next_message();
        REQUIRE(m);
        CHECK(m->payload == text);
        CHECK(sub.connected());
        CHECK(pub.connected());
    }
    mqtt_client sub;
    mqtt_client pub;
};

} // namespace tern::test
