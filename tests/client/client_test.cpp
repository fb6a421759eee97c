// tern::client against Mosquitto 2.0 over tcp, tls, ws and wss: CONNECT in 3.1.1 and 5,
// SUBSCRIBE, QoS 0/1/2 round trips, the inflight window (and the server's Receive Maximum),
// keep-alive pings, DISCONNECT; TLS with SNI and the host name check.

#include "mosquitto_fixture.hpp"

#include <tern/protocol/reason_code.hpp>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <unistd.h>

#include <map>
#include <string>
#include <vector>

using namespace tern;
using namespace tern::client;
using namespace tern::client::test;
using kind = net::client_transport_kind;
namespace mqtt = tern::protocol;
using steady = std::chrono::steady_clock;

namespace {

/// Records every event.
struct recorder final : handler {
    bool connected = false;
    std::optional<mqtt::connack> connack;
    std::vector<std::pair<std::string, std::string>> messages; ///< topic, payload
    std::vector<mqtt::qos> message_qos;
    std::map<std::uint16_t, mqtt::reason_code> done;
    std::vector<mqtt::reason_code> suback;
    int unsubacks = 0;
    int pingresps = 0;
    int progress = 0;
    bool closed = false;
    boost::system::error_code closed_ec;
    std::string closed_why;

    void on_connected(const mqtt::connack& ack) override {
        connected = true;
        connack = ack;
        connack->props = {}; // views die with the call
    }
    void on_message(const mqtt::publish& m) override {
        messages.emplace_back(std::string(m.topic), std::string(m.payload));
        message_qos.push_back(m.qos);
    }
    void on_publish_done(std::uint16_t id, mqtt::reason_code rc) override { done[id] = rc; }
    void on_suback(const mqtt::suback& s) override { suback = s.reasons; }
    void on_unsuback(const mqtt::unsuback&) override { ++unsubacks; }
    void on_pingresp() override { ++pingresps; }
    void on_progress() override { ++progress; }
    void on_closed(const boost::system::error_code& ec, const std::string& why) override {
        closed = true;
        closed_ec = ec;
        closed_why = why;
    }
};

struct session {
    recorder events;
    std::shared_ptr<connection> conn;
};

std::string unique_id(const char* what) {
    static int n = 0;
    return fmt::format("tern-client-test-{}-{}-{}", what, ::getpid(), ++n);
}

/// Connects a transport of `k` and an MQTT session on it; requires CONNACK.
std::unique_ptr<session> open(boost::asio::io_context& ctx, kind k, connect_options o) {
    auto ep = endpoint_for(k);
    auto r = connect_now(ctx, ep);
    INFO(r.stage << ": " << r.error);
    REQUIRE(r.stream);
    auto s = std::make_unique<session>();
    if (o.client_id.empty()) {
        o.client_id = unique_id("c");
    }
    s->conn = connection::create(std::move(r.stream), std::move(o), &s->events);
    s->conn->start(steady::now());
    REQUIRE(run_until(ctx, [&] { return s->events.connected || s->events.closed; }));
    INFO(s->events.closed_why);
    REQUIRE(s->events.connected);
    return s;
}

void close_cleanly(boost::asio::io_context& ctx, session& s) {
    s.conn->disconnect();
    REQUIRE(run_until(ctx, [&] {
        s.conn->tick(steady::now());
        return s.events.closed;
    }));
    CHECK_FALSE(s.events.closed_ec);
}

const char* name(kind k) {
    return std::string_view(net::to_string(k)).data();
}

} // namespace

