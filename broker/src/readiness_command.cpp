// `tern readiness-report`: one short-lived MQTT client (tern::client) that subscribes to the
// retained $SYS/broker/readiness and prints what it gets; or the same rendering of a saved
// JSON file (e.g. from `mosquitto_sub -t '$SYS/broker/readiness' -C 1`).
#include "readiness_command.hpp"

#include <tern/broker/readiness.hpp>
#include <tern/client/connection.hpp>
#include <tern/net/client_connect.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <fmt/format.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>

#include <unistd.h>

namespace tern::broker {

namespace {

constexpr std::string_view report_topic = "$SYS/broker/readiness";

constexpr std::string_view usage_text =
    "usage: tern readiness-report [--host HOST] [--port PORT] [-u USER] [-P PASSWORD]\n"
    "                             [--timeout SECONDS] [--json | --html] [--from FILE]\n"
    "\n"
    "Prints the AWS IoT Core readiness report of a broker running with\n"
    "`readiness_report true`, read from its retained $SYS/broker/readiness topic\n"
    "(default 127.0.0.1:1883), or from FILE ('-': standard input), a copy of that JSON.\n"
    "  --json    the report as JSON      --html    a self-contained HTML page\n";

struct options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 1883;
    std::optional<std::string> username;
    std::optional<std::string> password;
    std::chrono::milliseconds timeout{10'000};
    enum class format { text, json, html } out = format::text;
    std::optional<std::string> from;
};

/// What one fetch got: the JSON, or why not.
struct fetched {
    std::optional<std::string> json;
    std::string error;
};

/// Connects, subscribes to the report topic and keeps the first copy (the retained one, or
/// the next the broker publishes within the timeout).
class fetcher final : public client::handler {
public:
    explicit fetcher(const options& o) : options_(o) {}

    fetched run() {
        net::client_endpoint endpoint;
        endpoint.host = options_.host;
        endpoint.port = options_.port;
        deadline_.expires_after(options_.timeout);
        deadline_.async_wait([this](boost::system::error_code ec) {
            if (!ec && !result_.json) {
                fail(fmt::format("no report on {} within {} s: is `readiness_report true` set "
                                 "(and sys_interval above 0)?",
                                 report_topic,
                                 std::chrono::duration<double>(options_.timeout).count()));
            }
        });
        cancel_ = net::async_connect_transport(ctx_, endpoint, options_.timeout,
                                               [this](net::connect_result r) { connected(r); });
        ctx_.run();
        return std::move(result_);
    }

private:
    void connected(net::connect_result& r) {
        cancel_ = nullptr;
        if (!r.stream) {
            fail(fmt::format("cannot connect to {}:{}: {}", options_.host, options_.port, r.error));
            return;
        }
        client::connect_options o;
        o.client_id = fmt::format("tern-readiness-report-{}", ::getpid());
        o.username = options_.username;
        o.password = options_.password;
        o.read_buffer_size = 64 * 1024;
        conn_ = client::connection::create(std::move(r.stream), o, this);
        conn_->start(std::chrono::steady_clock::now());
        const protocol::subscription sub{report_topic, {}};
        (void)conn_->subscribe(std::span(&sub, 1));
    }

    void on_message(const protocol::publish& m) override {
        if (m.topic == report_topic && !result_.json) {
            result_.json = std::string(m.payload.begin(), m.payload.end());
            conn_->disconnect();
            deadline_.cancel();
        }
    }

    void on_suback(const protocol::suback& ack) override {
        if (!ack.reasons.empty() && protocol::is_failure(ack.reasons.front())) {
            fail(fmt::format("the broker refused the subscription to {}: {}", report_topic,
                             protocol::to_string(ack.reasons.front())));
        }
    }

    void on_closed(const boost::system::error_code& ec, const std::string& why) override {
        if (!result_.json && result_.error.empty()) {
            result_.error = fmt::format("connection to {}:{} ended: {}", options_.host,
                                        options_.port, why.empty() ? ec.message() : why);
        }
        deadline_.cancel();
    }

    void fail(std::string why) {
        if (result_.error.empty()) {
            result_.error = std::move(why);
        }
        if (auto cancel = std::exchange(cancel_, nullptr)) {
            cancel(); // may complete the connect at once, which clears cancel_ too
        }
        if (conn_) {
            conn_->close();
        }
        deadline_.cancel();
    }

