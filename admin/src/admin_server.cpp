// The admin HTTP listener (admin_server.hpp): one io_context on one thread, a session object
// per connection with completion handlers (STYLE.md §5), 10 s to send a request, 8 KiB at most.
#include <tern/admin/admin_server.hpp>
#include <tern/admin/metrics.hpp>

#include <tern/core/log.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace tern::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using core::log;
using core::log_level;

namespace {

constexpr auto request_timeout = std::chrono::seconds(10);
constexpr std::size_t max_request_bytes = 8 * 1024;

/// Constant-time comparison, so the token cannot be guessed a byte at a time from timings.
bool same_token(std::string_view a, std::string_view b) noexcept {
    unsigned char diff = a.size() == b.size() ? 0 : 1;
    for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
        diff |= static_cast<unsigned char>(a[i] ^ b[i]);
    }
    return diff == 0;
}

} // namespace

struct admin_server::impl {
    impl(const admin_config& c, admin_sources s) : config(c), sources(std::move(s)) {}

    admin_config config;
    admin_sources sources;
    asio::io_context ctx{1};
    tcp::acceptor acceptor{ctx};
    std::thread thread;
    std::atomic<std::uint16_t> bound_port{0};

    using response = http::response<http::string_body>;

    response answer(const http::request<http::string_body>& req, bool loopback_peer) const {
        response res;
        res.version(req.version());
        res.keep_alive(req.keep_alive());
        res.set(http::field::server, "tern-admin");
        res.set(http::field::cache_control, "no-store");
        const auto fail = [&](http::status status, std::string_view why) {
            res.result(status);
            res.set(http::field::content_type, "application/json");
            res.body() = fmt::format("{{\"error\":\"{}\"}}\n", why);
        };
        if (!config.token.empty()) {
            const auto auth = req[http::field::authorization];
            constexpr std::string_view bearer = "Bearer ";
            if (!auth.starts_with(bearer) ||
                !same_token(auth.substr(bearer.size()), config.token)) {
                fail(http::status::unauthorized, "a valid admin token is required");
                res.set(http::field::www_authenticate, "Bearer realm=\"tern\"");
                res.prepare_payload();
                return res;
            }
        } else if (!loopback_peer) {
            fail(http::status::forbidden, "the admin API serves loopback only without a token");
            res.prepare_payload();
            return res;
        }
        const std::string_view target = req.target();
        const auto path = target.substr(0, target.find('?'));
        if (req.method() != http::verb::get && req.method() != http::verb::head) {
            fail(http::status::method_not_allowed, "only GET is served here");
            res.set(http::field::allow, "GET, HEAD");
        } else if (path == "/metrics") {
            res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
            res.body() = prometheus_text(sources.stats(), sources.readiness());
        } else if (path == "/api/stats") {
            res.set(http::field::content_type, "application/json");
            res.body() = stats_json(sources.stats()) + "\n";
        } else if (path == "/api/readiness" || path == "/readiness") {
            const auto report = sources.readiness();
            if (!report) {
                fail(http::status::not_found,
                     "the readiness observer is off (set readiness_report true)");
            } else if (path == "/readiness") {
                res.set(http::field::content_type, "text/html; charset=utf-8");
                res.body() = broker::render_html(*report);
            } else {
                res.set(http::field::content_type, "application/json");
                res.body() = broker::to_json(*report) + "\n";
            }
        } else {
            fail(http::status::not_found, "no such endpoint");
        }
        res.prepare_payload();
        if (req.method() == http::verb::head) {
            res.body().clear(); // Content-Length stays that of the GET
        }
        return res;
    }

    /// One HTTP connection: read a request, answer, repeat while keep-alive.
    struct session : std::enable_shared_from_this<session> {
        session(impl& o, tcp::socket s) : owner(o), stream(std::move(s)) {
            boost::system::error_code ec;
            const auto peer = stream.socket().remote_endpoint(ec);
            loopback = !ec && peer.address().is_loopback();
        }
        impl& owner;
        beast::tcp_stream stream;
        beast::flat_buffer buffer;
        std::optional<http::request_parser<http::string_body>> parser;
        response res;
        bool loopback = false;

        void read() {
            parser.emplace();
            parser->header_limit(max_request_bytes);
            parser->body_limit(max_request_bytes);
            stream.expires_after(request_timeout);
            http::async_read(stream, buffer, *parser,
                             [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                 self->on_read(ec);
                             });
        }
        void on_read(beast::error_code ec) {
            if (ec) {
                if (ec != http::error::end_of_stream && ec != beast::error::timeout &&
                    ec != asio::error::operation_aborted) {
                    // A malformed or oversized request: say so, then close.
                    res = {};
                    res.result(http::status::bad_request);
                    res.set(http::field::content_type, "application/json");
                    res.body() = "{\"error\":\"malformed or oversized request\"}\n";
                    res.keep_alive(false);
                    res.prepare_payload();
                    write();
                    return;
                }
                close();
                return;
            }
            res = owner.answer(parser->get(), loopback);
            write();
        }
        void write() {
            stream.expires_after(request_timeout);
            http::async_write(stream, res,
                              [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                  if (ec || !self->res.keep_alive()) {
                                      self->close();
                                      return;
                                  }
                                  self->read();
                              });
        }
        void close() {
            beast::error_code ignored;
            stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
            stream.close();
        }
    };

    void accept() {
        acceptor.async_accept([this](boost::system::error_code ec, tcp::socket s) {
            if (ec == asio::error::operation_aborted) {
                return;
            }
            if (!ec) {
                std::make_shared<session>(*this, std::move(s))->read();
            }
            accept(); // a failed accept (too many files) is retried on the next connection
        });
    }
};

admin_server::admin_server(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

admin_server::start_result admin_server::start(const admin_config& config, admin_sources sources) {
    auto p = std::make_unique<impl>(config, std::move(sources));
    boost::system::error_code ec;
    const auto address =
        asio::ip::make_address(config.address == "localhost" ? "127.0.0.1" : config.address, ec);
    if (ec) {
        return {nullptr, fmt::format("admin_listener: bad address '{}'", config.address)};
    }
    const tcp::endpoint endpoint(address, config.port);
    p->acceptor.open(endpoint.protocol(), ec);
    if (!ec) {
        p->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    }
    if (!ec) {
        p->acceptor.bind(endpoint, ec);
    }
    if (!ec) {
        p->acceptor.listen(asio::socket_base::max_listen_connections, ec);
    }
    if (ec) {
        return {nullptr, fmt::format("admin_listener: cannot listen on {}:{}: {}", config.address,
                                     config.port, ec.message())};
    }
    p->bound_port = p->acceptor.local_endpoint().port();
    p->accept();
    auto* raw = p.get();
    p->thread = std::thread([raw] {
        try {
            raw->ctx.run();
        } catch (const std::exception& e) {
            log(log_level::error, "admin listener stopped: {}", e.what());
        }
    });
    return {std::unique_ptr<admin_server>(new admin_server(std::move(p))), {}};
}

admin_server::~admin_server() {
    if (!impl_) {
        return;
    }
    asio::post(impl_->ctx, [p = impl_.get()] {
        boost::system::error_code ignored;
        p->acceptor.close(ignored);
    });
    impl_->ctx.stop(); // open connections end with the context
    if (impl_->thread.joinable()) {
        impl_->thread.join();
    }
}

std::uint16_t admin_server::port() const noexcept {
    return impl_->bound_port.load();
}

} // namespace tern::admin