TEST_CASE("client: QoS 0/1/2 round trips over every transport and both versions",
          "[client][MQTT-4.3.1][MQTT-4.3.2][MQTT-4.3.3]") {
    if (!tools_available()) {
        WARN("mosquitto or openssl missing: skipped");
        return;
    }
    const auto k = GENERATE(kind::tcp, kind::tls, kind::ws, kind::wss);
    const auto v = GENERATE(mqtt::protocol_version::v3_1_1, mqtt::protocol_version::v5);
    SECTION(std::string(name(k)) + (v == mqtt::protocol_version::v5 ? " v5" : " v3.1.1")) {
        boost::asio::io_context ctx(1);
        connect_options o;
        o.version = v;
        auto s = open(ctx, k, o);
        const std::string topic = "tern/client/" + unique_id("rt");
        const std::string filter_text = topic + "/#";
        const mqtt::subscription sub{filter_text, {mqtt::qos::exactly_once}};
        REQUIRE(s->conn->subscribe(std::span(&sub, 1)));
        REQUIRE(run_until(ctx, [&] { return !s->events.suback.empty(); }));
        CHECK(s->events.suback == std::vector{mqtt::reason_code::granted_qos_2});

        std::vector<std::uint16_t> ids;
        for (const auto q :
             {mqtt::qos::at_most_once, mqtt::qos::at_least_once, mqtt::qos::exactly_once}) {
            mqtt::publish p;
            const std::string t = topic + "/q" + std::to_string(static_cast<int>(q));
            const std::string payload(static_cast<std::size_t>(q) * 70000 + 3, 'x');
            p.topic = t;
            p.payload = payload;
            p.qos = q;
            auto id = s->conn->publish(p);
            REQUIRE(id);
            ids.push_back(*id);
        }
        CHECK(ids[0] == 0);
        CHECK(ids[1] != 0);
        CHECK(ids[2] != 0);
        REQUIRE(run_until(
            ctx, [&] { return s->events.messages.size() == 3 && s->events.done.size() == 2; }));
        CHECK(s->events.done.at(ids[1]) == mqtt::reason_code::success);
        CHECK(s->events.done.at(ids[2]) == mqtt::reason_code::success);
        std::map<std::string, std::pair<std::size_t, mqtt::qos>> got;
        for (std::size_t i = 0; i < 3; ++i) {
            got[s->events.messages[i].first] = {s->events.messages[i].second.size(),
                                                s->events.message_qos[i]};
        }
        CHECK(got[topic + "/q0"] == std::pair{std::size_t{3}, mqtt::qos::at_most_once});
        CHECK(got[topic + "/q1"] == std::pair{std::size_t{70003}, mqtt::qos::at_least_once});
        CHECK(got[topic + "/q2"] == std::pair{std::size_t{140003}, mqtt::qos::exactly_once});
        CHECK(s->conn->inflight() == 0);

        const std::string_view filter = sub.filter;
        REQUIRE(s->conn->unsubscribe(std::span(&filter, 1)));
        REQUIRE(run_until(ctx, [&] { return s->events.unsubacks == 1; }));
        close_cleanly(ctx, *s);
        CHECK(s->conn->transport().peer().transport == net::to_string(k));
    }
}

TEST_CASE("client: the inflight window and the server's Receive Maximum",
          "[client][MQTT-4.9.0-2]") {
    if (!tools_available()) {
        WARN("mosquitto or openssl missing: skipped");
        return;
    }
    boost::asio::io_context ctx(1);
    SECTION("our window") {
        connect_options o;
        o.inflight_window = 3;
        auto s = open(ctx, kind::tcp, o);
        CHECK(s->conn->inflight_limit() == 3);
        mqtt::publish p;
        p.topic = "tern/client/window";
        p.payload = "w";
        p.qos = mqtt::qos::at_least_once;
        int accepted = 0;
        boost::system::error_code refused;
        for (int i = 0; i < 5; ++i) {
            auto id = s->conn->publish(p);
            if (id) {
                ++accepted;
                CHECK(*id >= 1);
                CHECK(*id <= 3);
            } else {
                refused = id.error();
            }
        }
        CHECK(accepted == 3);
        CHECK(refused == client_error::window_full);
        CHECK(s->conn->inflight() == 3);
        CHECK_FALSE(s->conn->can_publish(mqtt::qos::at_least_once));
        CHECK(s->conn->can_publish(mqtt::qos::at_most_once));
        REQUIRE(run_until(ctx, [&] { return s->events.done.size() == 3; }));
        CHECK(s->conn->inflight() == 0);
        CHECK(s->events.progress > 0);
        // Never more than the window outstanding over many messages.
        int sent = 0;
        std::uint16_t most = 0;
        REQUIRE(run_until(ctx, [&] {
            while (sent < 200 && s->conn->can_publish(mqtt::qos::exactly_once)) {
                p.qos = mqtt::qos::exactly_once;
                if (!s->conn->publish(p)) {
                    return true; // fails the CHECKs below
                }
                ++sent;
            }
            most = std::max(most, s->conn->inflight());
            return sent == 200 && s->conn->inflight() == 0;
        }));
        CHECK(most == 3);
        close_cleanly(ctx, *s);
    }
    SECTION("the server's Receive Maximum caps it (v5)") {
        // Mosquitto announces max_inflight_messages as Receive Maximum.
        connect_options o;
        o.version = mqtt::protocol_version::v5;
        o.inflight_window = 1000;
        auto s = open(ctx, kind::tcp, o);
        CHECK(s->conn->inflight_limit() == 20); // mosquitto's default max_inflight_messages
        close_cleanly(ctx, *s);
    }
}

