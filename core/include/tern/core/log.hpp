#pragma once
/// A small logger: one line per call, written to each configured destination (stderr by
/// default; stdout, an appended file, syslog) with a single write per destination, so lines
/// from different workers never interleave.
///
/// Default format: `2024-05-01T12:00:00.123Z info  message`. `configure_logging` applies the
/// mosquitto `log_dest`, `log_type`, `log_timestamp`, `log_timestamp_format` and
/// `log_facility` directives. Lives in core so that net, client and every module below the broker
/// log the same way.
///
/// Thread contract: thread-safe.

#include <fmt/format.h>

#include <cstdint>
#include <string_view>
#include <utility>

#include <tern/core/logging_config.hpp>

namespace tern::core {

enum class log_level : std::uint8_t { debug, info, warn, error };

/// Enables `level` and every level above it, disables those below. Default: info. Thread-safe
/// (an atomic). `tern --verbose` calls it with debug after configure_logging.
void set_log_level(log_level level) noexcept;
/// True when a line at `level` would be written.
bool log_enabled(log_level level) noexcept;

/// Applies a `logging_config`: the destinations (several at once; "none" or an empty list
/// writes nothing; "topic" is not served yet and ignored here), the enabled levels from
/// `types` (error -> error, warning -> warn, notice and information -> info, debug -> debug;
/// all; none; subscribe/unsubscribe/websockets select nothing yet) and the timestamp. Lines
/// being written concurrently finish on the previous destinations. Throws std::system_error
/// naming the file when the log file cannot be opened; the previous configuration then stays in
/// effect. Thread-safe.
void configure_logging(const logging_config& config);

/// Opens the log file again by its name (after logrotate moved it: SIGHUP), keeping every other
/// setting and level. Lines being written finish on the old file. False when the file cannot
/// be opened (the old one stays in use). Thread-safe; nothing to do without a log file.
bool reopen_log_file();

/// Writes one line (timestamp, level, `message`, newline) to every configured destination.
/// Never throws; a failed write is ignored because there is nowhere left to report it.
void write_log(log_level level, std::string_view message) noexcept;

/// Formats with fmt and writes one line when `level` is enabled. Throws only what fmt throws
/// for a bad format (checked at compile time) or std::bad_alloc.
template <typename... Args>
void log(log_level level, fmt::format_string<Args...> format, Args&&... args) {
    if (log_enabled(level)) {
        write_log(level, fmt::format(format, std::forward<Args>(args)...));
    }
}

} // namespace tern::core
