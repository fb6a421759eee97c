#pragma once
/// Plain TCP: the socket itself, non-blocking, Nagle off (MQTT packets are small and latency
/// matters more than segment count; mosquitto's `set_tcp_nodelay` default is the opposite and
/// is the parity issue's to expose).
///
/// Thread contract: owner worker only (see transport.hpp).

#include <tern/net/transport.hpp>

#include <boost/asio/ip/tcp.hpp>

namespace tern::net {

/// "1.2.3.4:5" or "[::1]:5".
std::string endpoint_string(const boost::asio::ip::tcp::endpoint& endpoint);

class tcp_transport final : public transport {
public:
    /// Takes an accepted socket; sets it non-blocking with TCP_NODELAY.
    explicit tcp_transport(boost::asio::ip::tcp::socket socket);

    std::size_t try_read(std::span<std::uint8_t> buffer, boost::system::error_code& ec) override;
    std::size_t try_write(std::span<const boost::asio::const_buffer> buffers,
                          boost::system::error_code& ec) override;
    void wait_readable(wait_handler handler) override;
    void wait_writable(wait_handler handler) override;
    void close() noexcept override;
    const peer_identity& peer() const noexcept override { return peer_; }
    boost::asio::any_io_executor get_executor() noexcept override { return socket_.get_executor(); }

    /// The socket, for transports layered over TCP (TLS drives OpenSSL on its descriptor).
    boost::asio::ip::tcp::socket& socket() noexcept { return socket_; }
    /// Replaces the address the peer is known by (a PROXY protocol header's source).
    void set_peer_address(std::string address) { peer_.address = std::move(address); }

private:
    boost::asio::ip::tcp::socket socket_;
    peer_identity peer_;
};

} // namespace tern::net
