#include <tern/net/tcp_transport.hpp>

#include <fmt/format.h>

namespace tern::net {

namespace asio = boost::asio;

std::string endpoint_string(const asio::ip::tcp::endpoint& endpoint) {
    auto address = endpoint.address();
    if (address.is_v6() && address.to_v6().is_v4_mapped()) {
        // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d: show them as IPv4.
        address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
    }
    return address.is_v6() ? fmt::format("[{}]:{}", address.to_string(), endpoint.port())
                           : fmt::format("{}:{}", address.to_string(), endpoint.port());
}

tcp_transport::tcp_transport(asio::ip::tcp::socket socket) : socket_(std::move(socket)) {
    boost::system::error_code ec;
    socket_.set_option(asio::ip::tcp::no_delay(true), ec);
    socket_.non_blocking(true, ec);
    const auto remote = socket_.remote_endpoint(ec);
    peer_.address = ec ? std::string("?") : endpoint_string(remote);
    peer_.transport = "tcp";
}

std::size_t tcp_transport::try_read(std::span<std::uint8_t> buffer, boost::system::error_code& ec) {
    return socket_.read_some(asio::buffer(buffer.data(), buffer.size()), ec);
}

std::size_t tcp_transport::try_write(std::span<const asio::const_buffer> buffers,
                                     boost::system::error_code& ec) {
    ec.clear();
    if (buffers.empty()) {
        return 0;
    }
    // One sendmsg for the whole gather list (Asio caps it at 64 iovecs per call).
    return socket_.write_some(buffers, ec);
}

void tcp_transport::wait_readable(wait_handler handler) {
    socket_.async_wait(asio::socket_base::wait_read, std::move(handler));
}

void tcp_transport::wait_writable(wait_handler handler) {
    socket_.async_wait(asio::socket_base::wait_write, std::move(handler));
}

void tcp_transport::close() noexcept {
    boost::system::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
}

} // namespace tern::net
