// tern-bench --report: the self-contained HTML page rendered from the --json result document.
#include "html_report.hpp"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <unistd.h>

namespace {

using nlohmann::json;
using tern::bench::render_html_report;
using tern::bench::write_html_report;

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

std::size_t occurrences(const std::string& haystack, const std::string& needle) {
    std::size_t n = 0;
    for (std::size_t at = haystack.find(needle); at != std::string::npos;
         at = haystack.find(needle, at + needle.size())) {
        ++n;
    }
    return n;
}

json full_document() {
    return json::parse(R"({
      "tool": "tern-bench", "version": "0.1.0", "mode": "run", "scenario": "shared-balance",
      "description": "4 backends in one $share group",
      "target": {"host": "127.0.0.1", "port": 18830, "tls": false, "protocol": 5},
      "started_at": "2026-11-26T14:00:00Z", "duration_s": 10.0, "warmup_s": 2.0,
      "totals": {"connections_ok": 5, "connections_failed": 1,
                 "failures_by_reason": {"connack 0x87 not authorized": 1},
                 "sent": 100000, "acked": 100000, "received": 99990, "lost": 10,
                 "duplicates": 0, "reordered": 3, "foreign": 0, "errors": 0,
                 "connect_rate": 950.5,
                 "send_rate": 10000.0, "recv_rate": 9999.0,
                 "bytes_sent": 6400000, "bytes_received": 6399360},
      "latency_us": {"count": 99990, "min": 80, "mean": 310.5, "p50": 250, "p90": 600,
                     "p99": 1900, "p999": 4200, "max": 15000},
      "ack_latency_us": {"count": 100000, "min": 60, "mean": 200, "p50": 180, "p90": 400,
                         "p99": 1200, "p999": 3000, "max": 9000},
      "connack_latency_us": {"count": 5, "min": 150, "mean": 220, "p50": 200, "p90": 300,
                             "p99": 310, "p999": 310, "max": 310},
      "histogram": [[64, 10], [128, 900], [256, 50000], [512, 40000], [1024, 8000],
                    [2048, 1000], [4096, 70], [16384, 10]],
      "timeline": [
        {"t": 1, "connections": 5, "send_rate": 9000, "recv_rate": 8990, "errors": 0,
         "p50_us": 260, "p99_us": 2500, "warmup": true},
        {"t": 2, "connections": 5, "send_rate": 10000, "recv_rate": 9990, "errors": 0,
         "p50_us": 250, "p99_us": 2100, "warmup": true},
        {"t": 3, "connections": 5, "send_rate": 10000, "recv_rate": 10000, "errors": 1,
         "p50_us": 250, "p99_us": 1900},
        {"t": 4, "connections": 4, "send_rate": 10000, "recv_rate": 10000, "errors": 0,
         "p50_us": 240, "p99_us": 1800}],
      "groups": [{"name": "g", "filter": "bench/#", "members": [
        {"client": "sub-0", "received": 25000, "share": 0.25},
        {"client": "sub-1", "received": 24990, "share": 0.2499},
        {"client": "sub-2", "received": 25000, "share": 0.25},
        {"client": "sub-3", "received": 25000, "share": 0.25}]}]
    })");
}

/// What `tern-bench conn` prints when every connection succeeded: no messages, no latency.
json minimal_document() {
    return json::parse(R"({
      "tool": "tern-bench", "version": "0.1.0", "mode": "conn", "scenario": "",
      "target": {"host": "127.0.0.1", "port": 1883, "tls": false, "protocol": 4},
      "started_at": "2026-11-26T14:00:00Z", "duration_s": 5.0, "warmup_s": 0.0,
      "totals": {"connections_ok": 100, "connections_failed": 0, "failures_by_reason": {},
                 "sent": 0, "acked": 0, "received": 0, "lost": 0, "duplicates": 0,
                 "reordered": 0, "foreign": 0, "send_rate": 0, "recv_rate": 0,
                 "bytes_sent": 0, "bytes_received": 0}
    })");
}

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

} // namespace

