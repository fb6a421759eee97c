// The AWS IoT Core readiness report (docs/readiness.md): each finding triggered by a real,
// independent client (mosquitto_pub / mosquitto_sub, libmosquitto, Paho C) and read back the
// way an operator reads it, with `tern readiness-report --json` (and once with mosquitto_sub
// on $SYS/broker/readiness), checked for the client id that caused it.
#include "support.hpp"

#include <MQTTClient.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

using namespace tern::test;
using namespace std::chrono_literals;

namespace {

broker_settings observed() {
    broker_settings s;
    s.sys_interval = 1;
    s.extra_config = {"readiness_report true"};
    return s;
}

std::string port_of(const broker_process& b) {
    return std::to_string(b.port());
}

/// The report as `tern readiness-report --json` prints it.
nlohmann::json fetch_report(const broker_process& b) {
    const auto r =
        run_command({tern_binary(), "readiness-report", "--port", port_of(b), "--json"}, 15s);
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    auto j = nlohmann::json::parse(r.output, nullptr, false);
    REQUIRE(!j.is_discarded());
    return j;
}

bool has_sample(const nlohmann::json& report, const std::string& finding,
                const std::string& client_id, const std::string& topic = {}) {
    const auto& f = report["findings"];
    if (!f.contains(finding)) {
        return false;
    }
    for (const auto& s : f[finding]["samples"]) {
        if (s.value("client_id", "") == client_id &&
            (topic.empty() || s.value("topic", "") == topic)) {
            return true;
        }
    }
    return false;
}

/// Polls the report (bounded: the broker merges once a second and publishes every second)
/// until `finding` names `client_id`; returns the last report fetched.
nlohmann::json wait_for_finding(const broker_process& b, const std::string& finding,
                                const std::string& client_id, const std::string& topic = {}) {
    nlohmann::json report;
    for (int i = 0; i < 16; ++i) {
        report = fetch_report(b);
        if (has_sample(report, finding, client_id, topic)) {
            return report;
        }
        let_time_pass(500ms);
    }
    FAIL("no " << finding << " finding for '" << client_id << "' in " << report.dump());
    return report;
}

/// The report once everything done so far has been merged and published (two merge periods).
nlohmann::json settled_report(const broker_process& b) {
    let_time_pass(2500ms);
    return fetch_report(b);
}

command_result pub(const broker_process& b, std::vector<std::string> args,
                   const std::string& input = {}) {
    std::vector<std::string> argv{"mosquitto_pub", "-h", "127.0.0.1", "-p", port_of(b)};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run_command(argv, wait_timeout, input);
    INFO(r.output);
    CHECK(r.exit_code == 0);
    return r;
}

command_result sub(const broker_process& b, std::vector<std::string> args) {
    std::vector<std::string> argv{"mosquitto_sub", "-h", "127.0.0.1", "-p", port_of(b)};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, wait_timeout);
}

/// A Paho C (MQTTClient, synchronous) 3.1.1 connection.
struct paho_client {
    paho_client(const broker_process& b, const char* id) {
        const std::string uri = "tcp://127.0.0.1:" + port_of(b);
        REQUIRE(MQTTClient_create(&handle, uri.c_str(), id, MQTTCLIENT_PERSISTENCE_NONE, nullptr) ==
                MQTTCLIENT_SUCCESS);
        MQTTClient_connectOptions opts = MQTTClient_connectOptions_initializer;
        opts.cleansession = 1;
        opts.connectTimeout = 5;
        opts.MQTTVersion = MQTTVERSION_3_1_1;
        REQUIRE(MQTTClient_connect(handle, &opts) == MQTTCLIENT_SUCCESS);
    }
    ~paho_client() {
        MQTTClient_disconnect(handle, 1000);
        MQTTClient_destroy(&handle);
    }
    MQTTClient handle = nullptr;
};

} // namespace

