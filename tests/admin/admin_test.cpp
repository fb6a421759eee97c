// tern::admin on its own: the exposition format, the directives and their checks.
#include <tern/admin/admin_config.hpp>
#include <tern/admin/admin_server.hpp>
#include <tern/admin/metrics.hpp>
#include <tern/broker/config.hpp>

#include <catch2/catch.hpp>

#include <string>

using namespace tern;

namespace {

std::optional<std::string> parse_error_of(const std::string& text, admin::admin_config& cfg) {
    broker::config_registry registry;
    admin::register_directives(registry, cfg);
    const auto r =
        broker::parse_config_text(text, "a.conf", broker::include_policy::ignore, &registry);
    if (r.config) {
        return std::nullopt;
    }
    return r.error->to_string();
}

} // namespace

TEST_CASE("admin: every family has HELP and TYPE, counters end in _total", "[admin]") {
    broker::broker_stats s;
    s.messages_received = 7;
    s.publish_received_by_qos[1] = 7;
    s.clients_connected = 3;
    s.listeners.push_back({"*:1883", "mqtt", {0, 2, 1}});
    s.connects_refused.emplace_back("Not \"authorized\"", 3);
    s.worker_loop_lag_seconds = {0.0015, 0};
    const auto text = admin::prometheus_text(s, std::nullopt);
    INFO(text);
    CHECK(text.find("# TYPE tern_publish_received_total counter\n"
                    "tern_publish_received_total{qos=\"0\"} 0\n"
                    "tern_publish_received_total{qos=\"1\"} 7\n") != std::string::npos);
    CHECK(text.find("tern_connections 3\n") != std::string::npos);
    CHECK(text.find("tern_listener_connections{listener=\"0\",address=\"*:1883\","
                    "transport=\"mqtt\",protocol=\"5\"} 1\n") != std::string::npos);
    // Quotes in label values are escaped.
    CHECK(text.find("tern_connects_refused_total{reason=\"Not \\\"authorized\\\"\"} 3\n") !=
          std::string::npos);
    CHECK(text.find("tern_worker_loop_lag_seconds{worker=\"0\"} 0.001500\n") != std::string::npos);
    CHECK(text.find("tern_readiness") == std::string::npos);
    std::size_t pos = 0;
    while ((pos = text.find("# TYPE ", pos)) != std::string::npos) {
        const auto end = text.find('\n', pos);
        const auto line = text.substr(pos, end - pos);
        if (line.ends_with(" counter")) {
            CHECK(line.find("_total ") != std::string::npos);
        }
        pos = end;
    }
    broker::readiness_report r;
    r[broker::readiness_finding::qos2_publish].count = 4;
    const auto with = admin::prometheus_text(s, r);
    CHECK(with.find(
              "tern_readiness_findings_total{finding=\"qos2_publish\",blocking=\"true\"} 4\n") !=
          std::string::npos);
}

TEST_CASE("admin: admin_listener and admin_token", "[admin]") {
    admin::admin_config cfg;
    CHECK_FALSE(parse_error_of("admin_listener 9090\n", cfg));
    CHECK(cfg.enabled);
    CHECK(cfg.port == 9090);
    CHECK(cfg.address == "127.0.0.1");
    admin::admin_config c2;
    CHECK(parse_error_of("admin_listener 9090 0.0.0.0\n", c2) ==
          "a.conf:1: admin_listener on 0.0.0.0 is reachable from other hosts: set admin_token "
          "(the admin API is never anonymous off loopback)");
    admin::admin_config c3;
    CHECK_FALSE(parse_error_of("admin_listener 9090 ::\nadmin_token abcdefghijklmnop\n", c3));
    CHECK(c3.token == "abcdefghijklmnop");
    admin::admin_config c4;
    CHECK(parse_error_of("admin_token short\n", c4) ==
          "a.conf:1: admin_token: expected one token of at least 16 characters");
    admin::admin_config c5;
    CHECK(parse_error_of("admin_listener 1 2 3\n", c5) ==
          "a.conf:1: admin_listener: expected PORT [ADDRESS]");
    admin::admin_config c6;
    CHECK(parse_error_of("admin_listener 9090 nowhere\n", c6) ==
          "a.conf:1: admin_listener: 'nowhere' is not an IP address");
    CHECK(admin::is_loopback("127.0.0.2"));
    CHECK(admin::is_loopback("::1"));
    CHECK_FALSE(admin::is_loopback("10.0.0.1"));
}

TEST_CASE("admin: client id globs", "[admin]") {
    CHECK(admin::glob_match("*", ""));
    CHECK(admin::glob_match("*", "anything"));
    CHECK(admin::glob_match("dev-*", "dev-17"));
    CHECK_FALSE(admin::glob_match("dev-*", "backend-1"));
    CHECK(admin::glob_match("dev-?", "dev-7"));
    CHECK_FALSE(admin::glob_match("dev-?", "dev-17"));
    CHECK(admin::glob_match("*-eu-*", "sensor-eu-42"));
    CHECK(admin::glob_match("a*b*c", "aXXbYYc"));
    CHECK_FALSE(admin::glob_match("a*b*c", "aXXbYY"));
    CHECK(admin::glob_match("exact", "exact"));
    CHECK(admin::glob_match("*", "*x")); // a '*' in the text is text
    CHECK(admin::glob_match("a*", "a*x"));
    CHECK(admin::glob_match("a\\*", "a\\b")); // no escapes: '\\' is a character
    CHECK_FALSE(admin::glob_match("exact", "exactly"));
    // Hostile patterns stay linear-ish: no recursion, no blow-up.
    const std::string text(10000, 'a');
    CHECK_FALSE(admin::glob_match(std::string(50, '*') + "b", text));
}
