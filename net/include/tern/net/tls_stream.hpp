#pragma once
/// What TLS looks like to the layers above, whichever side of the handshake we are on: OpenSSL
/// driven directly on a non-blocking socket's descriptor, try_read as SSL_read, try_write as
/// SSL_write of the gathered frames coalesced into record-sized pieces, and OpenSSL's
/// WANT_READ / WANT_WRITE turned into would_block plus the right readiness wait. The server
/// side (tls_transport) and the client side (tls_client_transport) differ only in how the
/// session is made and what they learn about the peer once the handshake completes.
///
/// asio::ssl::stream was not used: its operations are asynchronous compositions with their own
/// buffers, which would bring back the per-connection buffers and the posted write completions
/// the broker's write path removed. SSL_MODE_RELEASE_BUFFERS returns OpenSSL's record buffers
/// while a connection is idle; the coalescing buffer is one per thread.
///
/// Thread contract: owner worker only (see transport.hpp).

#include <tern/net/transport.hpp>

#include <boost/asio/ip/tcp.hpp>

#include <string>
#include <string_view>

struct ssl_st;

namespace tern::net {

class tls_stream : public transport {
public:
    ~tls_stream() override;

    std::size_t try_read(std::span<std::uint8_t> buffer, boost::system::error_code& ec) final;
    std::size_t try_write(std::span<const boost::asio::const_buffer> buffers,
                          boost::system::error_code& ec) final;
    void wait_readable(wait_handler handler) final;
    void wait_writable(wait_handler handler) final;
    void close() noexcept final;
    const peer_identity& peer() const noexcept final { return peer_; }
    std::string describe_error() const final { return error_; }
    boost::asio::any_io_executor get_executor() noexcept final { return socket_.get_executor(); }

    /// True once the handshake has completed.
    bool handshake_done() const noexcept { return handshake_done_; }
    /// Replaces the address the peer is known by (a PROXY protocol header's source).
    void set_peer_address(std::string address) { peer_.address = std::move(address); }

protected:
    /// Takes a socket (made non-blocking, TCP_NODELAY) and records the peer's address.
    /// `peer_side`: "client" or "server", for error texts ("client certificate: ...").
    tls_stream(boost::asio::ip::tcp::socket socket, std::string_view peer_side);
    /// Takes ownership of a fresh SSL and binds it to the socket; on failure (null `ssl`, an
    /// OpenSSL error) sets error_ and returns false — every call then fails.
    bool adopt(ssl_st* ssl);
    /// Called once, when the handshake has just completed: fills what the subclass learns.
    /// The base has already set the version, cipher and ALPN protocol.
    virtual void on_handshake_done() {}

    enum class want : std::uint8_t { read, write };
    /// Maps an SSL_get_error result to would_block (recording the direction), eof or a
    /// failure (recording error_).
    void classify(int ssl_error, want& direction, boost::system::error_code& ec);
    /// Records the common identity and calls on_handshake_done() the first time the
    /// handshake is seen finished.
    void note_handshake();

    boost::asio::ip::tcp::socket socket_;
    ssl_st* ssl_ = nullptr;
    peer_identity peer_;
    std::string error_;
    want read_wants_ = want::read;
    want write_wants_ = want::write;
    bool handshake_done_ = false;
    bool closed_ = false;

private:
    std::string_view peer_side_;
};

} // namespace tern::net
