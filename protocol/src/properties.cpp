#include <tern/protocol/properties.hpp>

#include <array>

namespace tern::protocol {

namespace {

using pc = property_context;
using pt = property_type;

constexpr std::uint16_t bit(pc c) noexcept {
    return static_cast<std::uint16_t>(1u << static_cast<unsigned>(c));
}

template <typename... C> constexpr std::uint16_t in(C... cs) noexcept {
    return static_cast<std::uint16_t>((bit(cs) | ...));
}

// Table 2-4 of MQTT 5 ("Properties"), one row per identifier.
constexpr property_info property_table[] = {
    {property_id::payload_format_indicator, pt::byte, "Payload Format Indicator",
     in(pc::publish, pc::will)},
    {property_id::message_expiry_interval, pt::four_byte_integer, "Message Expiry Interval",
     in(pc::publish, pc::will)},
    {property_id::content_type, pt::utf8_string, "Content Type", in(pc::publish, pc::will)},
    {property_id::response_topic, pt::utf8_string, "Response Topic", in(pc::publish, pc::will)},
    {property_id::correlation_data, pt::binary_data, "Correlation Data", in(pc::publish, pc::will)},
    {property_id::subscription_identifier, pt::variable_byte_integer, "Subscription Identifier",
     in(pc::publish, pc::subscribe)},
    {property_id::session_expiry_interval, pt::four_byte_integer, "Session Expiry Interval",
     in(pc::connect, pc::connack, pc::disconnect)},
    {property_id::assigned_client_identifier, pt::utf8_string, "Assigned Client Identifier",
     in(pc::connack)},
    {property_id::server_keep_alive, pt::two_byte_integer, "Server Keep Alive", in(pc::connack)},
    {property_id::authentication_method, pt::utf8_string, "Authentication Method",
     in(pc::connect, pc::connack, pc::auth)},
    {property_id::authentication_data, pt::binary_data, "Authentication Data",
     in(pc::connect, pc::connack, pc::auth)},
    {property_id::request_problem_information, pt::byte, "Request Problem Information",
     in(pc::connect)},
    {property_id::will_delay_interval, pt::four_byte_integer, "Will Delay Interval", in(pc::will)},
    {property_id::request_response_information, pt::byte, "Request Response Information",
     in(pc::connect)},
    {property_id::response_information, pt::utf8_string, "Response Information", in(pc::connack)},
    {property_id::server_reference, pt::utf8_string, "Server Reference",
     in(pc::connack, pc::disconnect)},
    {property_id::reason_string, pt::utf8_string, "Reason String",
     in(pc::connack, pc::puback, pc::pubrec, pc::pubrel, pc::pubcomp, pc::suback, pc::unsuback,
        pc::disconnect, pc::auth)},
    {property_id::receive_maximum, pt::two_byte_integer, "Receive Maximum",
     in(pc::connect, pc::connack)},
    {property_id::topic_alias_maximum, pt::two_byte_integer, "Topic Alias Maximum",
     in(pc::connect, pc::connack)},
    {property_id::topic_alias, pt::two_byte_integer, "Topic Alias", in(pc::publish)},
    {property_id::maximum_qos, pt::byte, "Maximum QoS", in(pc::connack)},
    {property_id::retain_available, pt::byte, "Retain Available", in(pc::connack)},
    {property_id::user_property, pt::utf8_string_pair, "User Property",
     in(pc::connect, pc::connack, pc::publish, pc::will, pc::puback, pc::pubrec, pc::pubrel,
        pc::pubcomp, pc::subscribe, pc::suback, pc::unsubscribe, pc::unsuback, pc::disconnect,
        pc::auth)},
    {property_id::maximum_packet_size, pt::four_byte_integer, "Maximum Packet Size",
     in(pc::connect, pc::connack)},
    {property_id::wildcard_subscription_available, pt::byte, "Wildcard Subscription Available",
     in(pc::connack)},
    {property_id::subscription_identifier_available, pt::byte, "Subscription Identifier Available",
     in(pc::connack)},
    {property_id::shared_subscription_available, pt::byte, "Shared Subscription Available",
     in(pc::connack)},
};

// Direct lookup by identifier: identifiers are below 0x2B, so a 64-entry index suffices.
constexpr auto build_index() {
    std::array<const property_info*, 64> index{};
    for (const auto& info : property_table) {
        index[static_cast<std::size_t>(info.id)] = &info;
    }
    return index;
}
constexpr auto property_index = build_index();

} // namespace

const property_info* find_property(std::uint8_t id) noexcept {
    return id < property_index.size() ? property_index[id] : nullptr;
}

bool is_allowed_in(property_id id, property_context ctx) noexcept {
    const property_info* info = find_property(static_cast<std::uint8_t>(id));
    return info != nullptr && (info->contexts & bit(ctx)) != 0;
}

bool properties::empty() const noexcept {
    return *this == properties{};
}

} // namespace tern::protocol
