#include <tern/broker/broker.hpp>

#include "engine/router.hpp"
#include "engine/shared_state.hpp"
#include "mqtt/connection.hpp"
#include "session/session.hpp"

#include <tern/core/log.hpp>
#include <tern/core/systemd.hpp>
#include <tern/net/proxy_reader.hpp>
#include <tern/net/tcp_transport.hpp>
#include <tern/net/tls_context.hpp>
#include <tern/net/tls_transport.hpp>
#include <tern/net/websocket_transport.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <mutex>

#include <arpa/inet.h>
#include <csignal>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <ifaddrs.h>
#include <malloc.h>
#include <netinet/in.h>
#include <random>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <unistd.h>

namespace tern::broker {

using core::log;
using core::log_level;

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

/// Completion handler for co_spawn: logs an escaped exception (no bare `detached`).
auto log_failure(const char* what) {
    return [what](std::exception_ptr e) {
        if (!e) {
            return;
        }
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            log(log_level::error, "{} failed: {}", what, ex.what());
        } catch (...) {
            log(log_level::error, "{} failed: unknown exception", what);
        }
    };
}

using net::endpoint_string;

/// Writes one "PORT\n" line per listener, in configuration order, through a temporary file and
/// a rename, so a reader never sees half a list.
void write_port_file(const std::string& path, const std::vector<std::uint16_t>& ports) {
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        for (const auto port : ports) {
            out << port << '\n';
        }
        out.close();
        if (!out) {
            throw std::system_error(errno, std::generic_category(),
                                    "cannot write port file " + tmp);
        }
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
        throw std::system_error(ec, "cannot rename " + tmp + " to " + path);
    }
}

/// Returns free heap pages to the system (glibc's malloc_trim; a no-op elsewhere) and logs
/// how much resident memory that gave back.
void release_free_memory() {
#if defined(__GLIBC__)
    const auto resident_kib = [] {
        std::ifstream status("/proc/self/statm");
        std::uint64_t size = 0, resident = 0;
        status >> size >> resident;
        return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE)) / 1024;
    };
    const auto before = resident_kib();
    ::malloc_trim(0);
    const auto after = resident_kib();
    log(log_level::debug, "memory trim after a burst of connections: {} KiB resident -> {} KiB",
        before, after);
#endif
}

} // namespace

/// One bound listener: its configuration, acceptor and (TLS) current server context.
/// Thread contract: `acceptor` and `tls_options` on main_ctx only; `tls` is thread-safe.
struct listener_runtime {
    const listener_config* config = nullptr;
    std::unique_ptr<asio::ip::tcp::acceptor> acceptor;
    net::tls_server_options tls_options;
    std::unique_ptr<net::tls_context_slot> tls;
    /// Connections past CONNECT on this listener (its max_connections).
    std::atomic<std::size_t> connections{0};
};

/// The address listener `l` binds: its bind_address, the first address of its bind_interface,
/// or every address — "::" dual-stack unless socket_domain says ipv4 (or IPv6 is not there).
/// Throws std::runtime_error naming the listener when none fits.
std::vector<asio::ip::address> listen_addresses(const listener_config& l) {
    const bool want_v4 = l.socket_domain != "ipv6";
    const bool want_v6 = l.socket_domain != "ipv4";
    auto fits = [&](const asio::ip::address& a) {
        return (a.is_v4() && want_v4) || (a.is_v6() && want_v6);
    };
    if (!l.bind_interface.empty()) {
        ifaddrs* list = nullptr;
        if (::getifaddrs(&list) != 0) {
            throw std::runtime_error(
                fmt::format("{}: bind_interface {}: cannot list interfaces: {}", l.origin,
                            l.bind_interface, std::strerror(errno)));
        }
        std::vector<asio::ip::address> found;
        for (const ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
            if (i->ifa_addr == nullptr || l.bind_interface != i->ifa_name) {
                continue;
            }
            if (i->ifa_addr->sa_family == AF_INET) {
                const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
                found.emplace_back(asio::ip::address_v4(ntohl(sin->sin_addr.s_addr)));
            } else if (i->ifa_addr->sa_family == AF_INET6) {
                const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
                asio::ip::address_v6::bytes_type bytes;
                std::memcpy(bytes.data(), sin6->sin6_addr.s6_addr, 16);
                found.emplace_back(asio::ip::address_v6(bytes, sin6->sin6_scope_id));
            }
        }
        ::freeifaddrs(list);
        // IPv4 first, as mosquitto's default domain order does.
        std::stable_sort(found.begin(), found.end(),
                         [](const auto& a, const auto& b) { return a.is_v4() && !b.is_v4(); });
        for (const auto& a : found) {
            if (fits(a)) {
                return {a};
            }
        }
        throw std::runtime_error(fmt::format("{}: bind_interface {}: no {}address on it", l.origin,
                                             l.bind_interface,
                                             l.socket_domain.empty() ? "" : l.socket_domain + " "));
    }
    if (!l.bind_address.empty()) {
        boost::system::error_code ec;
        auto a = asio::ip::make_address(l.bind_address, ec);
        if (ec) {
            // A host name, as mosquitto accepts: resolve it (at start-up only).
            asio::io_context ctx;
            asio::ip::tcp::resolver resolver(ctx);
            const auto results = resolver.resolve(l.bind_address, "", ec);
            for (const auto& r : results) {
                if (fits(r.endpoint().address())) {
                    return {r.endpoint().address()};
                }
            }
            throw std::runtime_error(fmt::format("{}: invalid bind address '{}'{}", l.origin,
                                                 l.bind_address,
                                                 ec ? " (" + ec.message() + ")" : ""));
        }
        if (!fits(a)) {
            throw std::runtime_error(fmt::format("{}: bind address {} is not {}", l.origin,
                                                 l.bind_address, l.socket_domain));
        }
        return {a};
    }
    if (!want_v6) {
        return {asio::ip::address_v4::any()};
    }
    return {asio::ip::address_v6::any()};
}

