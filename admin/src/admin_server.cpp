// The admin HTTP listener (admin_server.hpp): one io_context on one thread, a session object
// per connection with completion handlers (STYLE.md §5), 10 s to send a request, 8 KiB at most.
#include <tern/admin/admin_server.hpp>
#include <tern/admin/metrics.hpp>

#include <tern/core/log.hpp>
#include <tern/protocol/topic.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <thread>

namespace tern::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using core::log;
using core::log_level;

/// The dashboard page (src/dashboard.html, embedded by embed.cmake).
std::string_view dashboard_html();

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

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

nlohmann::json client_json(const broker::client_info& c) {
    return {{"client_id", c.client_id},
            {"username", c.username},
            {"address", c.address},
            {"listener", c.listener},
            {"protocol", c.protocol},
            {"connected_ms", c.connected_ms},
            {"bridge", c.bridge},
            {"shared_member", c.shared_member},
            {"subscriptions", c.subscriptions},
            {"inflight", c.inflight},
            {"queued", c.queued}};
}

/// The value of query parameter `name` in `target` ("/path?a=1&b=2"), undecoded but for %XX
/// and '+'.
std::optional<std::string> query_param(std::string_view target, std::string_view name) {
    const auto q = target.find('?');
    if (q == std::string_view::npos) {
        return std::nullopt;
    }
    auto rest = target.substr(q + 1);
    while (!rest.empty()) {
        const auto amp = rest.find('&');
        const auto pair = rest.substr(0, amp);
        const auto eq = pair.find('=');
        if (pair.substr(0, eq) == name) {
            const auto raw =
                eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
            std::string out;
            for (std::size_t i = 0; i < raw.size(); ++i) {
                if (raw[i] == '+') {
                    out += ' ';
                } else if (raw[i] == '%' && i + 2 < raw.size() + 0 && i + 2 <= raw.size() - 1) {
                    unsigned v = 0;
                    const auto r = std::from_chars(raw.data() + i + 1, raw.data() + i + 3, v, 16);
                    if (r.ec == std::errc{} && r.ptr == raw.data() + i + 3) {
                        out += static_cast<char>(v);
                        i += 2;
                    } else {
                        out += raw[i];
                    }
                } else {
                    out += raw[i];
                }
            }
            return out;
        }
        if (amp == std::string_view::npos) {
            break;
        }
        rest = rest.substr(amp + 1);
    }
    return std::nullopt;
}

/// The media type of a Content-Type value (before ';', trimmed) is application/json: a
/// browser sends `text/plain;application/json` cross-origin without a preflight, so a
/// substring test would let a web page POST here.
bool is_json_media_type(std::string_view v) noexcept {
    v = v.substr(0, v.find(';'));
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) {
        v.remove_suffix(1);
    }
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) {
        v.remove_prefix(1);
    }
    constexpr std::string_view json = "application/json";
    return v.size() == json.size() &&
           std::equal(v.begin(), v.end(), json.begin(), [](char a, char b) {
               return std::tolower(static_cast<unsigned char>(a)) == b;
           });
}

/// A Host header naming this machine: 127.x.y.z, [::1] or localhost, with or without a port.
bool loopback_name(std::string_view host) noexcept {
    if (host.starts_with("[")) {
        const auto close = host.find(']');
        return close != std::string_view::npos && host.substr(1, close - 1) == "::1";
    }
    const auto colon = host.find(':');
    const auto name = host.substr(0, colon);
    return name == "localhost" || name.starts_with("127.");
}

/// An Origin of a page served by this machine ("http://127.0.0.1:9090", "null" is not one).
bool loopback_origin(std::string_view origin) noexcept {
    for (const std::string_view scheme : {"http://", "https://"}) {
        if (origin.starts_with(scheme)) {
            return loopback_name(origin.substr(scheme.size()));
        }
    }
    return false;
}

} // namespace

bool glob_match(std::string_view pattern, std::string_view text) noexcept {
    // Iterative, with one backtrack point: linear in practice, no recursion on hostile input.
    std::size_t p = 0;
    std::size_t t = 0;
    std::size_t star = std::string_view::npos;
    std::size_t resume = 0;
    while (t < text.size()) {
        if (p < pattern.size() && pattern[p] == '*') {
            star = p++; // before the literal test: a '*' in the text is matched by it too
            resume = t;
        } else if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
            ++p;
            ++t;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            t = ++resume;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*') {
        ++p;
    }
    return p == pattern.size();
}

struct admin_server::impl {
    impl(const admin_config& c, admin_sources s) : config(c), sources(std::move(s)) {}

