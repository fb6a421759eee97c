// The admin listener (docs/admin.md): Prometheus /metrics, the JSON API and the readiness page,
// fetched with curl while libmosquitto clients make traffic, and checked with promtool (Debian
// `prometheus`), the tool an operator's Prometheus would use.
#include "support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

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
