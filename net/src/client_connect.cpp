#include <tern/net/client_connect.hpp>
#include <tern/net/tcp_transport.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

namespace tern::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

std::string_view to_string(client_transport_kind k) noexcept {
    switch (k) {
    case client_transport_kind::tcp:
        return "tcp";
    case client_transport_kind::tls:
        return "tls";
    case client_transport_kind::ws:
        return "ws";
    case client_transport_kind::wss:
        return "wss";
    }
    return "tcp";
}

std::optional<client_transport_kind> parse_client_transport_kind(std::string_view name) noexcept {
    for (const auto k : {client_transport_kind::tcp, client_transport_kind::tls,
                         client_transport_kind::ws, client_transport_kind::wss}) {
        if (name == to_string(k)) {
            return k;
        }
    }
    return std::nullopt;
}

namespace {

bool is_ip_literal(const std::string& host) {
    boost::system::error_code ec;
    (void)asio::ip::make_address(host, ec);
    return !ec;
}

/// One connect in progress. Every callback holds a shared_ptr to it and checks done_ first:
/// after the deadline or a cancel, late completions (operation_aborted) find nothing to do.
class connect_op : public std::enable_shared_from_this<connect_op> {
public:
    connect_op(asio::io_context& ctx, client_endpoint ep, connect_handler handler)
        : ctx_(ctx), ep_(std::move(ep)), handler_(std::move(handler)), resolver_(ctx), socket_(ctx),
          timer_(ctx) {}

    void start(std::chrono::steady_clock::duration timeout) {
        timer_.expires_after(timeout);
        timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
            if (!ec) {
                self->fail(asio::error::timed_out, "timeout");
            }
        });
        if (uses_tls(ep_.kind) && !ep_.tls) {
            stage_ = "tls";
            fail(boost::system::errc::make_error_code(boost::system::errc::invalid_argument),
                 "no TLS client context given");
            return;
        }
        if (!ep_.resolved.empty()) {
            connect(ep_.resolved);
            return;
        }
        stage_ = "resolve";
        resolver_.async_resolve(
            ep_.host, std::to_string(ep_.port),
            [self = shared_from_this()](boost::system::error_code ec,
                                        const tcp::resolver::results_type& results) {
                if (self->done_) {
                    return;
                }
                if (ec) {
                    self->fail(ec,
                               fmt::format("cannot resolve {}: {}", self->ep_.host, ec.message()));
                    return;
                }
                self->connect(std::vector<tcp::endpoint>(results.begin(), results.end()));
            });
    }

    void cancel() { fail(asio::error::operation_aborted, "cancelled"); }

private:
    void connect(const std::vector<tcp::endpoint>& endpoints) {
        stage_ = "tcp";
        asio::async_connect(
            socket_, endpoints,
            [self = shared_from_this()](boost::system::error_code ec, const tcp::endpoint&) {
                if (self->done_) {
                    return;
                }
                if (ec) {
                    self->fail(ec, ec.message());
                    return;
                }
                self->on_connected();
            });
    }

    void on_connected() {
        if (!uses_tls(ep_.kind)) {
            current_ = std::make_unique<tcp_transport>(std::move(socket_));
            after_tls();
            return;
        }
        stage_ = "tls";
        tls_client_target target;
        target.server_name = ep_.server_name           ? *ep_.server_name
                             : is_ip_literal(ep_.host) ? std::string()
                                                       : ep_.host;
        target.verify_name = ep_.verify_name ? *ep_.verify_name : ep_.host;
        auto tls =
            std::make_unique<tls_client_transport>(std::move(socket_), ep_.tls, std::move(target));
        tls_ = tls.get();
        current_ = std::move(tls);
        step_tls();
    }

    void step_tls() {
        boost::system::error_code ec;
        const auto status = tls_->handshake(ec);
        drive(
            status, ec, [](connect_op& op) { op.step_tls(); },
            [](connect_op& op) { op.after_tls(); });
    }

    void after_tls() {
        if (ep_.kind != client_transport_kind::ws && ep_.kind != client_transport_kind::wss) {
            succeed();
            return;
        }
        stage_ = "websocket";
        auto options = ep_.websocket;
        if (options.host.empty()) {
            options.host = ep_.host.find(':') != std::string::npos
                               ? fmt::format("[{}]:{}", ep_.host, ep_.port)
                               : fmt::format("{}:{}", ep_.host, ep_.port);
        }
        auto ws =
            std::make_unique<websocket_client_transport>(std::move(current_), std::move(options));
        ws_ = ws.get();
        current_ = std::move(ws);
        step_ws();
    }

    void step_ws() {
        boost::system::error_code ec;
        const auto status = ws_->handshake(ec);
        drive(
            status, ec, [](connect_op& op) { op.step_ws(); }, [](connect_op& op) { op.succeed(); });
    }

    /// Waits as the step asked and calls `again`, or `next` when done, or fails.
    template <typename Again, typename Next>
    void drive(handshake_status status, boost::system::error_code ec, Again again, Next next) {
        switch (status) {
        case handshake_status::done:
            next(*this);
            return;
        case handshake_status::want_read:
        case handshake_status::want_write: {
            auto resume = [self = shared_from_this(), again](boost::system::error_code wec) {
                if (self->done_) {
                    return;
                }
                if (wec) {
                    self->fail(wec, wec.message());
                    return;
                }
                again(*self);
            };
            if (status == handshake_status::want_read) {
                current_->wait_readable(std::move(resume));
            } else {
                current_->wait_writable(std::move(resume));
            }
            return;
        }
        case handshake_status::failed: {
            const auto why = current_->describe_error();
            fail(ec ? ec
                    : boost::system::errc::make_error_code(boost::system::errc::protocol_error),
                 why.empty() ? ec.message() : why);
            return;
        }
        }
    }

    void succeed() {
        if (done_) {
            return;
        }
        done_ = true;
        timer_.cancel();
        connect_result r;
        r.stage = stage_;
        r.stream = std::move(current_);
        auto handler = std::move(handler_);
        handler(std::move(r));
    }

    void fail(boost::system::error_code ec, std::string why) {
        if (done_) {
            return;
        }
        done_ = true;
        if (ec == asio::error::timed_out && current_) {
            // A handshake that stalled: say how far it got when the transport knows.
            if (const auto detail = current_->describe_error(); !detail.empty()) {
                why += " (" + detail + ")";
            }
        }
        timer_.cancel();
        resolver_.cancel();
        boost::system::error_code ignored;
        socket_.close(ignored);
        if (current_) {
            current_->close(); // pending waits complete with operation_aborted
        }
        connect_result r;
        r.ec = ec;
        r.stage = stage_;
        r.error = std::move(why);
        auto handler = std::move(handler_);
        handler(std::move(r));
    }

    asio::io_context& ctx_;
    client_endpoint ep_;
    connect_handler handler_;
    tcp::resolver resolver_;
    tcp::socket socket_;
    asio::steady_timer timer_;
    std::unique_ptr<transport> current_;
    tls_client_transport* tls_ = nullptr;
    websocket_client_transport* ws_ = nullptr;
    std::string stage_ = "tcp";
    bool done_ = false;
};

} // namespace

std::function<void()> async_connect_transport(asio::io_context& ctx,
                                              const client_endpoint& endpoint,
                                              std::chrono::steady_clock::duration timeout,
                                              connect_handler handler) {
    auto op = std::make_shared<connect_op>(ctx, endpoint, std::move(handler));
    op->start(timeout);
    std::weak_ptr<connect_op> weak = op;
    return [weak] {
        if (auto live = weak.lock()) {
            live->cancel();
        }
    };
}

} // namespace tern::net