    admin_config config;
    admin_sources sources;
    asio::io_context ctx{1};
    tcp::acceptor acceptor{ctx};
    std::thread thread;
    std::atomic<std::uint16_t> bound_port{0};

    /// The drain in progress or last run. Admin thread only.
    struct drain_state {
        std::string state = "idle"; ///< idle, running, stopped, done
        std::vector<std::string> targets;
        std::size_t next = 0;
        std::size_t disconnected = 0;
        double rate = 0;
        double credit = 0;
        std::string server_reference;
        std::int64_t started_ms = 0;
    } drain;
    asio::steady_timer drain_timer{ctx};

    nlohmann::json drain_json() const {
        return {{"state", drain.state},
                {"matched", drain.targets.size()},
                {"disconnected", drain.disconnected},
                {"remaining", drain.targets.size() - drain.next},
                {"rate", drain.rate},
                {"started_ms", drain.started_ms}};
    }

    /// Every 100 ms: a tenth of a second's worth of disconnections.
    void drain_step() {
        drain_timer.expires_after(std::chrono::milliseconds(100));
        drain_timer.async_wait([this](boost::system::error_code ec) {
            if (ec || drain.state != "running") {
                return;
            }
            drain.credit += drain.rate / 10;
            while (drain.credit >= 1 && drain.next < drain.targets.size()) {
                drain.credit -= 1;
                broker::disconnect_request r;
                r.client_id = drain.targets[drain.next++];
                r.reason = 0x9C; // Use another server
                r.server_reference = drain.server_reference;
                drain.disconnected += sources.disconnect(r);
            }
            if (drain.next == drain.targets.size()) {
                drain.state = "done";
                log(log_level::info, "drain done: {} of {} clients disconnected",
                    drain.disconnected, drain.targets.size());
                return;
            }
            drain_step();
        });
    }

    using response = http::response<http::string_body>;

