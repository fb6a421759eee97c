// The admin listener (docs/admin.md): Prometheus /metrics, the JSON API and the readiness page,
// fetched with curl while libmosquitto clients make traffic, and checked with promtool (Debian
// `prometheus`), the tool an operator's Prometheus would use.
#include "raw_client.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

using namespace tern::test;
using namespace std::chrono_literals;

namespace {

struct admin_broker {
    explicit admin_broker(std::vector<std::string> more = {})
        : admin_port(pick_free_port()), broker(settings(admin_port, std::move(more))) {}

    static broker_settings settings(int port, std::vector<std::string> more) {
        broker_settings s;
        s.extra_config = {"admin_listener " + std::to_string(port) + " 127.0.0.1"};
        s.extra_config.insert(s.extra_config.end(), more.begin(), more.end());
        return s;
    }
    std::string url(const std::string& path) const {
        return "http://127.0.0.1:" + std::to_string(admin_port) + path;
    }
    /// curl's output: the body, then "\nHTTP <status>".
    command_result get(const std::string& path, std::vector<std::string> extra = {}) const {
        std::vector<std::string> args{"curl",       "-sS", "-w", "\nHTTP %{http_code}",
                                      "--max-time", "10"};
        args.insert(args.end(), extra.begin(), extra.end());
        args.push_back(url(path));
        return run_command(args, 15s);
    }
    int admin_port;
    broker_process broker;
};

std::string body_of(const command_result& r) {
    return r.output.substr(0, r.output.rfind("\nHTTP "));
}

/// The value of sample `name` (with its labels, as written: `x{qos="1"}`), or -1.
long long sample(const std::string& text, const std::string& name) {
    const auto at = text.find("\n" + name + " ");
    if (at == std::string::npos) {
        return -1;
    }
    return std::stoll(text.substr(at + name.size() + 2));
}

} // namespace

TEST_CASE("admin: /metrics follows the traffic and passes promtool", "[admin][tern]") {
    TERN_ONLY_TEST("the admin listener is Tern's");
    admin_broker a({"readiness_report true"});
    mqtt_client sub("metrics-sub");
    REQUIRE(sub.connect(a.broker.port()) == 0);
    REQUIRE(sub.subscribe("metrics/#", 1) == 1);
    mqtt_client pub("metrics-pub");
    REQUIRE(pub.connect(a.broker.port()) == 0);
    for (int i = 0; i < 25; ++i) {
        REQUIRE(pub.publish("metrics/" + std::to_string(i), "x", 1));
    }
    for (int i = 0; i < 25; ++i) {
        REQUIRE(sub.next_message());
    }
    const auto r = a.get("/metrics");
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK(contains(r.output, "HTTP 200"));
    const auto text = body_of(r);
    CHECK(sample(text, "tern_publish_received_total{qos=\"1\"}") == 25);
    CHECK(sample(text, "tern_publish_received_total{qos=\"0\"}") == 0);
    CHECK(sample(text, "tern_publish_sent_total{qos=\"1\"}") == 25);
    CHECK(sample(text, "tern_connections") == 2);
    CHECK(sample(text, "tern_subscriptions") == 1);
    const auto listener0 = text.find("\ntern_listener_connections{listener=\"0\",address=\"" +
                                     std::string("127.0.0.1:") + std::to_string(a.broker.port()) +
                                     "\",transport=\"mqtt\",protocol=\"3.1.1\"} 2\n");
    CHECK(listener0 != std::string::npos);
    CHECK(contains(text, "# TYPE tern_publish_received_total counter"));
    CHECK(contains(text,
                   "tern_readiness_findings_total{finding=\"qos2_publish\",blocking=\"true\"} 0"));
    CHECK(contains(text, "tern_readiness_account_aws_default{quota=\"connects_per_second\"} 500"));

    // A refused CONNECT (3.1.1, empty client id without clean session: return code 2) is
    // counted by reason.
    raw_socket refused(a.broker.port());
    REQUIRE(refused.send(hex("10 0c 00 04 4d 51 54 54 04 00 00 3c 00 00")));
    REQUIRE(refused.read_packet());
    const auto after = body_of(a.get("/metrics"));
    CHECK(sample(after, "tern_connects_refused_total{reason=\"Client Identifier not valid\"}") ==
          1);

    const auto check = run_command({"promtool", "check", "metrics"}, 15s, after);
    INFO(check.output);
    CHECK(check.exit_code == 0);
}

