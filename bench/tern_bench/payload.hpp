#pragma once
/// The fixed binary header at the front of every tern-bench payload, followed by filler up to
/// the configured size. Publisher and subscriber may be separate processes (or machines with
/// synchronised clocks): the timestamp is CLOCK_REALTIME and the publisher id includes the
/// publishing process's random run tag.
///
/// Layout (little-endian, 32 bytes):
///   0  u32 magic "TNB1"      4  u32 run tag     8  u32 publisher index   12 u32 stream
///   16 u64 sequence number   24 u64 send time, ns since the Unix epoch (CLOCK_REALTIME)
///
/// Thread contract: pure functions; thread-safe.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace tern::bench {

inline constexpr std::uint32_t payload_magic = 0x31424E54; // "TNB1" read as little-endian
inline constexpr std::size_t payload_header_size = 32;

struct payload_header {
    std::uint32_t run_tag = 0;
    std::uint32_t publisher = 0; ///< index of the publishing client within its run
    std::uint32_t stream = 0;    ///< 0: the publisher's own topic; 1 + target: a reply stream
    std::uint64_t sequence = 0;  ///< per (publisher, stream), from 0
    std::uint64_t sent_ns = 0;   ///< CLOCK_REALTIME when the message was queued for sending

    /// run_tag << 32 | publisher: unique across concurrently running tern-bench processes.
    std::uint64_t publisher_id() const noexcept {
        return static_cast<std::uint64_t>(run_tag) << 32 | publisher;
    }
};

/// Writes the 32-byte header to `out` (which must have room for it).
void write_payload_header(std::uint8_t* out, const payload_header& h) noexcept;

/// The header of `payload`, or nullopt when it is shorter than the header or lacks the magic
/// (a "foreign" message).
std::optional<payload_header> read_payload_header(std::string_view payload) noexcept;

/// CLOCK_REALTIME in nanoseconds since the Unix epoch.
std::uint64_t realtime_ns() noexcept;

} // namespace tern::bench