/// The TLS server options of listener `l` (psk_file is broker-wide, as in mosquitto).
net::tls_server_options tls_options_of(const listener_config& l, const broker_config& c) {
    net::tls_server_options o;
    o.cafile = l.cafile;
    o.capath = l.capath;
    o.certfile = l.certfile;
    o.keyfile = l.keyfile;
    o.crlfile = l.crlfile;
    o.dhparamfile = l.dhparamfile;
    o.require_certificate = l.require_certificate;
    // A certificate identity as username asks for a certificate even without
    // require_certificate; a client that sends none is refused at CONNECT (0x86), not
    // mid-handshake.
    // A PSK-only listener has no certificates to ask for: the PSK identity is the username.
    o.request_certificate =
        (l.use_identity_as_username || l.use_subject_as_username) && !l.certfile.empty();
    o.tls_version = l.tls_version;
    o.ciphers = l.ciphers;
    o.ciphers_tls13 = l.ciphers_tls13;
    o.policy = l.tls_policy;
    o.psk_hint = l.psk_hint;
    o.psk_file = l.psk_hint.empty() ? std::string() : c.psk_file;
    for (const auto& e : l.sni_certificates) {
        o.sni.push_back(net::sni_certificate{e.host, e.certfile, e.keyfile});
    }
    if (!l.alpn.empty()) {
        o.alpn = l.alpn;
    }
    o.require_alpn = l.require_alpn;
    o.require_sni = l.require_sni;
    return o;
}

std::size_t default_thread_count() noexcept {
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : n;
}

namespace {

/// The largest packet a client may send once connected: max_packet_size, or the protocol's
/// maximum when it is 0.
std::uint32_t effective_max_packet_size(const broker_config& c) {
    constexpr std::uint32_t protocol_max = 268'435'455U + 5U;
    return c.max_packet_size == 0 ? protocol_max : std::min(c.max_packet_size, protocol_max);
}

} // namespace

broker_stats collect_stats(const shared_state& state) {
    broker_stats s;
    for (const auto& w : state.workers) {
        const auto& c = w->counters;
        s.packets_received += c.packets_received.load(std::memory_order_relaxed);
        s.packets_sent += c.packets_sent.load(std::memory_order_relaxed);
        s.messages_received += c.messages_received.load(std::memory_order_relaxed);
        s.messages_sent += c.messages_sent.load(std::memory_order_relaxed);
        s.bytes_received += c.bytes_received.load(std::memory_order_relaxed);
        s.bytes_sent += c.bytes_sent.load(std::memory_order_relaxed);
        s.messages_dropped += c.publish_dropped.load(std::memory_order_relaxed);
        for (std::size_t q = 0; q < 3; ++q) {
            s.publish_received_by_qos[q] +=
                c.publish_received_qos[q].load(std::memory_order_relaxed);
            s.publish_sent_by_qos[q] += c.publish_sent_qos[q].load(std::memory_order_relaxed);
        }
        for (std::size_t d = 0; d < drop_cause_count; ++d) {
            s.dropped_by_cause[d] += c.dropped[d].load(std::memory_order_relaxed);
        }
        s.tls_handshake_failures += c.tls_handshake_failures.load(std::memory_order_relaxed);
        s.worker_loop_lag_seconds.push_back(
            static_cast<double>(c.loop_lag_us.load(std::memory_order_relaxed)) / 1e6);
    }
    for (std::size_t code = 0; code < 256; ++code) {
        std::uint64_t n = 0;
        for (const auto& w : state.workers) {
            n += w->counters.connects_refused[code].load(std::memory_order_relaxed);
        }
        if (n != 0) {
            s.connects_refused.emplace_back(
                std::string(protocol::to_string(static_cast<protocol::reason_code>(code))), n);
        }
    }
    for (std::size_t i = 0; i < state.config.listeners.size(); ++i) {
        const auto& l = state.config.listeners[i];
        listener_stats ls;
        ls.name = state.listener_names[i];
        const bool ws = l.protocol == "websockets";
        ls.transport = l.tls() ? (ws ? "wss" : "mqtts") : (ws ? "ws" : "mqtt");
        for (std::size_t v = 0; v < 3; ++v) {
            ls.connections_by_version[v] =
                state.connections_by_version[i][v].load(std::memory_order_relaxed);
        }
        s.listeners.push_back(std::move(ls));
    }
    s.uptime = std::chrono::duration_cast<std::chrono::seconds>(state.clock.now() - state.started);
    s.clients_connected = state.connection_count.load();
    s.sessions = state.directory.size();
    s.subscriptions = state.subscriptions.subscription_count();
    s.retained_messages = state.retained.size();
    return s;
}

