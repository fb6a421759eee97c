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
