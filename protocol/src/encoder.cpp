#include <tern/protocol/encoder.hpp>

#include <type_traits>

#include "wire.hpp"

namespace tern::protocol {

namespace {

using ce = codec_error;

// Every packet is written by one template run twice: with a counter (sizes, validation) and
// then with a writer. Size and bytes therefore cannot disagree.

template <typename Out> void put_properties_body(Out& o, const properties& p) {
    auto id = [&o](property_id i) { o.u8(static_cast<std::uint8_t>(i)); };
    if (p.payload_format_indicator) {
        id(property_id::payload_format_indicator);
        o.u8(*p.payload_format_indicator);
    }
    if (p.message_expiry_interval) {
        id(property_id::message_expiry_interval);
        o.u32(*p.message_expiry_interval);
    }
    if (p.content_type) {
        id(property_id::content_type);
        o.binary(*p.content_type);
    }
    if (p.response_topic) {
        id(property_id::response_topic);
        o.binary(*p.response_topic);
    }
    if (p.correlation_data) {
        id(property_id::correlation_data);
        o.binary(*p.correlation_data);
    }
    for (std::uint32_t sid : p.subscription_identifiers) {
        id(property_id::subscription_identifier);
        o.vbi(sid);
    }
    if (p.session_expiry_interval) {
        id(property_id::session_expiry_interval);
        o.u32(*p.session_expiry_interval);
    }
    if (p.assigned_client_identifier) {
        id(property_id::assigned_client_identifier);
        o.binary(*p.assigned_client_identifier);
    }
    if (p.server_keep_alive) {
        id(property_id::server_keep_alive);
        o.u16(*p.server_keep_alive);
    }
    if (p.authentication_method) {
        id(property_id::authentication_method);
        o.binary(*p.authentication_method);
    }
    if (p.authentication_data) {
        id(property_id::authentication_data);
        o.binary(*p.authentication_data);
    }
    if (p.request_problem_information) {
        id(property_id::request_problem_information);
        o.u8(*p.request_problem_information);
    }
    if (p.will_delay_interval) {
        id(property_id::will_delay_interval);
        o.u32(*p.will_delay_interval);
    }
    if (p.request_response_information) {
        id(property_id::request_response_information);
        o.u8(*p.request_response_information);
    }
    if (p.response_information) {
        id(property_id::response_information);
        o.binary(*p.response_information);
    }
    if (p.server_reference) {
        id(property_id::server_reference);
        o.binary(*p.server_reference);
    }
    if (p.reason_string) {
        id(property_id::reason_string);
        o.binary(*p.reason_string);
    }
    if (p.receive_maximum) {
        id(property_id::receive_maximum);
        o.u16(*p.receive_maximum);
    }
    if (p.topic_alias_maximum) {
        id(property_id::topic_alias_maximum);
        o.u16(*p.topic_alias_maximum);
    }
    if (p.topic_alias) {
        if (*p.topic_alias == 0) { // [MQTT-3.3.2-8]
            o.fail(ce::not_encodable);
        }
        id(property_id::topic_alias);
        o.u16(*p.topic_alias);
    }
    if (p.maximum_qos) {
        id(property_id::maximum_qos);
        o.u8(*p.maximum_qos);
    }
    if (p.retain_available) {
        id(property_id::retain_available);
        o.u8(*p.retain_available);
    }
    for (const auto& up : p.user_properties) {
        id(property_id::user_property);
        o.binary(up.key);
        o.binary(up.value);
    }
    if (p.maximum_packet_size) {
        id(property_id::maximum_packet_size);
        o.u32(*p.maximum_packet_size);
    }
    if (p.wildcard_subscription_available) {
        id(property_id::wildcard_subscription_available);
        o.u8(*p.wildcard_subscription_available);
    }
    if (p.subscription_identifier_available) {
        id(property_id::subscription_identifier_available);
        o.u8(*p.subscription_identifier_available);
    }
    if (p.shared_subscription_available) {
        id(property_id::shared_subscription_available);
        o.u8(*p.shared_subscription_available);
    }
}

/// Property Length followed by the properties. The counting pass counts them once; the writing
/// pass counts them again for the length prefix, then writes.
template <typename Out> void put_properties(Out& o, const properties& p) {
    detail::counter c;
    put_properties_body(c, p);
    if (c.size() > max_variable_byte_integer) {
        o.fail(ce::packet_too_large);
    }
    o.vbi(static_cast<std::uint32_t>(c.size()));
    if constexpr (Out::writes) {
        put_properties_body(o, p);
    } else {
        if (c.error() != codec_error{}) {
            o.fail(c.error());
        }
        o.add(c.size());
    }
}

template <typename Out> void put_packet_id(Out& o, std::uint16_t id) {
    if (id == 0) { // [MQTT-2.2.1-3]
        o.fail(ce::not_encodable);
    }
    o.u16(id);
}

template <typename Out> void put_qos_check(Out& o, qos q) {
    if (static_cast<std::uint8_t>(q) > 2) {
        o.fail(ce::not_encodable);
    }
}

/// v5: the reason code must be one the packet type allows. 3.1.1 carries no reason code: a
/// success-class code (below 0x80) is simply not sent, a failure cannot be expressed.
template <typename Out>
void put_reason_check(Out& o, reason_code rc, packet_type t, protocol_version v) {
    if (is_v3(v) ? is_failure(rc) : !is_allowed_in(rc, t)) {
        o.fail(ce::not_encodable);
    }
}

// ---- bodies: everything after the fixed header -------------------------------------------

template <typename Out> void body(Out& o, const connect& c, protocol_version) {
    // CONNECT carries its own version; the `version` argument does not apply.
    const bool v5 = c.version == protocol_version::v5;
    if (c.version == protocol_version::v3_1) {
        o.binary("MQIsdp");
    } else {
        o.binary("MQTT");
    }
    const bool bridge = c.bridge && !v5; // the bridge bit exists for 3.1 and 3.1.1 only
    o.u8(static_cast<std::uint8_t>(static_cast<std::uint8_t>(c.version) | (bridge ? 0x80 : 0)));
    std::uint8_t flags = 0;
    if (c.clean_start) {
        flags |= 0x02;
    }
    if (c.will) {
        put_qos_check(o, c.will->qos);
        flags |= 0x04;
        flags |= static_cast<std::uint8_t>((static_cast<std::uint8_t>(c.will->qos) & 0x03) << 3);
        if (c.will->retain) {
            flags |= 0x20;
        }
    }
    if (c.password) {
        if (!v5 && !c.username) { // [MQTT-3.1.2-22]
            o.fail(ce::not_encodable);
        }
        flags |= 0x40;
    }
    if (c.username) {
        flags |= 0x80;
    }
    o.u8(flags);
    o.u16(c.keep_alive);
    if (v5) {
        put_properties(o, c.props);
    }
    o.binary(c.client_id);
    if (c.will) {
        if (v5) {
            put_properties(o, c.will->props);
        }
        o.binary(c.will->topic);
        o.binary(c.will->payload);
    }
    if (c.username) {
        o.binary(*c.username);
    }
    if (c.password) {
        o.binary(*c.password);
    }
}

template <typename Out> void body(Out& o, const connack& c, protocol_version v) {
    if (c.session_present && is_failure(c.reason)) { // [MQTT-3.2.2-6]
        o.fail(ce::not_encodable);
    }
    if (!is_v3(v) && !is_allowed_in(c.reason, packet_type::connack)) {
        o.fail(ce::not_encodable);
    }
    o.u8(c.session_present ? 1 : 0);
    if (is_v3(v)) {
        o.u8(to_v3_connack_return_code(c.reason));
    } else {
        o.u8(static_cast<std::uint8_t>(c.reason));
        put_properties(o, c.props);
    }
}

/// PUBLISH up to (not including) the payload.
template <typename Out> void publish_head(Out& o, const publish& p, protocol_version v) {
    put_qos_check(o, p.qos);
    if (p.dup && p.qos == qos::at_most_once) { // [MQTT-3.3.1-2]
        o.fail(ce::not_encodable);
    }
    o.binary(p.topic);
    if (p.qos != qos::at_most_once) {
        put_packet_id(o, p.packet_id);
    }
    if (!is_v3(v)) {
        put_properties(o, p.props);
    }
}

template <typename Out> void body(Out& o, const publish& p, protocol_version v) {
    publish_head(o, p, v);
    o.raw(p.payload);
}

template <typename Out, packet_type T>
void body(Out& o, const basic_ack<T>& a, protocol_version v) {
    put_packet_id(o, a.packet_id);
    put_reason_check(o, a.reason, T, v);
    if (is_v3(v)) {
        return;
    }
    // The shortest form the specification allows [MQTT-3.4.2.1]: omit what is default.
    const bool has_props = !a.props.empty();
    if (a.reason != reason_code::success || has_props) {
        o.u8(static_cast<std::uint8_t>(a.reason));
    }
    if (has_props) {
        put_properties(o, a.props);
    }
}

template <typename Out> void body(Out& o, const subscribe& s, protocol_version v) {
    put_packet_id(o, s.packet_id);
    if (s.subscriptions.empty()) { // [MQTT-3.8.3-3]
        o.fail(ce::not_encodable);
    }
    const bool v5 = !is_v3(v);
    if (v5) {
        put_properties(o, s.props);
    }
    for (const auto& sub : s.subscriptions) {
        put_qos_check(o, sub.options.qos);
        if (static_cast<std::uint8_t>(sub.options.retain_handling) > 2) { // [MQTT-3.8.3.1]
            o.fail(ce::not_encodable);
        }
        o.binary(sub.filter);
        auto opts = static_cast<std::uint8_t>(sub.options.qos);
        if (v5) {
            if (sub.options.no_local) {
                opts |= 0x04;
            }
            if (sub.options.retain_as_published) {
                opts |= 0x08;
            }
            opts |= static_cast<std::uint8_t>(
                (static_cast<std::uint8_t>(sub.options.retain_handling) & 0x03) << 4);
        }
        o.u8(opts);
    }
}

template <typename Out> void body(Out& o, const suback& s, protocol_version v) {
    put_packet_id(o, s.packet_id);
    if (s.reasons.empty()) {
        o.fail(ce::not_encodable);
    }
    if (is_v3(v)) {
        for (reason_code rc : s.reasons) {
            o.u8(to_v3_suback_return_code(rc));
        }
        return;
    }
    put_properties(o, s.props);
    for (reason_code rc : s.reasons) {
        put_reason_check(o, rc, packet_type::suback, v);
        o.u8(static_cast<std::uint8_t>(rc));
    }
}

template <typename Out> void body(Out& o, const unsubscribe& u, protocol_version v) {
    put_packet_id(o, u.packet_id);
    if (u.filters.empty()) { // [MQTT-3.10.3-2]
        o.fail(ce::not_encodable);
    }
    if (!is_v3(v)) {
        put_properties(o, u.props);
    }
    for (std::string_view f : u.filters) {
        o.binary(f);
    }
}

template <typename Out> void body(Out& o, const unsuback& u, protocol_version v) {
    put_packet_id(o, u.packet_id);
    if (is_v3(v)) {
        return; // 3.1.1 UNSUBACK has no payload
    }
    if (u.reasons.empty()) {
        o.fail(ce::not_encodable);
    }
    put_properties(o, u.props);
    for (reason_code rc : u.reasons) {
        put_reason_check(o, rc, packet_type::unsuback, v);
        o.u8(static_cast<std::uint8_t>(rc));
    }
}

template <typename Out> void body(Out&, const pingreq&, protocol_version) {}
template <typename Out> void body(Out&, const pingresp&, protocol_version) {}

/// DISCONNECT and AUTH in v5: omit reason and properties when both are default.
template <typename Out, typename P> void reason_and_properties(Out& o, const P& p) {
    const bool has_props = !p.props.empty();
    if (p.reason != reason_code::success || has_props) {
        o.u8(static_cast<std::uint8_t>(p.reason));
    }
    if (has_props) {
        put_properties(o, p.props);
    }
}

template <typename Out> void body(Out& o, const disconnect& d, protocol_version v) {
    // 3.1.1 DISCONNECT is empty and only ever sent by clients; any reason is dropped there,
    // since a server closing a 3.1.1 connection just closes it.
    if (!is_v3(v)) {
        put_reason_check(o, d.reason, packet_type::disconnect, v);
        reason_and_properties(o, d);
    }
}

template <typename Out> void body(Out& o, const auth& a, protocol_version v) {
    if (is_v3(v)) {
        o.fail(ce::not_encodable); // AUTH exists only in MQTT 5
        return;
    }
    put_reason_check(o, a.reason, packet_type::auth, v);
    reason_and_properties(o, a);
}

std::uint8_t publish_flags(const publish& p) {
    return static_cast<std::uint8_t>((p.dup ? 0x08 : 0) |
                                     ((static_cast<std::uint8_t>(p.qos) & 0x03) << 1) |
                                     (p.retain ? 0x01 : 0));
}

/// Type and flags byte of the fixed header [MQTT-2.1.2, MQTT-2.1.3].
template <typename P> std::uint8_t first_byte(packet_type t, const P& pkt) {
    auto type = static_cast<std::uint8_t>(static_cast<std::uint8_t>(t) << 4);
    if constexpr (std::is_same_v<P, publish>) {
        return static_cast<std::uint8_t>(type | publish_flags(pkt));
    } else if constexpr (std::is_same_v<P, pubrel> || std::is_same_v<P, subscribe> ||
                         std::is_same_v<P, unsubscribe>) {
        return static_cast<std::uint8_t>(type | 0x02);
    } else {
        return type;
    }
}

struct sizes {
    std::size_t remaining = 0;
    std::size_t total = 0;
};

boost::system::result<sizes> measure(const packet& p, protocol_version v) {
    detail::counter c;
    std::visit([&](const auto& pkt) { body(c, pkt, v); }, p);
    if (c.error() != codec_error{}) {
        return make_error_code(c.error());
    }
    if (c.size() > max_variable_byte_integer) {
        return make_error_code(ce::packet_too_large);
    }
    const auto remaining = static_cast<std::uint32_t>(c.size());
    return sizes{remaining, 1 + detail::vbi_size(remaining) + remaining};
}

} // namespace

boost::system::result<std::size_t> encoded_size(const packet& p, protocol_version version) {
    auto s = measure(p, version);
    if (!s) {
        return s.error();
    }
    return s->total;
}

boost::system::result<std::size_t> encode(const packet& p, protocol_version version,
                                          std::span<std::uint8_t> out) {
    auto s = measure(p, version);
    if (!s) {
        return s.error();
    }
    if (out.size() < s->total) {
        return make_error_code(ce::buffer_too_small);
    }
    detail::writer w(out.data());
    std::visit(
        [&](const auto& pkt) {
            w.u8(first_byte(type_of(p), pkt));
            w.vbi(static_cast<std::uint32_t>(s->remaining));
            body(w, pkt, version);
        },
        p);
    return s->total;
}

boost::system::result<std::vector<std::uint8_t>> encode_to_vector(const packet& p,
                                                                  protocol_version version) {
    auto s = measure(p, version);
    if (!s) {
        return s.error();
    }
    std::vector<std::uint8_t> bytes(s->total);
    auto n = encode(p, version, bytes);
    if (!n) {
        return n.error();
    }
    return bytes;
}

namespace {

struct publish_sizes {
    publish_layout layout;
    std::uint32_t remaining = 0;
};

boost::system::result<publish_sizes> measure_publish(const publish& p, protocol_version version) {
    detail::counter c;
    publish_head(c, p, version);
    if (c.error() != codec_error{}) {
        return make_error_code(c.error());
    }
    const std::size_t remaining = c.size() + p.payload.size();
    if (remaining > max_variable_byte_integer) {
        return make_error_code(ce::packet_too_large);
    }
    const auto r32 = static_cast<std::uint32_t>(remaining);
    const std::size_t fixed = 1 + detail::vbi_size(r32);
    return publish_sizes{{fixed + c.size(), fixed + remaining}, r32};
}

} // namespace

boost::system::result<publish_layout> publish_size(const publish& p, protocol_version version) {
    auto s = measure_publish(p, version);
    if (!s) {
        return s.error();
    }
    return s->layout;
}

boost::system::result<publish_layout>
encode_publish_header(const publish& p, protocol_version version, std::span<std::uint8_t> out) {
    auto s = measure_publish(p, version);
    if (!s) {
        return s.error();
    }
    if (out.size() < s->layout.header_size) {
        return make_error_code(ce::buffer_too_small);
    }
    detail::writer w(out.data());
    w.u8(first_byte(packet_type::publish, p));
    w.vbi(s->remaining);
    publish_head(w, p, version);
    return s->layout;
}

} // namespace tern::protocol
