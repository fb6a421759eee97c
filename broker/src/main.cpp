// The `tern` executable: parses the command line (and the configuration file it names), sets up
// logging and runs tern::broker (STYLE.md §1).

#include "readiness_command.hpp"

#include <tern/admin/admin_config.hpp>
#include <tern/admin/admin_server.hpp>
#include <tern/broker/broker.hpp>
#include <tern/broker/command_line.hpp>
#include <tern/broker/config.hpp>
#include <tern/core/log.hpp>
#include <tern/core/systemd.hpp>
#include <tern/store/mosquitto_db.hpp>
#include <tern/store/rocksdb_store.hpp>
#include <tern/store/store_config.hpp>

#include <fmt/format.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

using namespace tern::broker;
using namespace tern::core;

/// Directives that parse but that this build does not act on yet, one warning each, so a
/// configuration never silently means less than it says.
/// TODO(lead): shrink as the broker learns them (log_dest topic with $SYS, user with
/// privilege dropping).
std::vector<std::string> not_yet_enforced(const broker_config& config) {
    std::vector<std::string> warnings;
    const auto& dests = config.logging.destinations;
    if (std::find(dests.begin(), dests.end(), "topic") != dests.end()) {
        warnings.emplace_back("log_dest topic is not served yet: no log messages are published "
                              "on $SYS/broker/log/#");
    }
    if (!config.set_tcp_nodelay) {
        warnings.emplace_back("set_tcp_nodelay false is not applied: tern always sends small "
                              "packets at once (TCP_NODELAY), as mosquitto does with true");
    }
    if (!config.user.empty()) {
        warnings.push_back(fmt::format("user {}: tern does not change user yet; it keeps "
                                       "running as uid {}",
                                       config.user, ::getuid()));
    }
    return warnings;
}

/// Writes "PID\n" to `path` (mosquitto's pid_file). Throws std::system_error naming the file.
void write_pid_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        throw std::system_error(errno, std::generic_category(),
                                fmt::format("cannot write pid file '{}'", path));
    }
    const std::string text = fmt::format("{}\n", ::getpid());
    const ssize_t n = ::write(fd, text.data(), text.size());
    const int err = errno;
    ::close(fd);
    if (n != static_cast<ssize_t>(text.size())) {
        throw std::system_error(n < 0 ? err : EIO, std::generic_category(),
                                fmt::format("cannot write pid file '{}'", path));
    }
}

/// `-d`: the process forks; the parent waits until the child (the broker) listens and exits 0,
/// or exits 1 when the child could not start (its error went to the inherited stderr). The
/// child leaves the terminal's session. Done before the broker exists, since a fork keeps only
/// the calling thread and the broker starts threads; the child tells the parent it is ready
/// through the returned pipe (ready_to_parent). Returns -1 in the child without a daemon.
int detach() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        throw std::system_error(errno, std::generic_category(), "cannot create a pipe");
    }
    const pid_t pid = ::fork();
    if (pid < 0) {
        throw std::system_error(errno, std::generic_category(), "cannot fork");
    }
    if (pid > 0) {
        ::close(fds[1]);
        char ready = 0;
        ssize_t n = 0;
        do {
            n = ::read(fds[0], &ready, 1);
        } while (n < 0 && errno == EINTR);
        ::_exit(n == 1 && ready == 'y' ? 0 : 1);
    }
    ::close(fds[0]);
    ::setsid();
    return fds[1];
}

/// The daemon listens: the waiting parent may exit 0, and the terminal is no longer ours.
void ready_to_parent(int fd) {
    if (fd < 0) {
        return;
    }
    const char ready = 'y';
    (void)!::write(fd, &ready, 1);
    ::close(fd);
    const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        ::dup2(null, STDIN_FILENO);
        ::dup2(null, STDOUT_FILENO);
        ::dup2(null, STDERR_FILENO);
        ::close(null);
    }
}

/// A fatal start-up error reaches the terminal even when the log goes elsewhere (a file,
/// syslog, or nowhere): the user must learn why tern did not start.
void report_fatal(const broker_config& config, const std::string& message) {
    log(log_level::error, "fatal: {}", message);
    const auto& dests = config.logging.destinations;
    const bool logged_to_stderr = std::find(dests.begin(), dests.end(), "stderr") != dests.end() &&
                                  log_enabled(log_level::error);
    if (!logged_to_stderr) {
        std::fprintf(stderr, "tern: %s\n", message.c_str());
    }
}

tern::store::store_options store_options_of(const tern::store::persistence_config& p) {
    tern::store::store_options o;
    o.path = p.store_path();
    o.sync = p.sync;
    o.sync_interval = p.sync_interval;
    return o;
}

