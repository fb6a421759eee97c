#pragma once
/// TLS over a non-blocking TCP socket, OpenSSL driven directly on the socket's descriptor
/// (the way FlashMQ and mosquitto do it): try_read is SSL_read, try_write is SSL_write of the
/// gathered frames coalesced into record-sized pieces, and OpenSSL's WANT_READ / WANT_WRITE
/// become would_block plus the right readiness wait. asio::ssl::stream was not used: its
/// operations are asynchronous compositions with their own buffers, which would bring back the
/// per-connection buffers and the posted write completions the broker's write path removed.
///
/// The handshake is lazy: it runs inside the first try_read/try_write calls, so a client that
/// stalls mid-handshake is cut off by the connection's connect timeout like one that never
/// sends CONNECT, and no extra state machine sits in the accept path.
///
/// Memory: SSL_MODE_RELEASE_BUFFERS returns OpenSSL's record buffers while a connection is idle;
/// the coalescing buffer is one per thread, not per connection.
///
/// Thread contract: owner worker only (see transport.hpp).

#include <tern/net/tls_context.hpp>
#include <tern/net/transport.hpp>

#include <boost/asio/ip/tcp.hpp>

#include <memory>

namespace tern::net {

class tls_transport final : public transport {
public:
    /// Takes an accepted TCP socket and a server context; nothing is sent until the client's
    /// ClientHello arrives. When OpenSSL cannot allocate the session, every call fails.
    tls_transport(boost::asio::ip::tcp::socket socket,
                  std::shared_ptr<const tls_server_context> context);
    ~tls_transport() override;

    std::size_t try_read(std::span<std::uint8_t> buffer, boost::system::error_code& ec) override;
    std::size_t try_write(std::span<const boost::asio::const_buffer> buffers,
                          boost::system::error_code& ec) override;
    void wait_readable(wait_handler handler) override;
    void wait_writable(wait_handler handler) override;
    void close() noexcept override;
    const peer_identity& peer() const noexcept override { return peer_; }
    std::string describe_error() const override { return error_; }
    boost::asio::any_io_executor get_executor() noexcept override { return socket_.get_executor(); }

    /// True once the handshake has completed.
    bool handshake_done() const noexcept { return handshake_done_; }
    /// Replaces the address the peer is known by (a PROXY protocol header's source).
    void set_peer_address(std::string address) { peer_.address = std::move(address); }

private:
    enum class want : std::uint8_t { read, write };
    /// Maps an SSL_get_error result to would_block (recording the direction), eof or a
    /// failure (recording error_).
    void classify(int ssl_error, want& direction, boost::system::error_code& ec);
    void on_handshake_done();

    boost::asio::ip::tcp::socket socket_;
    std::shared_ptr<const tls_server_context> context_;
    ssl_st* ssl_ = nullptr;
    peer_identity peer_;
    std::string error_;
    want read_wants_ = want::read;
    want write_wants_ = want::write;
    bool handshake_done_ = false;
    bool closed_ = false;
};

} // namespace tern::net
