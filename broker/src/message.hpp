#pragma once
// An application message on its way from one publisher (or a will) to its subscribers.

#include <tern/protocol/packets.hpp>

#include <chrono>
#include <cstdint>
#include <memory>

namespace tern::broker {

/// Immutable once built and shared by every receiver on every worker, so fan-out copies a
/// pointer, never the payload. `publish` views point into `storage` (the received frame);
/// its qos and retain are as published, its packet_id is meaningless, and its properties are
/// only those a server forwards [MQTT-3.3.2-4 ff.] (no Topic Alias, no Subscription Identifier).
struct message {
    protocol::publish publish;
    std::shared_ptr<const std::uint8_t[]> storage;
    /// When the broker received it: Message Expiry Interval counts from here [MQTT-3.3.2-5].
    std::chrono::steady_clock::time_point received_at{};
};
using message_ptr = std::shared_ptr<const message>;

/// The properties of an inbound PUBLISH (or of Will Properties) that travel on to subscribers.
inline protocol::properties forwardable_properties(const protocol::properties& in) {
    protocol::properties out;
    out.payload_format_indicator = in.payload_format_indicator;
    out.message_expiry_interval = in.message_expiry_interval;
    out.content_type = in.content_type;
    out.response_topic = in.response_topic;
    out.correlation_data = in.correlation_data;
    out.user_properties = in.user_properties;
    return out;
}

} // namespace tern::broker
