#pragma once
/// The client side of MQTT over WebSocket (RFC 6455; MQTT 5 §6): the HTTP upgrade request with
/// a random Sec-WebSocket-Key and `Sec-WebSocket-Protocol: mqtt`, validation of the server's
/// 101 answer (Upgrade, Connection, Sec-WebSocket-Accept via websocket::accept_key, the
/// subprotocol), masked binary frames out, and the server's unmasked frames in.
///
/// The pure pieces (request, answer check, masking, the deframer of server frames) are free
/// functions and a value type so tests drive them directly; websocket_client_transport runs
/// them over any inner transport (TCP for ws, tls_client_transport for wss).
///
/// Writing: a client must mask every frame (RFC 6455 §5.3), so unlike the server side the
/// caller's gathered bytes are copied once, XORed with a fresh random key, into one frame
/// buffer per write (at most max_frame_payload bytes each; the buffer is released after a
/// large frame). The bytes reported taken are those the inner transport accepted; the caller
/// passes the rest again, unchanged, as transport.hpp asks.
///
/// Reading deframes in place in the caller's buffer. Pings are answered with masked pongs
/// (wants_write() says when one waits); a close frame is echoed and ends the stream (eof); a
/// masked, text, reserved or fragmented-control frame ends it with protocol_error and
/// describe_error() saying which.
///
/// Thread contract: the free functions are pure and thread-safe; a deframer or a transport is
/// owner worker only.

#include <tern/net/client_handshake.hpp>
#include <tern/net/transport.hpp>
#include <tern/net/websocket_frame.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tern::net {

namespace websocket {

/// A random Sec-WebSocket-Key: 16 random bytes (OpenSSL's RAND_bytes), base64.
std::string make_client_key();

/// The upgrade request head, CRLF-terminated, with the blank line. `host` is the Host header
/// ("broker.example:8080"), `path` the request target ("/mqtt"), `protocol` the subprotocol
/// offered ("mqtt").
std::string make_upgrade_request(std::string_view host, std::string_view path,
                                 std::string_view protocol, std::string_view key);

/// The outcome of checking the server's answer head (everything up to the blank line).
struct upgrade_check {
    bool accepted = false;
    std::string protocol; ///< the subprotocol the server agreed (empty when it named none)
    std::string error;    ///< why the answer was refused ("HTTP 404 Not Found", ...)
};

/// Validates `head` for a request sent with `key` and `protocol` (RFC 6455 §4.1): status 101,
/// `Upgrade: websocket`, `Connection: Upgrade`, `Sec-WebSocket-Accept` = accept_key(key), and a
/// subprotocol, when named, equal to the one offered.
upgrade_check check_upgrade_response(std::string_view head, std::string_view key,
                                     std::string_view protocol);

/// The header of a masked client frame (FIN set) of `payload_size` bytes with `mask`: 6, 8 or
/// 14 bytes.
struct masked_header {
    std::array<std::uint8_t, 14> bytes{};
    std::size_t size = 0;
};
masked_header encode_masked_header(opcode op, std::uint64_t payload_size,
                                   std::array<std::uint8_t, 4> mask) noexcept;

/// A whole masked control frame (close, ping or pong; the payload is cut at 125 bytes).
std::string masked_control_frame(opcode op, std::string_view payload,
                                 std::array<std::uint8_t, 4> mask);

} // namespace websocket

struct websocket_client_options {
    /// The Host header; empty: "127.0.0.1".
    std::string host;
    /// The request target (AWS IoT Core and most brokers: "/mqtt"; mosquitto takes any).
    std::string path = "/mqtt";
    /// The subprotocol offered: "mqtt" (MQTT 3.1.1 and 5) or "mqttv3.1".
    std::string protocol = "mqtt";
    /// Largest answer head accepted.
    std::size_t max_response_bytes = 8 * 1024;
    /// Largest data frame sent (a larger write becomes several frames) and largest received.
    std::size_t max_frame_payload = 256 * 1024;
};

/// MQTT over WebSocket, client side, over a connected (and for wss, TLS-handshaken) inner
/// transport. Call handshake() until done before reading or writing.
class websocket_client_transport final : public transport {
public:
    websocket_client_transport(std::unique_ptr<transport> inner,
                               websocket_client_options options = {});

    /// One step of the upgrade: writes the request, reads and checks the answer. Errors:
    /// protocol_error (describe_error(): "WebSocket upgrade refused: HTTP 404 Not Found"), eof,
    /// or the inner transport's.
    handshake_status handshake(boost::system::error_code& ec);

    std::size_t try_read(std::span<std::uint8_t> buffer, boost::system::error_code& ec) override;
    std::size_t try_write(std::span<const boost::asio::const_buffer> buffers,
                          boost::system::error_code& ec) override;
    void wait_readable(wait_handler handler) override;
    void wait_writable(wait_handler handler) override { inner_->wait_writable(std::move(handler)); }
    bool wants_write() const noexcept override { return !control_out_.empty(); }
    void close() noexcept override;
    const peer_identity& peer() const noexcept override { return peer_; }
    std::string describe_error() const override;
    boost::asio::any_io_executor get_executor() noexcept override { return inner_->get_executor(); }

    bool upgraded() const noexcept { return upgraded_; }

private:
    std::size_t deframe(std::span<std::uint8_t> buffer, std::size_t n,
                        boost::system::error_code& ec);
    bool flush_control(boost::system::error_code& ec);
    void queue_control(websocket::opcode op, std::string_view payload);

    std::unique_ptr<transport> inner_;
    websocket_client_options options_;
    peer_identity peer_;
    /// Server frames: never masked.
    websocket::deframer deframer_{268'435'460U, websocket::deframer::from::server};
    std::string key_;
    std::string request_;
    std::size_t request_sent_ = 0;
    std::string response_;
    std::string pending_in_; ///< frame bytes that arrived with the upgrade answer
    std::string control_out_;
    std::string error_;
    bool upgraded_ = false;
    bool closing_ = false;
    bool failed_ = false;
    /// The data frame being written: header + masked payload.
    std::vector<std::uint8_t> frame_;
    std::size_t frame_header_ = 0;
    std::size_t frame_sent_ = 0;
    std::size_t frame_reported_ = 0;
};

} // namespace tern::net
