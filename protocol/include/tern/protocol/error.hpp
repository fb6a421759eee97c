#pragma once
/// Decoding and encoding errors. Each names the precise fault, so logs say what was wrong, and
/// maps to the MQTT 5 reason code the broker sends in CONNACK or DISCONNECT (to_reason_code).
///
/// Thread contract: plain values and a stateless category; thread-safe.

#include <boost/system/error_code.hpp>

#include <cstdint>
#include <string_view>
#include <type_traits>

#include <tern/protocol/reason_code.hpp>

namespace tern::protocol {

/// Why bytes could not become a packet, or a packet could not become bytes.
/// `need_more` is not a failure: the input ended before a whole packet; feed more bytes.
enum class codec_error : std::uint8_t {
    need_more = 1,

    // Malformed Packet (0x81): the bytes do not follow the grammar.
    reserved_packet_type,            // type 0, or 15 (AUTH) before MQTT 5 [MQTT-2.1.2]
    invalid_fixed_header_flags,      // reserved flag bits wrong [MQTT-2.1.3-1]
    malformed_variable_byte_integer, // more than 4 bytes, or not minimal [MQTT-1.5.5-1]
    truncated_packet,                // a field runs past the Remaining Length
    trailing_bytes,                  // bytes left after the last field
    invalid_utf8,                    // ill-formed, U+0000, or a surrogate [MQTT-1.5.4-1..2]
    invalid_qos,                     // QoS 3 in PUBLISH, a will or a subscription [MQTT-3.3.1-4]
    reserved_connect_flag_set,       // CONNECT flags bit 0 [MQTT-3.1.2-3]
    invalid_will_flags,              // will QoS/retain without the will flag [MQTT-3.1.2-11]
    password_without_username,       // 3.1.1 only [MQTT-3.1.2-22]
    invalid_connack_flags,           // CONNACK acknowledge flags bits 7..1 [MQTT-3.2.2-1]
    unknown_property,                // identifier not in section 2.2.2.2
    property_not_allowed,            // property not valid for this packet type [MQTT-2.2.2.2]
    invalid_subscribe_options,       // reserved option bits set [MQTT-3.8.3-5]
    dup_flag_on_qos0,                // DUP set on a QoS 0 PUBLISH [MQTT-3.3.1-2]

    // Protocol Error (0x82): well-formed, but the specification forbids it.
    duplicate_property,        // a property that may appear once appeared twice
    invalid_property_value,    // e.g. Receive Maximum 0, Topic Alias 0, a 0/1 byte of 2
    zero_packet_identifier,    // [MQTT-2.2.1-3]
    empty_subscription_list,   // SUBSCRIBE/UNSUBSCRIBE without filters [MQTT-3.8.3-3, 3.10.3-2]
    invalid_retain_handling,   // retain handling 3 [MQTT-3.8.3.1]
    no_local_on_shared,        // No Local on a shared subscription [MQTT-3.8.3-4]
    empty_topic_without_alias, // v5 PUBLISH with an empty topic and no alias [MQTT-3.3.2-1]
    invalid_reason_code,       // reason code not allowed in this packet type
    unexpected_packet, // a packet the receiving side never accepts (e.g. CONNACK at a server)
    missing_authentication_method,    // Authentication Data or AUTH without a method
                                      // [MQTT-3.1.2.11.10, 3.15.2.2.2]
    property_not_allowed_from_sender, // e.g. Subscription Identifier from a client [MQTT-3.3.4-6]

    // Other reason codes.
    invalid_protocol_name,        // not "MQTT" (level 4/5) or "MQIsdp" (level 3) -> 0x84
    unsupported_protocol_version, // level not 3, 4 or 5 -> 0x84
    packet_too_large,             // over the configured maximum -> 0x95
    topic_name_invalid,           // empty or wildcard topic name -> 0x90
    topic_filter_invalid,         // misplaced '+'/'#', empty filter, bad $share -> 0x8F

    // Encoder only: the packet cannot be written as asked.
    buffer_too_small, // caller's buffer is shorter than encoded_size()
    string_too_long,  // a string or binary field over 65535 bytes
    not_encodable,    // value outside its range (QoS 3, a failure reason code in 3.1.1, ...)
};

/// The reason code a server (or client) sends when it meets this error: 0x81 for
/// grammar errors, 0x82 for protocol errors, and the specific code otherwise.
reason_code to_reason_code(codec_error e) noexcept;

/// A short, specific description ("UTF-8 string contains U+0000").
std::string_view to_string(codec_error e) noexcept;

/// The enumerator's own name ("invalid_utf8"), as logs, JSON output and the conformance
/// vectors spell errors; "unknown" for a value outside the enumeration.
std::string_view enumerator_name(codec_error e) noexcept;

const boost::system::error_category& codec_error_category() noexcept;

inline boost::system::error_code make_error_code(codec_error e) noexcept {
    return {static_cast<int>(e), codec_error_category()};
}

/// The reason code for any error_code produced by this library: codec errors map through
/// to_reason_code, reason codes map to themselves, anything else is Unspecified error.
reason_code to_reason_code(const boost::system::error_code& ec) noexcept;

} // namespace tern::protocol

template <>
struct boost::system::is_error_code_enum<tern::protocol::codec_error> : std::true_type {};
