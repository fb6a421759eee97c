#pragma once
// An application message on its way from one publisher (or a will) to its subscribers.

#include <tern/protocol/packets.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace tern::broker {

struct stored_body;

/// Immutable once built and shared by every receiver on every worker, so fan-out copies a
/// pointer, never the payload. `publish` views point into `storage` (the received frame);
/// its qos and retain are as published, its packet_id is meaningless, and its properties are
/// only those a server forwards [MQTT-3.3.2-4 ff.] (no Topic Alias, no Subscription Identifier).
struct message {
    protocol::publish publish;
    std::shared_ptr<const std::uint8_t[]> storage;
    /// When the broker received it: Message Expiry Interval counts from here [MQTT-3.3.2-5].
    std::chrono::steady_clock::time_point received_at{};
    /// Owns the topic when it did not come as bytes of `storage` (a v5 Topic Alias resolved to
    /// a topic of an earlier packet); `publish.topic` then views this.
    std::string topic_storage;
    /// The message's name in a durable store (session_store::name_message), shared by every
    /// session it was routed to; null with the in-memory store and for QoS 0.
    std::shared_ptr<stored_body> stored;
};
using message_ptr = std::shared_ptr<const message>;

/// A message whose topic and payload are copied into memory it owns (for messages the broker
/// makes itself: $SYS, and later the bridge), received at `now`.
/// Mutable until shared, so that a durable store can name it first (session_store::name_message).
inline std::shared_ptr<message> make_owned_message(std::string_view topic, std::string_view payload,
                                                   protocol::qos qos, bool retain,
                                                   std::chrono::steady_clock::time_point now) {
    auto m = std::make_shared<message>();
    m->topic_storage = std::string(topic);
    m->publish.topic = m->topic_storage;
    if (!payload.empty()) {
        auto bytes = std::shared_ptr<std::uint8_t[]>(new std::uint8_t[payload.size()]);
        std::copy(payload.begin(), payload.end(), bytes.get());
        m->publish.payload =
            std::string_view(reinterpret_cast<const char*>(bytes.get()), payload.size());
        m->storage = std::move(bytes);
    }
    m->publish.qos = qos;
    m->publish.retain = retain;
    m->received_at = now;
    return m;
}

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