TEST_CASE("admin: the JSON API, the readiness page, and what is not served", "[admin][tern]") {
    TERN_ONLY_TEST("the admin listener is Tern's");
    admin_broker a({"readiness_report true", "sys_interval 1"});
    mqtt_client c("api-client");
    REQUIRE(c.connect(a.broker.port(), 5) == 0); // keep-alive 5: a readiness finding

    const auto stats = a.get("/api/stats");
    REQUIRE(contains(stats.output, "HTTP 200"));
    const auto j = nlohmann::json::parse(body_of(stats));
    CHECK(j["connections"] == 1);

    nlohmann::json report;
    for (int i = 0; i < 12; ++i) { // bounded: findings are merged once a second
        const auto r = a.get("/api/readiness");
        REQUIRE(contains(r.output, "HTTP 200"));
        report = nlohmann::json::parse(body_of(r));
        if (report["findings"].contains("keep_alive_out_of_range")) {
            break;
        }
        let_time_pass(500ms);
    }
    INFO(report.dump());
    CHECK(report["findings"]["keep_alive_out_of_range"]["samples"][0]["client_id"] == "api-client");
    const auto page = a.get("/readiness");
    CHECK(contains(page.output, "HTTP 200"));
    CHECK(body_of(page).starts_with("<!DOCTYPE html>"));
    CHECK(contains(page.output, "api-client"));

    CHECK(contains(a.get("/nope").output, "HTTP 404"));
    CHECK(contains(a.get("/metrics", {"-X", "POST"}).output, "HTTP 405"));
    // A request too large is refused, and the listener goes on.
    CHECK(
        contains(a.get("/metrics", {"-H", "X-Big: " + std::string(9000, 'x')}).output, "HTTP 400"));
    CHECK(contains(a.get("/metrics").output, "HTTP 200"));
}

TEST_CASE("admin: /api/readiness says when the observer is off", "[admin][tern]") {
    TERN_ONLY_TEST("the admin listener is Tern's");
    admin_broker a;
    const auto r = a.get("/api/readiness");
    CHECK(contains(r.output, "HTTP 404"));
    CHECK(contains(r.output, "readiness_report true"));
    CHECK_FALSE(contains(a.get("/metrics").output, "tern_readiness"));
}

TEST_CASE("admin: with admin_token every request needs it", "[admin][tern]") {
    TERN_ONLY_TEST("the admin listener is Tern's");
    const std::string token = "s3cret-admin-token-0123";
    admin_broker a({"admin_token " + token});
    CHECK(contains(a.get("/metrics").output, "HTTP 401"));
    CHECK(contains(a.get("/metrics", {"-H", "Authorization: Bearer wrong-token-0123456789"}).output,
                   "HTTP 401"));
    CHECK(contains(a.get("/metrics", {"-H", "Authorization: Bearer " + token}).output, "HTTP 200"));
}

TEST_CASE("admin: a listener off loopback without a token is a configuration error",
          "[admin][tern]") {
    TERN_ONLY_TEST("the admin listener is Tern's");
    readable_dir dir;
    const auto conf = dir.write("admin.conf", "listener 1883 127.0.0.1\n"
                                              "admin_listener 9090 0.0.0.0\n");
    const auto r = run_command({tern_binary(), "-c", conf, "--test-config"});
    INFO(r.output);
    CHECK(r.exit_code == 1);
    CHECK(contains(r.output, "admin.conf:2: admin_listener on 0.0.0.0 is reachable from other "
                             "hosts: set admin_token"));
    const auto bad = dir.write("bad.conf", "admin_listener http\n");
    const auto b = run_command({tern_binary(), "-c", bad, "--test-config"});
    CHECK(b.exit_code == 1);
    CHECK(contains(b.output, "bad.conf:1: admin_listener: expected a port 0..65535, got 'http'"));
}

namespace {

command_result post(const admin_broker& a, const std::string& path, const std::string& json,
                    const std::string& method = "POST") {
    return a.get(path, {"-X", method, "-H", "Content-Type: application/json", "--data", json});
}

/// A v5 DISCONNECT packet's Server Reference is somewhere in its properties: the bytes are
/// enough to find it.
bool carries(const std::vector<std::uint8_t>& packet, const std::string& text) {
    return std::search(packet.begin(), packet.end(), text.begin(), text.end()) != packet.end();
}

} // namespace

