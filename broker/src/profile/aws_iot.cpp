// AWS IoT Core's data-plane rules (see aws_iot.hpp). Sources for each value:
// docs/aws-iot-profile.md.
#include "profile/aws_iot.hpp"

#include <algorithm>
#include <array>
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

} // namespace tern::broker::aws_iot