TEST_CASE("a full document yields every section", "[bench][html_report]") {
    const std::string page = render_html_report(full_document());

    CHECK(page.rfind("<!DOCTYPE html>", 0) == 0);
    CHECK(contains(page, "</html>"));
    CHECK(contains(page, "<title>tern-bench: shared-balance</title>"));
    // Header: scenario, target, date.
    CHECK(contains(page, "127.0.0.1:18830 (plain TCP), MQTT 5"));
    CHECK(contains(page, "2026-11-26T14:00:00Z"));
    // Totals, with lost and reordered flagged.
    CHECK(contains(page, "id=\"totals\""));
    CHECK(contains(page, "<th>sent</th><td>100,000</td>"));
    CHECK(contains(page, "<tr class=\"bad\"><th>lost</th><td>10</td></tr>"));
    CHECK(contains(page, "<tr><th>duplicates</th><td>0</td></tr>"));
    CHECK(contains(page, "<tr class=\"bad\"><th>reordered</th><td>3</td></tr>"));
    CHECK(contains(page, "id=\"failures\""));
    CHECK(contains(page, "connack 0x87 not authorized"));
    // Charts over time, warm-up shaded.
    CHECK(contains(page, "id=\"rates\""));
    CHECK(contains(page, "class=\"series s-send\""));
    CHECK(contains(page, "class=\"series s-recv\""));
    CHECK(contains(page, "id=\"latency-timeline\""));
    CHECK(contains(page, "class=\"series s-p99\""));
    CHECK(contains(page, "<rect class=\"warmup\""));
    // Connections drop from 5 to 4 and one error is reported: drawn.
    CHECK(contains(page, "id=\"connections-timeline\""));
    // Distribution: one bar per bucket, percentile markers.
    CHECK(contains(page, "id=\"latency\""));
    CHECK(occurrences(page, "<rect class=\"bar\"") == 8);
    CHECK(contains(page, ">p99.9 4.20 ms</text>"));
    CHECK(contains(page, ">p50 250 µs</text>"));
    CHECK(contains(page, "<td>99,990</td>"));
    // Acknowledgement and CONNACK latency, the shared group.
    CHECK(contains(page, "id=\"ack\""));
    CHECK(contains(page, "id=\"connack\""));
    CHECK(contains(page, "<p class=\"description\">4 backends in one $share group</p>"));
    CHECK(contains(page, "<th>connect rate (connects/s)</th><td>950.5 /s</td>"));
    CHECK(contains(page, "<tr><th>errors</th><td>0</td></tr>"));
    CHECK(contains(page, "id=\"groups\""));
    CHECK(occurrences(page, "<rect class=\"bar share\"") == 4);
    CHECK(contains(page, "even share 25.0 %"));
    CHECK(contains(page, ">sub-1</text>"));
    // Self-contained: no script, no fetched resource.
    const std::string l = lower(page);
    CHECK_FALSE(contains(l, "<script"));
    CHECK_FALSE(contains(l, "<link"));
    CHECK_FALSE(contains(l, " src="));
    CHECK_FALSE(contains(l, "href="));
    CHECK(contains(page, "Content-Security-Policy"));
}

TEST_CASE("absent sections are omitted, not drawn empty", "[bench][html_report]") {
    const std::string page = render_html_report(minimal_document());

    CHECK(contains(page, "id=\"totals\""));
    CHECK(contains(page, "<th>connections ok</th><td>100</td>"));
    CHECK_FALSE(contains(page, "id=\"failures\""));
    CHECK_FALSE(contains(page, "id=\"rates\""));
    CHECK_FALSE(contains(page, "id=\"latency-timeline\""));
    CHECK_FALSE(contains(page, "id=\"connections-timeline\""));
    CHECK_FALSE(contains(page, "id=\"latency\""));
    CHECK_FALSE(contains(page, "id=\"connack\""));
    CHECK_FALSE(contains(page, "id=\"ack\""));
    CHECK_FALSE(contains(page, "id=\"groups\""));
    CHECK_FALSE(contains(page, "class=\"description\""));
    CHECK_FALSE(contains(page, "<svg"));
    // An empty scenario name falls back to the mode.
    CHECK(contains(page, "<h1>tern-bench: conn</h1>"));
    CHECK(contains(page, "MQTT 3.1.1"));

    SECTION("a timeline without latency fields draws rates only") {
        json doc = minimal_document();
        doc["timeline"] = json::array(
            {{{"t", 1}, {"connections", 100}, {"send_rate", 0}, {"recv_rate", 0}, {"errors", 0}}});
        const std::string p = render_html_report(doc);
        CHECK(contains(p, "id=\"rates\""));
        CHECK_FALSE(contains(p, "id=\"latency-timeline\""));
        CHECK_FALSE(contains(p, "id=\"connections-timeline\""));
        CHECK_FALSE(contains(p, "<rect class=\"warmup\""));
    }
    SECTION("latency stats without a histogram: table, no distribution chart") {
        json doc = minimal_document();
        doc["latency_us"] = {{"count", 3}, {"min", 1}, {"p50", 2}, {"max", 3}};
        const std::string p = render_html_report(doc);
        CHECK(contains(p, "id=\"latency\""));
        CHECK_FALSE(contains(p, "<svg"));
    }
    SECTION("groups without members and empty arrays are omitted") {
        json doc = minimal_document();
        doc["groups"] = json::array({{{"name", "g"}, {"filter", "f"}, {"members", json::array()}}});
        doc["histogram"] = json::array();
        doc["timeline"] = json::array();
        const std::string p = render_html_report(doc);
        CHECK_FALSE(contains(p, "id=\"groups\""));
        CHECK_FALSE(contains(p, "<svg"));
    }
}

