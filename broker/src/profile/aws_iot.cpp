// AWS IoT Core's data-plane rules (see aws_iot.hpp). Sources for each value:
// docs/aws-iot-profile.md.
#include "profile/aws_iot.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <span>

namespace tern::broker::aws_iot {

namespace {

using protocol::reason_code;

constexpr std::string_view share_prefix = "$share/";
constexpr std::string_view ingest_prefix = "$aws/rules/";

bool starts_with_any(std::string_view s, std::span<const std::string_view> prefixes) noexcept {
    return std::any_of(prefixes.begin(), prefixes.end(),
                       [s](std::string_view p) { return s.starts_with(p); });
}

/// Reserved families a device publishes to (reserved-topics.html): shadows, jobs and Device
/// Defender metrics live under the thing, then fleet provisioning, Basic Ingest and SiteWise.
constexpr std::array<std::string_view, 6> publishable = {"$aws/things/",
                                                         "$aws/certificates/create/",
                                                         "$aws/certificates/create-from-csr/",
                                                         "$aws/provisioning-templates/",
                                                         "$aws/rules/",
                                                         "$aws/sitewise/"};

/// Reserved families a device subscribes to: the responses of the above, and the lifecycle
/// and registry events AWS publishes. Basic Ingest reaches rules only, never subscribers.
constexpr std::array<std::string_view, 5> subscribable = {"$aws/things/", "$aws/certificates/",
                                                          "$aws/provisioning-templates/",
                                                          "$aws/events/", "$aws/sitewise/"};

} // namespace

std::string_view counted_part(std::string_view topic) noexcept {
    if (topic.starts_with(share_prefix)) {
        const auto slash = topic.find('/', share_prefix.size());
        topic = slash == std::string_view::npos ? std::string_view{} : topic.substr(slash + 1);
    }
    if (topic.starts_with(ingest_prefix)) {
        // `$aws/rules/<rule>/` is not counted; without a '/' after the rule name nothing is.
        const auto slash = topic.find('/', ingest_prefix.size());
        topic = slash == std::string_view::npos ? std::string_view{} : topic.substr(slash + 1);
    }
    return topic;
}

std::optional<refusal> check_topic_limits(std::string_view topic, bool filter) noexcept {
    if (filter && topic.starts_with(share_prefix)) {
        const auto name = topic.substr(share_prefix.size(),
                                       topic.find('/', share_prefix.size()) - share_prefix.size());
        if (name.size() > max_share_name_bytes) {
            return refusal{reason_code::topic_filter_invalid,
                           "shared subscription name longer than AWS IoT Core's 128 characters"};
        }
    }
    const auto counted = counted_part(topic);
    const auto invalid =
        filter ? reason_code::topic_filter_invalid : reason_code::topic_name_invalid;
    if (counted.size() > max_topic_bytes) {
        return refusal{invalid, "topic longer than AWS IoT Core's 256 bytes"};
    }
    if (static_cast<std::size_t>(std::count(counted.begin(), counted.end(), '/')) >
        max_topic_slashes) {
        return refusal{invalid, "topic with more than AWS IoT Core's 7 slashes"};
    }
    return std::nullopt;
}

std::optional<refusal> check_publish_topic(std::string_view topic, bool retain) noexcept {
    if (!topic.starts_with('$')) {
        return std::nullopt;
    }
    if (!starts_with_any(topic, publishable)) {
        return refusal{reason_code::not_authorized,
                       "a reserved topic AWS IoT Core does not let clients publish to"};
    }
    if (retain) {
        return refusal{reason_code::not_authorized,
                       "RETAIN on a reserved topic (AWS IoT Core refuses it)"};
    }
    return std::nullopt;
}

std::optional<refusal> check_subscribe_filter(std::string_view filter) noexcept {
    if (filter.starts_with(share_prefix)) {
        const auto slash = filter.find('/', share_prefix.size());
        filter = slash == std::string_view::npos ? std::string_view{} : filter.substr(slash + 1);
    }
    if (!filter.starts_with('$') || starts_with_any(filter, subscribable)) {
        return std::nullopt;
    }
    return refusal{reason_code::not_authorized,
                   "a reserved topic AWS IoT Core does not let clients subscribe to"};
}

std::optional<refusal> check_client_id(std::string_view client_id) noexcept {
    if (client_id.size() > max_client_id_bytes) {
        return refusal{reason_code::client_identifier_not_valid,
                       "client id longer than AWS IoT Core's 128 bytes"};
    }
    if (client_id.starts_with('$')) {
        return refusal{reason_code::client_identifier_not_valid,
                       "client id starting with '$' (AWS IoT Core keeps those for itself)"};
    }
    return std::nullopt;
}

std::uint16_t keep_alive(std::uint16_t requested) noexcept {
    if (requested == 0 || requested > max_keep_alive) {
        return max_keep_alive;
    }
    return std::max(requested, min_keep_alive);
}

std::uint32_t session_expiry(std::optional<std::uint32_t> v5_requested,
                             bool v311_persistent) noexcept {
    if (v5_requested) {
        return std::min(*v5_requested, max_session_expiry);
    }
    return v311_persistent ? default_session_expiry : 0;
}

bool sends_retained_on_subscribe(std::string_view filter) noexcept {
    return !filter.starts_with(share_prefix) &&
           filter.find_first_of("+#") == std::string_view::npos;
}

namespace {

/// `text` as a JSON string (quotes included): client ids and filters are UTF-8 and may hold
/// quotes, backslashes or control characters.
std::string json_string(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 2);
    out.push_back('"');
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            out.push_back('\\');
            out.push_back(ch);
        } else if (c < 0x20) {
            out += fmt::format("\\u{:04x}", c);
        } else {
            out.push_back(ch);
        }
    }
    out.push_back('"');
    return out;
}