TEST_CASE("readiness: traffic AWS IoT Core takes as it is gives a clean report",
          "[readiness][tern]") {
    TERN_ONLY_TEST("the readiness report is tern's");
    broker_process b(observed());
    mqtt_client subscriber("clean-sub");
    REQUIRE(subscriber.connect(b.port(), 60) == 0);
    REQUIRE(subscriber.subscribe("fleet/dev-1/telemetry", 1) == 1);
    pub(b, {"-i", "clean-pub", "-k", "60", "-q", "1", "-t", "fleet/dev-1/telemetry", "-m", "21"});
    REQUIRE(subscriber.next_message());
    pub(b,
        {"-i", "thing_1:a-b", "-k", "30", "-t", "$aws/things/thing_1/shadow/update", "-m", "{}"});
    const auto report = settled_report(b);
    INFO(report.dump());
    CHECK(report["findings"].empty());
    CHECK(report["clean"] == true);
    CHECK(report["account"]["connections"]["aws_default"] == 500000);
    CHECK(report["account"]["connections"]["peak"] >= 1);

    const auto text = run_command({tern_binary(), "readiness-report", "--port", port_of(b)}, 15s);
    CHECK(text.exit_code == 0);
    CHECK(contains(text.output, "No findings"));
}

TEST_CASE("readiness: without readiness_report nothing is observed and the command says why",
          "[readiness][tern]") {
    TERN_ONLY_TEST("the readiness report is tern's");
    broker_settings s;
    s.sys_interval = 1;
    broker_process b(s);
    pub(b, {"-i", "q2", "-q", "2", "-t", "a", "-m", "x"});
    const auto r = run_command(
        {tern_binary(), "readiness-report", "--port", port_of(b), "--timeout", "3"}, 15s);
    INFO(r.output);
    CHECK(r.exit_code == 1);
    CHECK(contains(r.output, "readiness_report true"));
    // Nor is anything published: the $SYS topic stays empty.
    const auto got = sub(b, {"-t", "$SYS/broker/readiness", "-C", "1", "-W", "3"});
    CHECK(got.output.find("findings") == std::string::npos);
}

TEST_CASE("readiness: QoS 2 publishes, wills and subscriptions", "[readiness][tern]") {
    TERN_ONLY_TEST("the readiness report is tern's");
    broker_process b(observed());
    pub(b, {"-i", "q2-pub", "-q", "2", "-t", "orders/new", "-m", "x"});
    {
        paho_client paho(b, "q2-paho-sub");
        CHECK(MQTTClient_subscribe(paho.handle, "orders/#", 2) == MQTTCLIENT_SUCCESS);
    }
    mqtt_client willing("q2-will");
    willing.set_will("wills/q2", "gone", 2, false);
    REQUIRE(willing.connect(b.port(), 60) == 0);

    auto report = wait_for_finding(b, "qos2_publish", "q2-pub", "orders/new");
    report = wait_for_finding(b, "qos2_subscribe", "q2-paho-sub", "orders/#");
    report = wait_for_finding(b, "qos2_publish", "q2-will", "wills/q2");
    CHECK(report["findings"]["qos2_publish"]["blocking"] == true);
    CHECK(report["findings"]["qos2_publish"]["count"] >= 2);
    CHECK(report["findings"]["qos2_publish"]["first_seen_ms"] > 0);
    CHECK(report["clean"] == false);
}

TEST_CASE("readiness: payloads, topic lengths, slashes and reserved topics", "[readiness][tern]") {
    TERN_ONLY_TEST("the readiness report is tern's");
    broker_process b(observed());
    pub(b, {"-i", "big-payload", "-t", "files/up", "-s"}, make_payload(200 * 1024, 1));
    pub(b, {"-i", "long-topic", "-t", "t/" + std::string(300, 'x'), "-m", "x"});
    pub(b, {"-i", "deep-topic", "-t", "a/b/c/d/e/f/g/h/i", "-m", "x"});
    // Not counted, as AWS does not count them: Basic Ingest's prefix and `$share/<name>/`.
    pub(b, {"-i", "ingest", "-t", "$aws/rules/r1/a/b/c/d/e/f/g/h", "-m", "x"});
    sub(b, {"-i", "deep-share", "-t", "$share/g/a/b/c/d/e/f/g/h", "-W", "1"});
    sub(b, {"-i", "sys-watcher", "-t", "$SYS/broker/uptime", "-C", "1", "-W", "5"});

    wait_for_finding(b, "payload_too_large", "big-payload", "files/up");
    wait_for_finding(b, "topic_too_long", "long-topic");
    wait_for_finding(b, "topic_too_deep", "deep-topic", "a/b/c/d/e/f/g/h/i");
    const auto report = wait_for_finding(b, "reserved_topic", "sys-watcher", "$SYS/broker/uptime");
    INFO(report.dump());
    CHECK_FALSE(has_sample(report, "topic_too_deep", "ingest"));
    CHECK_FALSE(has_sample(report, "reserved_topic", "ingest"));
    CHECK_FALSE(has_sample(report, "topic_too_deep", "deep-share"));
    CHECK(report["findings"]["payload_too_large"]["samples"][0]["detail"] == "204800 bytes");
}