    const options& options_;
    boost::asio::io_context ctx_{1};
    boost::asio::steady_timer deadline_{ctx_};
    std::function<void()> cancel_;
    std::shared_ptr<client::connection> conn_;
    fetched result_;
};

/// Parses the options; on a usage error returns nullopt with `error` set.
std::optional<options> parse(std::span<const std::string_view> args, std::string& error) {
    options o;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto a = args[i];
        const auto value = [&]() -> std::optional<std::string_view> {
            if (i + 1 >= args.size()) {
                error = fmt::format("{} needs a value", a);
                return std::nullopt;
            }
            return args[++i];
        };
        if (a == "--json") {
            o.out = options::format::json;
        } else if (a == "--html") {
            o.out = options::format::html;
        } else if (a == "--host" || a == "-h") {
            const auto v = value();
            if (!v) {
                return std::nullopt;
            }
            o.host = std::string(*v);
        } else if (a == "--port" || a == "-p" || a == "--timeout") {
            const auto v = value();
            if (!v) {
                return std::nullopt;
            }
            unsigned n = 0;
            const auto* end = v->data() + v->size();
            const auto [ptr, ec] = std::from_chars(v->data(), end, n);
            const unsigned max = a == "--timeout" ? 3600 : 65535;
            if (ec != std::errc{} || ptr != end || n == 0 || n > max) {
                error = fmt::format("{}: expected 1..{}, got '{}'", a, max, *v);
                return std::nullopt;
            }
            if (a == "--timeout") {
                o.timeout = std::chrono::seconds(n);
            } else {
                o.port = static_cast<std::uint16_t>(n);
            }
        } else if (a == "-u" || a == "--username") {
            const auto v = value();
            if (!v) {
                return std::nullopt;
            }
            o.username = std::string(*v);
        } else if (a == "-P" || a == "--password") {
            const auto v = value();
            if (!v) {
                return std::nullopt;
            }
            o.password = std::string(*v);
        } else if (a == "--from") {
            const auto v = value();
            if (!v) {
                return std::nullopt;
            }
            o.from = std::string(*v);
        } else if (a == "--help") {
            error.clear();
            return std::nullopt;
        } else {
            error = fmt::format("unknown option '{}'", a);
            return std::nullopt;
        }
    }
    return o;
}

} // namespace

int run_readiness_report(std::span<const std::string_view> args) {
    std::string error = "help";
    const auto o = parse(args, error);
    if (!o) {
        if (error.empty()) {
            std::fputs(usage_text.data(), stdout);
            return 0;
        }
        std::fprintf(stderr, "tern readiness-report: %s\n%s", error.c_str(), usage_text.data());
        return 2;
    }
    std::string json;
    std::string source;
    if (o->from) {
        source = *o->from == "-" ? "standard input" : *o->from;
        if (*o->from == "-") {
            json.assign(std::istreambuf_iterator<char>(std::cin), {});
        } else {
            std::ifstream in(*o->from, std::ios::binary);
            if (!in) {
                std::fprintf(stderr, "tern readiness-report: cannot read '%s'\n", o->from->c_str());
                return 1;
            }
            json.assign(std::istreambuf_iterator<char>(in), {});
        }
    } else {
        source = fmt::format("{}:{} {}", o->host, o->port, report_topic);
        fetcher f(*o);
        auto got = f.run();
        if (!got.json) {
            std::fprintf(stderr, "tern readiness-report: %s\n", got.error.c_str());
            return 1;
        }
        json = std::move(*got.json);
    }
    const auto parsed = readiness_report_from_json(json);
    if (!parsed.report) {
        std::fprintf(stderr, "tern readiness-report: %s: %s\n", source.c_str(),
                     parsed.error.c_str());
        return 1;
    }
    std::string out;
    switch (o->out) {
    case options::format::text:
        out = render_text(*parsed.report);
        break;
    case options::format::json:
        out = to_json(*parsed.report) + "\n";
        break;
    case options::format::html:
        out = render_html(*parsed.report);
        break;
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
}

} // namespace tern::broker
