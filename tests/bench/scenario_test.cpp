// tern-bench scenario files and command line: valid documents parse, invalid ones are
// rejected with the field and the reason, and every shipped scenario is valid.
#include "options.hpp"
#include "scenario.hpp"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using namespace tern::bench;
using nlohmann::json;

namespace {

std::string error_of(const json& doc) {
    try {
        parse_scenario(doc);
    } catch (const config_error& e) {
        return e.what();
    }
    return "(no error)";
}

command_line parse(std::vector<const char*> args) {
    args.insert(args.begin(), "tern-bench");
    return parse_command_line(static_cast<int>(args.size()), args.data());
}

std::string cli_error(std::vector<const char*> args) {
    try {
        parse(std::move(args));
    } catch (const config_error& e) {
        return e.what();
    }
    return "(no error)";
}

} // namespace

TEST_CASE("a complete scenario parses with defaults and overrides", "[bench][scenario]") {
    const auto s = parse_scenario(json::parse(R"({
        "name": "mix", "protocol": 5, "qos": 1, "duration": 3, "warmup": 1, "size": 100,
        "roles": [
            {"name": "devices", "clients": 20,
             "publish": {"topic": "dev/%i/telemetry", "rate": 10},
             "subscribe": {"filter": "cmd/%i", "qos": 0}},
            {"name": "backend", "clients": 2,
             "subscribe": {"filter": "$share/be/dev/+/telemetry"},
             "reply": {"topic": "cmd/%p", "every": 5}},
            {"name": "idle", "clients": 7}
        ]})"));
    CHECK(s.name == "mix");
    CHECK(s.protocol == tern::protocol::protocol_version::v5);
    CHECK(s.duration == 3);
    CHECK(s.total_clients() == 29);
    REQUIRE(s.roles.size() == 3);
    const auto& dev = s.roles[0];
    REQUIRE(dev.publish);
    CHECK(dev.publish->qos == tern::protocol::qos::at_least_once); // scenario default
    CHECK(dev.publish->size == 100);
    CHECK(dev.publish->rate == 10);
    CHECK(dev.subscribe->qos == tern::protocol::qos::at_most_once); // own value wins
    const auto& be = s.roles[1];
    CHECK(be.subscribe->share == "be"); // "$share/be/..." split
    CHECK(be.subscribe->filter.text() == "dev/+/telemetry");
    CHECK(be.reply->every == 5);
    CHECK_FALSE(s.roles[2].publish);
    CHECK_FALSE(s.roles[2].subscribe);
}

