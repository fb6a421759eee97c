#include <tern/protocol/error.hpp>

#include <string>

#include "category.hpp"

namespace tern::protocol {

reason_code to_reason_code(codec_error e) noexcept {
    using ce = codec_error;
    switch (e) {
    case ce::need_more:
    case ce::reserved_packet_type:
    case ce::invalid_fixed_header_flags:
    case ce::malformed_variable_byte_integer:
    case ce::truncated_packet:
    case ce::trailing_bytes:
    case ce::invalid_utf8:
    case ce::invalid_qos:
    case ce::reserved_connect_flag_set:
    case ce::invalid_will_flags:
    case ce::password_without_username:
    case ce::invalid_connack_flags:
    case ce::unknown_property:
    case ce::property_not_allowed:
    case ce::invalid_subscribe_options:
    case ce::dup_flag_on_qos0:
        return reason_code::malformed_packet;

    case ce::duplicate_property:
    case ce::invalid_property_value:
    case ce::zero_packet_identifier:
    case ce::empty_subscription_list:
    case ce::invalid_retain_handling:
    case ce::no_local_on_shared:
    case ce::empty_topic_without_alias:
    case ce::invalid_reason_code:
    case ce::unexpected_packet:
    case ce::missing_authentication_method:
    case ce::property_not_allowed_from_sender:
        return reason_code::protocol_error;

    // [MQTT-3.1.2-1]: a server MAY answer an unknown protocol name like an unknown level.
    case ce::invalid_protocol_name:
    case ce::unsupported_protocol_version:
        return reason_code::unsupported_protocol_version;
    case ce::packet_too_large:
        return reason_code::packet_too_large;
    case ce::topic_name_invalid:
        return reason_code::topic_name_invalid;
    case ce::topic_filter_invalid:
        return reason_code::topic_filter_invalid;

    case ce::buffer_too_small:
    case ce::string_too_long:
    case ce::not_encodable:
        return reason_code::implementation_specific_error;
    }
    return reason_code::unspecified_error;
}

std::string_view to_string(codec_error e) noexcept {
    using ce = codec_error;
    switch (e) {
    case ce::need_more:
        return "need more bytes";
    case ce::reserved_packet_type:
        return "reserved packet type";
    case ce::invalid_fixed_header_flags:
        return "invalid fixed header flags";
    case ce::malformed_variable_byte_integer:
        return "malformed variable byte integer (over 4 bytes or not minimal)";
    case ce::truncated_packet:
        return "field runs past the end of the packet";
    case ce::trailing_bytes:
        return "bytes left after the last field";
    case ce::invalid_utf8:
        return "invalid UTF-8 string (ill-formed, U+0000 or surrogate)";
    case ce::invalid_qos:
        return "QoS 3 is not a valid QoS";
    case ce::invalid_protocol_name:
        return "protocol name is not MQTT or MQIsdp";
    case ce::reserved_connect_flag_set:
        return "reserved CONNECT flag is set";
    case ce::invalid_will_flags:
        return "will QoS or retain set without the will flag";
    case ce::password_without_username:
        return "password flag set without user name flag";
    case ce::invalid_connack_flags:
        return "reserved CONNACK flags are set";
    case ce::unknown_property:
        return "unknown property identifier";
    case ce::property_not_allowed:
        return "property not allowed in this packet";
    case ce::invalid_subscribe_options:
        return "reserved subscription option bits are set";
    case ce::dup_flag_on_qos0:
        return "DUP flag set on a QoS 0 PUBLISH";
    case ce::duplicate_property:
        return "property appears more than once";
    case ce::invalid_property_value:
        return "property value out of range";
    case ce::zero_packet_identifier:
        return "packet identifier is 0";
    case ce::empty_subscription_list:
        return "no topic filters or reason codes";
    case ce::invalid_retain_handling:
        return "retain handling 3 is not valid";
    case ce::no_local_on_shared:
        return "No Local set on a shared subscription";
    case ce::empty_topic_without_alias:
        return "empty topic name without a topic alias";
    case ce::invalid_reason_code:
        return "reason code not allowed in this packet";
    case ce::unexpected_packet:
        return "packet type not accepted by this side";
    case ce::missing_authentication_method:
        return "authentication without an Authentication Method";
    case ce::property_not_allowed_from_sender:
        return "property not allowed from this sender";
    case ce::unsupported_protocol_version:
        return "unsupported protocol version";
    case ce::packet_too_large:
        return "packet exceeds the maximum packet size";
    case ce::topic_name_invalid:
        return "invalid topic name (empty or wildcard)";
    case ce::topic_filter_invalid:
        return "invalid topic filter";
    case ce::buffer_too_small:
        return "output buffer too small";
    case ce::string_too_long:
        return "string or binary field over 65535 bytes";
    case ce::not_encodable:
        return "value cannot be encoded in this protocol version";
    }
    return "unknown codec error";
}

std::string_view enumerator_name(codec_error e) noexcept {
    using ce = codec_error;
    switch (e) {
    case ce::need_more:
        return "need_more";
    case ce::reserved_packet_type:
        return "reserved_packet_type";
    case ce::invalid_fixed_header_flags:
        return "invalid_fixed_header_flags";
    case ce::malformed_variable_byte_integer:
        return "malformed_variable_byte_integer";
    case ce::truncated_packet:
        return "truncated_packet";
    case ce::trailing_bytes:
        return "trailing_bytes";
    case ce::invalid_utf8:
        return "invalid_utf8";
    case ce::invalid_qos:
        return "invalid_qos";
    case ce::reserved_connect_flag_set:
        return "reserved_connect_flag_set";
    case ce::invalid_will_flags:
        return "invalid_will_flags";
    case ce::password_without_username:
        return "password_without_username";
    case ce::invalid_connack_flags:
        return "invalid_connack_flags";
    case ce::unknown_property:
        return "unknown_property";
    case ce::property_not_allowed:
        return "property_not_allowed";
    case ce::invalid_subscribe_options:
        return "invalid_subscribe_options";
    case ce::dup_flag_on_qos0:
        return "dup_flag_on_qos0";
    case ce::duplicate_property:
        return "duplicate_property";
    case ce::invalid_property_value:
        return "invalid_property_value";
    case ce::zero_packet_identifier:
        return "zero_packet_identifier";
    case ce::empty_subscription_list:
        return "empty_subscription_list";
    case ce::invalid_retain_handling:
        return "invalid_retain_handling";
    case ce::no_local_on_shared:
        return "no_local_on_shared";
    case ce::empty_topic_without_alias:
        return "empty_topic_without_alias";
    case ce::invalid_reason_code:
        return "invalid_reason_code";
    case ce::unexpected_packet:
        return "unexpected_packet";
    case ce::missing_authentication_method:
        return "missing_authentication_method";
    case ce::property_not_allowed_from_sender:
        return "property_not_allowed_from_sender";
    case ce::invalid_protocol_name:
        return "invalid_protocol_name";
    case ce::unsupported_protocol_version:
        return "unsupported_protocol_version";
    case ce::packet_too_large:
        return "packet_too_large";
    case ce::topic_name_invalid:
        return "topic_name_invalid";
    case ce::topic_filter_invalid:
        return "topic_filter_invalid";
    case ce::buffer_too_small:
        return "buffer_too_small";
    case ce::string_too_long:
        return "string_too_long";
    case ce::not_encodable:
        return "not_encodable";
    }
    return "unknown";
}

namespace {

class codec_error_category_impl final : public detail::enum_category<codec_error> {
public:
    const char* name() const noexcept override { return "mqtt.codec"; }
};

} // namespace

const boost::system::error_category& codec_error_category() noexcept {
    static const codec_error_category_impl instance;
    return instance;
}

reason_code to_reason_code(const boost::system::error_code& ec) noexcept {
    if (ec.category() == codec_error_category()) {
        return to_reason_code(static_cast<codec_error>(ec.value()));
    }
    if (ec.category() == reason_code_category()) {
        return static_cast<reason_code>(ec.value());
    }
    return reason_code::unspecified_error;
}

} // namespace tern::protocol
