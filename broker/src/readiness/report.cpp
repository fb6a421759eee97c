// The readiness report's model: what each finding means, its JSON form and its renderings.
#include <tern/broker/readiness.hpp>

#include <tern/core/html.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <limits>
#include <stdexcept>

namespace tern::broker {

namespace {

// Facts and their sources: ../shared/aws-iot-core.md and docs/aws-iot-sources.md.
constexpr std::array<readiness_finding_info, readiness_finding_count> finding_table{{
    {"qos2_publish", "QoS 2 publishes",
     "QoS 2 is not supported: the PUBLISH gets no PUBREC and is dropped (MQTT 5: DISCONNECT "
     "0x9B); a QoS 2 will refuses the CONNECT",
     "publish at QoS 1 and make the consumer idempotent (QoS 1 may deliver twice)", true},
    {"qos2_subscribe", "QoS 2 subscriptions", "a SUBSCRIBE asking for QoS 2 gets no SUBACK at all",
     "subscribe at QoS 1", true},
    {"payload_too_large", "Payloads over 128 KiB",
     "PUBLISH over 128 KiB is refused (packet too large)",
     "split the payload, or put it in S3 and publish a reference", true},
    {"topic_too_long", "Topics or filters over 256 bytes",
     "refused: topic names and filters are at most 256 bytes ($aws/rules/<rule>/ and "
     "$share/<name>/ not counted)",
     "shorten the topic scheme", true},
    {"topic_too_deep", "Topics or filters with more than 7 slashes",
     "refused: at most 7 forward slashes (8 levels)", "flatten the topic scheme", true},
    {"reserved_topic", "Reserved $ topics AWS does not serve",
     "clients cannot publish or subscribe to $ topics other than AWS's own $aws/... families "
     "(there is no $SYS)",
     "use CloudWatch metrics and lifecycle events ($aws/events/...) instead of $SYS", true},
    {"client_id_too_long", "Client ids over 128 bytes", "CONNECT refused", "shorten the client id",
     true},
    {"client_id_reserved", "Client ids starting with $",
     "CONNECT refused: the $ prefix is reserved for ids AWS generates", "rename the client", true},
    {"client_id_not_thing_name", "Client ids that are not valid thing names",
     "allowed, but a thing name is [a-zA-Z0-9:_-]{1,128}: policies using "
     "${iot:Connection.Thing.ThingName} and thing-to-connection association cannot use it",
     "map these client ids to thing names (registry), or write policies on "
     "${iot:ClientId}",
     false},
    {"subscribe_over_8_filters", "SUBSCRIBE with more than 8 filters",
     "every filter of the SUBSCRIBE is refused (0x97)", "send at most 8 filters per SUBSCRIBE",
     true},
    {"connection_over_50_subscriptions", "More than 50 subscriptions on a connection",
     "the 51st subscription is refused and the connection may be closed",
     "use wildcards or fewer, broader filters", true},
    {"publish_rate_over_100", "Connections over 100 publishes a second",
     "publishes over 100 a second per connection (inbound and outbound together) are discarded",
     "spread the load over more connections or batch messages", true},
    {"byte_rate_over_512k", "Connections over 512 KiB a second",
     "throughput over 512 KiB a second per connection is delayed",
     "spread the load over more connections", false},
    {"keep_alive_out_of_range", "Keep-alive outside 30..1200 s",
     "0 and values over 1200 become 1200, values under 30 become 30",
     "set keep-alive between 30 and 1200 s if the device depends on its value", false},
    {"session_expiry_over_7_days", "Session expiry over 7 days",
     "persistent sessions end after at most 7 days (default 1 h, adjustable)",
     "request a longer session expiry quota or reconnect within it", false},
    {"retained_via_wildcard", "Retained messages received through wildcard or shared filters",
     "retained messages are sent on SUBSCRIBE for exact-match filters only",
     "subscribe to the exact topics whose retained value is needed, or use device shadows", true},
    {"hash_matches_parent", "`a/#` relied on to match `a`",
     "`a/#` matches `a/` and below but not `a` itself", "also subscribe to `a`", true},
    {"enhanced_auth", "MQTT 5 enhanced authentication (AUTH)", "AUTH is not supported",
     "use X.509 client certificates or a custom authorizer", true},
    {"subscription_identifiers", "MQTT 5 subscription identifiers",
     "not supported: CONNACK says Subscription Identifier Available 0 and a SUBSCRIBE with one "
     "is disconnected (0xA1)",
     "match incoming topics in the client instead", true},
    {"topic_alias_over_8", "Topic aliases above 8",
     "the Topic Alias Maximum is 8: a higher alias is a protocol error (DISCONNECT 0x94)",
     "keep aliases at 8 or fewer", true},
}};

constexpr std::array<readiness_quota_info, readiness_quota_count> quota_table{{
    {"connections", "Concurrent connections", 500'000},
    {"connects_per_second", "Connect requests per second", 500},
    {"inbound_publishes_per_second", "Inbound publish requests per second", 20'000},
    {"outbound_publishes_per_second", "Outbound publish requests per second", 20'000},
    {"subscriptions", "Subscriptions", 500'000},
    {"subscriptions_per_second", "Subscriptions per second", 500},
}};

std::string utc(std::int64_t ms) {
    if (ms <= 0) {
        return "-";
    }
    const std::time_t t = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    return fmt::format("{}Z", buf);
}

/// Findings worst first: blocking ones, then by count.
std::vector<readiness_finding> seen_in_order(const readiness_report& r) {
    std::vector<readiness_finding> seen;
    for (std::size_t i = 0; i < readiness_finding_count; ++i) {
        if (r.findings[i].count > 0) {
            seen.push_back(static_cast<readiness_finding>(i));
        }
    }
    std::stable_sort(seen.begin(), seen.end(), [&](auto a, auto b) {
        if (info(a).blocking != info(b).blocking) {
            return info(a).blocking;
        }
        return r[a].count > r[b].count;
    });
    return seen;
}

/// Client ids and topics are arbitrary UTF-8 (with control characters): printed quoted and
/// escaped so a terminal shows what was there.
std::string printable(std::string_view s) {
    std::string out;
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c == 0x7F) {
            out += fmt::format("\\x{:02x}", c);
        } else {
            out += ch;
        }
    }
    if (out.size() > 120) {
        std::size_t end = 117;
        while (end > 0 && (static_cast<unsigned char>(out[end]) & 0xC0) == 0x80) {
            --end; // cut between UTF-8 characters, not inside one
        }
        out = out.substr(0, end) + "...";
    }
    return out;
}

std::string with_separators(std::uint64_t n) {
    auto digits = fmt::format("{}", n);
    std::string out;
    const auto len = digits.size();
    for (std::size_t i = 0; i < len; ++i) {
        if (i > 0 && (len - i) % 3 == 0) {
            out += ',';
        }
        out += digits[i];
    }
    return out;
}

/// A field of the report that must be an integer of type T: absent gives `fallback`; a
/// float, string or out-of-range value throws (a cast of 1e300 to an integer is undefined).
template <typename T> T integer_field(const nlohmann::json& j, const char* key, T fallback) {
    const auto it = j.find(key);
    if (it == j.end()) {
        return fallback;
    }
    if (it->is_number_unsigned()) {
        const auto v = it->get<std::uint64_t>();
        if (v <= static_cast<std::uint64_t>(std::numeric_limits<T>::max())) {
            return static_cast<T>(v);
        }
    } else if (it->is_number_integer()) {
        const auto v = it->get<std::int64_t>();
        if (v >= 0 || std::numeric_limits<T>::is_signed) {
            return static_cast<T>(v);
        }
    }
    throw std::invalid_argument(fmt::format("\"{}\" is not an integer in range", key));
}

} // namespace

using core::html_escape;

const readiness_finding_info& info(readiness_finding f) noexcept {
    return finding_table[static_cast<std::size_t>(f)];
}

const readiness_quota_info& info(readiness_quota q) noexcept {
    return quota_table[static_cast<std::size_t>(q)];
}

std::optional<readiness_finding> readiness_finding_from_key(std::string_view key) noexcept {
    for (std::size_t i = 0; i < readiness_finding_count; ++i) {
        if (finding_table[i].key == key) {
            return static_cast<readiness_finding>(i);
        }
    }
    return std::nullopt;
}

std::uint64_t readiness_peak::increase_to() const noexcept {
    if (peak <= aws_default) {
        return 0;
    }
    // Peak + 25%, rounded up to two significant digits: 612 -> 770, 23'456 -> 30'000.
    const auto wanted = static_cast<double>(peak) * 1.25;
    const auto magnitude = std::pow(10.0, std::floor(std::log10(wanted)) - 1);
    const auto rounded = std::ceil(wanted / magnitude) * magnitude;
    if (rounded >= 18'000'000'000'000'000'000.0) {
        return std::numeric_limits<std::uint64_t>::max(); // only a forged report gets here
    }
    return static_cast<std::uint64_t>(rounded);
}

bool readiness_report::clean() const noexcept {
    return std::all_of(findings.begin(), findings.end(), [](auto& f) { return f.count == 0; }) &&
           std::all_of(peaks.begin(), peaks.end(), [](auto& p) { return p.increase_to() == 0; });
}

std::string to_json(const readiness_report& report) {
    nlohmann::ordered_json j;
    j["since_ms"] = report.since_ms;
    j["generated_ms"] = report.generated_ms;
    auto& findings = j["findings"] = nlohmann::ordered_json::object();
    for (std::size_t i = 0; i < readiness_finding_count; ++i) {
        const auto& r = report.findings[i];
        if (r.count == 0) {
            continue;
        }
        auto& f = findings[std::string(finding_table[i].key)];
        f["count"] = r.count;
        f["first_seen_ms"] = r.first_seen_ms;
        f["last_seen_ms"] = r.last_seen_ms;
        f["blocking"] = finding_table[i].blocking;
        auto& samples = f["samples"] = nlohmann::ordered_json::array();
        for (const auto& s : r.samples) {
            nlohmann::ordered_json sample = {{"client_id", s.client_id}};
            if (!s.topic.empty()) {
                sample["topic"] = s.topic;
            }
            if (!s.detail.empty()) {
                sample["detail"] = s.detail;
            }
            samples.push_back(std::move(sample));
        }
    }
    auto& peaks = j["account"] = nlohmann::ordered_json::object();
    for (std::size_t i = 0; i < readiness_quota_count; ++i) {
        const auto& p = report.peaks[i];
        peaks[std::string(quota_table[i].key)] = {{"peak", p.peak},
                                                  {"at_ms", p.at_ms},
                                                  {"aws_default", p.aws_default},
                                                  {"increase_to", p.increase_to()}};
    }
    j["clean"] = report.clean();
    // Client ids and topics need not be valid UTF-8: replace rather than throw.
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

readiness_parse_result readiness_report_from_json(std::string_view json) {
    readiness_parse_result out;
    auto j = nlohmann::json::parse(json, nullptr, false);
    if (j.is_discarded()) {
        out.error = "not JSON";
        return out;
    }
    if (!j.is_object() || !j.contains("findings") || !j["findings"].is_object()) {
        out.error = "not a readiness report: no \"findings\" object";
        return out;
    }
    readiness_report r;
    try {
        r.since_ms = integer_field(j, "since_ms", std::int64_t{0});
        r.generated_ms = integer_field(j, "generated_ms", std::int64_t{0});
        for (const auto& [key, f] : j["findings"].items()) {
            const auto which = readiness_finding_from_key(key);
            if (!which || !f.is_object()) {
                continue;
            }
            auto& rec = r[*which];
            rec.count = integer_field(f, "count", std::uint64_t{0});
            rec.first_seen_ms = integer_field(f, "first_seen_ms", std::int64_t{0});
            rec.last_seen_ms = integer_field(f, "last_seen_ms", std::int64_t{0});
            if (f.contains("samples") && f["samples"].is_array()) {
                for (const auto& s : f["samples"]) {
                    if (s.is_object() && rec.samples.size() < readiness_sample_limit) {
                        rec.samples.push_back({s.value("client_id", std::string{}),
                                               s.value("topic", std::string{}),
                                               s.value("detail", std::string{})});
                    }
                }
            }
        }
        for (std::size_t i = 0; i < readiness_quota_count; ++i) {
            r.peaks[i].aws_default = quota_table[i].aws_default;
        }
        if (j.contains("account") && j["account"].is_object()) {
            for (std::size_t i = 0; i < readiness_quota_count; ++i) {
                const auto key = std::string(quota_table[i].key);
                if (j["account"].contains(key) && j["account"][key].is_object()) {
                    const auto& p = j["account"][key];
                    r.peaks[i].peak = integer_field(p, "peak", std::uint64_t{0});
                    r.peaks[i].at_ms = integer_field(p, "at_ms", std::int64_t{0});
                    r.peaks[i].aws_default =
                        integer_field(p, "aws_default", quota_table[i].aws_default);
                }
            }
        }
    } catch (const std::exception& e) {
        // nlohmann's type errors (a string where an object belongs) and integer_field's.
        out.error = fmt::format("not a readiness report: {}", e.what());
        return out;
    }
    out.report = std::move(r);
    return out;
}

std::string render_text(const readiness_report& r) {
    std::string out;
    out += fmt::format("AWS IoT Core readiness report\nobserved from {} to {}\n\n", utc(r.since_ms),
                       utc(r.generated_ms));
    const auto seen = seen_in_order(r);
    if (seen.empty()) {
        out += "No findings: nothing seen in this traffic breaks or is throttled on AWS IoT "
               "Core.\n";
    }
    for (const auto f : seen) {
        const auto& i = info(f);
        const auto& rec = r[f];
        out += fmt::format("[{}] {}: {} {}, first {}, last {}\n", i.blocking ? "BREAKS" : "DIFFERS",
                           i.title, with_separators(rec.count), rec.count == 1 ? "time" : "times",
                           utc(rec.first_seen_ms), utc(rec.last_seen_ms));
        out += fmt::format("    on AWS: {}\n    to do:  {}\n", i.on_aws, i.remedy);
        for (const auto& s : rec.samples) {
            out += fmt::format("    client '{}'", printable(s.client_id));
            if (!s.topic.empty()) {
                out += fmt::format("  topic '{}'", printable(s.topic));
            }
            if (!s.detail.empty()) {
                out += fmt::format("  ({})", printable(s.detail));
            }
            out += '\n';
        }
        if (rec.samples.size() >= readiness_sample_limit) {
            out += fmt::format("    (the first {} distinct ones)\n", rec.samples.size());
        }
        out += '\n';
    }
    out += "Account quotas (peak seen vs AWS default):\n";
    for (std::size_t q = 0; q < readiness_quota_count; ++q) {
        const auto& p = r.peaks[q];
        const auto increase = p.increase_to();
        out += fmt::format("  {:<38} peak {:>10}  default {:>9}  {}\n", quota_table[q].title,
                           with_separators(p.peak), with_separators(p.aws_default),
                           increase != 0
                               ? fmt::format("REQUEST an increase to {}", with_separators(increase))
                               : std::string("ok"));
    }
    return out;
}

std::string render_html(const readiness_report& r) {
    std::string out;
    out += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<title>AWS IoT Core readiness report</title><style>"
           "body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}"
           "h1{font-size:1.5em}table{border-collapse:collapse;width:100%;margin:1em 0}"
           "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}"
           "th{background:#f3f3f3}.breaks{color:#b00;font-weight:bold}.differs{color:#a60}"
           ".ok{color:#070}code{background:#f6f6f6;padding:0 .2em;word-break:break-all}"
           "</style></head><body>\n<h1>AWS IoT Core readiness report</h1>\n";
    out += fmt::format("<p>Observed from {} to {}.</p>\n", utc(r.since_ms), utc(r.generated_ms));
    const auto seen = seen_in_order(r);
    if (seen.empty()) {
        out += "<p class=\"ok\" id=\"clean\">No findings: nothing seen in this traffic breaks or "
               "is throttled on AWS IoT Core.</p>\n";
    } else {
        std::uint64_t most = 1;
        for (const auto f : seen) {
            most = std::max(most, r[f].count);
        }
        out += "<h2>Findings</h2>\n<table><tr><th>Finding</th><th>Count</th><th>Seen</th>"
               "<th>On AWS IoT Core</th><th>To do</th><th>Sample</th></tr>\n";
        for (const auto f : seen) {
            const auto& i = info(f);
            const auto& rec = r[f];
            // Bar length on a log scale, so one flood does not hide the rare findings.
            const double share = std::log10(1.0 + static_cast<double>(rec.count)) /
                                 std::log10(1.0 + static_cast<double>(most));
            out += fmt::format(
                "<tr id=\"{}\"><td class=\"{}\">{}</td><td>{}<br><svg width=\"100\" height=\"8\" "
                "role=\"img\" aria-label=\"{} times\"><rect width=\"{:.0f}\" height=\"8\" "
                "fill=\"{}\"/></svg></td><td>{}<br>{}</td><td>{}</td><td>{}</td><td>",
                i.key, i.blocking ? "breaks" : "differs", html_escape(i.title),
                with_separators(rec.count), rec.count, std::max(2.0, share * 100.0),
                i.blocking ? "#b00" : "#a60", utc(rec.first_seen_ms), utc(rec.last_seen_ms),
                html_escape(i.on_aws), html_escape(i.remedy));
            for (const auto& s : rec.samples) {
                out += fmt::format("<code>{}</code>", html_escape(s.client_id));
                if (!s.topic.empty()) {
                    out += fmt::format(" &rarr; <code>{}</code>", html_escape(s.topic));
                }
                if (!s.detail.empty()) {
                    out += fmt::format(" ({})", html_escape(s.detail));
                }
                out += "<br>";
            }
            out += "</td></tr>\n";
        }
        out += "</table>\n";
    }
    out += "<h2>Account quotas</h2>\n<table><tr><th>Quota</th><th>Peak seen</th><th>AWS "
           "default</th><th></th></tr>\n";
    for (std::size_t q = 0; q < readiness_quota_count; ++q) {
        const auto& p = r.peaks[q];
        const auto increase = p.increase_to();
        out += fmt::format("<tr id=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td>"
                           "</tr>\n",
                           quota_table[q].key, quota_table[q].title, with_separators(p.peak),
                           with_separators(p.aws_default), increase != 0 ? "breaks" : "ok",
                           increase != 0
                               ? fmt::format("request an increase to {}", with_separators(increase))
                               : std::string("ok"));
    }
    out += "</table>\n</body></html>\n";
    return out;
}

} // namespace tern::broker
