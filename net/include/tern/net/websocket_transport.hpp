#pragma once
/// MQTT over WebSocket (`protocol websockets`), plain or over TLS (WSS): the HTTP upgrade, then
/// binary frames, over any inner transport. The MQTT layer sees the byte stream only: packets
/// split across frames and several packets in one frame are the same to it.
///
/// Reading deframes in place in the caller's buffer (websocket::deframer), so a WebSocket
/// connection adds no read buffer. Writing wraps the caller's gathered frames in one binary
/// frame per write (header + the caller's buffers, one inner try_write), so fan-out still never
/// copies payloads. Pings are answered; a close frame is answered and ends the stream; a text
/// frame, an unmasked frame or any other framing error is answered with the RFC 6455 close code
/// and ends it too (describe_error() says which).
///
/// The upgrade request is bounded (`websockets_headers_size`, default 8 KiB) and must arrive
/// within the connection's connect timeout, like CONNECT.
///
/// Thread contract: owner worker only (see transport.hpp).

#include <tern/net/transport.hpp>
#include <tern/net/websocket_frame.hpp>

#include <memory>
#include <string>

namespace tern::net {

struct websocket_options {
    std::size_t max_header_bytes = 8 * 1024;
};

class websocket_transport final : public transport {
public:
    websocket_transport(std::unique_ptr<transport> inner, websocket_options options = {});

    std::size_t try_read(std::span<std::uint8_t> buffer, boost::system::error_code& ec) override;
    std::size_t try_write(std::span<const boost::asio::const_buffer> buffers,
                          boost::system::error_code& ec) override;
    void wait_readable(wait_handler handler) override { inner_->wait_readable(std::move(handler)); }
    void wait_writable(wait_handler handler) override { inner_->wait_writable(std::move(handler)); }
    bool wants_write() const noexcept override { return !control_out_.empty(); }
    void close() noexcept override;
    const peer_identity& peer() const noexcept override { return peer_; }
    std::string describe_error() const override;
    boost::asio::any_io_executor get_executor() noexcept override { return inner_->get_executor(); }

    bool upgraded() const noexcept { return upgraded_; }

private:
    /// Reads the upgrade request; answers it once complete. Returns payload bytes (frames that
    /// followed the request in the same read) or sets ec.
    std::size_t read_upgrade(std::span<std::uint8_t> buffer, boost::system::error_code& ec,
                             std::size_t n);
    /// Deframes `n` bytes at the front of `buffer`; queues pongs and the close answer.
    std::size_t deframe(std::span<std::uint8_t> buffer, std::size_t n,
                        boost::system::error_code& ec);
    /// Writes control_out_ (never inside a data frame). False when it could not all go.
    bool flush_control(boost::system::error_code& ec);
    /// Best effort, now: the answer to an error (HTTP or close frame), then nothing more.
    void send_now(const std::string& bytes);
    void refresh_peer();

    std::unique_ptr<transport> inner_;
    websocket_options options_;
    peer_identity peer_;
    websocket::deframer deframer_;
    std::string request_;     ///< the upgrade request so far
    std::string control_out_; ///< the 101 answer, pongs, a close answer, waiting to be written
    std::string error_;
    bool upgraded_ = false;
    bool closing_ = false; ///< a close frame was received or sent: the stream is ending
    bool failed_ = false;
    /// The data frame being written: its header (sent first) and payload bytes still owed.
    websocket::frame_header out_header_;
    std::size_t out_header_sent_ = 0;
    std::uint64_t out_remaining_ = 0;
};

} // namespace tern::net