shared_state::shared_state(broker_config c, broker_services services)
    : config(std::move(c)), clock(*services.clock),
      subscriptions(config.shared_subscription_strategy),
      store(services.store != nullptr ? services.store : &memory_store), durable(store->durable()),
      max_packet_size(effective_max_packet_size(config)) {
    for (const auto& [group, strategy] : config.group_strategies) {
        subscriptions.set_group_strategy(group, strategy);
    }
    // Password hashing (and later other slow checks) runs here, not on the workers: a couple
    // of threads, mostly asleep.
    blocking_pool = std::make_unique<boost::asio::thread_pool>(
        std::clamp<std::size_t>(default_thread_count(), 1, 4));
    for (const auto& l : config.listeners) {
        std::shared_ptr<net::ocsp_checker> checker;
        if (!l.ocsp_responder.empty()) {
            net::ocsp_options o;
            o.responder_url = l.ocsp_responder;
            o.timeout = l.ocsp_timeout;
            o.cache_entries = l.ocsp_cache_size;
            o.cache_max_age = l.ocsp_cache_max_age;
            o.cafile = l.cafile;
            o.capath = l.capath;
            o.clock = &clock;
            auto [made, error] = net::ocsp_checker::create(std::move(o));
            if (!made) {
                throw std::runtime_error(fmt::format("{}: {}", l.origin, error));
            }
            checker = std::move(made);
        }
        ocsp_checkers.push_back(std::move(checker));
    }
    if (services.authenticator != nullptr) {
        // Not owned: the caller keeps it alive (services.hpp).
        authenticator =
            std::shared_ptr<const auth::authenticator>(services.authenticator, [](const auto*) {});
    } else {
        authenticator = load_authenticator(config);
        authenticator_from_config = true;
    }
}

std::vector<auth::access_settings> access_settings_of(const broker_config& config) {
    std::vector<auth::access_settings> out;
    out.reserve(config.listeners.size());
    for (const auto& l : config.listeners) {
        auth::access_settings s;
        s.allow_anonymous = l.allow_anonymous.value_or(config.allow_anonymous);
        s.password_file = config.per_listener_settings ? l.password_file : config.password_file;
        s.acl_file = config.per_listener_settings ? l.acl_file : config.acl_file;
        out.push_back(std::move(s));
    }
    return out;
}

std::shared_ptr<const auth::authenticator> load_authenticator(const broker_config& config) {
    auto loaded = auth::file_authenticator::load(access_settings_of(config));
    if (!loaded.authenticator) {
        throw std::runtime_error(loaded.error);
    }
    return loaded.authenticator;
}

session_directory::claim_result session_directory::claim(const std::string& client_id,
                                                         std::uint32_t worker,
                                                         std::uint64_t new_key) {
    std::lock_guard lock(mutex_);
    auto& e = entries_[client_id];
    claim_result r;
    if (!e.handle) {
        e.handle = std::make_shared<subscriber_handle>(new_key, client_id);
        e.handle->worker.store(worker, std::memory_order_relaxed);
        r.handle = e.handle;
    } else {
        r.handle = e.handle;
        r.existing = true;
        r.previous_claimant = e.claimant;
    }
    e.claimant = worker;
    return r;
}

bool session_directory::release(const std::string& client_id, const subscriber_handle& handle,
                                std::uint32_t worker) {
    std::lock_guard lock(mutex_);
    const auto it = entries_.find(client_id);
    if (it == entries_.end() || it->second.handle.get() != &handle) {
        return true; // not ours (any more): nothing to forget
    }
    if (it->second.claimant != worker) {
        return false;
    }
    entries_.erase(it);
    return true;
}

std::size_t session_directory::size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
}

/// Thread contract: everything but `state.workers[i]->ctx`, `port` and stop() is touched only
/// by the thread running main_ctx (the caller of run()).
struct broker::impl {
    impl(broker_config config, broker_services services) : state(std::move(config), services) {
        std::size_t threads = state.config.worker_threads;
        if (threads == 0) {
            threads = default_thread_count();
        }
        state.client_id_salt = std::random_device{}();
        if (state.config.readiness_report) {
            state.readiness = std::make_unique<readiness_aggregate>(wall_clock_ms());
        }
        for (std::size_t i = 0; i < threads; ++i) {
            state.workers.push_back(std::make_unique<worker>(state, static_cast<std::uint32_t>(i)));
            state.workers.back()->set_authenticator(state.authenticator);
            state.workers.back()->writes = state.store->make_batch(static_cast<std::uint32_t>(i));
        }
        for (auto& w : state.workers) {
            w->outbox.resize(state.workers.size());
        }
        if (state.durable) {
            restore(state.store->recover(state.clock.now()));
            // From the store's thread: the worker's held frames may go out now.
            state.store->on_durable([this](std::uint32_t index) {
                if (index < state.workers.size()) {
                    auto& w = *state.workers[index];
                    asio::post(w.ctx, [&w] { w.release_durable(); });
                }
            });
        }
    }