TEST_CASE("strings from the document are escaped", "[bench][html_report]") {
    json doc = full_document();
    doc["scenario"] = "<script>alert(1)</script>";
    doc["target"]["host"] = "\"><img src=x onerror=alert(2)>";
    doc["started_at"] = "<b>now</b>";
    doc["description"] = "<iframe src=x>";
    doc["totals"]["failures_by_reason"] = {{"<script>bad()</script>", 2}};
    doc["groups"][0]["name"] = "<script>g</script>";
    doc["groups"][0]["filter"] = "a/'&'/#";
    doc["groups"][0]["members"][0]["client"] = "<script>c</script>";
    const std::string page = render_html_report(doc);

    CHECK_FALSE(contains(lower(page), "<script"));
    CHECK_FALSE(contains(page, "<img"));
    CHECK_FALSE(contains(page, "<b>now"));
    CHECK_FALSE(contains(page, "<iframe"));
    CHECK(contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;"));
    CHECK(contains(page, "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"));
    CHECK(contains(page, "a/&#39;&amp;&#39;/#"));
    CHECK(contains(page, "&lt;script&gt;c&lt;/script&gt;"));
}

TEST_CASE("malformed documents render without throwing", "[bench][html_report]") {
    CHECK_NOTHROW(render_html_report(json()));
    CHECK_NOTHROW(render_html_report(json::array({1, 2})));
    CHECK_NOTHROW(render_html_report(json::parse(R"({
        "scenario": 5, "target": "nowhere", "totals": {"sent": "many", "lost": null},
        "latency_us": [], "histogram": [[0, 5], ["x", 1], [10], 7, [-4, 3], [100, -1]],
        "timeline": [{"t": "soon"}, 3, {"t": 1, "send_rate": "fast"}],
        "groups": [{"members": [1, {"client": 7}]}],
        "connack_latency_us": {"p50": "quick"}
    })")));
    // Invalid UTF-8 in a client id must not make the raw-JSON dump throw.
    json doc = full_document();
    doc["groups"][0]["members"][0]["client"] = std::string("bad\xff\xfe");
    CHECK_NOTHROW(render_html_report(doc));
    // Extreme values: a flat line at 1e17 and buckets spanning 300 decades still terminate.
    json extreme = minimal_document();
    extreme["timeline"] =
        json::array({{{"t", 1}, {"send_rate", 1e17}}, {{"t", 2}, {"send_rate", 1e17}}});
    extreme["histogram"] = json::array({json::array({1e-3, 1}), json::array({1e300, 1})});
    const std::string extreme_page = render_html_report(extreme);
    CHECK(contains(extreme_page, "id=\"rates\""));
    CHECK(occurrences(extreme_page, "<rect class=\"bar\"") == 2);
    // A fine-grained histogram (1000 buckets 0.5 % apart, 2.2 decades) is drawn merged into
    // 20 bins per decade.
    json fine = minimal_document();
    fine["histogram"] = json::array();
    double ub = 100;
    for (int i = 0; i < 1000; ++i, ub *= 1.005) {
        fine["histogram"].push_back(json::array({ub, 1}));
    }
    const auto bars = occurrences(render_html_report(fine), "<rect class=\"bar\"");
    CHECK(bars >= 43);
    CHECK(bars <= 46);
    // The only usable histogram entry still makes a one-bar chart.
    json one = minimal_document();
    one["histogram"] = json::array({json::array({300, 4})});
    CHECK(occurrences(render_html_report(one), "<rect class=\"bar\"") == 1);
}

TEST_CASE("write_html_report writes the page or names the failure", "[bench][html_report]") {
    const json doc = full_document();

    SECTION("writable path") {
        const auto path = std::filesystem::temp_directory_path() /
                          ("tern_html_report_test_" + std::to_string(::getpid()) + ".html");
        CHECK(write_html_report(doc, path.string()).empty());
        CHECK(read_file(path) == render_html_report(doc));
        std::filesystem::remove(path);
    }
    SECTION("directory that does not exist") {
        const std::string path = "/nonexistent-tern-dir/sub/report.html";
        const std::string error = write_html_report(doc, path);
        REQUIRE_FALSE(error.empty());
        CHECK(contains(error, path));
        CHECK(contains(error, "No such file or directory"));
    }
    SECTION("path is a directory") {
        const std::string path = std::filesystem::temp_directory_path().string();
        const std::string error = write_html_report(doc, path);
        REQUIRE_FALSE(error.empty());
        CHECK(contains(error, path));
    }
}
