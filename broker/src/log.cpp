#include <tern/broker/log.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <unistd.h>

namespace tern::broker {

namespace {

std::atomic<log_level> g_level{log_level::info};

std::string_view level_name(log_level level) noexcept {
    switch (level) {
    case log_level::debug:
        return "debug";
    case log_level::info:
        return "info ";
    case log_level::warn:
        return "warn ";
    case log_level::error:
        return "error";
    }
    return "?    ";
}

} // namespace

void set_log_level(log_level level) noexcept {
    g_level.store(level, std::memory_order_relaxed);
}

bool log_enabled(log_level level) noexcept {
    return level >= g_level.load(std::memory_order_relaxed);
}

void write_log(log_level level, std::string_view message) noexcept {
    try {
        const auto now = std::chrono::system_clock::now();
        const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
        const auto millis =
            std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
            1000;
        std::tm utc{};
        gmtime_r(&seconds, &utc);
        fmt::memory_buffer line;
        fmt::format_to(std::back_inserter(line),
                       "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z {} {}\n", utc.tm_year + 1900,
                       utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, millis,
                       level_name(level), message);
        // One write(2) per line: POSIX keeps it whole against other threads' lines on stderr.
        const char* data = line.data();
        std::size_t left = line.size();
        while (left > 0) {
            const ssize_t n = ::write(STDERR_FILENO, data, left);
            if (n <= 0) {
                return;
            }
            data += n;
            left -= static_cast<std::size_t>(n);
        }
    } catch (...) {
        // Out of memory while logging: drop the line rather than terminate.
    }
}

} // namespace tern::broker
