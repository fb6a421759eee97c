#pragma once
/// A tiny logger: one timestamped line per call, written to stderr with a single write so lines
/// from different workers never interleave.
///
/// Format: `2024-05-01T12:00:00.123Z info  message`. The structured logging of the broker-core
/// issue replaces this.
///
/// Thread contract: thread-safe.

#include <fmt/format.h>

#include <cstdint>
#include <string_view>
#include <utility>

namespace tern::broker {

enum class log_level : std::uint8_t { debug, info, warn, error };

/// Lines below `level` are dropped. Default: info. Thread-safe (an atomic).
void set_log_level(log_level level) noexcept;
/// True when a line at `level` would be written.
bool log_enabled(log_level level) noexcept;

/// Writes one line (timestamp, level, `message`, newline) to stderr. Never throws; a failed
/// write is ignored because there is nowhere left to report it.
void write_log(log_level level, std::string_view message) noexcept;

/// Formats with fmt and writes one line when `level` is enabled. Throws only what fmt throws
/// for a bad format (checked at compile time) or std::bad_alloc.
template <typename... Args>
void log(log_level level, fmt::format_string<Args...> format, Args&&... args) {
    if (log_enabled(level)) {
        write_log(level, fmt::format(format, std::forward<Args>(args)...));
    }
}

} // namespace tern::broker