TEST_CASE("readiness: client ids AWS refuses or cannot treat as thing names", "[readiness][tern]") {
    TERN_ONLY_TEST("the readiness report is tern's");
    broker_process b(observed());
    const std::string long_id(129, 'c');
    pub(b, {"-i", long_id, "-t", "a", "-m", "x"});
    pub(b, {"-i", "$reserved", "-t", "a", "-m", "x"});
    pub(b, {"-i", "with space", "-t", "a", "-m", "x"});
    pub(b, {"-i", "Thing_01:edge-7", "-t", "a", "-m", "x"});
    wait_for_finding(b, "client_id_too_long", long_id);
    wait_for_finding(b, "client_id_reserved", "$reserved");
    const auto report = wait_for_finding(b, "client_id_not_thing_name", "with space");
    CHECK(report["findings"]["client_id_not_thing_name"]["blocking"] == false);
    CHECK_FALSE(has_sample(report, "client_id_not_thing_name", "Thing_01:edge-7"));
}

TEST_CASE("readiness: more than 8 filters in a SUBSCRIBE, more than 50 on a connection",
          "[readiness][tern]") {
    TERN_ONLY_TEST("the readiness report is tern's");
    broker_process b(observed());
    {
        paho_client paho(b, "nine-filters");
        std::vector<std::string> filters;
        std::vector<char*> names;
        std::vector<int> qos(9, 0);
        for (int i = 0; i < 9; ++i) {
            filters.push_back("nine/" + std::to_string(i));
        }
        for (auto& f : filters) {
            names.push_back(f.data());
        }
        CHECK(MQTTClient_subscribeMany(paho.handle, 9, names.data(), qos.data()) ==
              MQTTCLIENT_SUCCESS);
    }
    mqtt_client many("fifty-one");
    REQUIRE(many.connect(b.port(), 60) == 0);
    for (int i = 0; i < 51; ++i) {
        REQUIRE(many.subscribe("many/" + std::to_string(i), 0) == 0);
    }
    mqtt_client fifty("exactly-fifty");
    REQUIRE(fifty.connect(b.port(), 60) == 0);
    for (int i = 0; i < 50; ++i) {
        REQUIRE(fifty.subscribe("fifty/" + std::to_string(i), 0) == 0);
    }
    wait_for_finding(b, "subscribe_over_8_filters", "nine-filters");
    const auto report = wait_for_finding(b, "connection_over_50_subscriptions", "fifty-one");
    INFO(report.dump());
    CHECK(report["findings"]["connection_over_50_subscriptions"]["count"] == 1);
    CHECK_FALSE(has_sample(report, "connection_over_50_subscriptions", "exactly-fifty"));
    CHECK_FALSE(has_sample(report, "subscribe_over_8_filters", "fifty-one"));
}

TEST_CASE("readiness: connections over 100 publishes or 512 KiB a second", "[readiness][tern]") {
    TERN_ONLY_TEST("the readiness report is tern's");
    broker_process b(observed());
    mqtt_client receiver("flood-receiver");
    REQUIRE(receiver.connect(b.port(), 60) == 0);
    REQUIRE(receiver.subscribe("flood", 0) == 0);
    std::string lines;
    for (int i = 0; i < 400; ++i) {
        lines += std::to_string(i) + "\n";
    }
    pub(b, {"-i", "flooder", "-t", "flood", "-l"}, lines);
    REQUIRE(receiver.pump_until([&] { return receiver.pending() >= 400; }));
    pub(b, {"-i", "bulk", "-t", "bulk", "-s"}, make_payload(1024 * 1024, 2));
    // A slow publisher stays under both.
    mqtt_client slow("slow-pub");
    REQUIRE(slow.connect(b.port(), 60) == 0);
    for (int i = 0; i < 5; ++i) {
        REQUIRE(slow.publish("slow", "x", 0));
    }
    wait_for_finding(b, "publish_rate_over_100", "flooder");
    // AWS counts inbound and outbound together: the receiver of the flood is over it too.
    wait_for_finding(b, "publish_rate_over_100", "flood-receiver");
    const auto report = wait_for_finding(b, "byte_rate_over_512k", "bulk");
    CHECK_FALSE(has_sample(report, "publish_rate_over_100", "slow-pub"));
    CHECK_FALSE(has_sample(report, "byte_rate_over_512k", "flooder"));
    CHECK(report["account"]["inbound_publishes_per_second"]["peak"] >= 100);
}

