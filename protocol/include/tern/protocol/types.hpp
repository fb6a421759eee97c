#pragma once
/// Basic MQTT vocabulary shared by every packet: protocol levels, QoS, packet types, limits.
///
/// Thread contract: plain values, safe to share.

#include <cstdint>
#include <string_view>

namespace tern::protocol {

/// The protocol level byte of CONNECT. Level 3 is MQTT 3.1 ("MQIsdp"), which old device
/// generations still send; after CONNECT it behaves exactly as 3.1.1 on the wire.
enum class protocol_version : std::uint8_t {
    v3_1 = 3,
    v3_1_1 = 4,
    v5 = 5,
};

/// True for levels 3 and 4: no properties, no reason codes beyond the 3.1.1 return codes.
constexpr bool is_v3(protocol_version v) noexcept {
    return v != protocol_version::v5;
}

enum class qos : std::uint8_t {
    at_most_once = 0,
    at_least_once = 1,
    exactly_once = 2,
};

/// The 4-bit control packet type of the fixed header [MQTT-2.1.2]. 0 is reserved; 15 (AUTH)
/// exists only in MQTT 5.
enum class packet_type : std::uint8_t {
    connect = 1,
    connack = 2,
    publish = 3,
    puback = 4,
    pubrec = 5,
    pubrel = 6,
    pubcomp = 7,
    subscribe = 8,
    suback = 9,
    unsubscribe = 10,
    unsuback = 11,
    pingreq = 12,
    pingresp = 13,
    disconnect = 14,
    auth = 15,
};

/// Upper-case packet name as the specification spells it ("CONNECT"), "RESERVED" otherwise.
std::string_view to_string(packet_type t) noexcept;
std::string_view to_string(protocol_version v) noexcept;

/// Largest value of a Variable Byte Integer, hence of Remaining Length [MQTT-1.5.5].
inline constexpr std::uint32_t max_variable_byte_integer = 268'435'455;
/// Largest possible packet: 1 type byte + 4 length bytes + the largest remaining length.
inline constexpr std::uint32_t max_packet_size = max_variable_byte_integer + 5;
/// Strings and binary data carry a two-byte length [MQTT-1.5.4].
inline constexpr std::size_t max_string_length = 65535;
/// Largest Subscription Identifier [MQTT-3.8.2.1.2].
inline constexpr std::uint32_t max_subscription_identifier = max_variable_byte_integer;

} // namespace tern::protocol