TEST_CASE("admin: list clients, and kick one (MQTT 5 DISCONNECT 0x98)", "[admin][tern]") {
    TERN_ONLY_TEST("the admin listener is Tern's");
    admin_broker a;
    mqtt_client d1("dev-1");
    REQUIRE(d1.connect(a.broker.port()) == 0);
    mqtt_client d2("dev-2", MQTT_PROTOCOL_V5);
    REQUIRE(d2.connect(a.broker.port()) == 0);
    mqtt_client backend("backend-1", MQTT_PROTOCOL_V5);
    REQUIRE(backend.connect(a.broker.port()) == 0);
    REQUIRE(backend.subscribe("$share/svc/requests/#", 1) == 1);

    const auto all = nlohmann::json::parse(body_of(a.get("/api/clients")));
    REQUIRE(all.size() == 3);
    const auto devices = nlohmann::json::parse(body_of(a.get("/api/clients?client_id=dev-*")));
    REQUIRE(devices.size() == 2);
    for (const auto& c : all) {
        if (c["client_id"] == "backend-1") {
            CHECK(c["shared_member"] == true);
            CHECK(c["protocol"] == "5");
            CHECK(c["subscriptions"] == 1);
        } else if (c["client_id"] == "dev-1") {
            CHECK(c["protocol"] == "3.1.1");
            CHECK(c["shared_member"] == false);
        }
    }

    raw_client victim(a.broker.port(), 5);
    REQUIRE(victim.connect("kick-me"));
    const auto kicked = post(a, "/api/clients/kick", R"({"client_id": "kick-me"})");
    INFO(kicked.output);
    CHECK(contains(kicked.output, "HTTP 200"));
    CHECK(contains(kicked.output, "\"disconnected\":1"));
    CHECK(victim.await_disconnect() == 0x98);
    CHECK(victim.wait_closed());
    CHECK(contains(post(a, "/api/clients/kick", R"({"client_id": "nobody"})").output, "HTTP 404"));
    CHECK(contains(post(a, "/api/clients/kick", R"({"id": 1})").output, "HTTP 400"));
    // Not JSON: a form post from a web page is refused before anything happens; so is the
    // "text/plain;application/json" a page may send cross-origin without a preflight.
    CHECK(contains(a.get("/api/clients/kick", {"-X", "POST", "--data", "client_id=dev-1"}).output,
                   "HTTP 415"));
    CHECK(contains(
        a.get("/api/clients/kick", {"-X", "POST", "-H", "Content-Type: text/plain;application/json",
                                    "--data", R"({"client_id": "dev-1"})"})
            .output,
        "HTTP 415"));
    // Without a token the request must name this host: DNS rebinding and other origins fail.
    CHECK(contains(a.get("/api/clients", {"-H", "Host: evil.example"}).output, "HTTP 403"));
    CHECK(contains(a.get("/api/clients/kick",
                         {"-X", "POST", "-H", "Origin: http://evil.example", "-H",
                          "Content-Type: application/json", "--data", R"({"client_id": "dev-1"})"})
                       .output,
                   "HTTP 403"));
    CHECK(contains(a.get("/api/clients", {"-H", "Host: localhost"}).output, "HTTP 200"));
    CHECK(d1.connected());
}

TEST_CASE("admin: drain disconnects matching devices at the set rate with 0x9C and the server "
          "reference, never a backend's shared-group member",
          "[admin][tern]") {
    TERN_ONLY_TEST("the admin listener is Tern's");
    admin_broker a;
    std::vector<std::unique_ptr<raw_client>> devices;
    for (int i = 0; i < 6; ++i) {
        devices.push_back(std::make_unique<raw_client>(a.broker.port(), 5));
        REQUIRE(devices.back()->connect("drain-" + std::to_string(i)));
    }
    mqtt_client backend("drain-backend", MQTT_PROTOCOL_V5);
    REQUIRE(backend.connect(a.broker.port()) == 0);
    REQUIRE(backend.subscribe("$share/svc/jobs/#", 1) == 1);
    mqtt_client other("keeper-1"); // does not match the pattern
    REQUIRE(other.connect(a.broker.port()) == 0);

    const auto start = clock::now();
    const auto r =
        post(a, "/api/drain",
             R"({"rate": 5, "client_id": "drain-*", "server_reference": "new.example:8883"})");
    INFO(r.output);
    REQUIRE(contains(r.output, "HTTP 202"));
    CHECK(contains(r.output, "\"matched\":6"));
    for (auto& d : devices) {
        const auto p = d->socket().read_packet(5s);
        REQUIRE(p);
        CHECK((*p)[0] == 0xE0); // DISCONNECT
        CHECK(::tern::test::disconnect_reason(*p) == 0x9C);
        CHECK(carries(*p, "new.example:8883"));
    }
    const std::chrono::duration<double> elapsed = clock::now() - start;
    INFO("6 disconnected in " << elapsed.count() << " s");
    CHECK(elapsed.count() >= 0.9); // the first at once, then 5 a second: 1 s at the least
    const auto status = nlohmann::json::parse(body_of(a.get("/api/drain")));
    CHECK(status["state"] == "done");
    CHECK(status["disconnected"] == 6);
    CHECK(backend.subscribe("still/here", 1) == 1); // the backend instance stays
    CHECK(other.connected());
}

