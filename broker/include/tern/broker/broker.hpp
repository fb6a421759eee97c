#pragma once
/// The Tern broker: listeners, N worker threads, MQTT 3.1/3.1.1/5 sessions, shared
/// subscriptions. See broker/README.md and docs/architecture.md.
///
/// Thread contract: construct, run() and destroy on one thread; stop() and port() are
/// thread-safe.

#include <tern/broker/config.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace tern::broker {

/// The command-line subset of broker_config (kept while the command line still builds it;
/// see broker_config for the full configuration).
struct broker_options {
    /// Address to listen on; IPv4 or IPv6 literal.
    std::string bind_address = "127.0.0.1";
    /// TCP port; 0 binds an ephemeral port (read it back with broker::port()).
    std::uint16_t port = 1883;
    /// Worker threads, each running one io_context; every connection lives on one of them.
    /// 0 is treated as 1.
    std::size_t threads = 1;
    /// When non-empty, the bound port is written to this file (decimal, newline) once listening.
    std::string port_file;
    /// Largest packet accepted from a client once its CONNECT is accepted (fixed header
    /// included); larger ones close the connection with 0x95 Packet too large.
    std::uint32_t max_packet_size = 256U * 1024U * 1024U;
    /// Largest CONNECT accepted: a stricter cap while the peer is still anonymous.
    std::uint32_t max_connect_packet_size = 256U * 1024U;
    /// A connection that has not sent CONNECT within this time is closed.
    std::chrono::milliseconds connect_timeout{10'000};
    /// How long stop() waits for connections to flush their DISCONNECT before forcing them.
    std::chrono::milliseconds shutdown_grace{3'000};
    /// Install SIGINT/SIGTERM handlers that call stop() (the executable wants this; an
    /// embedding test may not).
    bool handle_signals = true;
};

/// Hardware thread count, at least 1: the default of `tern --threads` (STYLE.md §4).
std::size_t default_thread_count() noexcept;

class broker {
public:
    /// Binds every listener. Throws std::system_error (with the address in the message) when
    /// an address cannot be parsed or bound, and when the port file cannot be written.
    explicit broker(broker_config config);
    /// The same with broker_options turned into a configuration (anonymous clients allowed).
    explicit broker(const broker_options& options);
    ~broker();
    broker(const broker&) = delete;
    broker& operator=(const broker&) = delete;

    /// The first listener's bound TCP port (the ephemeral one when it asked for 0). Thread-safe.
    std::uint16_t port() const noexcept;

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