/// The fields every lifecycle event starts with.
std::string common_fields(const lifecycle_client& c, std::int64_t timestamp_ms,
                          std::string_view event_type) {
    return fmt::format(R"("clientId":{},"timestamp":{},"eventType":"{}","sessionIdentifier":{},)"
                       R"("principalIdentifier":{})",
                       json_string(c.client_id), timestamp_ms, event_type,
                       json_string(c.session_identifier), json_string(c.principal_identifier));
}

} // namespace

void rate_bucket::refill(std::chrono::steady_clock::time_point now) noexcept {
    if (now > last_) {
        const std::chrono::duration<double> elapsed = now - last_;
        tokens_ = std::min(burst_, tokens_ + elapsed.count() * rate_);
        last_ = now;
    }
}

bool rate_bucket::take(std::chrono::steady_clock::time_point now) noexcept {
    refill(now);
    if (tokens_ < 1) {
        return false;
    }
    tokens_ -= 1;
    return true;
}

void rate_bucket::charge(std::chrono::steady_clock::time_point now, double n) noexcept {
    refill(now);
    tokens_ = std::max(tokens_ - n, -burst_);
}

bool rate_bucket::in_debt(std::chrono::steady_clock::time_point now) noexcept {
    refill(now);
    return tokens_ < 0;
}

std::uint32_t rate_bucket::take_up_to(std::chrono::steady_clock::time_point now,
                                      std::uint32_t n) noexcept {
    refill(now);
    if (tokens_ < 1) {
        return 0; // owing (after charge) or less than one whole token
    }
    const auto k =
        static_cast<std::uint32_t>(std::min(static_cast<double>(n), std::floor(tokens_)));
    tokens_ -= k;
    return k;
}

shared_rate::shared_rate(std::uint32_t per_second, std::chrono::steady_clock::time_point now)
    : per_second_(per_second), batch_(std::max<std::uint32_t>(1, per_second / 100)),
      bucket_(per_second, per_second, now) {}

std::uint32_t shared_rate::draw(std::chrono::steady_clock::time_point now, std::uint32_t n) {
    core::lock lock(mutex_);
    return bucket_.take_up_to(now, n);
}