    /// Start-up, before the workers run: the sessions and retained messages of the durable
    /// store, spread over the workers (a client that connects elsewhere takes its session
    /// along, as for any reconnect).
    void restore(recovered_state rec) {
        const auto now = state.clock.now();
        state.next_key = std::max<std::uint64_t>(state.next_key.load(), rec.next_key);
        for (auto& m : rec.retained) {
            state.retained.set(m, state.memory_store); // already in the store
        }
        std::size_t i = 0;
        for (auto& rs : rec.sessions) {
            const auto index = static_cast<std::uint32_t>(i++ % state.workers.size());
            auto& w = *state.workers[index];
            const auto claim = state.directory.claim(rs.client_id, index, rs.key);
            if (claim.existing) {
                continue; // one record per client id: cannot happen
            }
            auto sp = std::make_unique<session>(w, claim.handle);
            sp->restore(std::move(rs), now);
            w.sessions.emplace(claim.handle->key, std::move(sp));
        }
    }

    void listen() {
        if (state.config.listeners.empty()) {
            throw std::runtime_error("no listener configured");
        }
        std::vector<std::uint16_t> ports;
        for (const auto& l : state.config.listeners) {
            auto runtime = std::make_unique<listener_runtime>();
            runtime->config = &l;
            if (l.tls()) {
                runtime->tls_options = tls_options_of(l, state.config);
                auto built = net::tls_server_context::build(runtime->tls_options);
                if (!built.context) {
                    throw std::runtime_error(fmt::format("{}: {}", l.origin, built.error));
                }
                runtime->tls = std::make_unique<net::tls_context_slot>(std::move(built.context));
            }
            boost::system::error_code ec;
            const auto address = listen_addresses(l).front();
            asio::ip::tcp::endpoint endpoint(address, l.port);
            auto acceptor = std::make_unique<asio::ip::tcp::acceptor>(main_ctx);
            acceptor->open(endpoint.protocol(), ec);
            if (ec && address.is_v6() && address.is_unspecified() && l.socket_domain.empty()) {
                // No IPv6 on this host: every IPv4 address instead.
                endpoint = asio::ip::tcp::endpoint(asio::ip::address_v4::any(), l.port);
                ec.clear();
                acceptor->open(endpoint.protocol(), ec);
            }
            if (ec) {
                throw std::system_error(ec,
                                        "cannot open a socket for " + endpoint_string(endpoint));
            }
            if (endpoint.address().is_v6() && endpoint.address().is_unspecified()) {
                // Both families on one socket unless socket_domain ipv6 asked for IPv6 only.
                acceptor->set_option(asio::ip::v6_only(l.socket_domain == "ipv6"), ec);
            }
            acceptor->set_option(asio::socket_base::reuse_address(true));
            acceptor->bind(endpoint, ec);
            if (ec) {
                throw std::system_error(ec, "cannot listen on " + endpoint_string(endpoint));
            }
            acceptor->listen(asio::socket_base::max_listen_connections);
            const auto bound = acceptor->local_endpoint();
            if (listeners.empty()) {
                port.store(bound.port());
            }
            ports.push_back(bound.port());
            state.listener_names[listeners.size()] = endpoint_string(bound);
            log(log_level::info, "listening on {}{} ({} worker thread{})", endpoint_string(bound),
                l.protocol == "websockets" ? (l.tls() ? " (WebSocket over TLS)" : " (WebSocket)")
                                           : (l.tls() ? " (TLS)" : ""),
                state.workers.size(), state.workers.size() == 1 ? "" : "s");
            runtime->acceptor = std::move(acceptor);
            listeners.push_back(std::move(runtime));
        }
        if (!state.config.port_file.empty()) {
            write_port_file(state.config.port_file, ports);
        }
    }

    /// SIGHUP: every TLS listener re-reads its certificates, keys and CRLs. A listener whose
    /// files no longer load keeps its current context (and says why); connections never drop.
    void reload_tls() {
        for (auto& l : listeners) {
            if (!l->tls) {
                continue;
            }
            auto built = net::tls_server_context::build(l->tls_options);
            if (!built.context) {
                log(log_level::error,
                    "{}: TLS reload failed, keeping the previous certificates: {}",
                    l->config->origin, built.error);
                continue;
            }
            l->tls->set(std::move(built.context));
            log(log_level::info, "{}: TLS certificates reloaded", l->config->origin);
        }
    }

    /// SIGHUP: the password and ACL files are read again into a new snapshot, posted to every
    /// worker; connected clients meet the new rules at their next PUBLISH, SUBSCRIBE or
    /// delivery. Files that no longer load keep the previous rules (and say why).
    void reload_access() {
        if (!state.authenticator_from_config) {
            return;
        }
        std::shared_ptr<const auth::authenticator> next;
        try {
            next = load_authenticator(state.config);
        } catch (const std::exception& e) {
            log(log_level::error, "access files: reload failed, keeping the previous rules: {}",
                e.what());
            return;
        }
        state.authenticator = next;
        for (auto& w : state.workers) {
            asio::post(w->ctx, [wp = w.get(), next] {
                wp->set_authenticator(next);
                std::vector<std::shared_ptr<connection>> all;
                all.reserve(wp->connections.size());
                for (const auto& [key, c] : wp->connections) {
                    all.push_back(c); // a disconnect removes from the map
                }
                for (const auto& c : all) {
                    c->recheck_credentials();
                }
                flush_writes(*wp);
            });
        }
        const auto& c = state.config;
        if (!c.password_file.empty() || !c.acl_file.empty() || c.per_listener_settings) {
            log(log_level::info, "access files reloaded");
        }
    }