TEST_CASE("readiness: keep-alive outside 30..1200 s and session expiry over 7 days",
          "[readiness][tern]") {
    TERN_ONLY_TEST("the readiness report is tern's");
    broker_process b(observed());
    pub(b, {"-i", "ka-short", "-k", "10", "-t", "a", "-m", "x"});
    pub(b, {"-i", "ka-long", "-k", "3600", "-t", "a", "-m", "x"});
    pub(b, {"-i", "ka-ok", "-k", "1200", "-t", "a", "-m", "x"});
    mqtt_client forever("expiry-forever", MQTT_PROTOCOL_V5, false);
    REQUIRE(forever.connect(
                b.port(), 60,
                properties().add_int32(MQTT_PROP_SESSION_EXPIRY_INTERVAL, 0xFFFFFFFF)) == 0);
    mqtt_client week("expiry-week", MQTT_PROTOCOL_V5, false);
    REQUIRE(week.connect(b.port(), 60,
                         properties().add_int32(MQTT_PROP_SESSION_EXPIRY_INTERVAL, 604800)) == 0);
    wait_for_finding(b, "keep_alive_out_of_range", "ka-short");
    auto report = wait_for_finding(b, "keep_alive_out_of_range", "ka-long");
    CHECK_FALSE(has_sample(report, "keep_alive_out_of_range", "ka-ok"));
    report = wait_for_finding(b, "session_expiry_over_7_days", "expiry-forever");
    CHECK_FALSE(has_sample(report, "session_expiry_over_7_days", "expiry-week"));
}

TEST_CASE("readiness: retained messages through wildcards and `a/#` matching `a`",
          "[readiness][tern]") {
    TERN_ONLY_TEST("the readiness report is tern's");
    broker_process b(observed());
    pub(b, {"-i", "retainer", "-r", "-t", "config/dev-1", "-m", "on"});
    const auto wild = sub(b, {"-i", "wild-sub", "-t", "config/+", "-C", "1", "-W", "5"});
    CHECK(contains(wild.output, "on"));
    const auto exact = sub(b, {"-i", "exact-sub", "-t", "config/dev-1", "-C", "1", "-W", "5"});
    CHECK(contains(exact.output, "on"));

    mqtt_client parent("parent-sub");
    REQUIRE(parent.connect(b.port(), 60) == 0);
    REQUIRE(parent.subscribe("alerts/#", 1) == 1);
    mqtt_client both("both-sub");
    REQUIRE(both.connect(b.port(), 60) == 0);
    REQUIRE(both.subscribe("alerts/#", 1) == 1);
    REQUIRE(both.subscribe("alerts", 1) == 1);
    pub(b, {"-i", "alerter", "-q", "1", "-t", "alerts", "-m", "fire"});
    pub(b, {"-i", "alerter", "-q", "1", "-t", "alerts/kitchen", "-m", "smoke"});
    REQUIRE(parent.next_message());
    REQUIRE(both.next_message());

    wait_for_finding(b, "retained_via_wildcard", "wild-sub", "config/+");
    const auto report = wait_for_finding(b, "hash_matches_parent", "parent-sub", "alerts");
    INFO(report.dump());
    CHECK_FALSE(has_sample(report, "retained_via_wildcard", "exact-sub"));
    // A client that also subscribed to the parent itself does not depend on it.
    CHECK_FALSE(has_sample(report, "hash_matches_parent", "both-sub"));
    CHECK(report["findings"]["hash_matches_parent"]["count"] == 1);
}