    response answer(const http::request<http::string_body>& req, bool loopback_peer) {
        response res;
        res.version(req.version());
        res.keep_alive(req.keep_alive());
        res.set(http::field::server, "tern-admin");
        res.set(http::field::cache_control, "no-store");
        const auto fail = [&](http::status status, std::string_view why) {
            res.result(status);
            res.set(http::field::content_type, "application/json");
            res.body() = nlohmann::json{{"error", why}}.dump() + "\n";
        };
        const std::string_view whole = req.target();
        const auto page = whole.substr(0, whole.find('?'));
        if ((page == "/" || page == "/dashboard") &&
            (req.method() == http::verb::get || req.method() == http::verb::head)) {
            // Static: no figure is in the page, which asks for them with the token the user
            // types into it. Served to loopback peers, or to anyone when a token protects the
            // data (the listener refuses other peers without one).
            if (config.token.empty() && !loopback_peer) {
                fail(http::status::forbidden, "the admin API serves loopback only without a token");
            } else {
                res.set(http::field::content_type, "text/html; charset=utf-8");
                res.set(
                    "Content-Security-Policy",
                    "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                    "img-src 'self' data:; frame-ancestors 'none'");
                res.body() = std::string(dashboard_html());
            }
            res.prepare_payload();
            if (req.method() == http::verb::head) {
                res.body().clear();
            }
            return res;
        }
        if (config.token.empty() &&
            (!loopback_name(req[http::field::host]) ||
             (req.count(http::field::origin) != 0 && !loopback_origin(req[http::field::origin])))) {
            // Without a token only this host is trusted, so the request must also *name* this
            // host: a DNS-rebinding page (evil.example resolving to 127.0.0.1) sends its own
            // name as Host, and a cross-origin page its own Origin.
            fail(http::status::forbidden, "without admin_token, requests must address the "
                                          "loopback host (Host/Origin 127.0.0.1, ::1, localhost)");
            res.prepare_payload();
            return res;
        }
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
        const auto json_reply = [&](http::status status, const nlohmann::json& j) {
            res.result(status);
            res.set(http::field::content_type, "application/json");
            // Strings from the network are UTF-8 checked by the decoder; replace rather than
            // throw should one slip through.
            res.body() = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
        };
        const bool post = req.method() == http::verb::post;
        if (post || req.method() == http::verb::delete_) {
            const bool known = (post && (path == "/api/clients/kick" || path == "/api/drain")) ||
                               (!post && path == "/api/drain");
            if (!known) {
                fail(http::status::method_not_allowed, "not served with this method");
                res.set(http::field::allow, path == "/api/drain"          ? "GET, POST, DELETE"
                                            : path == "/api/clients/kick" ? "POST"
                                                                          : "GET, HEAD");
            } else if (post && !is_json_media_type(req[http::field::content_type])) {
                fail(http::status::unsupported_media_type,
                     "POST bodies must be Content-Type: application/json");
            } else if (post && path == "/api/clients/kick") {
                const auto body = nlohmann::json::parse(req.body(), nullptr, false);
                if (!body.is_object() || !body.contains("client_id") ||
                    !body["client_id"].is_string()) {
                    fail(http::status::bad_request, R"(expected {"client_id": "..."})");
                } else {
                    broker::disconnect_request r;
                    r.client_id = body["client_id"].get<std::string>();
                    const auto n = sources.disconnect(r);
                    json_reply(n == 0 ? http::status::not_found : http::status::ok,
                               {{"client_id", r.client_id}, {"disconnected", n}});
                }
            } else if (post && path == "/api/drain") {
                start_drain(req.body(), json_reply, fail);
            } else if (!post && path == "/api/drain") {
                if (drain.state == "running") {
                    drain.state = "stopped";
                    drain_timer.cancel();
                    log(log_level::info, "drain stopped after {} of {} clients", drain.disconnected,
                        drain.targets.size());
                }
                json_reply(http::status::ok, drain_json());
            }
        } else if (req.method() != http::verb::get && req.method() != http::verb::head) {
            fail(http::status::method_not_allowed, "only GET is served here");
            res.set(http::field::allow, "GET, HEAD");
        } else if (path == "/api/clients") {
            const auto pattern = query_param(target, "client_id");
            const auto listener = query_param(target, "listener");
            auto list = nlohmann::json::array();
            for (const auto& c : sources.clients()) {
                if ((pattern && !glob_match(*pattern, c.client_id)) ||
                    (listener && *listener != std::to_string(c.listener))) {
                    continue;
                }
                list.push_back(client_json(c));
            }
            json_reply(http::status::ok, list);
        } else if (path == "/api/drain") {
            json_reply(http::status::ok, drain_json());
        } else if (path == "/api/sessions" || path == "/api/subscriptions") {
            const auto pattern = query_param(target, "client_id");
            const auto connected = query_param(target, "connected");
            const auto filter = query_param(target, "filter");
            constexpr std::size_t max_subscriptions = 10'000;
            auto list = nlohmann::json::array();
            for (const auto& s : sources.sessions()) {
                if ((pattern && !glob_match(*pattern, s.client_id)) ||
                    (connected && (*connected == "true") != s.connected)) {
                    continue;
                }
                if (path == "/api/sessions") {
                    auto subs = nlohmann::json::array();
                    for (const auto& [f, q] : s.subscriptions) {
                        subs.push_back({{"filter", f}, {"qos", q}});
                    }
                    list.push_back({{"client_id", s.client_id},
                                    {"connected", s.connected},
                                    {"expiry_interval", s.expiry_interval},
                                    {"inflight", s.inflight},
                                    {"queued", s.queued},
                                    {"subscriptions", std::move(subs)}});
                    continue;
                }
                for (const auto& [f, q] : s.subscriptions) {
                    if ((!filter || glob_match(*filter, f)) && list.size() < max_subscriptions) {
                        list.push_back({{"client_id", s.client_id}, {"filter", f}, {"qos", q}});
                    }
                }
            }
            json_reply(http::status::ok, list);
        } else if (path == "/api/retained") {
            const auto filter = query_param(target, "filter").value_or("#");
            std::size_t limit = 1000;
            if (const auto l = query_param(target, "limit")) {
                const auto [p, ec] = std::from_chars(l->data(), l->data() + l->size(), limit);
                if (ec != std::errc{} || p != l->data() + l->size() || limit == 0 ||
                    limit > 100'000) {
                    limit = 0;
                }
            }
            if (limit == 0) {
                fail(http::status::bad_request, "limit: expected 1..100000");
            } else if (!protocol::parse_topic_filter(filter)) {
                fail(http::status::bad_request, "filter: not a valid MQTT topic filter");
            } else {
                auto list = nlohmann::json::array();
                for (const auto& r : sources.retained(filter, limit)) {
                    list.push_back(
                        {{"topic", r.topic}, {"payload_bytes", r.payload_bytes}, {"qos", r.qos}});
                }
                json_reply(http::status::ok, list);
            }
        } else if (path == "/api/listeners") {
            auto list = nlohmann::json::array();
            const auto s = sources.stats();
            for (std::size_t i = 0; i < s.listeners.size(); ++i) {
                const auto& l = s.listeners[i];
                list.push_back({{"listener", i},
                                {"address", l.name},
                                {"transport", l.transport},
                                {"connections",
                                 {{"3.1", l.connections_by_version[0]},
                                  {"3.1.1", l.connections_by_version[1]},
                                  {"5", l.connections_by_version[2]}}}});
            }
            json_reply(http::status::ok, list);
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

    template <typename Reply, typename Fail>
    void start_drain(const std::string& text, const Reply& json_reply, const Fail& fail) {
        const auto body = nlohmann::json::parse(text, nullptr, false);
        if (drain.state == "running") {
            json_reply(http::status::conflict, drain_json());
            return;
        }
        if (!body.is_object() || !body.contains("rate") || !body["rate"].is_number() ||
            body["rate"].get<double>() <= 0 || body["rate"].get<double>() > 100000 ||
            (body.contains("client_id") && !body["client_id"].is_string()) ||
            (body.contains("listener") && !body["listener"].is_number_unsigned()) ||
            (body.contains("server_reference") &&
             (!body["server_reference"].is_string() ||
              body["server_reference"].get<std::string>().size() > 255 ||
              body["server_reference"].get<std::string>().find('\0') != std::string::npos))) {
            fail(http::status::bad_request,
                 R"(expected {"rate": 0 < N <= 100000, "client_id": GLOB, "listener": N, )"
                 R"("server_reference": S (at most 255 bytes)})");
            return;
        }
        const auto pattern = body.value("client_id", std::string("*"));
        std::optional<std::size_t> listener;
        if (body.contains("listener")) {
            listener = body["listener"].get<std::size_t>();
        }
        drain = drain_state{};
        for (const auto& c : sources.clients()) {
            // Devices only: never a bridge, never a backend service's shared-group instance.
            if (c.bridge || c.shared_member || !glob_match(pattern, c.client_id) ||
                (listener && c.listener != *listener)) {
                continue;
            }
            drain.targets.push_back(c.client_id);
        }
        drain.state = drain.targets.empty() ? "done" : "running";
        drain.rate = body["rate"].get<double>();
        drain.credit = 1; // the first one at once
        drain.server_reference = body.value("server_reference", std::string());
        drain.started_ms = now_ms();
        log(log_level::info, "drain started: {} clients matching '{}' at {} a second",
            drain.targets.size(), pattern, drain.rate);
        if (drain.state == "running") {
            drain_step();
        }
        json_reply(http::status::accepted, drain_json());
    }

    /// One HTTP connection: read a request, answer, repeat while keep-alive.
    struct session : std::enable_shared_from_this<session> {
        session(impl& o, tcp::socket s) : owner(o), stream(std::move(s)) {
            ++owner.sessions;
            boost::system::error_code ec;
            const auto peer = stream.socket().remote_endpoint(ec);
            loopback = !ec && peer.address().is_loopback();
        }
        ~session() { --owner.sessions; }
        session(const session&) = delete;
        session& operator=(const session&) = delete;
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
            try {
                res = owner.answer(parser->get(), loopback);
            } catch (const std::exception& e) {
                // One bad request must not end the admin thread (an exception escaping a
                // handler would stop the io_context).
                log(log_level::error, "admin API: {} {}: {}", parser->get().method_string(),
                    parser->get().target(), e.what());
                res = {};
                res.result(http::status::internal_server_error);
                res.set(http::field::content_type, "application/json");
                res.body() = "{\"error\":\"internal error (logged)\"}\n";
                res.keep_alive(false);
                res.prepare_payload();
            }
            if (parser->get().method() == http::verb::head) {
                res.body().clear(); // every path: Content-Length stays, the body never goes
            }
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

    /// Open HTTP connections: at most max_sessions (the descriptors are the MQTT listeners'
    /// too). Admin thread only.
    std::size_t sessions = 0;
    static constexpr std::size_t max_sessions = 64;
    asio::steady_timer accept_backoff{ctx};

    void accept() {
        acceptor.async_accept([this](boost::system::error_code ec, tcp::socket s) {
            if (ec == asio::error::operation_aborted) {
                return;
            }
            if (ec) {
                // Out of descriptors, typically: try again in 100 ms rather than spin.
                accept_backoff.expires_after(std::chrono::milliseconds(100));
                accept_backoff.async_wait([this](boost::system::error_code e) {
                    if (!e) {
                        accept();
                    }
                });
                return;
            }
            if (sessions >= max_sessions) {
                boost::system::error_code ignored;
                s.close(ignored); // enough scrapers and dashboards at once
            } else {
                std::make_shared<session>(*this, std::move(s))->read();
            }
            accept();
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
        // Survives an exception escaping a handler (answer() catches its own): log, go on.
        while (!raw->ctx.stopped()) {
            try {
                raw->ctx.run();
            } catch (const std::exception& e) {
                log(log_level::error, "admin listener: {}", e.what());
            }
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