void shared_rate::charge(std::chrono::steady_clock::time_point now, std::uint32_t n) {
    core::lock lock(mutex_);
    bucket_.charge(now, n);
}

bool rate_allowance::refill(shared_rate& account, std::chrono::steady_clock::time_point now) {
    if (now < retry_at_) {
        return false;
    }
    const std::uint32_t got = account.draw(now, account.batch() + owed_);
    if (got > owed_) {
        left_ = got - owed_;
        owed_ = 0;
        return true;
    }
    owed_ -= got;
    if (owed_ != 0) {
        account.charge(now, owed_); // the account owes it now: later draws wait for it
        owed_ = 0;
    }
    retry_at_ = now + std::chrono::milliseconds(10);
    return false;
}

bool connect_throttle::admit(std::string_view client_id,
                             std::chrono::steady_clock::time_point now) {
    constexpr auto window = std::chrono::seconds(1);
    core::lock lock(mutex_);
    if (last_.size() >= 65536) {
        std::erase_if(last_, [&](const auto& e) { return now - e.second >= window; });
    }
    const auto [it, fresh] = last_.try_emplace(std::string(client_id), now);
    if (fresh) {
        return true;
    }
    if (now - it->second < window) {
        return false;
    }
    it->second = now;
    return true;
}

bool has_lifecycle_events(std::string_view client_id) noexcept {
    return client_id.find_first_of("+#") == std::string_view::npos;
}

std::string connected_topic(std::string_view client_id) {
    return fmt::format("$aws/events/presence/connected/{}", client_id);
}

std::string connected_event(const lifecycle_client& c, std::int64_t timestamp_ms) {
    return fmt::format(R"({{{},"ipAddress":{},"versionNumber":{}}})",
                       common_fields(c, timestamp_ms, "connected"), json_string(c.ip_address),
                       c.version_number);
}

std::string disconnected_topic(std::string_view client_id) {
    return fmt::format("$aws/events/presence/disconnected/{}", client_id);
}

std::string disconnected_event(const lifecycle_client& c, std::int64_t timestamp_ms,
                               std::string_view reason, bool client_initiated) {
    return fmt::format(
        R"({{{},"clientInitiatedDisconnect":{},"disconnectReason":"{}","versionNumber":{}}})",
        common_fields(c, timestamp_ms, "disconnected"), client_initiated ? "true" : "false", reason,
        c.version_number);
}

std::string subscriptions_topic(std::string_view client_id, bool subscribed) {
    return fmt::format("$aws/events/subscriptions/{}/{}",
                       subscribed ? "subscribed" : "unsubscribed", client_id);
}

std::string subscriptions_event(const lifecycle_client& c, std::int64_t timestamp_ms,
                                bool subscribed, std::span<const std::string> filters) {
    std::string topics;
    for (const auto& f : filters) {
        if (!topics.empty()) {
            topics.push_back(',');
        }
        topics += json_string(f);
    }
    return fmt::format(R"({{{},"topics":[{}]}})",
                       common_fields(c, timestamp_ms, subscribed ? "subscribed" : "unsubscribed"),
                       topics);
}

std::string_view disconnect_reason(protocol::reason_code reason) noexcept {
    switch (reason) {
    case reason_code::session_taken_over:
        return "DUPLICATE_CLIENTID";
    case reason_code::keep_alive_timeout:
        return "MQTT_KEEP_ALIVE_TIMEOUT";
    case reason_code::server_shutting_down:
        return "SERVER_INITIATED_DISCONNECT";
    case reason_code::administrative_action:
        return "API_INITIATED_DISCONNECT";
    case reason_code::quota_exceeded:
    case reason_code::message_rate_too_high:
        return "THROTTLED";
    case reason_code::not_authorized:
        return "FORBIDDEN_ACCESS";
    case reason_code::unspecified_error:
    case reason_code::implementation_specific_error:
        return "SERVER_ERROR";
    default:
        return "CLIENT_ERROR"; // a protocol error, a packet too large, QoS 2, ...
    }
}

} // namespace tern::broker::aws_iot