    void wait_for_signal() {
        signals.async_wait([this](const boost::system::error_code& ec, int signo) {
            if (ec) {
                return;
            }
            if (signo == SIGHUP) {
                // MONOTONIC_USEC pairs the reload with its READY=1 (systemd 253 and later).
                timespec ts{};
                ::clock_gettime(CLOCK_MONOTONIC, &ts);
                core::notify_service_manager(
                    fmt::format("RELOADING=1\nMONOTONIC_USEC={}",
                                static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000U +
                                    static_cast<std::uint64_t>(ts.tv_nsec) / 1000U));
                if (!core::reopen_log_file()) {
                    log(log_level::error, "SIGHUP: cannot reopen the log file; still writing "
                                          "to the old one");
                }
                log(log_level::info, "SIGHUP received: log file reopened; reloading TLS "
                                     "certificates and access files");
                reload_tls();
                reload_access();
                core::notify_service_manager("READY=1");
                wait_for_signal();
                return;
            }
            core::notify_service_manager("STOPPING=1");
            log(log_level::info, "signal {} received", signo);
            begin_shutdown();
        });
    }

    /// main_ctx: after a burst of connections has settled, gives the heap's free memory back
    /// to the system. A TLS handshake allocates tens of KiB that it frees again; after thousands
    /// of them at once (a fleet reconnecting) glibc keeps those pages resident in its per-thread
    /// arenas, doubling the memory of the idle connections left (measured: 45 KiB per idle TLS
    /// connection after an unthrottled storm, 22 KiB after a paced one). malloc_trim walks the
    /// arenas under their locks, so it runs only once accepting has paused for a second, and
    /// only after enough connections to matter. It counts accepted CONNECTs, which follow the
    /// TLS handshake: accepting sockets ends well before the handshakes do.
    asio::awaitable<void> trim_loop() {
        constexpr std::uint64_t burst = 256; // CONNECTs accepted since the last trim
        const auto connects = [this] {
            std::uint64_t n = 0;
            for (const auto& w : state.workers) {
                n += w->counters.connects.load(std::memory_order_relaxed);
            }
            return n;
        };
        std::uint64_t trimmed_at = connects();
        std::uint64_t last_seen = trimmed_at;
        while (!shutting_down) {
            trim_timer.expires_after(1s);
            auto [ec] = co_await trim_timer.async_wait(use_nothrow);
            if (ec || shutting_down) {
                break;
            }
            const std::uint64_t now_seen = connects();
            const bool quiet = now_seen == last_seen;
            last_seen = now_seen;
            if (quiet && now_seen - trimmed_at >= burst) {
                trimmed_at = now_seen;
                release_free_memory();
            }
        }
    }

    asio::awaitable<void> accept_loop(listener_runtime& listener) {
        auto& acceptor = *listener.acceptor;
        asio::steady_timer backoff(main_ctx);
        while (acceptor.is_open()) {
            worker& w = *state.workers[next_worker];
            // The socket is created on the worker's io_context: it belongs there for life.
            auto [ec, socket] = co_await acceptor.async_accept(w.ctx, use_nothrow);
            if (ec == asio::error::operation_aborted || !acceptor.is_open()) {
                break;
            }
            if (ec) {
                // E.g. EMFILE: log, back off, keep serving the connections we have.
                log(log_level::warn, "accept failed: {}; retrying in 100 ms", ec.message());
                backoff.expires_after(100ms);
                co_await backoff.async_wait(use_nothrow);
                continue;
            }
            next_worker = (next_worker + 1) % state.workers.size();
            const std::uint64_t key = state.next_key.fetch_add(1, std::memory_order_relaxed);
            asio::post(w.ctx, [&w, &listener, s = std::move(socket), key]() mutable {
                if (w.stopping) {
                    return; // the socket's destructor closes it
                }
                if (!listener.config->proxy_protocol) {
                    start_connection(w, listener, std::move(s), key, {});
                    return;
                }
                // Behind a load balancer: the PROXY header comes first, before TLS.
                net::read_proxy_header(
                    std::move(s), w.state.config.connect_timeout,
                    [&w, &listener, key](asio::ip::tcp::socket sock,
                                         std::optional<net::proxy_header> header,
                                         std::string error) {
                        if (!header) {
                            boost::system::error_code ignored;
                            const auto remote = sock.remote_endpoint(ignored);
                            log(log_level::info, "{}: refused on a proxy_protocol listener: {}",
                                ignored ? std::string("?") : net::endpoint_string(remote), error);
                            sock.close(ignored);
                            return;
                        }
                        if (w.stopping) {
                            return;
                        }
                        start_connection(w, listener, std::move(sock), key,
                                         header->has_address ? header->source : std::string());
                    });
            });
        }
    }

    /// On `w`: wraps an accepted socket in the listener's transports and starts its MQTT
    /// connection. `address`: the client's real address from a PROXY header, or empty.
    static void start_connection(worker& w, listener_runtime& listener, asio::ip::tcp::socket s,
                                 std::uint64_t key, const std::string& address) {
        std::unique_ptr<net::transport> transport;
        if (listener.tls) {
            // The context current at accept time: a reload affects new handshakes only.
            auto tls = std::make_unique<net::tls_transport>(std::move(s), listener.tls->get());
            if (!address.empty()) {
                tls->set_peer_address(address);
            }
            transport = std::move(tls);
        } else {
            auto tcp = std::make_unique<net::tcp_transport>(std::move(s));
            if (!address.empty()) {
                tcp->set_peer_address(address);
            }
            transport = std::move(tcp);
        }
        if (listener.config->protocol == "websockets") {
            transport = std::make_unique<net::websocket_transport>(
                std::move(transport),
                net::websocket_options{w.state.config.websockets_headers_size});
        }
        auto c = std::make_shared<connection>(w, std::move(transport), key, *listener.config,
                                              listener.connections);
        w.connections.emplace(key, c);
        c->start();
    }

