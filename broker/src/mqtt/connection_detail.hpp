#pragma once
// What the files of the MQTT connection share (private to broker/src/mqtt and session/):
// the names they use and the connection's limits. Include it only from .cpp files.

#include "engine/router.hpp"
#include "mqtt/connection.hpp"

#include <tern/core/log.hpp>
#include <tern/protocol/encoder.hpp>
#include <tern/protocol/error.hpp>
#include <tern/protocol/topic.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tern::broker {

using core::log;
using core::log_level;

namespace asio = boost::asio;
namespace mqtt = tern::protocol;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

/// How long a closing connection may take to write its last packets.
inline constexpr auto close_flush_timeout = 2s;
/// Write backlog above which QoS 0 waits in the session queue and the connection stops reading
/// (a client that does not read what it asked for); reading resumes below the low watermark.
inline constexpr std::size_t backlog_high_watermark = 1024 * 1024;
inline constexpr std::size_t backlog_low_watermark = backlog_high_watermark / 2;
/// Outbound topic aliases we use at most, whatever larger maximum the client allows: bounds
/// the per-connection table.
inline constexpr std::uint16_t outbound_alias_cap = 64;
/// A SUBSCRIBE User Property naming the member's weight in a shared group (Tern extension).
inline constexpr std::string_view weight_property = "share-weight";

inline std::size_t frame_size(std::size_t head, std::string_view payload) {
    return head + payload.size();
}

} // namespace tern::broker
