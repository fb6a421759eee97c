#pragma once
/// Reads a PROXY protocol header off an accepted socket before any transport sees a byte, then
/// hands the socket on. Only header bytes are consumed (peeked first, so neither TLS nor MQTT
/// loses the bytes that follow). Bounded in time (the caller's deadline) and size
/// (proxy_v2_max_payload).
///
/// Thread contract: runs on the socket's io_context; `done` is called there exactly once.

#include <tern/net/proxy_protocol.hpp>

#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace tern::net {

/// `done(socket, header, error)`: with the header on success; without it (and `error` saying
/// why: no header, a malformed one, timeout, EOF) when the connection must be refused — the
/// socket is then still open, for the caller to log and close.
using proxy_done = std::function<void(boost::asio::ip::tcp::socket, std::optional<proxy_header>,
                                      std::string error)>;

void read_proxy_header(boost::asio::ip::tcp::socket socket, std::chrono::milliseconds timeout,
                       proxy_done done);

} // namespace tern::net
