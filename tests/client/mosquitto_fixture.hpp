#pragma once
// A Mosquitto 2.0 for the client tests: one process with four listeners on free 127.0.0.1
// ports (tcp, tls, ws, wss), a throwaway CA and server certificate (SAN DNS:localhost and
// IP:127.0.0.1) made with the openssl CLI, and helpers that run an io_context until a
// condition holds or a bounded time has passed.

#include <tern/client/connection.hpp>
#include <tern/net/client_connect.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <sys/types.h>

namespace tern::client::test {

class mosquitto {
public:
    /// Starts the broker (throws std::runtime_error when it cannot, naming why).
    /// `extra` is appended to the configuration.
    explicit mosquitto(const std::string& extra = {});
    ~mosquitto();
    mosquitto(const mosquitto&) = delete;
    mosquitto& operator=(const mosquitto&) = delete;

    std::uint16_t port(net::client_transport_kind k) const;
    const std::string& ca_file() const noexcept { return ca_; }
    const std::string& dir() const noexcept { return dir_; }

private:
    std::string dir_;
    std::string ca_;
    std::uint16_t ports_[4] = {};
    pid_t pid_ = -1;
};

/// True when the broker binary and openssl exist (otherwise the tests are skipped).
bool tools_available();

/// One shared broker for the whole run (started on first use).
mosquitto& shared_broker();

/// Runs `ctx` until `done()` or `timeout`; returns done().
bool run_until(boost::asio::io_context& ctx, const std::function<bool()>& done,
               std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

/// A client endpoint for `kind` on the shared broker, trusting its CA.
net::client_endpoint endpoint_for(net::client_transport_kind kind);

/// Connects (bounded) and returns the result.
net::connect_result connect_now(boost::asio::io_context& ctx, const net::client_endpoint& ep);

} // namespace tern::client::test
