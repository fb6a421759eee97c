#include <tern/protocol/reason_code.hpp>

#include <string>

#include "category.hpp"

namespace tern::protocol {

std::string_view to_string(reason_code rc) noexcept {
    switch (rc) {
    case reason_code::success:
        return "Success";
    case reason_code::granted_qos_1:
        return "Granted QoS 1";
    case reason_code::granted_qos_2:
        return "Granted QoS 2";
    case reason_code::disconnect_with_will_message:
        return "Disconnect with Will Message";
    case reason_code::no_matching_subscribers:
        return "No matching subscribers";
    case reason_code::no_subscription_existed:
        return "No subscription existed";
    case reason_code::continue_authentication:
        return "Continue authentication";
    case reason_code::re_authenticate:
        return "Re-authenticate";
    case reason_code::unspecified_error:
        return "Unspecified error";
    case reason_code::malformed_packet:
        return "Malformed Packet";
    case reason_code::protocol_error:
        return "Protocol Error";
    case reason_code::implementation_specific_error:
        return "Implementation specific error";
    case reason_code::unsupported_protocol_version:
        return "Unsupported Protocol Version";
    case reason_code::client_identifier_not_valid:
        return "Client Identifier not valid";
    case reason_code::bad_user_name_or_password:
        return "Bad User Name or Password";
    case reason_code::not_authorized:
        return "Not authorized";
    case reason_code::server_unavailable:
        return "Server unavailable";
    case reason_code::server_busy:
        return "Server busy";
    case reason_code::banned:
        return "Banned";
    case reason_code::server_shutting_down:
        return "Server shutting down";
    case reason_code::bad_authentication_method:
        return "Bad authentication method";
    case reason_code::keep_alive_timeout:
        return "Keep Alive timeout";
    case reason_code::session_taken_over:
        return "Session taken over";
    case reason_code::topic_filter_invalid:
        return "Topic Filter invalid";
    case reason_code::topic_name_invalid:
        return "Topic Name invalid";
    case reason_code::packet_identifier_in_use:
        return "Packet Identifier in use";
    case reason_code::packet_identifier_not_found:
        return "Packet Identifier not found";
    case reason_code::receive_maximum_exceeded:
        return "Receive Maximum exceeded";
    case reason_code::topic_alias_invalid:
        return "Topic Alias invalid";
    case reason_code::packet_too_large:
        return "Packet too large";
    case reason_code::message_rate_too_high:
        return "Message rate too high";
    case reason_code::quota_exceeded:
        return "Quota exceeded";
    case reason_code::administrative_action:
        return "Administrative action";
    case reason_code::payload_format_invalid:
        return "Payload format invalid";
    case reason_code::retain_not_supported:
        return "Retain not supported";
    case reason_code::qos_not_supported:
        return "QoS not supported";
    case reason_code::use_another_server:
        return "Use another server";
    case reason_code::server_moved:
        return "Server moved";
    case reason_code::shared_subscriptions_not_supported:
        return "Shared Subscriptions not supported";
    case reason_code::connection_rate_exceeded:
        return "Connection rate exceeded";
    case reason_code::maximum_connect_time:
        return "Maximum connect time";
    case reason_code::subscription_identifiers_not_supported:
        return "Subscription Identifiers not supported";
    case reason_code::wildcard_subscriptions_not_supported:
        return "Wildcard Subscriptions not supported";
    }
    return "Unknown reason code";
}

bool is_defined(reason_code rc) noexcept {
    return to_string(rc) != "Unknown reason code";
}

namespace {

using rc = reason_code;

// The per-packet tables of MQTT 5, kept as lists so each can be checked against the spec text.
constexpr rc connack_codes[] = {rc::success,
                                rc::unspecified_error,
                                rc::malformed_packet,
                                rc::protocol_error,
                                rc::implementation_specific_error,
                                rc::unsupported_protocol_version,
                                rc::client_identifier_not_valid,
                                rc::bad_user_name_or_password,
                                rc::not_authorized,
                                rc::server_unavailable,
                                rc::server_busy,
                                rc::banned,
                                rc::bad_authentication_method,
                                rc::topic_name_invalid,
                                rc::packet_too_large,
                                rc::quota_exceeded,
                                rc::payload_format_invalid,
                                rc::retain_not_supported,
                                rc::qos_not_supported,
                                rc::use_another_server,
                                rc::server_moved,
                                rc::connection_rate_exceeded};
constexpr rc puback_codes[] = {rc::success,
                               rc::no_matching_subscribers,
                               rc::unspecified_error,
                               rc::implementation_specific_error,
                               rc::not_authorized,
                               rc::topic_name_invalid,
                               rc::packet_identifier_in_use,
                               rc::quota_exceeded,
                               rc::payload_format_invalid};
constexpr rc pubrel_codes[] = {rc::success, rc::packet_identifier_not_found};
constexpr rc suback_codes[] = {rc::granted_qos_0,
                               rc::granted_qos_1,
                               rc::granted_qos_2,
                               rc::unspecified_error,
                               rc::implementation_specific_error,
                               rc::not_authorized,
                               rc::topic_filter_invalid,
                               rc::packet_identifier_in_use,
                               rc::quota_exceeded,
                               rc::shared_subscriptions_not_supported,
                               rc::subscription_identifiers_not_supported,
                               rc::wildcard_subscriptions_not_supported};
constexpr rc unsuback_codes[] = {rc::success,
                                 rc::no_subscription_existed,
                                 rc::unspecified_error,
                                 rc::implementation_specific_error,
                                 rc::not_authorized,
                                 rc::topic_filter_invalid,
                                 rc::packet_identifier_in_use};
constexpr rc disconnect_codes[] = {rc::normal_disconnection,
                                   rc::disconnect_with_will_message,
                                   rc::unspecified_error,
                                   rc::malformed_packet,
                                   rc::protocol_error,
                                   rc::implementation_specific_error,
                                   rc::not_authorized,
                                   rc::server_busy,
                                   rc::server_shutting_down,
                                   rc::keep_alive_timeout,
                                   rc::session_taken_over,
                                   rc::topic_filter_invalid,
                                   rc::topic_name_invalid,
                                   rc::receive_maximum_exceeded,
                                   rc::topic_alias_invalid,
                                   rc::packet_too_large,
                                   rc::message_rate_too_high,
                                   rc::quota_exceeded,
                                   rc::administrative_action,
                                   rc::payload_format_invalid,
                                   rc::retain_not_supported,
                                   rc::qos_not_supported,
                                   rc::use_another_server,
                                   rc::server_moved,
                                   rc::shared_subscriptions_not_supported,
                                   rc::connection_rate_exceeded,
                                   rc::maximum_connect_time,
                                   rc::subscription_identifiers_not_supported,
                                   rc::wildcard_subscriptions_not_supported};
constexpr rc auth_codes[] = {rc::success, rc::continue_authentication, rc::re_authenticate};

template <std::size_t N> constexpr bool contains(const rc (&table)[N], rc value) noexcept {
    for (rc r : table) {
        if (r == value) {
            return true;
        }
    }
    return false;
}

class reason_code_category_impl final : public detail::enum_category<reason_code> {
public:
    const char* name() const noexcept override { return "mqtt.reason_code"; }
    bool failed(int ev) const noexcept override { return is_failure(static_cast<reason_code>(ev)); }
};

} // namespace

bool is_allowed_in(reason_code code, packet_type t) noexcept {
    switch (t) {
    case packet_type::connack:
        return contains(connack_codes, code);
    case packet_type::puback:
    case packet_type::pubrec:
        return contains(puback_codes, code); // same table [3.4.2.1, 3.5.2.1]
    case packet_type::pubrel:
    case packet_type::pubcomp:
        return contains(pubrel_codes, code);
    case packet_type::suback:
        return contains(suback_codes, code);
    case packet_type::unsuback:
        return contains(unsuback_codes, code);
    case packet_type::disconnect:
        return contains(disconnect_codes, code);
    case packet_type::auth:
        return contains(auth_codes, code);
    default:
        return false;
    }
}

std::uint8_t to_v3_connack_return_code(reason_code code) noexcept {
    switch (code) {
    case rc::success:
        return 0;
    case rc::unsupported_protocol_version:
        return 1;
    case rc::client_identifier_not_valid:
        return 2;
    case rc::bad_user_name_or_password:
        return 4;
    case rc::not_authorized:
    case rc::banned:
    case rc::bad_authentication_method:
        return 5;
    default:
        return 3;
    }
}

std::optional<reason_code> from_v3_connack_return_code(std::uint8_t code) noexcept {
    switch (code) {
    case 0:
        return rc::success;
    case 1:
        return rc::unsupported_protocol_version;
    case 2:
        return rc::client_identifier_not_valid;
    case 3:
        return rc::server_unavailable;
    case 4:
        return rc::bad_user_name_or_password;
    case 5:
        return rc::not_authorized;
    default:
        return std::nullopt;
    }
}

std::uint8_t to_v3_suback_return_code(reason_code code) noexcept {
    switch (code) {
    case rc::granted_qos_0:
    case rc::granted_qos_1:
    case rc::granted_qos_2:
        return static_cast<std::uint8_t>(code);
    default:
        return 0x80;
    }
}

const boost::system::error_category& reason_code_category() noexcept {
    static const reason_code_category_impl instance;
    return instance;
}

} // namespace tern::protocol
