#pragma once
/// The connected clients as the admin module sees them (broker::clients(),
/// broker::disconnect_clients()): value types, so the admin module needs no engine header.
///
/// Thread contract: value types; thread-safe.

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tern::broker {

/// One connection past CONNECT.
struct client_info {
    std::string client_id;
    std::string username;          ///< empty: none
    std::string address;           ///< the peer, "ip:port"
    std::size_t listener = 0;      ///< index in the configuration's listeners
    std::string protocol;          ///< "3.1", "3.1.1" or "5"
    std::int64_t connected_ms = 0; ///< when CONNECT was accepted (Unix ms)
    bool bridge = false;           ///< a Mosquitto bridge (protocol level 0x83/0x84)
    /// Holds at least one `$share/...` subscription: a backend service's instance, which a
    /// device drain leaves alone.
    bool shared_member = false;
    std::size_t subscriptions = 0;
    std::size_t inflight = 0; ///< QoS 1/2 messages unacknowledged
    std::size_t queued = 0;   ///< messages waiting behind them
};

/// One session, connected or not (broker::sessions()).
struct session_info {
    std::string client_id;
    bool connected = false;
    std::uint32_t expiry_interval = 0; ///< seconds; 0xFFFFFFFF: never expires
    std::size_t inflight = 0;
    std::size_t queued = 0; ///< in memory and paged out to the store
    /// Its subscriptions: filter and granted QoS.
    std::vector<std::pair<std::string, std::uint8_t>> subscriptions;
};

/// One retained message (broker::retained()).
struct retained_info {
    std::string topic;
    std::size_t payload_bytes = 0;
    std::uint8_t qos = 0;
};

/// How to disconnect a client from the admin API.
struct disconnect_request {
    std::string client_id;
    /// MQTT 5 DISCONNECT reason: 0x98 Administrative action (kick), 0x9C Use another server
    /// (drain). 3.1/3.1.1 clients are closed.
    std::uint8_t reason = 0x98;
    std::string server_reference; ///< sent with 0x9C when not empty
};

} // namespace tern::broker
