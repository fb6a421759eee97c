// The mosquitto.conf-compatible configuration parser, the command line built on it and the
// logger's configure_logging (docs/configuration.md). Every error class is checked with its
// exact "FILE:LINE: message" text.

#include <tern/broker/command_line.hpp>
#include <tern/broker/config.hpp>
#include <tern/core/log.hpp>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <vector>

using namespace tern::broker;
using namespace tern::core;
using namespace std::chrono_literals;

namespace {

/// A fresh directory under /tmp, removed with everything in it.
class temp_dir {
public:
    temp_dir() {
        std::string pattern = "/tmp/tern-config-test-XXXXXX";
        if (::mkdtemp(pattern.data()) == nullptr) {
            throw std::runtime_error("mkdtemp failed");
        }
        path_ = pattern;
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    const std::string& path() const { return path_; }
    /// Writes `content` to `name` inside the directory; returns the full path.
    std::string write(const std::string& name, std::string_view content) const {
        const std::string p = path_ + "/" + name;
        std::filesystem::create_directories(std::filesystem::path(p).parent_path());
        std::ofstream out(p, std::ios::binary);
        out << content;
        return p;
    }

private:
    std::string path_;
};

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

broker_config parse_ok(std::string_view text) {
    auto r = parse_config_text(text, "t.conf");
    INFO("text:\n" << text);
    if (r.error) {
        FAIL(r.error->to_string());
    }
    REQUIRE(r.config);
    return *r.config;
}

/// The error of an invalid text, as printed ("t.conf:LINE: message").
std::string parse_error(std::string_view text) {
    auto r = parse_config_text(text, "t.conf");
    INFO("text:\n" << text);
    REQUIRE_FALSE(r.config);
    REQUIRE(r.error);
    return r.error->to_string();
}

command_line run_cli(std::vector<std::string> args) {
    std::vector<std::string_view> views(args.begin(), args.end());
    return parse_command_line(views);
}

/// A broker_config with a file's defaults but no listener bookkeeping, to compare the rest.
broker_config without_listeners(broker_config c) {
    c.listeners.clear();
    c.local_only = false;
    return c;
}

} // namespace

// ---------------------------------------------------------------------------------------------
// Defaults

TEST_CASE("default_config listens on 127.0.0.1:1883 with anonymous clients", "[config]") {
    const broker_config c = default_config();
    REQUIRE(c.listeners.size() == 1);
    CHECK(c.listeners[0].port == 1883);
    CHECK(c.listeners[0].bind_address == "127.0.0.1");
    CHECK(c.listeners[0].protocol == "mqtt");
    CHECK(c.local_only);
    CHECK(c.allow_anonymous);
    // Everything else is mosquitto 2.0's default.
    CHECK(c.max_inflight_messages == 20);
    CHECK(c.max_queued_messages == 1000);
    CHECK(c.max_queued_bytes == 0);
    CHECK(c.message_size_limit == 0);
    CHECK(c.max_packet_size == 0);
    CHECK(c.max_keepalive == 65535);
    CHECK_FALSE(c.persistent_client_expiration);
    CHECK(c.retain_available);
    CHECK(c.sys_interval == 10s);
    CHECK_FALSE(c.max_connections);
    CHECK(c.logging == logging_config{});
    CHECK(c.logging.destinations == std::vector<std::string>{"stderr"});
    CHECK(c.worker_threads == 0);
    CHECK(c.shared_subscription_strategy == share_strategy::round_robin);
    CHECK(c.group_strategies.empty());
    CHECK(c.pid_file.empty());
    CHECK(c.user.empty());
}

TEST_CASE("a file without listeners is mosquitto's local only mode", "[config]") {
    SECTION("empty file") {
        const auto c = parse_ok("");
        REQUIRE(c.listeners.size() == 1);
        CHECK(c.listeners[0].port == 1883);
        CHECK(c.listeners[0].bind_address == "127.0.0.1");
        CHECK(c.listeners[0].origin == "t.conf");
        CHECK(c.local_only);
        CHECK(c.allow_anonymous);
        CHECK(without_listeners(c) == without_listeners(default_config()));
    }
    SECTION("per-listener directives at their default values do not start a listener") {
        const auto c = parse_ok("protocol mqtt\nmax_connections 10\n");
        CHECK(c.local_only);
        REQUIRE(c.listeners.size() == 1);
        CHECK(c.listeners[0].bind_address == "127.0.0.1");
        CHECK(c.max_connections == 10U);
    }
    SECTION("an explicit allow_anonymous false is kept") {
        const auto c = parse_ok("allow_anonymous false\n");
        CHECK(c.local_only);
        CHECK_FALSE(c.allow_anonymous);
    }
    SECTION("with a listener, allow_anonymous defaults to false (mosquitto 2.0)") {
        const auto c = parse_ok("listener 1883\n");
        CHECK_FALSE(c.local_only);
        CHECK_FALSE(c.allow_anonymous);
    }
}

// ---------------------------------------------------------------------------------------------
// Lexical rules

TEST_CASE("comments, blank lines, indentation, tabs, CRLF and a BOM", "[config]") {
    const auto c = parse_ok("\xEF\xBB\xBF# a comment\r\n"
                            "\r\n"
                            "   # an indented comment\n"
                            "\t\n"
                            "  max_inflight_messages   7  \r\n"
                            "max_queued_messages\t9\n"
                            "#max_keepalive 12\n"
                            "listener 1884");
    CHECK(c.max_inflight_messages == 7);
    CHECK(c.max_queued_messages == 9);
    CHECK(c.max_keepalive == 65535);
    REQUIRE(c.listeners.size() == 1);
    CHECK(c.listeners[0].port == 1884);
    CHECK(c.listeners[0].origin == "t.conf:8");
}

TEST_CASE("directive names are case-sensitive, as in mosquitto", "[config]") {
    CHECK(parse_error("Allow_Anonymous true\n") == "t.conf:1: unknown directive 'Allow_Anonymous'");
}

// ---------------------------------------------------------------------------------------------
// Listeners

TEST_CASE("listener blocks and their per-listener directives", "[config]") {
    const auto c = parse_ok("allow_anonymous true\n"
                            "listener 1883\n"
                            "max_connections 100\n"
                            "socket_domain ipv4\n"
                            "listener 8883 192.0.2.1\n"
                            "cafile /etc/tern/ca.pem\n"
                            "capath /etc/tern/ca dir\n"
                            "certfile /etc/tern/server.pem\n"
                            "keyfile /etc/tern/server.key\n"
                            "require_certificate true\n"
                            "use_identity_as_username true\n"
                            "tls_version tlsv1.2\n"
                            "ciphers ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256\n"
                            "listener 8080 ::1\n"
                            "protocol websockets\n"
                            "max_connections -1\n"
                            "listener 0\n");
    CHECK_FALSE(c.local_only);
    CHECK(c.allow_anonymous);
    CHECK_FALSE(c.max_connections);
    REQUIRE(c.listeners.size() == 4);

    const auto& plain = c.listeners[0];
    CHECK(plain.port == 1883);
    CHECK(plain.bind_address.empty());
    CHECK(plain.protocol == "mqtt");
    CHECK(plain.max_connections == 100U);
    CHECK(plain.socket_domain == "ipv4");
    CHECK(plain.origin == "t.conf:2");

    const auto& tls = c.listeners[1];
    CHECK(tls.port == 8883);
    CHECK(tls.bind_address == "192.0.2.1");
    CHECK(tls.cafile == "/etc/tern/ca.pem");
    CHECK(tls.capath == "/etc/tern/ca dir"); // paths are the rest of the line
    CHECK(tls.certfile == "/etc/tern/server.pem");
    CHECK(tls.keyfile == "/etc/tern/server.key");
    CHECK(tls.require_certificate);
    CHECK(tls.use_identity_as_username);
    CHECK(tls.tls_version == "tlsv1.2");
    CHECK(tls.ciphers == "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256");
    CHECK_FALSE(tls.max_connections);
    CHECK(tls.origin == "t.conf:5");

    const auto& ws = c.listeners[2];
    CHECK(ws.port == 8080);
    CHECK(ws.bind_address == "::1");
    CHECK(ws.protocol == "websockets");
    CHECK_FALSE(ws.max_connections);
    CHECK(ws.certfile.empty());

    CHECK(c.listeners[3].port == 0); // Tern: an ephemeral port
    CHECK(c.listeners[3].origin == "t.conf:17");
}

TEST_CASE("the legacy default listener (port, bind_address) comes first", "[config]") {
    SECTION("port alone: all addresses, anonymous off") {
        const auto c = parse_ok("port 1884\n");
        REQUIRE(c.listeners.size() == 1);
        CHECK(c.listeners[0].port == 1884);
        CHECK(c.listeners[0].bind_address.empty());
        CHECK(c.listeners[0].origin == "t.conf:1");
        CHECK_FALSE(c.local_only);
        CHECK_FALSE(c.allow_anonymous);
    }
    SECTION("bind_address alone: port 1883") {
        const auto c = parse_ok("# x\nbind_address 10.0.0.1\n");
        REQUIRE(c.listeners.size() == 1);
        CHECK(c.listeners[0].port == 1883);
        CHECK(c.listeners[0].bind_address == "10.0.0.1");
        CHECK(c.listeners[0].origin == "t.conf:2");
    }
    SECTION("port and bind_address apply to the default listener wherever they are") {
        const auto c = parse_ok("listener 1885 127.0.0.1\n"
                                "port 1886\n"
                                "bind_address 127.0.0.2\n");
        REQUIRE(c.listeners.size() == 2);
        CHECK(c.listeners[0].port == 1886);
        CHECK(c.listeners[0].bind_address == "127.0.0.2");
        CHECK(c.listeners[0].origin == "t.conf:2");
        CHECK(c.listeners[1].port == 1885);
        CHECK(c.listeners[1].bind_address == "127.0.0.1");
    }
    SECTION("per-listener directives before the first listener configure the default one") {
        const auto c = parse_ok("socket_domain ipv6\n"
                                "certfile /c.pem\n"
                                "keyfile /k.pem\n"
                                "listener 1890\n"
                                "socket_domain ipv4\n");
        REQUIRE(c.listeners.size() == 2);
        CHECK(c.listeners[0].port == 1883);
        CHECK(c.listeners[0].bind_address.empty());
        CHECK(c.listeners[0].socket_domain == "ipv6");
        CHECK(c.listeners[0].certfile == "/c.pem");
        CHECK(c.listeners[0].origin == "t.conf:1");
        CHECK(c.listeners[1].socket_domain == "ipv4");
        CHECK(c.listeners[1].certfile.empty());
    }
    SECTION("protocol websockets before any listener starts the default listener") {
        const auto c = parse_ok("protocol websockets\n");
        REQUIRE(c.listeners.size() == 1);
        CHECK(c.listeners[0].protocol == "websockets");
        CHECK(c.listeners[0].bind_address.empty());
        CHECK_FALSE(c.local_only);
    }
}

TEST_CASE("max_connections: broker-wide before the first listener, per listener after",
          "[config]") {
    const auto c = parse_ok("max_connections 50\nlistener 1883\nmax_connections 7\n");
    CHECK(c.max_connections == 50U);
    REQUIRE(c.listeners.size() == 1);
    CHECK(c.listeners[0].max_connections == 7U);
    CHECK_FALSE(parse_ok("max_connections 50\nmax_connections -1\n").max_connections);
    CHECK(parse_ok("max_connections 0\n").max_connections == 0U);
}

TEST_CASE("listener errors", "[config]") {
    CHECK(parse_error("listener\n") ==
          "t.conf:1: listener: missing value (expected a port 0..65535 and an optional bind "
          "address)");
    CHECK(parse_error("listener abc\n") ==
          "t.conf:1: listener: expected a port 0..65535, got 'abc'");
    CHECK(parse_error("listener 65536\n") ==
          "t.conf:1: listener: expected a port 0..65535, got '65536'");
    CHECK(parse_error("listener -1\n") == "t.conf:1: listener: expected a port 0..65535, got '-1'");
    CHECK(parse_error("\nlistener 1883 127.0.0.1 extra\n") ==
          "t.conf:2: listener: unexpected extra value 'extra'");
    CHECK(parse_error("listener 1883 # public\n") ==
          "t.conf:1: listener: unexpected '# public' after the value (a comment must be on a "
          "line of its own)");
    CHECK(parse_error("listener 0 /run/tern.sock\n") ==
          "t.conf:1: 'listener on a unix socket' is not supported by this version of tern");
    CHECK(parse_error("port x\n") == "t.conf:1: port: expected a port 0..65535, got 'x'");
    CHECK(parse_error("port\n") == "t.conf:1: port: missing value (expected a port 0..65535)");
    CHECK(parse_error("bind_address\n") ==
          "t.conf:1: bind_address: missing value (expected an address)");
    CHECK(parse_error("listener 1883\nprotocol mqtts\n") ==
          "t.conf:2: protocol: expected mqtt or websockets, got 'mqtts'");
    CHECK(parse_error("listener 1883\nsocket_domain ipv5\n") ==
          "t.conf:2: socket_domain: expected ipv4 or ipv6, got 'ipv5'");
    CHECK(parse_error("listener 1883\ntls_version tlsv1\n") ==
          "t.conf:2: tls_version: expected tlsv1.3, tlsv1.2 or tlsv1.1, got 'tlsv1'");
    CHECK(parse_error("listener 1883\ncertfile\n") ==
          "t.conf:2: certfile: missing value (expected a file name)");
    CHECK(parse_error("listener 1883\nrequire_certificate yes\n") ==
          "t.conf:2: require_certificate: expected true or false, got 'yes'");
}

TEST_CASE("two listeners on the same port and address are refused", "[config]") {
    CHECK(parse_error("listener 1883 127.0.0.1\nlistener 1884\nlistener 1883 127.0.0.1\n") ==
          "t.conf:3: listener 1883 127.0.0.1 is already defined at t.conf:1");
    CHECK(parse_error("port 1883\nlistener 1883\n") ==
          "t.conf:2: listener 1883 is already defined at t.conf:1");
    // Different addresses, or ephemeral ports, are fine.
    CHECK(parse_ok("listener 1883 127.0.0.1\nlistener 1883 ::1\n").listeners.size() == 2);
    CHECK(parse_ok("listener 0 127.0.0.1\nlistener 0 127.0.0.1\n").listeners.size() == 2);
}

TEST_CASE("a string option given twice for one scope is an error, as in mosquitto", "[config]") {
    CHECK(parse_error("listener 8883\ncertfile a.pem\ncertfile b.pem\n") ==
          "t.conf:3: certfile: duplicate value for this listener");
    CHECK(parse_error("listener 8883\nkeyfile a\nlistener 8884\nkeyfile b\nkeyfile c\n") ==
          "t.conf:5: keyfile: duplicate value for this listener");
    CHECK(parse_error("pid_file /a\npid_file /b\n") == "t.conf:2: pid_file: duplicate value");
    CHECK(parse_error("user a\nuser b\n") == "t.conf:2: user: duplicate value");
    CHECK(parse_error("log_timestamp_format %s\nlog_timestamp_format %s\n") ==
          "t.conf:2: log_timestamp_format: duplicate value");
}

// ---------------------------------------------------------------------------------------------
// General options

TEST_CASE("every general directive, happy path", "[config]") {
    const auto c = parse_ok("listener 1883\n"
                            "allow_anonymous true\n"
                            "max_connections 1000\n"
                            "max_inflight_messages 0\n"
                            "max_queued_messages 5000\n"
                            "max_queued_bytes 1048576\n"
                            "message_size_limit 268435455\n"
                            "max_packet_size 65536\n"
                            "max_keepalive 120\n"
                            "persistent_client_expiration 2w\n"
                            "retain_available false\n"
                            "sys_interval 0\n"
                            "per_listener_settings false\n"
                            "pid_file /run/tern/tern.pid\n"
                            "user mosquitto\n"
                            "worker_threads 4\n"
                            "connect_timeout 3\n"
                            "shared_subscription_strategy least_inflight\n"
                            "shared_subscription_strategy sensors topic_hash\n");
    CHECK(c.allow_anonymous);
    CHECK(c.listeners[0].max_connections == 1000U);
    CHECK_FALSE(c.max_connections);
    CHECK(c.max_inflight_messages == 0);
    CHECK(c.max_queued_messages == 5000);
    CHECK(c.max_queued_bytes == 1048576);
    CHECK(c.message_size_limit == 268435455U);
    CHECK(c.max_packet_size == 65536U);
    CHECK(c.max_keepalive == 120);
    CHECK(c.persistent_client_expiration == std::chrono::seconds(14 * 86400));
    CHECK_FALSE(c.retain_available);
    CHECK(c.sys_interval == 0s);
    CHECK(c.pid_file == "/run/tern/tern.pid");
    CHECK(c.user == "mosquitto");
    CHECK(c.worker_threads == 4);
    CHECK(c.connect_timeout == std::chrono::seconds(3));
    CHECK(c.shared_subscription_strategy == share_strategy::least_inflight);
    REQUIRE(c.group_strategies.size() == 1);
    CHECK(c.group_strategies[0].first == "sensors");
    CHECK(c.group_strategies[0].second == share_strategy::topic_hash);
}

TEST_CASE("booleans: true/false, and 1/0 as mosquitto 2.0 also takes", "[config]") {
    CHECK(parse_ok("retain_available false\n").retain_available == false);
    CHECK(parse_ok("retain_available 0\n").retain_available == false);
    CHECK(parse_ok("retain_available 0\nretain_available true\n").retain_available == true);
    CHECK(parse_ok("retain_available 0\nretain_available 1\n").retain_available == true);
    CHECK(parse_error("retain_available yes\n") ==
          "t.conf:1: retain_available: expected true or false, got 'yes'");
    CHECK(parse_error("retain_available True\n") ==
          "t.conf:1: retain_available: expected true or false, got 'True'");
    CHECK(parse_error("allow_anonymous\n") ==
          "t.conf:1: allow_anonymous: missing value (expected true or false)");
    CHECK(parse_error("allow_anonymous true false\n") ==
          "t.conf:1: allow_anonymous: unexpected extra value 'false'");
    CHECK(parse_error("log_timestamp on\n") ==
          "t.conf:1: log_timestamp: expected true or false, got 'on'");
    CHECK(parse_error("connection_messages\n") ==
          "t.conf:1: connection_messages: missing value (expected true or false)");
}

TEST_CASE("integer directives: ranges and malformed values", "[config]") {
    // directive, lowest valid, highest valid, expectation text
    const std::vector<std::tuple<std::string, std::string, std::string, std::string>> table{
        {"max_inflight_messages", "0", "65535", "an integer 0..65535"},
        {"max_queued_messages", "0", "2147483647", "an integer 0..2147483647"},
        {"max_queued_bytes", "0", "9223372036854775807", "an integer 0..9223372036854775807"},
        {"message_size_limit", "0", "268435455", "an integer 0..268435455"},
        {"max_keepalive", "10", "65535", "an integer 10..65535"},
        {"sys_interval", "0", "65535", "an integer 0..65535"},
        {"worker_threads", "0", "1024", "an integer 0..1024"},
        {"log_facility", "0", "7", "an integer 0..7"},
        {"max_connections", "-1", "2147483647", "-1 (unlimited) or an integer 0..2147483647"},
        {"max_packet_size", "0", "268435460", "0 (protocol maximum) or an integer 20..268435460"},
    };
    for (const auto& [name, low, high, expected] : table) {
        CAPTURE(name);
        parse_ok(name + " " + low + "\n");
        parse_ok(name + " " + high + "\n");
        const auto below = std::to_string(std::stoll(low) - 1);
        // One above the maximum; for the 64-bit one, a number that does not fit at all.
        const std::string above = name == "max_queued_bytes" ? std::string("9223372036854775808")
                                                             : std::to_string(std::stoll(high) + 1);
        CHECK(parse_error(name + " " + below + "\n") ==
              "t.conf:1: " + name + ": expected " + expected + ", got '" + below + "'");
        CHECK(parse_error(name + " " + above + "\n") ==
              "t.conf:1: " + name + ": expected " + expected + ", got '" + above + "'");
        CHECK(parse_error("\n" + name + " abc\n") ==
              "t.conf:2: " + name + ": expected " + expected + ", got 'abc'");
        CHECK(parse_error(name + " 12abc\n") ==
              "t.conf:1: " + name + ": expected " + expected + ", got '12abc'");
        CHECK(parse_error(name + " +5\n") ==
              "t.conf:1: " + name + ": expected " + expected + ", got '+5'");
        CHECK(parse_error(name + " 1.5\n") ==
              "t.conf:1: " + name + ": expected " + expected + ", got '1.5'");
        CHECK(parse_error(name + "\n") ==
              "t.conf:1: " + name + ": missing value (expected " + expected + ")");
        CHECK(parse_error(name + " " + low + " 3\n") ==
              "t.conf:1: " + name + ": unexpected extra value '3'");
        CHECK(parse_error(name + " " + low + " # default\n") ==
              "t.conf:1: " + name +
                  ": unexpected '# default' after the value (a comment must be on a line of its "
                  "own)");
    }
    // The example of the issue, verbatim.
    CHECK(parse_error("listener 1883\nallow_anonymous true\nmax_inflight_messages abc\n") ==
          "t.conf:3: max_inflight_messages: expected an integer 0..65535, got 'abc'");
    // max_packet_size: mosquitto refuses 1..19.
    CHECK(parse_error("max_packet_size 19\n") ==
          "t.conf:1: max_packet_size: expected 0 (protocol maximum) or an integer "
          "20..268435460, got '19'");
    CHECK(parse_ok("max_packet_size 20\n").max_packet_size == 20U);
    CHECK(parse_ok("max_packet_size 0\n").max_packet_size == 0U);
    // Long garbage is cut in the message.
    const std::string long_value(200, '9');
    CHECK(parse_error("sys_interval " + long_value + "\n") ==
          "t.conf:1: sys_interval: expected an integer 0..65535, got '" + std::string(61, '9') +
              "...'");
}

TEST_CASE("persistent_client_expiration durations, as mosquitto", "[config]") {
    const std::vector<std::pair<std::string, std::chrono::seconds>> good{
        {"1h", 3600s},
        {"5d", 5 * 86400s},
        {"2w", 14 * 86400s},
        {"6m", 180 * 86400s}, // a month is 30 days
        {"1y", 365 * 86400s},
        {"14d", 14 * 86400s},
        {"90s", 90s}, // Tern extension
        {"2147483647y", std::chrono::seconds(2147483647LL * 365 * 86400)},
    };
    for (const auto& [text, expected] : good) {
        CAPTURE(text);
        CHECK(
            parse_ok("persistent_client_expiration " + text + "\n").persistent_client_expiration ==
            expected);
    }
    const std::string message = "t.conf:1: persistent_client_expiration: expected a duration: a "
                                "positive integer and a unit s, h, d, w, m (30 days) or y (365 "
                                "days), got '";
    for (const std::string bad :
         {"0h", "5", "h", "-1d", "1x", "1.5h", "h1", "1H", "2147483648d", "1 h"}) {
        CAPTURE(bad);
        const std::string error = parse_error("persistent_client_expiration " + bad + "\n");
        if (bad == "1 h") {
            CHECK(error == "t.conf:1: persistent_client_expiration: unexpected extra value 'h'");
        } else {
            CHECK(error == message + bad + "'");
        }
    }
    CHECK(parse_error("persistent_client_expiration\n") ==
          "t.conf:1: persistent_client_expiration: missing value (expected a duration: a "
          "positive integer and a unit s, h, d, w, m (30 days) or y (365 days))");
}

TEST_CASE("shared_subscription_strategy, global and per group", "[config]") {
    for (const auto s :
         {share_strategy::round_robin, share_strategy::random, share_strategy::client_hash,
          share_strategy::topic_hash, share_strategy::least_inflight}) {
        CHECK(parse_share_strategy(to_string(s)) == s);
        const auto c = parse_ok("shared_subscription_strategy " + std::string(to_string(s)) + "\n");
        CHECK(c.shared_subscription_strategy == s);
    }
    CHECK(to_string(share_strategy::client_hash) == "client_hash");
    CHECK_FALSE(parse_share_strategy("fastest"));
    CHECK_FALSE(parse_share_strategy(""));

    const auto c = parse_ok("shared_subscription_strategy g1 random\n"
                            "shared_subscription_strategy g2 client_hash\n"
                            "shared_subscription_strategy g1 least_inflight\n");
    CHECK(c.shared_subscription_strategy == share_strategy::round_robin);
    using groups = std::vector<std::pair<std::string, share_strategy>>;
    CHECK(c.group_strategies ==
          groups{{"g1", share_strategy::least_inflight}, {"g2", share_strategy::client_hash}});

    CHECK(parse_error("shared_subscription_strategy fastest\n") ==
          "t.conf:1: shared_subscription_strategy: unknown strategy 'fastest' (expected "
          "round_robin, random, client_hash, topic_hash or least_inflight)");
    CHECK(parse_error("shared_subscription_strategy g fastest\n") ==
          "t.conf:1: shared_subscription_strategy: unknown strategy 'fastest' (expected "
          "round_robin, random, client_hash, topic_hash or least_inflight)");
    CHECK(parse_error("shared_subscription_strategy a/b random\n") ==
          "t.conf:1: shared_subscription_strategy: invalid group name 'a/b' (it must not "
          "contain '/', '+' or '#')");
    CHECK(parse_error("shared_subscription_strategy g+ random\n") ==
          "t.conf:1: shared_subscription_strategy: invalid group name 'g+' (it must not "
          "contain '/', '+' or '#')");
    CHECK(parse_error("shared_subscription_strategy\n") ==
          "t.conf:1: shared_subscription_strategy: missing value (expected [GROUP] STRATEGY, "
          "STRATEGY one of round_robin, random, client_hash, topic_hash or least_inflight)");
    CHECK(parse_error("shared_subscription_strategy g random x\n") ==
          "t.conf:1: shared_subscription_strategy: unexpected extra value 'x'");
}

TEST_CASE("per_listener_settings: allow_anonymous per listener", "[config]") {
    const auto c = parse_ok("per_listener_settings true\n"
                            "listener 1883\nallow_anonymous true\n"
                            "listener 1884\nallow_anonymous false\n"
                            "listener 1885\n");
    CHECK(c.per_listener_settings);
    REQUIRE(c.listeners.size() == 3);
    CHECK(c.listeners[0].allow_anonymous == true);
    CHECK(c.listeners[1].allow_anonymous == false);
    CHECK_FALSE(c.listeners[2].allow_anonymous.has_value());
    CHECK_FALSE(c.allow_anonymous); // the broker-wide default stays
    const auto off = parse_ok("per_listener_settings false\nallow_anonymous true\nlistener 1\n");
    CHECK(off.allow_anonymous);
    CHECK_FALSE(off.listeners[0].allow_anonymous.has_value());
    CHECK(parse_error("listener 1883\nper_listener_settings true\n") ==
          "t.conf:2: per_listener_settings must come before any listener, allow_anonymous, "
          "password_file and acl_file");
    CHECK(parse_error("allow_anonymous true\nper_listener_settings true\n") ==
          "t.conf:2: per_listener_settings must come before any listener, allow_anonymous, "
          "password_file and acl_file");
}

TEST_CASE("pid_file, user and log_timestamp_format take the rest of the line", "[config]") {
    const auto c = parse_ok("pid_file   /run/my tern/tern.pid  \n"
                            "user  mqtt user\n"
                            "log_timestamp_format %Y-%m-%d %H:%M:%S\n");
    CHECK(c.pid_file == "/run/my tern/tern.pid");
    CHECK(c.user == "mqtt user");
    CHECK(c.logging.timestamp_format == "%Y-%m-%d %H:%M:%S");
    CHECK(parse_error("pid_file\n") == "t.conf:1: pid_file: missing value (expected a file name)");
    CHECK(parse_error("user \n") == "t.conf:1: user: missing value (expected a user name)");
    CHECK(parse_error("log_timestamp_format\n") ==
          "t.conf:1: log_timestamp_format: missing value (expected a strftime format)");
}

// ---------------------------------------------------------------------------------------------
// Logging directives

TEST_CASE("log_dest: the first line replaces the default, later ones add", "[config]") {
    using list = std::vector<std::string>;
    CHECK(parse_ok("").logging.destinations == list{"stderr"});
    CHECK(parse_ok("log_dest stdout\n").logging.destinations == list{"stdout"});
    CHECK(parse_ok("log_dest stdout\nlog_dest syslog\nlog_dest stdout\n").logging.destinations ==
          list{"stdout", "syslog"});
    CHECK(parse_ok("log_dest stderr\nlog_dest none\n").logging.destinations == list{"none"});
    CHECK(parse_ok("log_dest none\nlog_dest topic\n").logging.destinations == list{"topic"});

    const auto c = parse_ok("log_dest file  /var/log/tern/my log.txt \nlog_dest stderr\n");
    CHECK(c.logging.destinations == list{"file", "stderr"});
    CHECK(c.logging.file == "/var/log/tern/my log.txt");

    CHECK(parse_error("log_dest\n") ==
          "t.conf:1: log_dest: missing value (expected stderr, stdout, file PATH, syslog, topic "
          "or none)");
    CHECK(parse_error("log_dest console\n") ==
          "t.conf:1: log_dest: expected stderr, stdout, file PATH, syslog, topic or none, got "
          "'console'");
    CHECK(parse_error("log_dest file\n") == "t.conf:1: log_dest file: missing file name");
    CHECK(parse_error("log_dest file /a\nlog_dest file /b\n") ==
          "t.conf:2: log_dest file: duplicate value (only one log file may be configured)");
    CHECK(parse_error("log_dest stderr stdout\n") ==
          "t.conf:1: log_dest: unexpected extra value 'stdout'");
    CHECK(parse_error("log_dest dlt\n") ==
          "t.conf:1: 'log_dest dlt' is not supported by this version of tern");
}

TEST_CASE("log_type: the first line replaces the default, later ones add", "[config]") {
    using list = std::vector<std::string>;
    CHECK(parse_ok("").logging.types == list{"error", "warning", "notice", "information"});
    CHECK(parse_ok("log_type error\nlog_type debug\n").logging.types == list{"error", "debug"});
    CHECK(parse_ok("log_type error warning\n").logging.types == list{"error", "warning"});
    CHECK(parse_ok("log_type all\nlog_type debug\n").logging.types == list{"all"});
    CHECK(parse_ok("log_type all\nlog_type none\n").logging.types == list{"none"});
    CHECK(parse_ok("log_type none\nlog_type error\n").logging.types == list{"error"});
    CHECK(
        parse_ok("log_type subscribe\nlog_type unsubscribe\nlog_type websockets\n").logging.types ==
        list{"subscribe", "unsubscribe", "websockets"});
    CHECK(parse_error("log_type\n") ==
          "t.conf:1: log_type: missing value (expected debug, error, warning, notice, "
          "information, subscribe, unsubscribe, websockets, all or none)");
    CHECK(parse_error("log_type error warn\n") ==
          "t.conf:1: log_type: expected debug, error, warning, notice, information, subscribe, "
          "unsubscribe, websockets, all or none, got 'warn'");
}

TEST_CASE("log_timestamp, connection_messages, log_facility", "[config]") {
    const auto c = parse_ok("log_timestamp false\nconnection_messages false\nlog_facility 5\n");
    CHECK_FALSE(c.logging.timestamp);
    CHECK_FALSE(c.logging.connection_messages);
    CHECK(c.logging.syslog_facility == 5);
    CHECK_FALSE(parse_ok("").logging.syslog_facility);
}

// ---------------------------------------------------------------------------------------------
// Unknown and unsupported directives

TEST_CASE("an unknown directive is an error naming it", "[config]") {
    CHECK(parse_error("listener 1883\n\nfoo bar\n") == "t.conf:3: unknown directive 'foo'");
    CHECK(parse_error("max_inflight_message 10\n") ==
          "t.conf:1: unknown directive 'max_inflight_message'");
}

TEST_CASE("known mosquitto directives this version does not implement", "[config]") {
    // The persistence directives belong to the store module, which registers them
    // (tests/store/store_config_test.cpp); the broker's own parser does not know them.
    CHECK(parse_error("persistence true\n") == "t.conf:1: unknown directive 'persistence'");
    CHECK(parse_error("auth_opt_db_host localhost\n") ==
          "t.conf:1: 'auth_opt_db_host' is not supported by this version of tern "
          "(authentication plugins are not supported: use password_file and acl_file)");
    CHECK(parse_error("connection bridge-01\naddress 10.0.0.1:1883\n") ==
          "t.conf:1: 'connection' is not supported by this version of tern (bridges are not "
          "implemented yet)");
    CHECK(parse_error("max_qos 1\n") ==
          "t.conf:1: 'max_qos' is not supported by this version of tern");
    CHECK(parse_error("listener 8883\ntls_engine pkcs11\n") ==
          "t.conf:2: 'tls_engine' is not supported by this version of tern (OpenSSL engines are "
          "not supported: use PEM key files, `tls_keyform pem`)");
    // Each of these is refused the same way, whatever its value.
    for (const std::string name :
         {"plugin", "plugin_opt_x", "auth_plugin", "upgrade_outgoing_qos", "queue_qos0_messages",
          "memory_limit", "mount_point", "http_dir", "max_inflight_bytes", "websockets_log_level",
          "address", "topic", "remote_username", "bridge_cafile", "cleansession", "try_private",
          "start_type"}) {
        CAPTURE(name);
        const std::string error = parse_error(name + " x\n");
        CHECK(
            error.starts_with("t.conf:1: '" + name + "' is not supported by this version of tern"));
    }
}

// ---------------------------------------------------------------------------------------------
// Files and include_dir

TEST_CASE("load_config_file: errors name the file and the OS reason", "[config]") {
    temp_dir dir;
    const auto missing = load_config_file(dir.path() + "/missing.conf");
    REQUIRE(missing.error);
    CHECK_FALSE(missing.config);
    CHECK(missing.error->line == 0);
    CHECK(missing.error->to_string() ==
          dir.path() + "/missing.conf: cannot open configuration file: No such file or directory");

    const auto directory = load_config_file(dir.path());
    REQUIRE(directory.error);
    CHECK(directory.error->to_string() ==
          dir.path() + ": cannot read configuration file: Is a directory");

    if (::geteuid() != 0) { // root reads anything
        const auto secret = dir.write("secret.conf", "listener 1883\n");
        ::chmod(secret.c_str(), 0);
        const auto denied = load_config_file(secret);
        REQUIRE(denied.error);
        CHECK(denied.error->to_string() ==
              secret + ": cannot open configuration file: Permission denied");
    }

    const auto good = dir.write("good.conf", "listener 1884\nallow_anonymous true\n");
    const auto ok = load_config_file(good);
    REQUIRE(ok.config);
    CHECK_FALSE(ok.error);
    CHECK(ok.config->listeners.at(0).origin == good + ":1");

    const auto bad = dir.write("bad.conf", "# header\nlistener 1884\nmax_keepalive 5\n");
    const auto failed = load_config_file(bad);
    REQUIRE(failed.error);
    CHECK(failed.error->file == bad);
    CHECK(failed.error->line == 3);
    CHECK(failed.error->message == "max_keepalive: expected an integer 10..65535, got '5'");
}

TEST_CASE("config_error::to_string", "[config]") {
    CHECK(config_error{"a.conf", 7, "boom"}.to_string() == "a.conf:7: boom");
    CHECK(config_error{"a.conf", 0, "boom"}.to_string() == "a.conf: boom");
}

TEST_CASE("include_dir reads *.conf in mosquitto's order", "[config]") {
    temp_dir dir;
    const std::string inc = dir.path() + "/conf.d";
    // mosquitto.conf(5): b.conf A.conf 01.conf a.conf B.conf 00.conf load as
    // 00 01 A a B b. Each adds a listener whose origin names its file.
    int n = 0;
    for (const std::string name : {"b.conf", "A.conf", "01.conf", "a.conf", "B.conf", "00.conf"}) {
        dir.write("conf.d/" + name,
                  "# " + name + "\nlistener 0 127.0.0." + std::to_string(++n) + "\n");
    }
    dir.write("conf.d/notes.txt", "this is not configuration\n");
    dir.write("conf.d/.conf", "neither is this\n");
    dir.write("conf.d/x.conf.bak", "nor this\n");
    const auto main_file =
        dir.write("main.conf", "listener 1883 127.0.0.1\ninclude_dir " + inc + "\n");
    const auto r = load_config_file(main_file);
    if (r.error) {
        FAIL(r.error->to_string());
    }
    std::vector<std::string> origins;
    for (const auto& l : r.config->listeners) {
        origins.push_back(l.origin);
    }
    CHECK(origins == std::vector<std::string>{main_file + ":1", inc + "/00.conf:2",
                                              inc + "/01.conf:2", inc + "/A.conf:2",
                                              inc + "/a.conf:2", inc + "/B.conf:2",
                                              inc + "/b.conf:2"});
}

TEST_CASE("include_dir: directories are processed in the order written", "[config]") {
    temp_dir dir;
    dir.write("one.d/B.conf", "shared_subscription_strategy b random\n");
    dir.write("one.d/C.conf", "shared_subscription_strategy c random\n");
    dir.write("two.d/A.conf", "shared_subscription_strategy a random\n");
    dir.write("two.d/D.conf", "shared_subscription_strategy d random\n");
    const auto c =
        parse_ok("include_dir " + dir.path() + "/one.d\ninclude_dir " + dir.path() + "/two.d/\n");
    std::vector<std::string> groups;
    for (const auto& g : c.group_strategies) {
        groups.push_back(g.first);
    }
    CHECK(groups == std::vector<std::string>{"b", "c", "a", "d"});
}

TEST_CASE("include_dir: later files override earlier values", "[config]") {
    temp_dir dir;
    dir.write("d/10-base.conf", "max_inflight_messages 10\nlistener 1883\n");
    dir.write("d/20-override.conf", "max_inflight_messages 30\n");
    const auto c = parse_ok("max_inflight_messages 5\ninclude_dir " + dir.path() + "/d\n");
    CHECK(c.max_inflight_messages == 30);
    CHECK(c.listeners.size() == 1);
}

TEST_CASE("include_dir: an error names the included file and its line", "[config]") {
    temp_dir dir;
    dir.write("d/a.conf", "listener 1883\n");
    dir.write("d/b.conf", "# ok\n\nmax_queued_messages lots\n");
    dir.write("d/c.conf", "this is never read\n");
    auto r = parse_config_text("listener 1884\ninclude_dir " + dir.path() + "/d\n", "main.conf");
    REQUIRE(r.error);
    CHECK(r.error->to_string() == dir.path() + "/d/b.conf:3: max_queued_messages: expected an " +
                                      "integer 0..2147483647, got 'lots'");

    dir.write("e/x.conf", "include_dir /etc\n");
    r = parse_config_text("include_dir " + dir.path() + "/e\n", "main.conf");
    REQUIRE(r.error);
    CHECK(r.error->to_string() ==
          dir.path() + "/e/x.conf:1: include_dir: only allowed in the main configuration file");
}

TEST_CASE("include_dir: unreadable directories and files", "[config]") {
    temp_dir dir;
    CHECK(parse_error("\ninclude_dir " + dir.path() + "/nope\n") ==
          "t.conf:2: include_dir: cannot open directory '" + dir.path() +
              "/nope': No such file or directory");
    CHECK(parse_error("include_dir\n") ==
          "t.conf:1: include_dir: missing value (expected a directory)");

    std::filesystem::create_directories(dir.path() + "/d/sub.conf");
    CHECK(parse_error("include_dir " + dir.path() + "/d\n") ==
          dir.path() + "/d/sub.conf: cannot read configuration file (included from t.conf:1): "
                       "Is a directory");
}

TEST_CASE("include_dir must not contain the main configuration file", "[config]") {
    temp_dir dir;
    const auto main_file =
        dir.write("tern.conf", "listener 1883\ninclude_dir " + dir.path() + "\n");
    const auto r = load_config_file(main_file);
    REQUIRE(r.error);
    CHECK(r.error->to_string() ==
          main_file + ":2: include_dir: '" + dir.path() + "' contains the main configuration file");
}

TEST_CASE("include_dir: each file starts in the default listener's scope", "[config]") {
    // As in mosquitto, a `listener` block ends with its file: per-listener directives at the top
    // of an included file configure the default listener.
    temp_dir dir;
    dir.write("d/a.conf", "max_connections 5\nsocket_domain ipv4\nlistener 1885\nprotocol "
                          "websockets\n");
    const auto c = parse_ok("listener 1884\ninclude_dir " + dir.path() + "/d\nmax_connections 9\n");
    REQUIRE(c.listeners.size() == 3);
    CHECK(c.max_connections == 5U);
    CHECK(c.listeners[0].port == 1883); // the default listener, started by socket_domain
    CHECK(c.listeners[0].socket_domain == "ipv4");
    CHECK(c.listeners[1].port == 1884);
    CHECK(c.listeners[1].max_connections == 9U); // back in the main file's block
    CHECK(c.listeners[2].port == 1885);
    CHECK(c.listeners[2].protocol == "websockets");
}

TEST_CASE("include_policy::ignore checks include_dir without reading it", "[config]") {
    const auto r =
        parse_config_text("include_dir /nonexistent/tern\n", "t.conf", include_policy::ignore);
    CHECK(r.config);
    const auto missing = parse_config_text("include_dir\n", "t.conf", include_policy::ignore);
    REQUIRE(missing.error);
    CHECK(missing.error->to_string() ==
          "t.conf:1: include_dir: missing value (expected a directory)");
}

// ---------------------------------------------------------------------------------------------
// Command line

TEST_CASE("command line without -c: the built-in default", "[config][cli]") {
    const auto cl = run_cli({});
    REQUIRE(cl.config);
    CHECK(*cl.config == default_config());
    CHECK(cl.config_file.empty());
    CHECK_FALSE(cl.verbose);
}

TEST_CASE("command-line options override the default configuration", "[config][cli]") {
    const auto cl = run_cli({"--port", "0", "--bind=::1", "--threads", "3", "--port-file", "p",
                             "--max-packet-size", "1000", "--verbose"});
    REQUIRE(cl.config);
    const auto& c = *cl.config;
    REQUIRE(c.listeners.size() == 1);
    CHECK(c.listeners[0].port == 0);
    CHECK(c.listeners[0].bind_address == "::1");
    CHECK_FALSE(c.local_only);
    CHECK(c.worker_threads == 3);
    CHECK(c.port_file == "p");
    CHECK(c.max_packet_size == 1000U);
    CHECK(c.max_connect_packet_size == 1000U); // capped by the packet size
    CHECK(cl.verbose);

    const auto big = run_cli({"--max-packet-size", "1000000"});
    REQUIRE(big.config);
    CHECK(big.config->max_connect_packet_size == 256U * 1024U);
}

TEST_CASE("-c FILE: the file, then the command line on top", "[config][cli]") {
    temp_dir dir;
    const auto file = dir.write("tern.conf", "listener 1884 192.0.2.1\n"
                                             "listener 1885 192.0.2.2\n"
                                             "worker_threads 2\n"
                                             "max_packet_size 5000\n"
                                             "max_inflight_messages 3\n");
    SECTION("file values when the command line is silent") {
        const auto cl = run_cli({"-c", file});
        REQUIRE(cl.config);
        CHECK(cl.config_file == file);
        CHECK(cl.config->listeners.at(0).port == 1884);
        CHECK(cl.config->worker_threads == 2);
        CHECK(cl.config->max_packet_size == 5000U);
        CHECK(cl.config->max_inflight_messages == 3);
    }
    SECTION("--port/--bind replace the first listener only; order does not matter") {
        const auto cl = run_cli({"--port", "0", "--threads", "8", "--config-file", file, "--bind",
                                 "127.0.0.1", "--max-packet-size=200"});
        REQUIRE(cl.config);
        const auto& c = *cl.config;
        REQUIRE(c.listeners.size() == 2);
        CHECK(c.listeners[0].port == 0);
        CHECK(c.listeners[0].bind_address == "127.0.0.1");
        CHECK(c.listeners[1].port == 1885);
        CHECK(c.listeners[1].bind_address == "192.0.2.2");
        CHECK(c.worker_threads == 8);
        CHECK(c.max_packet_size == 200U);
        CHECK(c.max_inflight_messages == 3); // untouched
    }
    SECTION("--config-file=FILE") {
        const auto cl = run_cli({"--config-file=" + file});
        REQUIRE(cl.config);
        CHECK(cl.config->listeners.at(0).port == 1884);
    }
}

TEST_CASE("the --test-config flag reports and never runs", "[config][cli]") {
    temp_dir dir;
    const auto good = dir.write("good.conf", "listener 1883\nallow_anonymous true\n");
    const auto bad = dir.write("bad.conf", "listener 1883\nallow_anonymous true\nfoo 1\n");

    auto cl = run_cli({"--test-config", "-c", good});
    CHECK_FALSE(cl.config);
    CHECK(cl.exit_code == 0);
    CHECK(cl.message == good + ": configuration OK");

    cl = run_cli({"-c", bad, "--test-config"});
    CHECK_FALSE(cl.config);
    CHECK(cl.exit_code == 1);
    CHECK(cl.message == bad + ":3: unknown directive 'foo'");

    cl = run_cli({"--test-config", "-c", dir.path() + "/missing.conf"});
    CHECK_FALSE(cl.config);
    CHECK(cl.exit_code == 1);
    CHECK(cl.message ==
          dir.path() + "/missing.conf: cannot open configuration file: No such file or directory");

    cl = run_cli({"--test-config"});
    CHECK_FALSE(cl.config);
    CHECK(cl.exit_code == 2);
    CHECK(cl.message == "tern: --test-config needs a configuration file (-c FILE)\n"
                        "Try 'tern --help'.");
}

TEST_CASE("a bad configuration file without --test-config: exit 1 with FILE:LINE",
          "[config][cli]") {
    temp_dir dir;
    const auto bad = dir.write("bad.conf", "listener 1883\n\nmax_keepalive 1\n");
    const auto cl = run_cli({"--port", "0", "-c", bad});
    CHECK_FALSE(cl.config);
    CHECK(cl.exit_code == 1);
    CHECK(cl.message == bad + ":3: max_keepalive: expected an integer 10..65535, got '1'");
}

TEST_CASE("command-line usage errors exit 2", "[config][cli]") {
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
        {{"-c"}, "option '-c' needs a value"},
        {{"--config-file"}, "option '--config-file' needs a value"},
        {{"--config-file="}, "--config-file needs a file name"},
        {{"-c", "a.conf", "-c", "b.conf"},
         "only one configuration file may be given ('a.conf' and 'b.conf')"},
        {{"--test-config=yes"}, "option '--test-config' takes no value"},
        {{"--port", "70000"}, "invalid port '70000' (0..65535)"},
        {{"--threads", "0"}, "invalid thread count '0' (1..1024)"},
        {{"--max-packet-size", "100"}, "invalid maximum packet size '100' (128..268435460)"},
        {{"--no-such-option"}, "unknown option '--no-such-option'"},
        {{"-x"}, "unknown option '-x'"},
        {{"-p", "0"}, "invalid port '0' (1..65535)"},
        {{"-p"}, "option '-p' needs a value"},
        {{"-p", "1",  "-p", "2",  "-p", "3",  "-p", "4",  "-p", "5",  "-p",
          "6",  "-p", "7",  "-p", "8",  "-p", "9",  "-p", "10", "-p", "11"},
         "-p may be given at most 10 times"},
        {{"--daemon=yes"}, "option '--daemon' takes no value"},
    };
    for (const auto& [args, message] : cases) {
        CAPTURE(args);
        const auto cl = run_cli(args);
        CHECK_FALSE(cl.config);
        CHECK(cl.exit_code == 2);
        CHECK(cl.message == "tern: " + message + "\nTry 'tern --help'.");
    }
    // mosquitto's -p: loopback listeners replacing local only mode's, in order.
    const auto ports = run_cli({"-p", "1884", "-p", "1885", "-d"});
    REQUIRE(ports.config);
    REQUIRE(ports.config->listeners.size() == 2);
    CHECK(ports.config->listeners[0].port == 1884);
    CHECK(ports.config->listeners[1].port == 1885);
    CHECK(ports.config->listeners[1].bind_address == "127.0.0.1");
    CHECK(ports.config->allow_anonymous);
    CHECK(ports.config->daemon);
    CHECK(ports.warnings.empty());