    /// Every 250 ms on each worker: connection deadlines (connect timeout, keep-alive,
    /// graceful close); once a second also delayed wills and expired sessions. Runs until the
    /// worker stops and its last connection has closed, so closing connections stay bounded.
    static asio::awaitable<void> tick_loop(worker& w) {
        std::vector<std::shared_ptr<connection>> all;
        for (unsigned tick = 1;; ++tick) {
            if (w.stopping && w.connections.empty()) {
                break;
            }
            w.sweep_timer.expires_after(250ms);
            const auto due = std::chrono::steady_clock::now() + 250ms;
            co_await w.sweep_timer.async_wait(use_nothrow);
            const auto late = std::chrono::steady_clock::now() - due;
            w.counters.loop_lag_us.store(
                static_cast<std::uint64_t>(std::max<std::int64_t>(
                    0, std::chrono::duration_cast<std::chrono::microseconds>(late).count())),
                std::memory_order_relaxed);
            // check_deadline() may close connections, which removes them from the map.
            all.clear();
            for (const auto& [key, c] : w.connections) {
                all.push_back(c);
            }
            const auto now = w.state.clock.now();
            if (w.readiness) {
                w.readiness->set_now(wall_clock_ms());
            }
            for (const auto& c : all) {
                c->check_deadline(now);
            }
            all.clear();
            if (tick % 4 == 0 && !w.stopping) {
                sweep_sessions(w);
                if (w.readiness) {
                    try {
                        observe_readiness(w, now);
                    } catch (const std::exception& e) {
                        // Out of memory copying samples: the report misses them, the tick
                        // (deadlines, expiry) goes on.
                        log(log_level::error, "readiness report: {}", e.what());
                    }
                }
                if (w.index == 0 && w.state.durable) {
                    w.state.store->alive();
                }
            }
        }
    }

    /// Once a second on each worker: its readiness findings go into the shared report; worker
    /// 0 also samples the account-level figures.
    static void observe_readiness(worker& w, std::chrono::steady_clock::time_point now) {
        auto& aggregate = *w.state.readiness;
        aggregate.merge(*w.readiness);
        if (w.index != 0) {
            return;
        }
        readiness_sampler::totals t;
        for (const auto& other : w.state.workers) {
            const auto& c = other->counters;
            t.connects += c.connects.load(std::memory_order_relaxed);
            t.inbound_publishes += c.messages_received.load(std::memory_order_relaxed);
            t.outbound_publishes += c.messages_sent.load(std::memory_order_relaxed);
            t.subscribe_filters += c.subscribe_filters.load(std::memory_order_relaxed);
        }
        t.connections = w.state.connection_count.load(std::memory_order_relaxed);
        t.subscriptions = w.state.subscriptions.subscription_count();
        w.state.account_sampler.sample(t, now, wall_clock_ms(), aggregate);
    }

    /// Every sys_interval on worker 0: the $SYS/broker/... topics (mosquitto's names; retained,
    /// as mosquitto publishes them).
    asio::awaitable<void> sys_loop(worker& w) {
        while (!w.stopping) {
            sys_timer->expires_after(state.config.sys_interval);
            co_await sys_timer->async_wait(use_nothrow);
            if (w.stopping) {
                break;
            }
            publish_sys(w);
        }
    }

    void publish_sys(worker& w) {
        const broker_stats s = collect_stats(state);
        const auto connected = s.clients_connected;
        const auto total = s.sessions;
        const std::pair<std::string_view, std::string> values[] = {
            {"$SYS/broker/version", fmt::format("tern version {}", TERN_VERSION_STRING)},
            {"$SYS/broker/uptime", fmt::format("{} seconds", s.uptime.count())},
            {"$SYS/broker/clients/connected", fmt::format("{}", connected)},
            {"$SYS/broker/clients/active", fmt::format("{}", connected)},
            {"$SYS/broker/clients/total", fmt::format("{}", total)},
            {"$SYS/broker/clients/disconnected",
             fmt::format("{}", total > connected ? total - connected : 0)},
            {"$SYS/broker/messages/received", fmt::format("{}", s.packets_received)},
            {"$SYS/broker/messages/sent", fmt::format("{}", s.packets_sent)},
            {"$SYS/broker/publish/messages/received", fmt::format("{}", s.messages_received)},
            {"$SYS/broker/publish/messages/sent", fmt::format("{}", s.messages_sent)},
            {"$SYS/broker/publish/messages/dropped", fmt::format("{}", s.messages_dropped)},
            {"$SYS/broker/bytes/received", fmt::format("{}", s.bytes_received)},
            {"$SYS/broker/bytes/sent", fmt::format("{}", s.bytes_sent)},
            {"$SYS/broker/subscriptions/count", fmt::format("{}", s.subscriptions)},
            {"$SYS/broker/retained messages/count", fmt::format("{}", s.retained_messages)},
        };
        for (const auto& [topic, value] : values) {
            publish_internal(w,
                             make_owned_message(topic, value, protocol::qos::at_most_once, true,
                                                state.clock.now()),
                             0, {});
        }
        if (state.readiness) {
            publish_internal(w,
                             make_owned_message("$SYS/broker/readiness",
                                                to_json(state.readiness->snapshot(wall_clock_ms())),
                                                protocol::qos::at_most_once, true,
                                                state.clock.now()),
                             0, {});
        }
    }

