#pragma once
/// MQTT 5 properties [MQTT-2.2.2]: identifiers, wire types, where each may appear, and the
/// decoded property set of one packet.
///
/// Thread contract: plain values. Lifetime: string views point into the received frame
/// (see received_packet::storage) or, for packets built to be encoded, into caller memory.

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include <tern/protocol/types.hpp>

namespace tern::protocol {

enum class property_id : std::uint8_t {
    payload_format_indicator = 0x01,
    message_expiry_interval = 0x02,
    content_type = 0x03,
    response_topic = 0x08,
    correlation_data = 0x09,
    subscription_identifier = 0x0B,
    session_expiry_interval = 0x11,
    assigned_client_identifier = 0x12,
    server_keep_alive = 0x13,
    authentication_method = 0x15,
    authentication_data = 0x16,
    request_problem_information = 0x17,
    will_delay_interval = 0x18,
    request_response_information = 0x19,
    response_information = 0x1A,
    server_reference = 0x1C,
    reason_string = 0x1F,
    receive_maximum = 0x21,
    topic_alias_maximum = 0x22,
    topic_alias = 0x23,
    maximum_qos = 0x24,
    retain_available = 0x25,
    user_property = 0x26,
    maximum_packet_size = 0x27,
    wildcard_subscription_available = 0x28,
    subscription_identifier_available = 0x29,
    shared_subscription_available = 0x2A,
};

/// The data representation of a property value [MQTT-1.5].
enum class property_type : std::uint8_t {
    byte,
    two_byte_integer,
    four_byte_integer,
    variable_byte_integer,
    utf8_string,
    binary_data,
    utf8_string_pair,
};

/// Where a property may be carried. "will" is the Will Properties block of CONNECT, which has
/// its own allowed set, so it is a context of its own rather than a packet type.
enum class property_context : std::uint8_t {
    connect,
    connack,
    publish,
    will,
    puback,
    pubrec,
    pubrel,
    pubcomp,
    subscribe,
    suback,
    unsubscribe,
    unsuback,
    disconnect,
    auth,
};

/// Static facts about one property identifier.
struct property_info {
    property_id id;
    property_type type;
    std::string_view name;  ///< as the specification spells it, e.g. "Receive Maximum"
    std::uint16_t contexts; ///< bit (1 << property_context) set where the property is allowed
};

/// Facts about `id`, or nullptr when `id` is not a property identifier of MQTT 5.
const property_info* find_property(std::uint8_t id) noexcept;
/// True when property `id` may appear in `ctx` (Table 2-4 of MQTT 5).
bool is_allowed_in(property_id id, property_context ctx) noexcept;

struct user_property {
    std::string_view key;
    std::string_view value;
    friend bool operator==(const user_property&, const user_property&) = default;
};

/// Every MQTT 5 property, decoded. A field is set only when the property was present, so
/// "absent" and "present with the default value" stay distinguishable, as the specification
/// requires (e.g. Session Expiry Interval absent means 0, but Receive Maximum absent means 65535).
///
/// Only User Property and (in PUBLISH) Subscription Identifier may repeat; their order is kept.
/// Binary data (Correlation Data, Authentication Data) is a string_view of raw bytes.
struct properties {
    std::optional<std::uint8_t> payload_format_indicator;
    std::optional<std::uint32_t> message_expiry_interval;
    std::optional<std::string_view> content_type;
    std::optional<std::string_view> response_topic;
    std::optional<std::string_view> correlation_data;
    std::vector<std::uint32_t> subscription_identifiers;
    std::optional<std::uint32_t> session_expiry_interval;
    std::optional<std::string_view> assigned_client_identifier;
    std::optional<std::uint16_t> server_keep_alive;
    std::optional<std::string_view> authentication_method;
    std::optional<std::string_view> authentication_data;
    std::optional<std::uint8_t> request_problem_information;
    std::optional<std::uint32_t> will_delay_interval;
    std::optional<std::uint8_t> request_response_information;
    std::optional<std::string_view> response_information;
    std::optional<std::string_view> server_reference;
    std::optional<std::string_view> reason_string;
    std::optional<std::uint16_t> receive_maximum;
    std::optional<std::uint16_t> topic_alias_maximum;
    std::optional<std::uint16_t> topic_alias;
    std::optional<std::uint8_t> maximum_qos;
    std::optional<std::uint8_t> retain_available;
    std::vector<user_property> user_properties;
    std::optional<std::uint32_t> maximum_packet_size;
    std::optional<std::uint8_t> wildcard_subscription_available;
    std::optional<std::uint8_t> subscription_identifier_available;
    std::optional<std::uint8_t> shared_subscription_available;

    /// True when no property is set (encodes as a single zero length byte).
    bool empty() const noexcept;

    friend bool operator==(const properties&, const properties&) = default;
};

} // namespace tern::protocol