    const auto help = run_cli({"--port", "1", "--help"});
    CHECK_FALSE(help.config);
    CHECK(help.exit_code == 0);
    CHECK(help.message == usage());
    CHECK(usage().find("--config-file") != std::string::npos);
    CHECK(usage().find("--test-config") != std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// configure_logging

namespace {

/// Restores the default logging when a test is done with it.
struct logging_reset {
    ~logging_reset() {
        configure_logging(logging_config{});
        set_log_level(log_level::info);
    }
};

} // namespace

TEST_CASE("configure_logging: log_type selects levels", "[config][log]") {
    logging_reset reset;
    logging_config c;
    c.destinations = {"none"};

    c.types = {"error", "warning", "notice", "information"};
    configure_logging(c);
    CHECK(log_enabled(log_level::error));
    CHECK(log_enabled(log_level::warn));
    CHECK(log_enabled(log_level::info));
    CHECK_FALSE(log_enabled(log_level::debug));

    c.types = {"error", "debug"};
    configure_logging(c);
    CHECK(log_enabled(log_level::error));
    CHECK_FALSE(log_enabled(log_level::warn));
    CHECK_FALSE(log_enabled(log_level::info));
    CHECK(log_enabled(log_level::debug));

    c.types = {"information"};
    configure_logging(c);
    CHECK(log_enabled(log_level::info));
    CHECK_FALSE(log_enabled(log_level::error));

    c.types = {"all"};
    configure_logging(c);
    CHECK(log_enabled(log_level::debug));
    CHECK(log_enabled(log_level::error));

    c.types = {"none"};
    configure_logging(c);
    CHECK_FALSE(log_enabled(log_level::error));
    set_log_level(log_level::debug); // --verbose on top
    CHECK(log_enabled(log_level::debug));
    CHECK(log_enabled(log_level::error));
}

TEST_CASE("configure_logging: a file destination is appended to, one line per call",
          "[config][log]") {
    logging_reset reset;
    temp_dir dir;
    const auto path = dir.write("tern.log", "earlier line\n");
    logging_config c;
    c.destinations = {"file"};
    c.file = path;
    c.timestamp = false;
    configure_logging(c);
    log(log_level::info, "hello {}", 42);
    log(log_level::debug, "not written");
    log(log_level::error, "bad {}", "thing");
    CHECK(read_text(path) == "earlier line\ninfo  hello 42\nerror bad thing\n");

    c.timestamp = true;
    c.timestamp_format = "[%Y]";
    configure_logging(c);
    write_log(log_level::warn, "formatted");
    const auto text = read_text(path);
    const auto last = text.substr(text.rfind('\n', text.size() - 2) + 1);
    REQUIRE(last.size() == std::string("[2024] warn  formatted\n").size());
    CHECK(last.front() == '[');
    CHECK(last.substr(6) == " warn  formatted\n");

    c.timestamp_format.clear();
    configure_logging(c);
    write_log(log_level::info, "iso");
    const auto iso = read_text(path);
    const auto iso_last = iso.substr(iso.rfind('\n', iso.size() - 2) + 1);
    // 2024-05-01T12:00:00.123Z info  iso
    REQUIRE(iso_last.size() == 24 + 1 + 10);
    CHECK(iso_last[10] == 'T');
    CHECK(iso_last[23] == 'Z');
    CHECK(iso_last.substr(24) == " info  iso\n");
}

TEST_CASE("configure_logging: a log file that cannot be opened throws and changes nothing",
          "[config][log]") {
    logging_reset reset;
    temp_dir dir;
    const auto path = dir.write("kept.log", "");
    logging_config c;
    c.destinations = {"file"};
    c.file = path;
    c.timestamp = false;
    configure_logging(c);

    logging_config broken;
    broken.destinations = {"file"};
    broken.file = dir.path() + "/no/such/dir/tern.log";
    try {
        configure_logging(broken);
        FAIL("no exception");
    } catch (const std::system_error& e) {
        CHECK(std::string(e.what()).find("cannot open log file '" + broken.file + "'") !=
              std::string::npos);
        CHECK(e.code() == std::errc::no_such_file_or_directory);
    }
    write_log(log_level::info, "still here");
    CHECK(read_text(path) == "info  still here\n");
}

TEST_CASE("TLS listener directives", "[config][tls]") {
    SECTION("every mosquitto TLS directive lands on its listener") {
        const auto c = parse_ok("psk_file /psk.txt\n"
                                "listener 8883\n"
                                "cafile /ca.pem\n"
                                "capath /cas\n"
                                "certfile /c.pem\n"
                                "keyfile /k.pem\n"
                                "crlfile /crl.pem\n"
                                "dhparamfile /dh.pem\n"
                                "require_certificate true\n"
                                "use_identity_as_username true\n"
                                "use_subject_as_username false\n"
                                "tls_version tlsv1.3\n"
                                "ciphers ECDHE-ECDSA-AES128-GCM-SHA256\n"
                                "ciphers_tls1.3 TLS_AES_128_GCM_SHA256\n"
                                "tls_keyform pem\n"
                                "psk_hint fleet\n"
                                "sni_certificate a.example /a.pem /a.key\n"
                                "sni_certificate *.b.example /b.pem /b.key\n"
                                "listener 1883\n");
        REQUIRE(c.listeners.size() == 2);
        const auto& l = c.listeners[0];
        CHECK(l.tls());
        CHECK(l.cafile == "/ca.pem");
        CHECK(l.capath == "/cas");
        CHECK(l.crlfile == "/crl.pem");
        CHECK(l.dhparamfile == "/dh.pem");
        CHECK(l.require_certificate);
        CHECK(l.use_identity_as_username);
        CHECK_FALSE(l.use_subject_as_username);
        CHECK(l.tls_version == "tlsv1.3");
        CHECK(l.ciphers_tls13 == "TLS_AES_128_GCM_SHA256");
        CHECK(l.psk_hint == "fleet");
        CHECK(c.psk_file == "/psk.txt");
        REQUIRE(l.sni_certificates.size() == 2);
        CHECK(l.sni_certificates[1].host == "*.b.example");
        CHECK(l.sni_certificates[1].keyfile == "/b.key");
        CHECK_FALSE(c.listeners[1].tls());
    }
    SECTION("tls_policy takes AWS IoT Core's policy names") {
        const auto c = parse_ok("listener 8883\ncertfile /c\nkeyfile /k\n"
                                "tls_policy IoTSecurityPolicy_TLS13_1_2_2022_10\n");
        CHECK(c.listeners[0].tls_policy == "IoTSecurityPolicy_TLS13_1_2_2022_10");
        CHECK(parse_error("listener 8883\ncertfile /c\nkeyfile /k\ntls_policy strongest\n")
                  .starts_with("t.conf:4: tls_policy: unknown policy 'strongest' (expected one "
                               "of IoTSecurityPolicy_TLS13_1_3_2022_10,"));
        CHECK(parse_error("listener 8883\ncertfile /c\nkeyfile /k\ntls_policy modern\n"
                          "tls_version tlsv1.2\n") ==
              "t.conf:1: tls_policy pins versions and ciphers: do not combine it with "
              "tls_version, ciphers or ciphers_tls1.3");
    }
    SECTION("combinations that cannot make a TLS listener are errors naming the listener") {
        CHECK(parse_error("listener 8883\ncafile /ca.pem\n") ==
              "t.conf:1: TLS options are set but certfile (or psk_hint) is not: the listener "
              "would be plain TCP");
        CHECK(parse_error("listener 1\nlistener 8883\ncertfile /c.pem\n") ==
              "t.conf:2: certfile is set but keyfile is not");
        CHECK(parse_error("listener 8883\ncertfile /c\nkeyfile /k\nrequire_certificate true\n") ==
              "t.conf:1: client certificates need cafile or capath to be verified against");
        CHECK(parse_error("listener 8883\npsk_hint h\n") ==
              "t.conf:1: psk_hint is set but no psk_file gives the keys");
        CHECK(parse_error("listener 8883\nsni_certificate a /a\n") ==
              "t.conf:2: sni_certificate: expected HOST CERTFILE KEYFILE");
        CHECK(parse_error("listener 8883\ncertfile /c\nkeyfile /k\nsni_certificate a /a /k\n"
                          "sni_certificate a /b /k\n") ==
              "t.conf:5: sni_certificate: duplicate host 'a' for this listener");
        CHECK(parse_error("listener 8883\ntls_keyform engine\n")
                  .starts_with("t.conf:2: 'tls_keyform engine' is not supported"));
        CHECK(parse_error("listener 8883\ntls_keyform der\n") ==
              "t.conf:2: tls_keyform: expected pem or engine, got 'der'");
    }
}

TEST_CASE("listener options: bind_interface, proxy_protocol", "[config]") {
    const auto c = parse_ok("listener 1883\nbind_interface eth0\nproxy_protocol true\n"
                            "listener 1884\n");
    CHECK(c.listeners[0].bind_interface == "eth0");
    CHECK(c.listeners[0].proxy_protocol);
    CHECK(c.listeners[1].bind_interface.empty());
    CHECK_FALSE(c.listeners[1].proxy_protocol);
    CHECK(parse_error("listener 1883\nproxy_protocol v2\n") ==
          "t.conf:2: proxy_protocol: expected true or false, got 'v2'");
    CHECK(parse_error("listener 1883\nbind_interface lo\nbind_interface eth0\n") ==
          "t.conf:3: bind_interface: duplicate value for this listener");
}

TEST_CASE("listener option profile: mosquitto (default) or aws-iot, per listener", "[config]") {
    const auto c = parse_ok("listener 1883\nprofile aws-iot\nlistener 1884\n"
                            "listener 1885\nprofile mosquitto\n");
    CHECK(c.listeners[0].profile == listener_profile::aws_iot);
    CHECK(c.listeners[1].profile == listener_profile::mosquitto);
    CHECK(c.listeners[2].profile == listener_profile::mosquitto);
    CHECK(parse_error("listener 1883\nprofile aws\n") ==
          "t.conf:2: profile: expected mosquitto or aws-iot, got 'aws'");
    CHECK(parse_error("listener 1883\nprofile\n") ==
          "t.conf:2: profile: missing value (expected mosquitto or aws-iot)");
}

TEST_CASE("listener options alpn, require_alpn, require_sni (TLS only)", "[config]") {
    const auto c =
        parse_ok("listener 8443\ncertfile c.pem\nkeyfile k.pem\nalpn x-amzn-mqtt-ca mqtt\n"
                 "require_alpn true\nrequire_sni true\nlistener 8883\ncertfile c.pem\n"
                 "keyfile k.pem\n");
    CHECK(c.listeners[0].alpn == std::vector<std::string>{"x-amzn-mqtt-ca", "mqtt"});
    CHECK(c.listeners[0].require_alpn);
    CHECK(c.listeners[0].require_sni);
    CHECK(c.listeners[1].alpn.empty());
    CHECK_FALSE(c.listeners[1].require_alpn);
    CHECK(parse_error("listener 8443\ncertfile c.pem\nkeyfile k.pem\nalpn\n") ==
          "t.conf:4: alpn: expected one or more protocol names (e.g. x-amzn-mqtt-ca)");
    CHECK(
        parse_error("listener 1883\nrequire_sni true\n").find("TLS options are set but certfile") !=
        std::string::npos);
}

TEST_CASE("aws_account_* quotas: AWS's defaults, 0 for unlimited; readiness_report", "[config]") {
    const auto d = parse_ok("");
    CHECK(d.aws_account.max_connections == 500'000);
    CHECK(d.aws_account.connects_per_second == 500);
    CHECK(d.aws_account.inbound_publishes_per_second == 20'000);
    CHECK(d.aws_account.outbound_publishes_per_second == 20'000);
    CHECK(d.aws_account.subscriptions_per_second == 500);
    CHECK_FALSE(d.readiness_report);
    const auto c = parse_ok("aws_account_max_connections 0\naws_account_connects_per_second 7\n"
                            "aws_account_inbound_publishes_per_second 4294967295\n"
                            "aws_account_outbound_publishes_per_second 1\n"
                            "aws_account_subscriptions_per_second 2\nreadiness_report true\n");
    CHECK(c.aws_account.max_connections == 0);
    CHECK(c.aws_account.connects_per_second == 7);
    CHECK(c.aws_account.inbound_publishes_per_second == 4'294'967'295U);
    CHECK(c.aws_account.outbound_publishes_per_second == 1);
    CHECK(c.aws_account.subscriptions_per_second == 2);
    CHECK(c.readiness_report);
    CHECK(parse_error("aws_account_connects_per_second -1\n") ==
          "t.conf:1: aws_account_connects_per_second: expected 0 (unlimited) or an integer up to "
          "4294967295, got '-1'");
    CHECK(parse_error("readiness_report on\n") ==
          "t.conf:1: readiness_report: expected true or false, got 'on'");
}

namespace {

/// A module's configuration as a plug-in would keep it: `connection NAME` opens a block, the
/// `address HOST:PORT` lines after it belong to the last block (mosquitto's bridge layout).
struct bridge_like_config {
    struct connection {
        std::string name;
        std::vector<std::string> addresses;
        std::string origin;
    };
    std::vector<connection> connections;

    void register_with(config_registry& registry) {
        registry.add("connection", [this](const config_line& l) {
            if (l.args.size() != 1) {
                throw directive_error("connection: expected one name");
            }
            connections.push_back(
                {std::string(l.args[0]), {}, fmt::format("{}:{}", l.file, l.number)});
        });
        registry.add("address", [this](const config_line& l) {
            if (connections.empty()) {
                throw directive_error("address: must follow a connection");
            }
            for (const auto a : l.args) {
                connections.back().addresses.emplace_back(a);
            }
        });
        registry.on_finish([this]() -> std::optional<config_problem> {
            for (const auto& c : connections) {
                if (c.addresses.empty()) {
                    const auto colon = c.origin.rfind(':');
                    return config_problem{c.origin.substr(0, colon),
                                          std::stoul(c.origin.substr(colon + 1)),
                                          fmt::format("connection {} has no address", c.name)};
                }
            }
            return std::nullopt;
        });
    }
};

config_result parse_with(std::string_view text, const config_registry& registry) {
    return parse_config_text(text, "t.conf", include_policy::follow, &registry);
}

} // namespace

TEST_CASE("config registry: a module's directives reach the module, with the core's "
          "directives still parsed by the core",
          "[config][registry]") {
    config_registry registry;
    bridge_like_config bridge;
    bridge.register_with(registry);
    const auto r = parse_with("listener 1884\n"
                              "connection aws\n"
                              "address a.example:8883 b.example:8883\n"
                              "max_inflight_messages 5\n"
                              "connection legacy\n"
                              "address 10.0.0.1:1883\n",
                              registry);
    REQUIRE(r.config);
    CHECK(r.config->max_inflight_messages == 5);
    REQUIRE(bridge.connections.size() == 2);
    CHECK(bridge.connections[0].name == "aws");
    CHECK(bridge.connections[0].addresses ==
          std::vector<std::string>{"a.example:8883", "b.example:8883"});
    CHECK(bridge.connections[1].addresses == std::vector<std::string>{"10.0.0.1:1883"});
}

TEST_CASE("config registry: a module's errors name the file and line", "[config][registry]") {
    config_registry registry;
    bridge_like_config bridge;
    bridge.register_with(registry);
    auto r = parse_with("listener 1884\naddress x:1\n", registry);
    REQUIRE(r.error);
    CHECK(r.error->to_string() == "t.conf:2: address: must follow a connection");
    // A finisher's problem: the block that lacks what it needs.
    bridge.connections.clear();
    r = parse_with("\n\nconnection lonely\n", registry);
    REQUIRE(r.error);
    CHECK(r.error->to_string() == "t.conf:3: connection lonely has no address");
}

TEST_CASE("config registry: without the module, its directives keep their hint; core names "
          "cannot be taken",
          "[config][registry]") {
    CHECK(parse_error("connection aws\n") ==
          "t.conf:1: 'connection' is not supported by this version of tern (bridges are not "
          "implemented yet)");
    config_registry registry;
    CHECK_THROWS_AS(registry.add("listener", [](const config_line&) {}), std::logic_error);
    CHECK_THROWS_AS(registry.add("include_dir", [](const config_line&) {}), std::logic_error);
    CHECK_THROWS_AS(registry.add("", [](const config_line&) {}), std::logic_error);
    registry.add("admin_listener", [](const config_line&) {});
    CHECK_THROWS_AS(registry.add("admin_listener", [](const config_line&) {}), std::logic_error);
    CHECK(is_core_directive("max_queued_messages"));
    CHECK_FALSE(is_core_directive("connection"));
    CHECK(parse_error("admin_listener 8080\n") == "t.conf:1: unknown directive 'admin_listener'");
}

TEST_CASE("password_file and acl_file: broker-wide, or per listener under "
          "per_listener_settings true",
          "[config][auth]") {
    const auto global = parse_ok("password_file /etc/mosquitto/passwd\n"
                                 "acl_file /etc/mosquitto/acl\n"
                                 "listener 1883\nlistener 1884\n");
    CHECK(global.password_file == "/etc/mosquitto/passwd");
    CHECK(global.acl_file == "/etc/mosquitto/acl");
    CHECK(global.listeners[0].password_file.empty());
    const auto per = parse_ok("per_listener_settings true\n"
                              "listener 1883\npassword_file /p one\nacl_file /a\n"
                              "listener 1884\nallow_anonymous true\n");
    CHECK(per.password_file.empty());
    REQUIRE(per.listeners.size() == 2);
    CHECK(per.listeners[0].password_file == "/p one"); // paths may contain spaces
    CHECK(per.listeners[0].acl_file == "/a");
    CHECK(per.listeners[1].password_file.empty());
    CHECK(parse_error("password_file /a\npassword_file /b\n") ==
          "t.conf:2: password_file: duplicate value");
    CHECK(parse_error("acl_file\n") == "t.conf:1: acl_file: missing value (expected a file name)");
    CHECK(parse_error("password_file /a\nper_listener_settings true\n") ==
          "t.conf:2: per_listener_settings must come before any listener, allow_anonymous, "
          "password_file and acl_file");
}
