#pragma once
/// Topic names, topic filters and shared-subscription filters [MQTT-4.7], plus UTF-8 checks
/// [MQTT-1.5.4]. Pure functions: no allocation, no state.
///
/// Thread contract: thread-safe. Lifetime: returned views point into the argument.

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <string_view>

#include <tern/protocol/error.hpp>

namespace tern::protocol {

/// Well-formed UTF-8 without U+0000 and without surrogate code points (U+D800..U+DFFF)
/// [MQTT-1.5.4-1, MQTT-1.5.4-2]; overlong forms and code points above U+10FFFF are ill-formed.
bool is_valid_utf8(std::string_view s) noexcept;

/// A topic name a PUBLISH may carry: non-empty [MQTT-4.7.3-1], valid UTF-8, no '+' or '#'
/// [MQTT-4.7.1-1]. Returns codec_error::invalid_utf8 or codec_error::topic_name_invalid.
boost::system::error_code validate_topic_name(std::string_view topic) noexcept;

/// A topic filter split into its shared-subscription group (empty when not shared) and the
/// filter that is matched against topic names.
struct topic_filter_view {
    std::string_view share_group; ///< "{group}" of "$share/{group}/{filter}"; empty if not shared
    std::string_view filter;      ///< the filter proper
    bool is_shared() const noexcept { return !share_group.empty(); }
    friend bool operator==(const topic_filter_view&, const topic_filter_view&) = default;
};

/// Validates a topic filter and splits off "$share/{group}/". Rules: non-empty [MQTT-4.7.3-1];
/// '#' only as the whole last level [MQTT-4.7.1-2]; '+' only as a whole level [MQTT-4.7.1-3];
/// for "$share/": a non-empty group without '+', '#' or '/' followed by '/' and a non-empty
/// valid filter [MQTT-4.8.2-1, MQTT-4.8.2-2]. "$share" is treated as shared in every protocol
/// version, as AWS IoT Core and EMQX do. Errors: invalid_utf8, topic_filter_invalid.
boost::system::result<topic_filter_view> parse_topic_filter(std::string_view filter) noexcept;

/// True when `topic` (a valid topic name) matches `filter` (a valid, non-shared filter),
/// including the rule that wildcards in the first level do not match '$' topics [MQTT-4.7.2-1].
bool topic_matches(std::string_view filter, std::string_view topic) noexcept;

} // namespace tern::protocol
