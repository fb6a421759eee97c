#pragma once
/// Outbound connections, ready to carry MQTT: resolve the host (or take endpoints resolved
/// once), connect TCP, then run the TLS handshake (tls, wss) and the WebSocket upgrade (ws,
/// wss), all under one deadline, and hand over a `std::unique_ptr<net::transport>`.
///
/// Completion handlers on the io_context given, no coroutines (STYLE.md §5): the operation
/// holds the socket, one timer and the handshake in progress, and ends in exactly one call of
/// the handler.
///
/// Thread contract: call on the io_context's thread (a worker); the handler runs there.

#include <tern/net/tls_client.hpp>
#include <tern/net/transport.hpp>
#include <tern/net/websocket_client.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tern::net {

/// The four ways to reach a broker.
enum class client_transport_kind : std::uint8_t { tcp, tls, ws, wss };

/// "tcp", "tls", "ws", "wss".
std::string_view to_string(client_transport_kind k) noexcept;
/// Parses the names to_string() gives; nullopt otherwise.
std::optional<client_transport_kind> parse_client_transport_kind(std::string_view name) noexcept;
/// True for tls and wss.
constexpr bool uses_tls(client_transport_kind k) noexcept {
    return k == client_transport_kind::tls || k == client_transport_kind::wss;
}

/// Where and how to connect. A value type: one per bridge connection or tern-bench run.
struct client_endpoint {
    client_transport_kind kind = client_transport_kind::tcp;
    /// Host name or IP literal (resolved unless `resolved` is given).
    std::string host = "127.0.0.1";
    std::uint16_t port = 1883;
    /// Endpoints resolved once (tern-bench resolves before the run); empty: resolve `host`.
    std::vector<boost::asio::ip::tcp::endpoint> resolved;
    /// tls/wss: the context (required), SNI and the certificate name. Defaults: SNI = host
    /// unless host is an IP literal; the name checked = host.
    std::shared_ptr<const tls_client_context> tls;
    std::optional<std::string> server_name;
    std::optional<std::string> verify_name;
    /// ws/wss: the request path, subprotocol, and the Host header (default "host:port").
    websocket_client_options websocket;
};

/// Which step a connect failed in: "resolve", "tcp", "tls", "websocket" (or "timeout" for the
/// deadline, whichever step was running).
struct connect_result {
    boost::system::error_code ec; ///< timed_out on the deadline
    std::string stage;
    /// A line for logs and failure counts: the transport's describe_error() when it has one
    /// ("TLS handshake failed: ... certificate verify failed ..."), else ec.message().
    std::string error;
    std::unique_ptr<net::transport> stream; ///< the ready transport; set on success only
};

using connect_handler = std::function<void(connect_result)>;

/// Starts connecting to `endpoint`; calls `handler` once, on `ctx`, with a handshaken transport
/// or the failure. `timeout` bounds everything (resolve, TCP, TLS, upgrade). The returned
/// function cancels the operation (the handler then gets operation_aborted); calling it after
/// completion does nothing.
std::function<void()> async_connect_transport(boost::asio::io_context& ctx,
                                              const client_endpoint& endpoint,
                                              std::chrono::steady_clock::duration timeout,
                                              connect_handler handler);

} // namespace tern::net
