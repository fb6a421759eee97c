#pragma once
/// The broker's counters as one snapshot: what $SYS publishes, and what the admin module's
/// metrics endpoint and dashboard read (the metrics seam is pull: a reader asks
/// broker::stats() whenever it wants, so the data path never calls out to a metrics sink).

#include <chrono>
#include <cstdint>

namespace tern::broker {

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
};

} // namespace tern::broker