TEST_CASE("client: keep-alive sends PINGREQ and gets PINGRESP", "[client][MQTT-3.1.2-23]") {
    if (!tools_available()) {
        WARN("mosquitto or openssl missing: skipped");
        return;
    }
    boost::asio::io_context ctx(1);
    const auto k = GENERATE(kind::tcp, kind::wss);
    connect_options o;
    o.keep_alive = 1;
    o.ping_margin = std::chrono::milliseconds(100);
    auto s = open(ctx, k, o);
    CHECK(s->conn->keep_alive() == 1);
    REQUIRE(run_until(
        ctx,
        [&] {
            s->conn->tick(steady::now());
            return s->events.pingresps >= 2 || s->events.closed;
        },
        std::chrono::milliseconds(6000)));
    CHECK(s->conn->counters().pings_sent >= 2);
    CHECK_FALSE(s->events.closed);
    close_cleanly(ctx, *s);
}

TEST_CASE("client: will, clean start false and session present", "[client][MQTT-3.2.2-2]") {
    if (!tools_available()) {
        WARN("mosquitto or openssl missing: skipped");
        return;
    }
    boost::asio::io_context ctx(1);
    const std::string id = unique_id("persist");
    const std::string will_topic = "tern/client/" + unique_id("will");
    connect_options o;
    o.version = mqtt::protocol_version::v5;
    o.client_id = id;
    o.clean_start = false;
    o.session_expiry_interval = 60;
    o.will = will_options{will_topic, "gone", mqtt::qos::at_least_once, false};
    auto watcher = open(ctx, kind::tcp, connect_options{});
    const mqtt::subscription sub{will_topic, {mqtt::qos::at_least_once}};
    REQUIRE(watcher->conn->subscribe(std::span(&sub, 1)));
    REQUIRE(run_until(ctx, [&] { return !watcher->events.suback.empty(); }));
    {
        auto s = open(ctx, kind::tcp, o);
        s->conn->close(); // no DISCONNECT: the will goes out
    }
    REQUIRE(run_until(ctx, [&] { return !watcher->events.messages.empty(); }));
    CHECK(watcher->events.messages[0] == std::pair<std::string, std::string>{will_topic, "gone"});
    o.will.reset();
    auto again = open(ctx, kind::tcp, o);
    CHECK(again->events.connack->session_present);
    close_cleanly(ctx, *again);
    close_cleanly(ctx, *watcher);
}