TEST_CASE("invalid scenarios name the field and the reason", "[bench][scenario]") {
    CHECK_THAT(error_of(json::parse(R"({"name": "x"})")), Catch::StartsWith("roles: missing"));
    CHECK_THAT(error_of(json::parse(R"({"roles": []})")), Catch::Contains("non-empty"));
    CHECK_THAT(error_of(json::parse(R"({"roles": [{"name": "a", "clients": 0}]})")),
               Catch::StartsWith("roles[0].clients: must be between 1"));
    CHECK_THAT(
        error_of(json::parse(R"({"roles": [{"name": "a", "publish": {"topic": "t", "qos": 3}}]})")),
        Catch::StartsWith("roles[0].publish.qos: must be 0, 1 or 2"));
    CHECK_THAT(
        error_of(json::parse(R"({"roles": [{"name": "a", "publish": {"topic": "t", "rat": 3}}]})")),
        Catch::StartsWith("roles[0].publish.rat: unknown field"));
    CHECK_THAT(error_of(json::parse(R"({"roles": [{"name": "a", "publish": {"topic": "a/#"}}]})")),
               Catch::StartsWith("roles[0].publish.topic") && Catch::Contains("not a valid topic"));
    CHECK_THAT(
        error_of(json::parse(R"({"roles": [{"name": "a", "subscribe": {"filter": "a/#/b"}}]})")),
        Catch::StartsWith("roles[0].subscribe.filter"));
    CHECK_THAT(error_of(json::parse(
                   R"({"roles": [{"name": "a", "subscribe": {"filter": "d/%i", "share": "g"}}]})")),
               Catch::Contains("same for every member"));
    CHECK_THAT(error_of(json::parse(R"({"roles": [{"name": "a", "reply": {"topic": "c/%p"}}]})")),
               Catch::StartsWith("roles[0].reply") && Catch::Contains("subscribe"));
    CHECK_THAT(error_of(json::parse(R"({"roles": [{"name": "a", "publish": {"topic": "t/%p"}}]})")),
               Catch::Contains("%p"));
    CHECK_THAT(error_of(json::parse(R"({"roles": [{"name": "a"}, {"name": "a"}]})")),
               Catch::StartsWith("roles[1].name"));
    CHECK_THAT(error_of(json::parse(R"({"protocol": 3, "roles": [{"name": "a"}]})")),
               Catch::StartsWith("protocol: must be between 4 and 5"));
    CHECK_THAT(error_of(json::parse(R"({"duration": "long", "roles": [{"name": "a"}]})")),
               Catch::StartsWith("duration: must be a number"));
    CHECK_THAT(error_of(json::parse(
                   R"({"roles": [{"name": "a", "publish": {"topic": "t", "size": 8}}]})")),
               Catch::StartsWith("roles[0].publish.size: must be between 32"));
}

TEST_CASE("roles may carry a user name and password, templated per client",
          "[bench][scenario][auth]") {
    const auto s = parse_scenario(json::parse(R"({
        "roles": [
            {"name": "sensor", "clients": 3, "username": "sensor-%i", "password": "pw-%i-%%"},
            {"name": "fixed", "username": "collector", "password": "s3cret"},
            {"name": "by-id", "username": "%c", "password": ""},
            {"name": "anonymous"}
        ]})"));
    REQUIRE(s.roles.size() == 4);
    const auto& sensor = s.roles[0];
    REQUIRE(sensor.username);
    REQUIRE(sensor.password);
    CHECK(sensor.username->text() == "sensor-%i");
    CHECK(render_credential(sensor.username, 2, "tb-sensor-2-x", std::nullopt) == "sensor-2");
    CHECK(render_credential(sensor.password, 17, "tb-sensor-17-x", std::nullopt) == "pw-17-%");
    // A constant value is the same for every client.
    CHECK(s.roles[1].username->is_constant());
    CHECK(render_credential(s.roles[1].username, 5, "c", std::nullopt) == "collector");
    CHECK(render_credential(s.roles[1].password, 5, "c", std::nullopt) == "s3cret");
    // %c is the client id; an empty password is a password.
    CHECK(render_credential(s.roles[2].username, 0, "tb-by-id-0-1234abcd", std::nullopt) ==
          "tb-by-id-0-1234abcd");
    CHECK(render_credential(s.roles[2].password, 0, "id", std::nullopt) == "");
    // Absent: nothing in the CONNECT, unless the command line gives one.
    const auto& anon = s.roles[3];
    CHECK_FALSE(anon.username);
    CHECK_FALSE(anon.password);
    CHECK(render_credential(anon.username, 0, "id", std::nullopt) == std::nullopt);
    CHECK(render_credential(anon.username, 0, "id", std::string("cli-user")) == "cli-user");
    // The role's value wins over the command line's.
    CHECK(render_credential(sensor.username, 1, "id", std::string("cli-user")) == "sensor-1");
    CHECK_FALSE(s.broker);
}

TEST_CASE("invalid credentials name the field", "[bench][scenario][auth]") {
    CHECK_THAT(error_of(json::parse(R"({"roles": [{"name": "a", "username": 7}]})")),
               Catch::StartsWith("roles[0].username: must be a string"));
    CHECK_THAT(error_of(json::parse(R"({"roles": [{"name": "a", "username": "u-%x"}]})")),
               Catch::StartsWith("roles[0].username: "));
    CHECK_THAT(error_of(json::parse(R"({"roles": [{"name": "a", "username": "u",
                                                    "password": "%p"}]})")),
               Catch::StartsWith("roles[0].password: %p is only meaningful"));
    CHECK_THAT(error_of(json::parse(R"({"roles": [{"name": "a", "username": "a\u0000b"}]})")),
               Catch::StartsWith("roles[0].username: must be UTF-8"));
    // [MQTT-3.1.2-22]: no password without a user name at 3.1.1; MQTT 5 allows it.
    CHECK_THAT(error_of(json::parse(R"({"roles": [{"name": "a", "password": "p"}]})")),
               Catch::StartsWith("roles[0].password: MQTT 3.1.1"));
    CHECK_NOTHROW(parse_scenario(
        json::parse(R"({"protocol": 5, "roles": [{"name": "a", "password": "p"}]})")));
}

TEST_CASE("the broker block is parsed for compare.sh", "[bench][scenario][auth]") {
    const auto s = parse_scenario(json::parse(R"({
        "broker": {"acl_file": "acl-50.acl", "generate_password_file": true},
        "roles": [{"name": "a", "username": "u", "password": "p"}]})"));
    REQUIRE(s.broker);
    CHECK(s.broker->acl_file == "acl-50.acl");
    CHECK(s.broker->generate_password_file);
    CHECK(s.broker->password_file.empty());
    const auto f = parse_scenario(
        json::parse(R"({"broker": {"password_file": "users.passwd"}, "roles": [{"name": "a"}]})"));
    CHECK(f.broker->password_file == "users.passwd");
    CHECK(f.broker->acl_file.empty());
    CHECK_THAT(error_of(json::parse(R"({"broker": {"acl": "x"}, "roles": [{"name": "a"}]})")),
               Catch::StartsWith("broker.acl: unknown field"));
    CHECK_THAT(error_of(json::parse(R"({"broker": {"password_file": "x",
                                                    "generate_password_file": true},
                                         "roles": [{"name": "a"}]})")),
               Catch::Contains("exclude each other"));
    CHECK_THAT(error_of(json::parse(R"({"broker": {"acl_file": ""}, "roles": [{"name": "a"}]})")),
               Catch::StartsWith("broker.acl_file: must not be empty"));
}

TEST_CASE("the authenticated scenarios send credentials from every client",
          "[bench][scenario][auth]") {
    const std::string dir = TERN_BENCH_SCENARIOS_DIR;
    for (const char* name : {"fan-in-acl", "fan-in-acl-max", "conn-storm-passwd"}) {
        INFO(name);
        const auto s = load_scenario_file(dir + "/" + name + ".json");
        REQUIRE(s.broker);
        CHECK(s.broker->generate_password_file);
        for (const auto& r : s.roles) {
            CHECK(r.username);
            CHECK(r.password);
        }
        if (!s.broker->acl_file.empty()) {
            CHECK(std::filesystem::exists(dir + "/" + s.broker->acl_file));
        }
    }
}

TEST_CASE("scenario files: JSON syntax errors say where", "[bench][scenario]") {
    const auto path = std::filesystem::temp_directory_path() / "tern-bench-bad-scenario.json";
    {
        std::ofstream f(path);
        f << "{\n  \"roles\": [\n    {\"name\": \"a\",}\n  ]\n}\n";
    }
    try {
        load_scenario_file(path.string());
        FAIL("no error");
    } catch (const config_error& e) {
        CHECK_THAT(e.what(), Catch::Contains(path.string()) && Catch::Contains("not valid JSON") &&
                                 Catch::Contains("line 3"));
    }
    std::filesystem::remove(path);
    CHECK_THROWS_WITH(load_scenario_file("/nonexistent/x.json"), Catch::Contains("cannot open"));
}

TEST_CASE("every shipped scenario is valid", "[bench][scenario]") {
    int n = 0;
    for (const auto& entry : std::filesystem::directory_iterator(TERN_BENCH_SCENARIOS_DIR)) {
        if (entry.path().extension() != ".json") {
            continue;
        }
        INFO(entry.path());
        const auto s = load_scenario_file(entry.path().string());
        CHECK(s.name == entry.path().stem().string());
        CHECK_FALSE(s.description.empty());
        ++n;
    }
    CHECK(n >= 7);
}

TEST_CASE("command line: modes build scenarios", "[bench][cli]") {
    const auto pub = parse({"pub", "--clients", "3", "-t", "x/%i", "--qos=1", "--rate", "50",
                            "--size", "128", "--count", "10", "--retain", "--protocol", "5"});
    const auto& o = pub.options;
    REQUIRE(o.sc.roles.size() == 1);
    const auto& r = o.sc.roles[0];
    CHECK(r.clients == 3);
    REQUIRE(r.publish);
    CHECK(r.publish->topic.text() == "x/%i");
    CHECK(r.publish->qos == tern::protocol::qos::at_least_once);
    CHECK(r.publish->rate == 50);
    CHECK(r.publish->size == 128);
    CHECK(r.publish->count == 10);
    CHECK(r.publish->retain);
    CHECK(o.sc.protocol == tern::protocol::protocol_version::v5);
    CHECK(o.port == 1883);

    const auto sub = parse({"sub", "--filter", "a/#", "--share", "g", "--tls", "--insecure"});
    CHECK(sub.options.sc.roles[0].subscribe->share == "g");
    CHECK(sub.options.port == 8883);
    CHECK(sub.options.tls.insecure);

    const auto conn = parse({"conn", "-c", "50", "--connect-rate", "10", "--duration", "2"});
    CHECK(conn.options.sc.roles[0].clients == 50);
    CHECK_FALSE(conn.options.sc.roles[0].publish);
    CHECK(conn.options.sc.connect_rate == 10);
    CHECK(conn.options.sc.duration == 2);

    CHECK(parse({"--help"}).what == command_line::action::help);
}

TEST_CASE("command line: run overrides the scenario", "[bench][cli]") {
    const std::string file = std::string(TERN_BENCH_SCENARIOS_DIR) + "/fan-in.json";
    const auto cl = parse({"run", file.c_str(), "--duration", "1.5", "--warmup", "0", "--host",
                           "::1", "--port", "1999", "--protocol", "5"});
    CHECK(cl.options.sc.name == "fan-in");
    CHECK(cl.options.sc.duration == 1.5);
    CHECK(cl.options.sc.warmup == 0);
    CHECK(cl.options.host == "::1");
    CHECK(cl.options.port == 1999);
    CHECK(cl.options.sc.protocol == tern::protocol::protocol_version::v5);
}

TEST_CASE("command line: usage errors name the option", "[bench][cli]") {
    CHECK_THAT(cli_error({}), Catch::Contains("missing MODE"));
    CHECK_THAT(cli_error({"flood"}), Catch::Contains("unknown mode"));
    CHECK_THAT(cli_error({"pub", "--bogus"}), Catch::Contains("unknown option --bogus"));
    CHECK_THAT(cli_error({"pub", "--qos", "3"}), Catch::StartsWith("--qos"));
    CHECK_THAT(cli_error({"pub", "--size", "10"}),
               Catch::StartsWith("--size: must be at least 32"));
    CHECK_THAT(cli_error({"pub", "--rate", "fast"}), Catch::StartsWith("--rate"));
    CHECK_THAT(cli_error({"pub", "--topic", "a/#"}), Catch::StartsWith("--topic"));
    CHECK_THAT(cli_error({"sub", "--topic", "a"}), Catch::Contains("does not apply to sub"));
    CHECK_THAT(cli_error({"pub", "--cafile", "x"}), Catch::Contains("needs --tls"));
    CHECK_THAT(cli_error({"run"}), Catch::Contains("missing SCENARIO"));
    CHECK_THAT(cli_error({"run", "/nonexistent.json"}), Catch::Contains("cannot open"));
    CHECK_THAT(cli_error({"pub", "--port"}), Catch::Contains("missing value"));
}
