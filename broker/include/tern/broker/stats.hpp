#pragma once
/// The broker's counters as one snapshot: what $SYS publishes, and what the admin module's
/// metrics endpoint and dashboard read (the metrics seam is pull: a reader asks
/// broker::stats() whenever it wants, so the data path never calls out to a metrics sink).

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tern::broker {

/// Why a message did not reach a receiver (or was not taken from a publisher).
enum class drop_cause : std::uint8_t {
    queue_full,     ///< a session over max_queued_messages / max_queued_bytes
    not_authorized, ///< a PUBLISH the ACL denies
    too_large,      ///< over message_size_limit, or over a receiver's Maximum Packet Size
    rate_limited,   ///< `profile aws-iot`: over a per-connection or account rate
};
inline constexpr std::size_t drop_cause_count = 4;
/// "queue_full", "not_authorized", "too_large", "rate_limited".
constexpr const char* to_string(drop_cause c) noexcept {
    constexpr const char* names[] = {"queue_full", "not_authorized", "too_large", "rate_limited"};
    return names[static_cast<std::size_t>(c)];
}

/// One listener's connections past CONNECT, by protocol version.
struct listener_stats {
    std::string name;      ///< the address it is bound to: "127.0.0.1:1883", "[::]:8883"
    std::string transport; ///< "mqtt", "mqtts", "ws" or "wss"
    std::array<std::uint64_t, 3> connections_by_version{}; ///< MQTT 3.1, 3.1.1, 5
};

/// Sums over every worker since start-up, read with relaxed atomics: each figure is exact on
/// its own, figures taken together may be a few packets apart.
struct broker_stats {
    std::chrono::seconds uptime{0};
    std::uint64_t clients_connected = 0; ///< network connections past CONNECT
    std::uint64_t sessions = 0;          ///< sessions known (connected or not)
    std::uint64_t packets_received = 0;  ///< MQTT packets of any type
    std::uint64_t packets_sent = 0;
    std::uint64_t messages_received = 0; ///< PUBLISH packets
    std::uint64_t messages_sent = 0;
    std::uint64_t messages_dropped = 0; ///< over queue limits, or QoS 0 to a backed-up client
    std::uint64_t bytes_received = 0;
    std::uint64_t bytes_sent = 0;
    std::uint64_t subscriptions = 0;
    std::uint64_t retained_messages = 0;
    /// PUBLISH packets received and sent, by QoS 0, 1, 2.
    std::array<std::uint64_t, 3> publish_received_by_qos{};
    std::array<std::uint64_t, 3> publish_sent_by_qos{};
    /// Messages not delivered (or not taken), by drop_cause.
    std::array<std::uint64_t, drop_cause_count> dropped_by_cause{};
    /// CONNECTs refused, by the CONNACK reason's name ("Not authorized", ...); non-zero only.
    std::vector<std::pair<std::string, std::uint64_t>> connects_refused;
    /// TLS connections that ended in a TLS error before CONNECT (a failed handshake).
    std::uint64_t tls_handshake_failures = 0;
    std::vector<listener_stats> listeners; ///< in configuration order
    /// Per worker: how late its last 250 ms tick ran (event-loop lag), in seconds.
    std::vector<double> worker_loop_lag_seconds;
};

} // namespace tern::broker
