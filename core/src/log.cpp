#include <tern/core/log.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>

#include <fcntl.h>
#include <syslog.h>
#include <unistd.h>

namespace tern::core {

namespace {

/// Where lines go and how they look. Immutable once published: configure_logging builds a new
/// one and swaps the pointer, and a line being written keeps the destinations (and the file
/// descriptor) it started with alive until it is done.
struct sinks {
    bool to_stderr = true;
    bool to_stdout = false;
    bool to_syslog = false;
    int file_fd = -1;
    std::string file_path; ///< for reopen_log_file()
    bool timestamp = true;
    std::string timestamp_format;

    sinks() = default;
    sinks(const sinks&) = delete;
    sinks& operator=(const sinks&) = delete;
    ~sinks() {
        if (file_fd >= 0) {
            ::close(file_fd);
        }
    }
};

/// The published sinks. A mutex rather than std::atomic<std::shared_ptr>: libstdc++ 12 unlocks
/// that one with a relaxed store, which TSan reports as a race. The lock only covers copying
/// or swapping the pointer; lines are formatted and written outside it, and a replaced
/// configuration is destroyed (its file closed) outside it too, by whoever drops it last.
class sinks_slot {
public:
    std::shared_ptr<const sinks> get() const {
        std::lock_guard lock(mutex_);
        return current_;
    }
    void set(std::shared_ptr<const sinks> next) {
        {
            std::lock_guard lock(mutex_);
            current_.swap(next);
        }
        // `next` now holds the old sinks and is released here, unlocked.
    }

private:
    mutable std::mutex mutex_;
    std::shared_ptr<const sinks> current_ = std::make_shared<sinks>();
};

/// Never destroyed: a worker may still log while static destructors run at exit.
sinks_slot& current_sinks() {
    static auto* slot = new sinks_slot;
    return *slot;
}

constexpr std::uint8_t bit(log_level level) noexcept {
    return static_cast<std::uint8_t>(1U << static_cast<unsigned>(level));
}

constexpr std::uint8_t at_least(log_level level) noexcept {
    std::uint8_t mask = 0;
    for (auto l = static_cast<unsigned>(level); l <= static_cast<unsigned>(log_level::error); ++l) {
        mask = static_cast<std::uint8_t>(mask | bit(static_cast<log_level>(l)));
    }
    return mask;
}

/// One bit per enabled level (log_type can enable e.g. error and debug but not info).
std::atomic<std::uint8_t> g_levels{at_least(log_level::info)};

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

int syslog_priority(log_level level) noexcept {
    switch (level) {
    case log_level::debug:
        return LOG_DEBUG;
    case log_level::info:
        return LOG_INFO;
    case log_level::warn:
        return LOG_WARNING;
    case log_level::error:
        return LOG_ERR;
    }
    return LOG_INFO;
}

/// One write(2) per line: POSIX keeps it whole against other threads' lines on the same file
/// (and O_APPEND makes it atomic against other processes appending to a log file).
void write_all(int fd, std::string_view data) noexcept {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
}

void append_timestamp(fmt::memory_buffer& line, const sinks& s) {
    const auto now = std::chrono::system_clock::now();
    const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
    if (s.timestamp_format.empty()) {
        const auto millis =
            std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
            1000;
        std::tm utc{};
        gmtime_r(&seconds, &utc);
        fmt::format_to(std::back_inserter(line), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z ",
                       utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min,
                       utc.tm_sec, millis);
        return;
    }
    // log_timestamp_format: strftime on local time, as mosquitto does. A result that does not
    // fit (or is empty) leaves the line without a timestamp rather than truncated.
    std::tm local{};
    localtime_r(&seconds, &local);
    std::array<char, 256> text{};
    const std::size_t n =
        std::strftime(text.data(), text.size(), s.timestamp_format.c_str(), &local);
    if (n > 0) {
        line.append(text.data(), text.data() + n);
        line.push_back(' ');
    }
}

bool has(const std::vector<std::string>& list, std::string_view value) {
    return std::find(list.begin(), list.end(), value) != list.end();
}

} // namespace

void set_log_level(log_level level) noexcept {
    g_levels.store(at_least(level), std::memory_order_relaxed);
}

bool log_enabled(log_level level) noexcept {
    return (g_levels.load(std::memory_order_relaxed) & bit(level)) != 0;
}

void configure_logging(const logging_config& config) {
    auto next = std::make_shared<sinks>();
    const auto& dests = config.destinations;
    next->to_stderr = has(dests, "stderr");
    next->to_stdout = has(dests, "stdout");
    next->to_syslog = has(dests, "syslog");
    next->timestamp = config.timestamp;
    next->timestamp_format = config.timestamp_format;
    if (has(dests, "file") && !config.file.empty()) {
        next->file_fd =
            ::open(config.file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (next->file_fd < 0) {
            throw std::system_error(errno, std::generic_category(),
                                    fmt::format("cannot open log file '{}'", config.file));
        }
        next->file_path = config.file;
    }
    if (next->to_syslog) {
        static constexpr std::array<int, 8> local_facilities{LOG_LOCAL0, LOG_LOCAL1, LOG_LOCAL2,
                                                             LOG_LOCAL3, LOG_LOCAL4, LOG_LOCAL5,
                                                             LOG_LOCAL6, LOG_LOCAL7};
        const int facility = config.syslog_facility && *config.syslog_facility < 8
                                 ? local_facilities[*config.syslog_facility]
                                 : LOG_DAEMON;
        ::openlog("tern", LOG_PID | LOG_NDELAY, facility);
    }

    std::uint8_t levels = 0;
    const auto& types = config.types;
    if (has(types, "all")) {
        levels = at_least(log_level::debug);
    } else {
        if (has(types, "error")) {
            levels = static_cast<std::uint8_t>(levels | bit(log_level::error));
        }
        if (has(types, "warning")) {
            levels = static_cast<std::uint8_t>(levels | bit(log_level::warn));
        }
        if (has(types, "notice") || has(types, "information")) {
            levels = static_cast<std::uint8_t>(levels | bit(log_level::info));
        }
        if (has(types, "debug")) {
            levels = static_cast<std::uint8_t>(levels | bit(log_level::debug));
        }
    }
    current_sinks().set(std::move(next));
    g_levels.store(levels, std::memory_order_relaxed);
}

bool reopen_log_file() {
    const std::shared_ptr<const sinks> now = current_sinks().get();
    if (now->file_fd < 0) {
        return true;
    }
    const int fd = ::open(now->file_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        return false; // the old file stays in use
    }
    auto next = std::make_shared<sinks>();
    next->to_stderr = now->to_stderr;
    next->to_stdout = now->to_stdout;
    next->to_syslog = now->to_syslog;
    next->file_fd = fd;
    next->file_path = now->file_path;
    next->timestamp = now->timestamp;
    next->timestamp_format = now->timestamp_format;
    current_sinks().set(std::move(next));
    return true;
}

void write_log(log_level level, std::string_view message) noexcept {
    try {
        const std::shared_ptr<const sinks> s = current_sinks().get();
        if (s->to_syslog) {
            // syslog adds its own timestamp; the message may contain '%', so pass it as data.
            ::syslog(syslog_priority(level), "%.*s", static_cast<int>(message.size()),
                     message.data());
        }
        if (!s->to_stderr && !s->to_stdout && s->file_fd < 0) {
            return;
        }
        fmt::memory_buffer line;
        if (s->timestamp) {
            append_timestamp(line, *s);
        }
        fmt::format_to(std::back_inserter(line), "{} {}\n", level_name(level), message);
        const std::string_view text(line.data(), line.size());
        if (s->to_stderr) {
            write_all(STDERR_FILENO, text);
        }
        if (s->to_stdout) {
            write_all(STDOUT_FILENO, text);
        }
        if (s->file_fd >= 0) {
            write_all(s->file_fd, text);
        }
    } catch (...) {
        // Out of memory while logging: drop the line rather than terminate.
    }
}

} // namespace tern::core
