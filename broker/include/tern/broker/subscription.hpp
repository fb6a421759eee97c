#pragma once
/// One subscription's options, as the session keeps them and the session store records them.

#include <tern/protocol/packets.hpp>

#include <cstdint>

namespace tern::broker {

/// What one subscriber asked for with one filter.
struct subscription {
    protocol::subscribe_options options;
    /// MQTT 5 Subscription Identifier; 0 = none.
    std::uint32_t identifier = 0;
    /// Share of a shared group relative to the other members (>= 1); ignored otherwise.
    std::uint32_t weight = 1;
    /// "a/#" does not match "a" (AWS IoT Core's rule, for subscriptions made on a `profile
    /// aws-iot` listener); MQTT's own rule [MQTT-4.7.1-2] when false.
    bool hash_skips_parent = false;

    bool operator==(const subscription&) const = default;
};

} // namespace tern::broker