TEST_CASE("readiness: MQTT 5 features AWS IoT Core lacks", "[readiness][tern]") {
    TERN_ONLY_TEST("the readiness report is tern's");
    broker_process b(observed());
    mqtt_client auth("auth-method", MQTT_PROTOCOL_V5);
    CHECK(auth.connect(b.port(), 60,
                       properties().add_string(MQTT_PROP_AUTHENTICATION_METHOD, "SCRAM-SHA-1")) ==
          0x8C);
    mqtt_client ids("sub-ids", MQTT_PROTOCOL_V5);
    REQUIRE(ids.connect(b.port(), 60) == 0);
    REQUIRE(ids.subscribe("with/id", 0, 0,
                          properties().add_varint(MQTT_PROP_SUBSCRIPTION_IDENTIFIER, 7)) == 0);
    pub(b, {"-i", "alias-9", "-V", "5", "-D", "publish", "topic-alias", "9", "-t", "aliased", "-m",
            "x"});
    pub(b, {"-i", "alias-8", "-V", "5", "-D", "publish", "topic-alias", "8", "-t", "aliased", "-m",
            "x"});
    wait_for_finding(b, "enhanced_auth", "auth-method");
    wait_for_finding(b, "subscription_identifiers", "sub-ids", "with/id");
    const auto report = wait_for_finding(b, "topic_alias_over_8", "alias-9", "aliased");
    CHECK_FALSE(has_sample(report, "topic_alias_over_8", "alias-8"));
}

TEST_CASE("readiness: samples are bounded and distinct, counts are exact", "[readiness][tern]") {
    TERN_ONLY_TEST("the readiness report is tern's");
    broker_process b(observed());
    for (int i = 0; i < 14; ++i) {
        pub(b, {"-i", "short-ka-" + std::to_string(i), "-k", "5", "-t", "a", "-m", "x"});
    }
    pub(b, {"-i", "short-ka-0", "-k", "5", "-t", "a", "-m", "x"});
    nlohmann::json report;
    for (int i = 0; i < 16; ++i) { // bounded: merged once a second, published every second
        report = fetch_report(b);
        const auto& findings = report["findings"];
        if (findings.contains("keep_alive_out_of_range") &&
            findings["keep_alive_out_of_range"]["count"] == 15) {
            break;
        }
        let_time_pass(500ms);
    }
    INFO(report.dump());
    const auto& f = report["findings"]["keep_alive_out_of_range"];
    CHECK(f["count"] == 15);
    CHECK(f["samples"].size() == 10);
    CHECK(f["first_seen_ms"] <= f["last_seen_ms"]);
}

TEST_CASE("readiness: the report as HTML, from a copy saved with mosquitto_sub",
          "[readiness][tern]") {
    TERN_ONLY_TEST("the readiness report is tern's");
    broker_process b(observed());
    pub(b, {"-i", "<b>odd</b>", "-q", "2", "-t", "x/<y>", "-m", "x"});
    wait_for_finding(b, "qos2_publish", "<b>odd</b>");
    // An independent client reads the report where the broker publishes it.
    const auto saved = sub(b, {"-t", "$SYS/broker/readiness", "-C", "1", "-W", "5"});
    REQUIRE(contains(saved.output, "qos2_publish"));
    readable_dir dir;
    const std::string file = dir.write("report.json", saved.output);
    const auto html = run_command({tern_binary(), "readiness-report", "--from", file, "--html"});
    INFO(html.output);
    CHECK(html.exit_code == 0);
    CHECK(html.output.starts_with("<!DOCTYPE html>"));
    CHECK(contains(html.output, "id=\"qos2_publish\""));
    CHECK(contains(html.output, "&lt;b&gt;odd&lt;/b&gt;"));
    CHECK_FALSE(contains(html.output, "<b>odd</b>"));
    CHECK_FALSE(contains(html.output, "<script"));

    const auto text = run_command({tern_binary(), "readiness-report", "--from", file});
    CHECK(text.exit_code == 0);
    CHECK(contains(text.output, "[BREAKS] QoS 2 publishes"));
    CHECK(contains(text.output, "client '<b>odd</b>'  topic 'x/<y>'"));

    const auto bad = run_command({tern_binary(), "readiness-report", "--from",
                                  dir.write("bad.json", "{\"not\": \"a report\"}")});
    CHECK(bad.exit_code == 1);
    CHECK(contains(bad.output, "bad.json: not a readiness report"));
    const auto usage = run_command({tern_binary(), "readiness-report", "--bogus"});
    CHECK(usage.exit_code == 2);
    CHECK(contains(usage.output, "unknown option '--bogus'"));
}