    /// main_ctx only.
    void begin_shutdown() {
        if (shutting_down) {
            return;
        }
        shutting_down = true;
        log(log_level::info, "shutting down");
        boost::system::error_code ignored;
        for (auto& l : listeners) {
            l->acceptor->close(ignored);
        }
        signals.cancel(ignored);
        trim_timer.cancel();
        // Phase 1 on every worker: the wills of every connection and every delayed will go out
        // (the connections are about to close without a DISCONNECT from their clients, and the
        // in-memory sessions end with the process [MQTT-3.1.2-8]). Phase 2 starts once every
        // worker has routed its wills, so each will reaches the other workers' clients before
        // their DISCONNECT 0x8B.
        for (auto& w : state.workers) {
            asio::post(w->ctx, [this, wp = w.get()] {
                publish_wills_for_shutdown(*wp);
                asio::post(main_ctx, [this] {
                    if (++wills_published == state.workers.size()) {
                        disconnect_all();
                    }
                });
            });
        }
        asio::co_spawn(main_ctx, shutdown_deadline(), log_failure("shutdown"));
    }

    /// main_ctx only: phase 2 of shutdown.
    void disconnect_all() {
        for (auto& w : state.workers) {
            asio::post(w->ctx, [this, wp = w.get()] {
                wp->stopping = true;
                wp->sweep_timer.cancel();
                if (wp->index == 0 && sys_timer) {
                    sys_timer->cancel();
                }
                // close() removes connections from the map: iterate over a copy.
                std::vector<std::shared_ptr<connection>> all;
                all.reserve(wp->connections.size());
                for (const auto& [key, c] : wp->connections) {
                    all.push_back(c);
                }
                for (const auto& c : all) {
                    c->shut_down();
                }
            });
        }
        // Each worker's run() returns once its connections have closed.
        guards.clear();
    }

    asio::awaitable<void> shutdown_deadline() {
        if (finished_workers == state.workers.size()) {
            co_return; // every worker finished before this coroutine started
        }
        // worker_finished() runs on main_ctx too, so it either ran before the check above or
        // will cancel this wait.
        shutdown_timer.expires_after(state.config.shutdown_grace);
        auto [ec] = co_await shutdown_timer.async_wait(use_nothrow);
        if (!ec) {
            log(log_level::warn, "connections still open after {} ms, forcing shutdown",
                state.config.shutdown_grace.count());
            for (auto& w : state.workers) {
                w->ctx.stop();
            }
        }
    }

    /// main_ctx only: a worker thread's run() returned.
    void worker_finished() {
        if (++finished_workers == state.workers.size()) {
            shutdown_timer.cancel();
        }
    }

    shared_state state;
    asio::io_context main_ctx{1};
    std::vector<std::unique_ptr<listener_runtime>> listeners;
    std::size_t next_worker = 0;
    asio::signal_set signals{main_ctx};
    asio::steady_timer shutdown_timer{main_ctx};
    asio::steady_timer trim_timer{main_ctx};
    std::unique_ptr<asio::steady_timer> sys_timer;
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
    std::atomic<std::uint16_t> port{0};
    bool shutting_down = false;
    std::size_t wills_published = 0;
    std::size_t finished_workers = 0;
};

broker::broker(broker_config config, broker_services services)
    : impl_(std::make_unique<impl>(std::move(config), services)) {
    impl_->listen();
}

broker::~broker() = default;

std::uint16_t broker::port() const noexcept {
    return impl_->port.load();
}

broker_stats broker::stats() const {
    return collect_stats(impl_->state);
}

namespace {

/// What the workers answer to one cross-worker question, waited for by the asking thread.
template <typename T> struct worker_poll {
    std::mutex mutex;
    std::condition_variable done;
    std::vector<T> answers;  // guarded by mutex
    std::size_t pending = 0; // guarded by mutex
};

/// Runs `ask(worker)` on every worker and gathers what each returns (a vector of T), waiting at
/// most `timeout` for the slowest. Not on a worker thread.
template <typename T, typename Ask>
std::vector<T> ask_every_worker(const shared_state& state, std::chrono::milliseconds timeout,
                                Ask ask) {
    auto poll = std::make_shared<worker_poll<T>>();
    poll->pending = state.workers.size();
    for (const auto& w : state.workers) {
        asio::post(w->ctx, [poll, ask, wp = w.get()] {
            std::vector<T> mine;
            try {
                mine = ask(*wp);
            } catch (const std::exception& e) {
                // The question fails; the worker and its connections go on.
                log(log_level::error, "admin question on worker {}: {}", wp->index, e.what());
            }
            const std::lock_guard lock(poll->mutex);
            for (auto& a : mine) {
                poll->answers.push_back(std::move(a));
            }
            --poll->pending;
            poll->done.notify_all();
        });
    }
    std::unique_lock lock(poll->mutex);
    poll->done.wait_for(lock, timeout, [&] { return poll->pending == 0; });
    return poll->answers;
}

} // namespace