TEST_CASE("admin: a drain stops at once on request", "[admin][tern]") {
    TERN_ONLY_TEST("the admin listener is Tern's");
    admin_broker a;
    std::vector<std::unique_ptr<mqtt_client>> devices;
    for (int i = 0; i < 10; ++i) {
        devices.push_back(std::make_unique<mqtt_client>("slow-" + std::to_string(i)));
        REQUIRE(devices.back()->connect(a.broker.port()) == 0);
    }
    REQUIRE(contains(post(a, "/api/drain", R"({"rate": 2})").output, "HTTP 202"));
    CHECK(contains(post(a, "/api/drain", R"({"rate": 2})").output, "HTTP 409")); // one at a time
    const auto stopped = a.get("/api/drain", {"-X", "DELETE"});
    INFO(stopped.output);
    CHECK(contains(stopped.output, "\"state\":\"stopped\""));
    let_time_pass(1500ms);
    int still = 0;
    for (auto& d : devices) {
        d->pump_once(10);
        still += d->connected() ? 1 : 0;
    }
    CHECK(still >= 8); // at most the first one or two went before the stop
    const auto status = nlohmann::json::parse(body_of(a.get("/api/drain")));
    CHECK(status["disconnected"] <= 2);
    CHECK(contains(post(a, "/api/drain", R"({"rate": 0})").output, "HTTP 400"));
}

TEST_CASE("admin: sessions, subscriptions, retained messages and listeners", "[admin][tern]") {
    TERN_ONLY_TEST("the admin listener is Tern's");
    admin_broker a;
    {
        mqtt_client away("away-device", MQTT_PROTOCOL_V311, false); // persistent, then gone
        REQUIRE(away.connect(a.broker.port()) == 0);
        REQUIRE(away.subscribe("cmd/away-device/#", 1) == 1);
        away.disconnect();
    }
    mqtt_client here("here-device");
    REQUIRE(here.connect(a.broker.port()) == 0);
    REQUIRE(here.subscribe("cmd/here-device", 0) == 0);
    REQUIRE(here.publish("state/a/1", "on", 1, true));
    REQUIRE(here.publish("state/a/2", "off", 1, true));
    REQUIRE(here.publish("state/b", "12345", 0, true));

    const auto sessions = nlohmann::json::parse(body_of(a.get("/api/sessions")));
    INFO(sessions.dump());
    REQUIRE(sessions.size() == 2);
    const auto offline = nlohmann::json::parse(body_of(a.get("/api/sessions?connected=false")));
    REQUIRE(offline.size() == 1);
    CHECK(offline[0]["client_id"] == "away-device");
    CHECK(offline[0]["subscriptions"][0]["filter"] == "cmd/away-device/#");
    CHECK(offline[0]["subscriptions"][0]["qos"] == 1);

    const auto subs = nlohmann::json::parse(body_of(a.get("/api/subscriptions?filter=cmd/here*")));
    REQUIRE(subs.size() == 1);
    CHECK(subs[0]["client_id"] == "here-device");

    const auto retained = nlohmann::json::parse(body_of(a.get("/api/retained?filter=state/a/%23")));
    INFO(retained.dump());
    REQUIRE(retained.size() == 2);
    const auto all = nlohmann::json::parse(body_of(a.get("/api/retained")));
    CHECK(all.size() == 3);
    const auto one = nlohmann::json::parse(body_of(a.get("/api/retained?filter=state/b")));
    REQUIRE(one.size() == 1);
    CHECK(one[0]["payload_bytes"] == 5);
    CHECK(contains(a.get("/api/retained?filter=state/%23/x").output, "HTTP 400"));
    CHECK(contains(a.get("/api/retained?limit=0").output, "HTTP 400"));

    const auto listeners = nlohmann::json::parse(body_of(a.get("/api/listeners")));
    REQUIRE(listeners.size() == 1);
    CHECK(listeners[0]["transport"] == "mqtt");
    CHECK(listeners[0]["connections"]["3.1.1"] == 1);
}
