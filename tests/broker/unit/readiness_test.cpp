// The readiness report's parts (tern/broker/readiness.hpp, broker/src/readiness/): the
// once-a-second merge and its bounded samples, the account sampler's rates, the increase to
// request, and the JSON / text / HTML forms.
#include <catch2/catch.hpp>

#include "readiness/observer.hpp"

#include <nlohmann/json.hpp>

#include <string>

using namespace tern::broker;
using namespace std::chrono_literals;

TEST_CASE("readiness: a recorder's findings reach the report at the merge, not before",
          "[readiness][unit]") {
    readiness_aggregate report(1000);
    readiness_recorder worker0(report, 2000);
    readiness_recorder worker1(report, 3000);
    worker0.note(readiness_finding::qos2_publish, "dev-1", "a/b");
    worker0.note(readiness_finding::qos2_publish, "dev-1", "a/b");
    worker1.note(readiness_finding::qos2_publish, "dev-2", "a/c");
    CHECK(report.snapshot(5000)[readiness_finding::qos2_publish].count == 0);
    report.merge(worker0);
    report.merge(worker1);
    const auto r = report.snapshot(5000);
    const auto& f = r[readiness_finding::qos2_publish];
    CHECK(f.count == 3);
    CHECK(f.first_seen_ms == 2000);
    CHECK(f.last_seen_ms == 3000);
    REQUIRE(f.samples.size() == 2); // distinct (client id, topic) pairs
    CHECK(f.samples[0] == readiness_sample{"dev-1", "a/b", ""});
    CHECK(r.since_ms == 1000);
    CHECK(r.generated_ms == 5000);
    CHECK_FALSE(r.clean());
    // The recorder starts over after a merge: nothing is counted twice.
    report.merge(worker0);
    CHECK(report.snapshot(6000)[readiness_finding::qos2_publish].count == 3);
}

TEST_CASE("readiness: samples stop at the limit, counts do not", "[readiness][unit]") {
    readiness_aggregate report(0);
    readiness_recorder w(report, 1);
    for (int i = 0; i < 25; ++i) {
        w.note(readiness_finding::keep_alive_out_of_range, "c" + std::to_string(i), {}, "5 s");
        if (i % 5 == 4) {
            report.merge(w);
        }
    }
    const auto f = report.snapshot(2)[readiness_finding::keep_alive_out_of_range];
    CHECK(f.count == 25);
    CHECK(f.samples.size() == readiness_sample_limit);
    CHECK(report.samples_full(readiness_finding::keep_alive_out_of_range));
    CHECK_FALSE(report.samples_full(readiness_finding::qos2_publish));
}

