#pragma once
/// The migration readiness report: what in this broker's live traffic would break or be
/// throttled on AWS IoT Core, with the client ids and topics concerned (docs/readiness.md).
///
/// A passive observer on every worker (`readiness_report true`) records findings as packets
/// pass; once a second each worker merges what it saw into one report, which the broker
/// publishes as JSON on `$SYS/broker/readiness` every sys_interval and broker::readiness()
/// returns. `tern readiness-report` fetches that JSON (or reads a saved copy) and prints it as
/// text, JSON or a self-contained HTML page, with the functions below.
///
/// Thread contract: value types and pure functions; thread-safe.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tern::broker {

/// One kind of traffic AWS IoT Core refuses, throttles or treats differently. The numeric
/// values are not stable; the JSON uses readiness_finding_info::key.
enum class readiness_finding : std::uint8_t {
    qos2_publish,                     ///< PUBLISH or will at QoS 2
    qos2_subscribe,                   ///< SUBSCRIBE asking for QoS 2
    payload_too_large,                ///< PUBLISH payload over 128 KiB
    topic_too_long,                   ///< topic or filter over 256 bytes
    topic_too_deep,                   ///< topic or filter with more than 7 slashes
    reserved_topic,                   ///< `$` topic or filter AWS does not serve ($SYS, ...)
    client_id_too_long,               ///< client id over 128 bytes
    client_id_reserved,               ///< client id starting with `$`
    client_id_not_thing_name,         ///< client id that is not a valid thing name
    subscribe_over_8_filters,         ///< SUBSCRIBE with more than 8 filters
    connection_over_50_subscriptions, ///< a session holding more than 50 subscriptions
    publish_rate_over_100,            ///< over 100 PUBLISH a second on a connection (in + out)
    byte_rate_over_512k,              ///< over 512 KiB a second received on a connection
    keep_alive_out_of_range,          ///< keep-alive 0 or outside 30..1200 s
    session_expiry_over_7_days,       ///< MQTT 5 session expiry over 604,800 s
    retained_via_wildcard,            ///< retained messages sent for a wildcard/shared filter
    hash_matches_parent,              ///< `a/#` delivered a message published on `a`
    enhanced_auth,                    ///< MQTT 5 Authentication Method / AUTH
    subscription_identifiers,         ///< MQTT 5 Subscription Identifier in SUBSCRIBE
    topic_alias_over_8,               ///< inbound topic alias above AWS's maximum of 8
};
inline constexpr std::size_t readiness_finding_count =
    static_cast<std::size_t>(readiness_finding::topic_alias_over_8) + 1;

/// What a finding means, for the report.
struct readiness_finding_info {
    std::string_view key;    ///< stable JSON name, e.g. "qos2_publish"
    std::string_view title;  ///< one line: "QoS 2 publishes"
    std::string_view on_aws; ///< what AWS IoT Core does with it
    std::string_view remedy; ///< what to change before moving
    bool blocking = false;   ///< breaks on AWS (true) or only throttled/different (false)
};
/// Thread-safe; the views are static.
const readiness_finding_info& info(readiness_finding f) noexcept;
/// The finding named `key`; nullopt for an unknown name.
std::optional<readiness_finding> readiness_finding_from_key(std::string_view key) noexcept;

/// One client id and the topic (or filter) it used, as seen.
struct readiness_sample {
    std::string client_id;
    std::string topic;  ///< the topic or filter; empty where the finding has none
    std::string detail; ///< the value that is out of AWS's range ("keep-alive 5"), or empty
    bool operator==(const readiness_sample&) const = default;
};

/// Per finding: how often, when first and last, and who (a bounded sample).
struct readiness_record {
    std::uint64_t count = 0;
    std::int64_t first_seen_ms = 0; ///< Unix time in ms; 0: never
    std::int64_t last_seen_ms = 0;
    std::vector<readiness_sample> samples; ///< distinct, at most readiness_sample_limit
};
inline constexpr std::size_t readiness_sample_limit = 10;
/// Longer client ids and topics are cut to this many bytes (ending in "...") in samples.
inline constexpr std::size_t readiness_sample_bytes = 256;

/// An account-level figure at its peak since the observer started, against AWS's default
/// quota (docs/aws-iot-profile.md; adjustable through AWS Service Quotas).
struct readiness_peak {
    std::uint64_t peak = 0;
    std::int64_t at_ms = 0; ///< when the peak was seen (Unix ms); 0: never
    std::uint64_t aws_default = 0;
    /// What to ask AWS for when peak exceeds the default: the peak plus 25% headroom,
    /// rounded up to two significant digits; 0 when the default suffices.
    std::uint64_t increase_to() const noexcept;
};

/// Which account-level figure.
enum class readiness_quota : std::uint8_t {
    connections,                   ///< concurrent connections (default 500,000)
    connects_per_second,           ///< CONNECT requests a second (default 500)
    inbound_publishes_per_second,  ///< PUBLISH from clients a second (default 20,000)
    outbound_publishes_per_second, ///< PUBLISH to clients a second (default 20,000)
    subscriptions,                 ///< subscriptions held (default 500,000)
    subscriptions_per_second,      ///< topic filters subscribed a second (default 500)
};
inline constexpr std::size_t readiness_quota_count =
    static_cast<std::size_t>(readiness_quota::subscriptions_per_second) + 1;
struct readiness_quota_info {
    std::string_view key;   ///< JSON name
    std::string_view title; ///< "Connect requests per second"
    std::uint64_t aws_default = 0;
};
const readiness_quota_info& info(readiness_quota q) noexcept;

/// The whole report.
struct readiness_report {
    std::int64_t since_ms = 0;     ///< when the observer started (Unix ms)
    std::int64_t generated_ms = 0; ///< when this copy was taken
    std::array<readiness_record, readiness_finding_count> findings{};
    std::array<readiness_peak, readiness_quota_count> peaks{};

    readiness_record& operator[](readiness_finding f) {
        return findings[static_cast<std::size_t>(f)];
    }
    const readiness_record& operator[](readiness_finding f) const {
        return findings[static_cast<std::size_t>(f)];
    }
    readiness_peak& operator[](readiness_quota q) { return peaks[static_cast<std::size_t>(q)]; }
    const readiness_peak& operator[](readiness_quota q) const {
        return peaks[static_cast<std::size_t>(q)];
    }
    /// No finding was seen and no peak exceeds its default.
    bool clean() const noexcept;
};

/// The report as one JSON object (docs/readiness.md gives the schema).
std::string to_json(const readiness_report& report);
/// Parses what to_json() wrote. Unknown findings and fields are ignored (a newer broker's
/// report still reads); errors: not JSON, or not an object with "findings" — the message
/// says which.
struct readiness_parse_result {
    std::optional<readiness_report> report;
    std::string error;
};
readiness_parse_result readiness_report_from_json(std::string_view json);

/// The report for a terminal: the findings that were seen, worst first, each with its count,
/// first/last seen, sample and remedy; then the account figures.
std::string render_text(const readiness_report& report);
/// The report as one self-contained HTML page (inline CSS and SVG bars, no scripts, no
/// external resources), escaped for any client id or topic.
std::string render_html(const readiness_report& report);

} // namespace tern::broker
