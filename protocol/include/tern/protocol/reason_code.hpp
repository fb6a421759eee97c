#pragma once
/// MQTT 5 reason codes [MQTT-2.4], the 3.1.1 CONNACK/SUBACK return codes mapped onto them,
/// and an error_category so that a reason code can travel as a boost::system::error_code.
///
/// Thread contract: plain values and a stateless category; thread-safe.

#include <boost/system/error_code.hpp>

#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>

#include <tern/protocol/types.hpp>

namespace tern::protocol {

/// Every reason code of MQTT 5.0 section 2.4. The value 0x00 has three names in the
/// specification (Success, Normal disconnection, Granted QoS 0); they share one enumerator.
enum class reason_code : std::uint8_t {
    success = 0x00,
    normal_disconnection = 0x00,
    granted_qos_0 = 0x00,
    granted_qos_1 = 0x01,
    granted_qos_2 = 0x02,
    disconnect_with_will_message = 0x04,
    no_matching_subscribers = 0x10,
    no_subscription_existed = 0x11,
    continue_authentication = 0x18,
    re_authenticate = 0x19,
    unspecified_error = 0x80,
    malformed_packet = 0x81,
    protocol_error = 0x82,
    implementation_specific_error = 0x83,
    unsupported_protocol_version = 0x84,
    client_identifier_not_valid = 0x85,
    bad_user_name_or_password = 0x86,
    not_authorized = 0x87,
    server_unavailable = 0x88,
    server_busy = 0x89,
    banned = 0x8A,
    server_shutting_down = 0x8B,
    bad_authentication_method = 0x8C,
    keep_alive_timeout = 0x8D,
    session_taken_over = 0x8E,
    topic_filter_invalid = 0x8F,
    topic_name_invalid = 0x90,
    packet_identifier_in_use = 0x91,
    packet_identifier_not_found = 0x92,
    receive_maximum_exceeded = 0x93,
    topic_alias_invalid = 0x94,
    packet_too_large = 0x95,
    message_rate_too_high = 0x96,
    quota_exceeded = 0x97,
    administrative_action = 0x98,
    payload_format_invalid = 0x99,
    retain_not_supported = 0x9A,
    qos_not_supported = 0x9B,
    use_another_server = 0x9C,
    server_moved = 0x9D,
    shared_subscriptions_not_supported = 0x9E,
    connection_rate_exceeded = 0x9F,
    maximum_connect_time = 0xA0,
    subscription_identifiers_not_supported = 0xA1,
    wildcard_subscriptions_not_supported = 0xA2,
};

/// Reason codes of 0x80 and above report failure [MQTT-2.4].
constexpr bool is_failure(reason_code rc) noexcept {
    return static_cast<std::uint8_t>(rc) >= 0x80;
}

/// The specification's name ("Packet too large"); "Unknown reason code" for values it lacks.
std::string_view to_string(reason_code rc) noexcept;

/// True when `rc` is a value section 2.4 defines at all.
bool is_defined(reason_code rc) noexcept;

/// True when `rc` may appear in a packet of type `t` according to the tables of MQTT 5
/// sections 3.2.2.2 (CONNACK), 3.4.2.1 (PUBACK), 3.5.2.1 (PUBREC), 3.6.2.1 (PUBREL),
/// 3.7.2.1 (PUBCOMP), 3.9.3 (SUBACK), 3.11.3 (UNSUBACK), 3.14.2.1 (DISCONNECT), 3.15.2.1 (AUTH).
bool is_allowed_in(reason_code rc, packet_type t) noexcept;

/// MQTT 3.1.1 CONNACK return code for a v5 reason code [MQTT-3.2.2.3]. Failures without a
/// 3.1.1 equivalent become 3 (Server unavailable), the generic "try later" answer.
std::uint8_t to_v3_connack_return_code(reason_code rc) noexcept;
/// The reason code for a 3.1.1 CONNACK return code 0..5; nullopt for reserved values 6..255.
std::optional<reason_code> from_v3_connack_return_code(std::uint8_t rc) noexcept;

/// MQTT 3.1.1 SUBACK return code (0, 1, 2 or 0x80 Failure) for a v5 reason code.
std::uint8_t to_v3_suback_return_code(reason_code rc) noexcept;

/// The error_category of reason codes: error_code{int(rc), reason_code_category()}.
const boost::system::error_category& reason_code_category() noexcept;

inline boost::system::error_code make_error_code(reason_code rc) noexcept {
    return {static_cast<int>(rc), reason_code_category()};
}

} // namespace tern::protocol

template <>
struct boost::system::is_error_code_enum<tern::protocol::reason_code> : std::true_type {};