TEST_CASE("readiness: the account sampler turns counter deltas into per-second peaks",
          "[readiness][unit]") {
    readiness_aggregate report(0);
    const auto t0 = std::chrono::steady_clock::time_point{} + 100s;
    readiness_sampler sampler(t0);
    readiness_sampler::totals t;
    t.connects = 600; // in the first second after start
    t.connections = 590;
    t.subscriptions = 10;
    sampler.sample(t, t0 + 1s, 1, report);
    t.connects = 700; // 100 more in two seconds: 50/s
    t.inbound_publishes = 50'000;
    t.connections = 580;
    sampler.sample(t, t0 + 3s, 3, report);
    sampler.sample(t, t0 + 3200ms, 4, report); // too soon after the last: ignored
    const auto r = report.snapshot(5);
    CHECK(r[readiness_quota::connects_per_second].peak == 600);
    CHECK(r[readiness_quota::connects_per_second].at_ms == 1);
    CHECK(r[readiness_quota::inbound_publishes_per_second].peak == 25'000);
    CHECK(r[readiness_quota::connections].peak == 590);
    CHECK(r[readiness_quota::connects_per_second].aws_default == 500);
    CHECK(r[readiness_quota::connects_per_second].increase_to() == 750);
    CHECK(r[readiness_quota::inbound_publishes_per_second].increase_to() == 32'000);
    CHECK(r[readiness_quota::connections].increase_to() == 0);
    CHECK_FALSE(r.clean()); // only peaks over their defaults
}

TEST_CASE("readiness: increase_to is the peak plus a quarter, two significant digits up",
          "[readiness][unit]") {
    const auto increase = [](std::uint64_t peak, std::uint64_t def) {
        return readiness_peak{peak, 0, def}.increase_to();
    };
    CHECK(increase(500, 500) == 0);
    CHECK(increase(501, 500) == 630);                 // 626.25
    CHECK(increase(612, 500) == 770);                 // 765
    CHECK(increase(23'456, 20'000) == 30'000);        // 29'320
    CHECK(increase(1'000'000, 500'000) == 1'300'000); // 1'250'000
}

TEST_CASE("readiness: thing names", "[readiness][unit]") {
    CHECK(is_valid_thing_name("Thing_01:edge-7"));
    CHECK(is_valid_thing_name(std::string(128, 'a')));
    CHECK_FALSE(is_valid_thing_name(std::string(129, 'a')));
    CHECK_FALSE(is_valid_thing_name(""));
    CHECK_FALSE(is_valid_thing_name("with space"));
    CHECK_FALSE(is_valid_thing_name("dev/1"));
    CHECK_FALSE(is_valid_thing_name("dev.1"));
    CHECK_FALSE(is_valid_thing_name("dév"));
}

TEST_CASE("readiness: JSON round trip, unknown findings ignored, bad input named",
          "[readiness][unit]") {
    readiness_report r;
    r.since_ms = 10;
    r.generated_ms = 20;
    r[readiness_finding::topic_too_deep] = {3, 11, 19, {{"dev\"1", "a/b/c", ""}}};
    r[readiness_finding::publish_rate_over_100] = {1, 12, 12, {{"flood", "", "101 in 3 ms"}}};
    r[readiness_quota::subscriptions] = {7, 15, 500'000};
    const auto json = to_json(r);
    const auto j = nlohmann::json::parse(json);
    CHECK(j["findings"].size() == 2);
    CHECK(j["findings"]["topic_too_deep"]["samples"][0]["client_id"] == "dev\"1");
    CHECK_FALSE(j["findings"]["publish_rate_over_100"]["samples"][0].contains("topic"));
    CHECK(j["account"]["subscriptions"]["peak"] == 7);
    CHECK(j["clean"] == false);

    const auto back = readiness_report_from_json(json);
    REQUIRE(back.report);
    CHECK(back.report->findings[static_cast<std::size_t>(readiness_finding::topic_too_deep)]
              .samples == r[readiness_finding::topic_too_deep].samples);
    CHECK((*back.report)[readiness_finding::publish_rate_over_100].samples[0].detail ==
          "101 in 3 ms");
    CHECK((*back.report)[readiness_quota::subscriptions].peak == 7);
    CHECK(to_json(*back.report) == json);

    auto newer = j;
    newer["findings"]["from_a_newer_broker"] = {{"count", 1}};
    CHECK(readiness_report_from_json(newer.dump()).report);
    CHECK(readiness_report_from_json("{").error == "not JSON");
    CHECK(readiness_report_from_json("[]").error.starts_with("not a readiness report"));
    CHECK(readiness_report_from_json(R"({"findings":{"qos2_publish":{"count":"x"}}})")
              .error.starts_with("not a readiness report"));
    // Client ids need not be UTF-8: the JSON replaces what it cannot carry.
    readiness_report odd;
    odd[readiness_finding::qos2_publish] = {1, 1, 1, {{"\xff\xfe", "t", ""}}};
    CHECK(nlohmann::json::accept(to_json(odd)));
}

TEST_CASE("readiness: text and HTML say what breaks, worst first, escaped", "[readiness][unit]") {
    readiness_report r;
    r[readiness_finding::keep_alive_out_of_range] = {50, 1, 2, {{"ka", "", "keep-alive 5 s"}}};
    r[readiness_finding::qos2_publish] = {2, 1, 2, {{"<img src=x>", "a\x01", ""}}};
    const auto text = render_text(r);
    INFO(text);
    // Blocking findings come before those that only differ, whatever the counts.
    CHECK(text.find("[BREAKS] QoS 2 publishes: 2 times") <
          text.find("[DIFFERS] Keep-alive outside 30..1200 s: 50 times"));
    CHECK(text.find("topic 'a\\x01'") != std::string::npos);
    CHECK(text.find("client 'ka'  (keep-alive 5 s)") != std::string::npos);

    const auto html = render_html(r);
    CHECK(html.find("<img") == std::string::npos);
    CHECK(html.find("&lt;img src=x&gt;") != std::string::npos);
    CHECK(html.find("id=\"qos2_publish\"") != std::string::npos);
    CHECK(html.find("<script") == std::string::npos);
    CHECK(html.find("http") == std::string::npos); // self-contained: nothing to fetch

    const auto clean = render_text(readiness_report{});
    CHECK(clean.find("No findings") != std::string::npos);
    CHECK(render_html(readiness_report{}).find("id=\"clean\"") != std::string::npos);
}

TEST_CASE("readiness: long client ids and topics are cut in samples, between UTF-8 characters",
          "[readiness][unit]") {
    readiness_aggregate report(0);
    readiness_recorder w(report, 1);
    const std::string topic = "t/" + std::string(300, 'x');
    std::string id(252, 'i');
    id += "\xc3\xa9\xc3\xa9\xc3\xa9"; // é é é across the cut
    w.note(readiness_finding::topic_too_long, id, topic);
    w.note(readiness_finding::topic_too_long, id, topic); // the same sample once
    report.merge(w);
    const auto f = report.snapshot(2)[readiness_finding::topic_too_long];
    CHECK(f.count == 2);
    REQUIRE(f.samples.size() == 1);
    CHECK(f.samples[0].topic.size() <= readiness_sample_bytes);
    CHECK(f.samples[0].topic.ends_with("..."));
    CHECK(f.samples[0].client_id.size() <= readiness_sample_bytes);
    CHECK(nlohmann::json::accept(to_json(report.snapshot(3)))); // still valid UTF-8
    CHECK(to_json(report.snapshot(3)).find("\xef\xbf\xbd") == std::string::npos); // no U+FFFD
}