std::vector<client_info> broker::clients(std::chrono::milliseconds timeout) const {
    return ask_every_worker<client_info>(impl_->state, timeout, [](worker& w) {
        std::vector<client_info> mine;
        for (const auto& [key, c] : w.connections) {
            if (auto i = c->info()) {
                mine.push_back(std::move(*i));
            }
        }
        return mine;
    });
}

std::size_t broker::disconnect_client(const disconnect_request& request,
                                      std::chrono::milliseconds timeout) {
    const auto hits = ask_every_worker<int>(impl_->state, timeout, [request](worker& w) {
        std::vector<std::shared_ptr<connection>> matching;
        for (const auto& [key, c] : w.connections) {
            if (c->client_id() == request.client_id && c->info()) {
                matching.push_back(c); // closing removes it from the map: not while iterating
            }
        }
        for (const auto& c : matching) {
            c->admin_disconnect(request);
        }
        flush_writes(w);
        return std::vector<int>(matching.size(), 1);
    });
    return hits.size();
}

std::vector<session_info> broker::sessions(std::chrono::milliseconds timeout) const {
    return ask_every_worker<session_info>(impl_->state, timeout, [](worker& w) {
        std::vector<session_info> mine;
        mine.reserve(w.sessions.size());
        for (const auto& [key, s] : w.sessions) {
            session_info i;
            i.client_id = s->client_id();
            i.connected = s->sink != nullptr;
            i.expiry_interval = s->expiry_interval;
            i.inflight = s->inflight.size();
            i.queued = s->queued.size() + s->on_disk();
            for (const auto& [filter, sub] : s->subscriptions) {
                i.subscriptions.emplace_back(filter, static_cast<std::uint8_t>(sub.options.qos));
            }
            mine.push_back(std::move(i));
        }
        return mine;
    });
}

std::vector<retained_info> broker::retained(std::string_view filter, std::size_t limit) const {
    std::vector<message_ptr> matches;
    impl_->state.retained.match(filter, matches);
    std::vector<retained_info> out;
    for (const auto& m : matches) {
        if (out.size() >= limit) {
            break;
        }
        out.push_back({std::string(m->publish.topic), m->publish.payload.size(),
                       static_cast<std::uint8_t>(m->publish.qos)});
    }
    return out;
}

std::optional<readiness_report> broker::readiness() const {
    if (!impl_->state.readiness) {
        return std::nullopt;
    }
    return impl_->state.readiness->snapshot(wall_clock_ms());
}

int broker::run() {
    impl& self = *impl_;
    for (auto& w : self.state.workers) {
        self.guards.push_back(asio::make_work_guard(w->ctx));
    }
    std::vector<std::thread> threads;
    threads.reserve(self.state.workers.size());
    for (auto& w : self.state.workers) {
        threads.emplace_back([&self, wp = w.get()] {
            try {
                wp->ctx.run();
            } catch (const std::exception& e) {
                log(log_level::error, "worker {} stopped by exception: {}", wp->index, e.what());
            }
            asio::post(self.main_ctx, [&self] { self.worker_finished(); });
        });
    }

    for (auto& w : self.state.workers) {
        asio::co_spawn(w->ctx, impl::tick_loop(*w), log_failure("worker tick"));
    }
    if (self.state.config.sys_interval.count() > 0) {
        worker& w0 = *self.state.workers.front();
        self.sys_timer = std::make_unique<asio::steady_timer>(w0.ctx);
        asio::co_spawn(w0.ctx, self.sys_loop(w0), log_failure("$SYS publisher"));
    }
    if (self.state.config.handle_signals) {
        self.signals.add(SIGINT);
        self.signals.add(SIGTERM);
        self.signals.add(SIGHUP);
        self.wait_for_signal();
    }
    // What Type=notify waits for: listening, and a SIGHUP from `systemctl reload` now reloads
    // rather than terminating (the handlers exist from here on).
    core::notify_service_manager(fmt::format("READY=1\nMAINPID={}", ::getpid()));
    for (auto& l : self.listeners) {
        asio::co_spawn(self.main_ctx, self.accept_loop(*l), log_failure("accept loop"));
    }
    asio::co_spawn(self.main_ctx, self.trim_loop(), log_failure("memory trim"));

    // Survives an exception escaping a main_ctx handler: log it and keep going.
    for (;;) {
        try {
            self.main_ctx.run();
            break;
        } catch (const std::exception& e) {
            log(log_level::error, "main loop: {}", e.what());
        }
    }
    for (auto& t : threads) {
        t.join();
    }
    // What the workers wrote last is written; the sessions and messages destroyed with the
    // broker are not changes of state.
    self.state.store->seal();
    // Jobs still queued (a password being hashed for a client that is gone) are dropped.
    self.state.blocking_pool->stop();
    self.state.blocking_pool->join();
    log(log_level::info, "stopped");
    return 0;
}

void broker::stop() noexcept {
    try {
        asio::post(impl_->main_ctx, [self = impl_.get()] { self->begin_shutdown(); });
    } catch (...) {
        // post only throws on allocation failure; nothing sensible is left to do.
    }
}

} // namespace tern::broker
