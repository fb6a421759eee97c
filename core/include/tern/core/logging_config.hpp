#pragma once
/// The logging directives (mosquitto `log_dest`, `log_type`, `log_timestamp`, ...) as a value
/// type: the config parser fills it, configure_logging() applies it.
///
/// Thread contract: a plain value.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tern::core {

/// Logging directives (mosquitto `log_dest`, `log_type`, `log_timestamp`, ...).
struct logging_config {
    /// "stderr" (default), "stdout", "file" (with `file`), "syslog", "topic", "none"; several
    /// allowed, each at most once, in the order first given. `log_dest none` leaves exactly
    /// {"none"}; a later `log_dest X` replaces it. The first `log_dest` line of a file replaces
    /// the default, later ones add (mosquitto semantics).
    std::vector<std::string> destinations{"stderr"};
    std::string file; ///< the path of `log_dest file PATH` (appended to; at most one)
    /// error warning notice information debug subscribe unsubscribe websockets all none.
    /// Like `destinations`: the first `log_type` line replaces the default, later ones add;
    /// `all` and `none` reset the list to {"all"} / {"none"}.
    std::vector<std::string> types{"error", "warning", "notice", "information"};
    bool timestamp = true;
    /// strftime format, applied to local time (as mosquitto); empty: ISO 8601 UTC with
    /// milliseconds.
    std::string timestamp_format;
    bool connection_messages = true;
    /// `log_facility N`: syslog facility localN (0..7); unset: LOG_DAEMON (mosquitto default).
    std::optional<std::uint8_t> syslog_facility;

    bool operator==(const logging_config&) const = default;
};

} // namespace tern::core