/// "imported FILE (format 6): 3 sessions, ..." with what was left out, if anything.
std::string describe_import(const tern::store::mosquitto_import_counts& c,
                            const std::string& file) {
    std::string text = fmt::format(
        "imported the Mosquitto database {} (format {}): {} sessions, {} subscriptions, {} "
        "queued or in-flight messages, {} QoS 2 packet ids awaiting PUBREL, {} retained messages",
        file, c.version, c.sessions, c.subscriptions, c.messages, c.inbound_qos2, c.retained);
    const auto& k = c.skipped;
    const std::pair<std::size_t, const char*> left_out[] = {
        {k.expired_messages, "expired messages"},
        {k.qos0_deliveries, "QoS 0 deliveries"},
        {k.ended_sessions, "sessions with expiry 0 (ended when Mosquitto stopped)"},
        {k.empty_client_ids, "client records without a client id"},
        {k.orphans, "records of unknown clients"},
        {k.missing_messages, "references to messages not in the file"},
        {k.other_inbound, "inbound messages other than QoS 2"},
        {k.unknown_chunks, "chunks of unknown types"},
    };
    const char* sep = "; left out: ";
    for (const auto& [n, what] : left_out) {
        if (n != 0) {
            text += fmt::format("{}{} {}", sep, n, what);
            sep = ", ";
        }
    }
    return text;
}

/// Makes a rename in `dir` durable: without it a crash could bring back the old name after
/// the broker had acknowledged state written under the new one.
void sync_directory(const std::filesystem::path& dir) {
    const auto name = dir.empty() ? std::string(".") : dir.string();
    const int fd = ::open(name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) != 0) {
        const int err = errno;
        if (fd >= 0) {
            ::close(fd);
        }
        throw std::system_error(err, std::generic_category(),
                                fmt::format("cannot sync the directory '{}'", name));
    }
    ::close(fd);
}

/// The first start with persistence where Mosquitto ran before: its database is imported into
/// a directory beside the store, which becomes the store only once the import is complete and
/// closed. A failed or interrupted import so leaves no store behind, and the next start tries
/// again instead of running with half the sessions. Throws naming the file.
void import_on_first_start(const tern::store::store_options& options, const std::string& file) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::file_size(file, ec) == 0 && !ec) {
        log(log_level::warn, "{} is empty: no Mosquitto sessions to import", file);
        return;
    }
    const std::string staging = options.path + ".import";
    fs::remove_all(staging, ec); // left by an import that was interrupted
    if (ec) {
        throw std::runtime_error(
            fmt::format("cannot remove the unfinished import {}: {}", staging, ec.message()));
    }
    {
        auto staged = options;
        staged.path = staging;
        std::string error;
        auto store = tern::store::rocksdb_store::open(staged, error);
        if (!store) {
            throw std::runtime_error(error);
        }
        const auto counts = tern::store::import_mosquitto_db(file, *store, error);
        if (!counts) {
            store.reset();
            fs::remove_all(staging, ec);
            throw std::runtime_error(
                fmt::format("cannot import the Mosquitto database: {}", error));
        }
        log(log_level::info, "{}", describe_import(*counts, file));
    }
    fs::rename(staging, options.path, ec);
    if (ec) {
        throw std::runtime_error(
            fmt::format("cannot rename {} to {}: {}", staging, options.path, ec.message()));
    }
    sync_directory(fs::path(options.path).parent_path());
}

/// `tern --import-mosquitto-db FILE`: imports into the store the configuration names and
/// exits (0 when imported; 1, with the reason, otherwise). Refuses a store that already
/// holds sessions: their keys would collide, and merging two brokers' sessions is not an
/// import.
int import_command(const broker_config& config, const tern::store::persistence_config& p,
                   const std::string& file) {
    if (!p.enabled) {
        report_fatal(config, "--import-mosquitto-db: the configuration does not enable "
                             "persistence (persistence true; the store is "
                             "persistence_location/tern.db), so there is no store to import "
                             "into");
        return 1;
    }
    try {
        const auto options = store_options_of(p);
        std::string error;
        auto store = tern::store::rocksdb_store::open(options, error);
        if (!store) {
            throw std::runtime_error(error);
        }
        const auto existing = store->recover(std::chrono::steady_clock::now()).sessions.size();
        if (existing != 0) {
            report_fatal(config, fmt::format("the session store {} already holds {} sessions: "
                                             "refusing to import {} into it (move the store "
                                             "away to import afresh)",
                                             options.path, existing, file));
            return 1;
        }
        const auto counts = tern::store::import_mosquitto_db(file, *store, error);
        if (!counts) {
            throw std::runtime_error(
                fmt::format("cannot import the Mosquitto database: {}", error));
        }
        const auto text = fmt::format("{} into {}", describe_import(*counts, file), options.path);
        log(log_level::info, "{}", text);
        const auto& dests = config.logging.destinations;
        if (std::find(dests.begin(), dests.end(), "stderr") == dests.end() ||
            !log_enabled(log_level::info)) {
            std::printf("tern: %s\n", text.c_str());
        }
        return 0;
    } catch (const std::exception& e) {
        report_fatal(config, e.what());
        return 1;
    }
}

} // namespace