TEST_CASE("client: TLS sends SNI and checks the host name", "[client][tls]") {
    if (!tools_available()) {
        WARN("mosquitto or openssl missing: skipped");
        return;
    }
    boost::asio::io_context ctx(1);
    SECTION("by name (SNI localhost) and by IP address") {
        for (const char* name : {"localhost", "127.0.0.1"}) {
            auto ep = endpoint_for(kind::tls);
            ep.server_name = std::string(name) == "localhost" ? name : "";
            ep.verify_name = name;
            auto r = connect_now(ctx, ep);
            INFO(r.error);
            REQUIRE(r.stream);
            CHECK(r.stream->peer().tls);
            CHECK(r.stream->peer().server_name == (std::string(name) == "localhost" ? name : ""));
            CHECK(r.stream->peer().tls_version.starts_with("TLSv1."));
        }
    }
    SECTION("a name the certificate does not carry fails verification") {
        for (const auto k : {kind::tls, kind::wss}) {
            auto ep = endpoint_for(k);
            ep.server_name = "wrong.example";
            ep.verify_name = "wrong.example";
            auto r = connect_now(ctx, ep);
            CHECK_FALSE(r.stream);
            CHECK(r.stage == "tls");
            INFO(r.error);
            CHECK(r.error.find("certificate verify failed") != std::string::npos);
        }
    }
    SECTION("insecure skips verification; an unknown CA fails") {
        auto ep = endpoint_for(kind::tls);
        ep.verify_name = "wrong.example";
        net::tls_client_options insecure;
        insecure.insecure = true;
        ep.tls = net::tls_client_context::build(insecure).context;
        REQUIRE(ep.tls);
        CHECK(connect_now(ctx, ep).stream);
        net::tls_client_options system_only; // the system store does not hold the test CA
        ep.tls = net::tls_client_context::build(system_only).context;
        REQUIRE(ep.tls);
        const auto r = connect_now(ctx, ep);
        CHECK_FALSE(r.stream);
        CHECK(r.error.find("certificate verify failed") != std::string::npos);
    }
    SECTION("ALPN is offered (mosquitto agrees to none: the handshake still succeeds)") {
        auto ep = endpoint_for(kind::tls);
        net::tls_client_options o;
        o.cafile = shared_broker().ca_file();
        o.alpn = {"x-amzn-mqtt-ca", "mqtt"};
        ep.tls = net::tls_client_context::build(o).context;
        REQUIRE(ep.tls);
        CHECK(connect_now(ctx, ep).stream);
    }
    SECTION("bad client options are errors, not exceptions") {
        net::tls_client_options o;
        o.cafile = "/nonexistent/ca.crt";
        auto built = net::tls_client_context::build(o);
        CHECK_FALSE(built.context);
        CHECK(built.error.find("/nonexistent/ca.crt") != std::string::npos);
        o = {};
        o.certfile = "x.crt";
        CHECK_FALSE(net::tls_client_context::build(o).context);
    }
}

TEST_CASE("client: connect failures are values", "[client]") {
    if (!tools_available()) {
        WARN("mosquitto or openssl missing: skipped");
        return;
    }
    boost::asio::io_context ctx(1);
    SECTION("refused port") {
        net::client_endpoint ep;
        ep.port = 1; // nothing listens on port 1 of the loopback
        const auto r = connect_now(ctx, ep);
        CHECK_FALSE(r.stream);
        CHECK(r.stage == "tcp");
        CHECK(r.ec == boost::asio::error::connection_refused);
    }
    SECTION("WebSocket to a plain MQTT port: no upgrade answer") {
        net::client_endpoint ep = endpoint_for(kind::tcp);
        ep.kind = kind::ws;
        const auto r = connect_now(ctx, ep);
        CHECK_FALSE(r.stream);
        CHECK(r.stage == "websocket");
    }
    SECTION("CONNACK timeout is checked by tick()") {
        // A TLS port spoken to in plain TCP never answers CONNECT with CONNACK.
        net::client_endpoint ep = endpoint_for(kind::tcp);
        ep.port = shared_broker().port(kind::tls);
        auto r = connect_now(ctx, ep);
        REQUIRE(r.stream);
        recorder events;
        connect_options o;
        o.client_id = unique_id("t");
        o.connack_timeout = std::chrono::milliseconds(300);
        auto c = connection::create(std::move(r.stream), o, &events);
        c->start(steady::now());
        REQUIRE(run_until(ctx, [&] {
            c->tick(steady::now());
            return events.closed;
        }));
        CHECK_FALSE(events.connected);
    }
}
