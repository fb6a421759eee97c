#include <tern/net/proxy_reader.hpp>

#include <boost/asio/steady_timer.hpp>

#include <sys/socket.h>

#include <memory>
#include <vector>

namespace tern::net {

namespace asio = boost::asio;

namespace {

struct reader : std::enable_shared_from_this<reader> {
    reader(asio::ip::tcp::socket s, proxy_done d)
        : socket(std::move(s)), timer(socket.get_executor()), done(std::move(d)) {}

    asio::ip::tcp::socket socket;
    asio::steady_timer timer;
    proxy_done done;
    std::vector<std::uint8_t> consumed; ///< header bytes already taken off the socket
    bool finished = false;

    void finish(std::optional<proxy_header> header, std::string error) {
        if (finished) {
            return;
        }
        finished = true;
        timer.cancel();
        done(std::move(socket), std::move(header), std::move(error));
    }

    void wait() {
        socket.async_wait(asio::socket_base::wait_read,
                          [self = shared_from_this()](const boost::system::error_code& ec) {
                              self->on_readable(ec);
                          });
    }

    void on_readable(const boost::system::error_code& ec) {
        if (finished) {
            return;
        }
        if (ec) {
            finish(std::nullopt, "connection lost before its PROXY header (" + ec.message() + ")");
            return;
        }
        constexpr std::size_t max = 16 + proxy_v2_max_payload;
        std::vector<std::uint8_t> candidate = consumed;
        const std::size_t old = candidate.size();
        candidate.resize(max);
        const ssize_t n = ::recv(socket.native_handle(), candidate.data() + old, max - old,
                                 MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            wait();
            return;
        }
        if (n <= 0) {
            finish(std::nullopt, "connection closed before its PROXY header");
            return;
        }
        candidate.resize(old + static_cast<std::size_t>(n));
        auto r = parse_proxy_header(candidate);
        if (r.status == proxy_parse_status::invalid) {
            finish(std::nullopt, r.error);
            return;
        }
        // need_more: every byte seen belongs to the header; complete: take exactly its bytes.
        const std::size_t take = r.status == proxy_parse_status::complete
                                     ? r.header.size - old
                                     : static_cast<std::size_t>(n);
        std::size_t got = 0;
        while (got < take) {
            const ssize_t m = ::recv(socket.native_handle(), candidate.data() + old + got,
                                     take - got, MSG_DONTWAIT);
            if (m <= 0) {
                finish(std::nullopt, "connection lost inside its PROXY header");
                return;
            }
            got += static_cast<std::size_t>(m);
        }
        if (r.status == proxy_parse_status::complete) {
            finish(std::move(r.header), {});
            return;
        }
        candidate.resize(old + take);
        consumed = std::move(candidate);
        wait();
    }
};

} // namespace

void read_proxy_header(asio::ip::tcp::socket socket, std::chrono::milliseconds timeout,
                       proxy_done done) {
    auto r = std::make_shared<reader>(std::move(socket), std::move(done));
    r->timer.expires_after(timeout);
    r->timer.async_wait([weak = std::weak_ptr<reader>(r)](const boost::system::error_code& ec) {
        if (ec) {
            return;
        }
        if (auto self = weak.lock()) {
            boost::system::error_code ignored;
            self->socket.cancel(ignored);
            self->finish(std::nullopt, "no complete PROXY header in time");
        }
    });
    r->wait();
}

} // namespace tern::net