int main(int argc, char** argv) {
    std::vector<std::string_view> args(argv + 1, argv + argc);
    if (!args.empty() && args.front() == "readiness-report") {
        return run_readiness_report(std::span(args).subspan(1));
    }
    // Modules that plug into the broker (bridge, admin, store) register their directives here
    // and receive what the file said; none is built into this binary yet.
    config_registry modules;
    tern::store::persistence_config persistence;
    tern::store::register_directives(modules, persistence);
    tern::admin::admin_config admin;
    tern::admin::register_directives(modules, admin);
    auto cl = parse_command_line(args, &modules);
    if (!cl.config) {
        // --help, --test-config, a usage error, or a bad configuration file ("FILE:LINE: ...").
        std::FILE* out = cl.exit_code == 0 ? stdout : stderr;
        std::fputs(cl.message.c_str(), out);
        if (!cl.message.ends_with('\n')) {
            std::fputc('\n', out);
        }
        return cl.exit_code;
    }
    broker_config config = std::move(*cl.config);

    try {
        configure_logging(config.logging);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tern: %s\n", e.what());
        return 1;
    }
    if (cl.verbose) {
        set_log_level(log_level::debug);
    }
    if (!cl.config_file.empty()) {
        log(log_level::info, "configuration loaded from {}", cl.config_file);
        if (config.local_only) {
            log(log_level::warn,
                "{} configures no listener: local only mode, listening on "
                "127.0.0.1:{} only (add a 'listener' line for remote access)",
                cl.config_file, config.listeners.front().port);
        }
    }
    for (const auto& warning : cl.warnings) {
        log(log_level::warn, "{}", warning);
    }
    for (const auto& warning : not_yet_enforced(config)) {
        log(log_level::warn, "{}", warning);
    }

    for (const auto& note : persistence.notes) {
        log(log_level::info, "{}", note);
    }
    if (cl.import_mosquitto_db) {
        return import_command(config, persistence, *cl.import_mosquitto_db);
    }

    bool pid_written = false;
    int code = 1;
    try {
        const int ready_pipe = config.daemon ? detach() : -1;
        std::unique_ptr<tern::store::rocksdb_store> store;
        broker_services services;
        if (persistence.enabled) {
            const auto o = store_options_of(persistence);
            // Replacing Mosquitto: no store of our own yet, but Mosquitto's database beside it.
            std::error_code ec;
            const bool first_start = !std::filesystem::exists(o.path, ec) && !ec;
            const auto legacy = persistence.mosquitto_db_path();
            if (first_start && std::filesystem::exists(legacy, ec)) {
                import_on_first_start(o, legacy);
            }
            std::string error;
            store = tern::store::rocksdb_store::open(o, error);
            if (!store) {
                throw std::runtime_error(error);
            }
            services.store = store.get();
            log(log_level::info, "session store {} (persistence_sync {})", o.path,
                o.sync == tern::store::sync_policy::every_batch ? "batch"
                : o.sync == tern::store::sync_policy::never     ? "never"
                                                                : "interval");
        }
        broker server(config, services); // a copy: `config` still decides where errors go
        std::unique_ptr<tern::admin::admin_server> admin_server;
        if (admin.enabled) {
            tern::admin::admin_sources sources;
            sources.stats = [&server] { return server.stats(); };
            sources.readiness = [&server] { return server.readiness(); };
            sources.clients = [&server] { return server.clients(std::chrono::seconds(2)); };
            sources.disconnect = [&server](const tern::broker::disconnect_request& r) {
                return server.disconnect_client(r, std::chrono::seconds(2));
            };
            sources.sessions = [&server] { return server.sessions(std::chrono::seconds(2)); };
            sources.retained = [&server](std::string_view filter, std::size_t limit) {
                return server.retained(filter, limit);
            };
            auto started = tern::admin::admin_server::start(admin, std::move(sources));
            if (!started.server) {
                throw std::runtime_error(started.error);
            }
            admin_server = std::move(started.server);
            log(log_level::info, "admin listener on {}:{}{}", admin.address, admin_server->port(),
                admin.token.empty() ? " (loopback only)" : " (token)");
        }
        if (!config.pid_file.empty()) {
            write_pid_file(config.pid_file);
            pid_written = true;
        }
        ready_to_parent(ready_pipe);
        code = server.run(); // tells systemd READY=1 once its signal handlers are in place
    } catch (const std::exception& e) {
        report_fatal(config, e.what());
        code = 1;
    }
    if (pid_written) {
        ::unlink(config.pid_file.c_str());
    }
    return code;
}
