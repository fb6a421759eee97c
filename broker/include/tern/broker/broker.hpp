#pragma once
/// The Tern broker: listeners, N worker threads, MQTT 3.1/3.1.1/5 sessions, shared
/// subscriptions. See broker/README.md and docs/architecture.md.
///
/// Thread contract: construct, run() and destroy on one thread; stop(), port(), stats() and
/// readiness() are thread-safe.

#include <tern/broker/clients.hpp>
#include <tern/broker/config.hpp>
#include <tern/broker/readiness.hpp>
#include <tern/broker/services.hpp>
#include <tern/broker/stats.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tern::broker {

/// Hardware thread count, at least 1: the default of `tern --threads` (STYLE.md §4).
std::size_t default_thread_count() noexcept;

class broker {
public:
    /// Binds every listener. Throws std::system_error (with the address in the message) when
    /// an address cannot be parsed or bound, and when the port file cannot be written.
    explicit broker(broker_config config, broker_services services = {});
    ~broker();
    broker(const broker&) = delete;
    broker& operator=(const broker&) = delete;

    /// The first listener's bound TCP port (the ephemeral one when it asked for 0). Thread-safe.
    std::uint16_t port() const noexcept;

    /// The counters $SYS publishes, as numbers (stats.hpp). Thread-safe; valid from
    /// construction until destruction.
    broker_stats stats() const;

    /// The AWS IoT Core readiness report as of now (at most a second behind the traffic);
    /// nullopt unless `readiness_report true`. Thread-safe.
    std::optional<readiness_report> readiness() const;

    /// Every connection past CONNECT, asked of each worker. Waits at most `timeout` for the
    /// workers (a worker that does not answer in time is left out). Thread-safe; never call
    /// it on a worker thread (it would wait for itself).
    std::vector<client_info> clients(std::chrono::milliseconds timeout) const;
    /// Disconnects the connection of `request.client_id`, if there is one (MQTT 5: DISCONNECT
    /// with the reason and Server Reference; 3.1/3.1.1: closed). Returns how many connections
    /// were disconnected (0 or 1). Thread-safe, not on a worker thread; waits as clients().
    std::size_t disconnect_client(const disconnect_request& request,
                                  std::chrono::milliseconds timeout);
    /// Every session, connected or not, with its subscriptions; waits as clients().
    std::vector<session_info> sessions(std::chrono::milliseconds timeout) const;
    /// The retained messages matching `filter`, at most `limit`. Thread-safe (the retained
    /// store is), any thread.
    std::vector<retained_info> retained(std::string_view filter, std::size_t limit) const;

    /// Serves clients until stop() (or SIGINT/SIGTERM when handle_signals). Shutdown closes the
    /// listener, sends DISCONNECT 0x8B Server shutting down to MQTT 5 clients, closes every
    /// connection, waits at most shutdown_grace, then joins the workers. Returns 0. Call once.
    int run();

    /// Asks run() to shut down as described there; returns at once. Thread-safe, idempotent.
    void stop() noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace tern::broker
