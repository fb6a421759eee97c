#include <tern/protocol/decoder.hpp>

#include <algorithm>
#include <cstring>

#include "wire.hpp"

namespace tern::protocol {

namespace {

using detail::reader;
using ce = codec_error;

/// Reads a Property Length and the properties after it into `out`, checking identifiers,
/// where they may appear, repetition and values [MQTT-2.2.2].
void read_properties(reader& r, property_context ctx, properties& out) {
    std::uint32_t length = r.vbi();
    reader pr = r.take(length);
    if (!r.ok()) {
        return;
    }
    std::uint64_t seen = 0;
    while (!pr.empty()) {
        // The identifier is a Variable Byte Integer; every identifier defined fits one byte.
        std::uint32_t raw_id = pr.vbi();
        if (!pr.ok()) {
            break;
        }
        const property_info* info =
            raw_id <= 0xFF ? find_property(static_cast<std::uint8_t>(raw_id)) : nullptr;
        if (info == nullptr) {
            pr.fail(ce::unknown_property);
            break;
        }
        if (!is_allowed_in(info->id, ctx)) {
            pr.fail(ce::property_not_allowed);
            break;
        }
        // Only User Property, and Subscription Identifier in PUBLISH, may repeat.
        const std::uint64_t mask = std::uint64_t{1} << raw_id;
        const bool repeatable =
            info->id == property_id::user_property ||
            (info->id == property_id::subscription_identifier && ctx == property_context::publish);
        if ((seen & mask) != 0 && !repeatable) {
            pr.fail(ce::duplicate_property);
            break;
        }
        seen |= mask;

        auto boolean_byte = [&pr]() -> std::uint8_t {
            std::uint8_t v = pr.u8();
            if (v > 1) {
                pr.fail(ce::invalid_property_value);
            }
            return v;
        };
        auto nonzero_u16 = [&pr]() -> std::uint16_t {
            std::uint16_t v = pr.u16();
            if (pr.ok() && v == 0) {
                pr.fail(ce::invalid_property_value);
            }
            return v;
        };

        switch (info->id) {
        case property_id::payload_format_indicator:
            out.payload_format_indicator = boolean_byte();
            break;
        case property_id::message_expiry_interval:
            out.message_expiry_interval = pr.u32();
            break;
        case property_id::content_type:
            out.content_type = pr.utf8();
            break;
        case property_id::response_topic: {
            std::string_view topic = pr.utf8();
            // [MQTT-3.3.2-14]: a Response Topic is a topic name, never a filter.
            if (pr.ok() && validate_topic_name(topic)) {
                pr.fail(ce::topic_name_invalid);
            }
            out.response_topic = topic;
            break;
        }
        case property_id::correlation_data:
            out.correlation_data = pr.binary();
            break;
        case property_id::subscription_identifier: {
            std::uint32_t id = pr.vbi();
            if (pr.ok() && id == 0) { // [MQTT-3.8.2.1.2]
                pr.fail(ce::invalid_property_value);
            }
            out.subscription_identifiers.push_back(id);
            break;
        }
        case property_id::session_expiry_interval:
            out.session_expiry_interval = pr.u32();
            break;
        case property_id::assigned_client_identifier:
            out.assigned_client_identifier = pr.utf8();
            break;
        case property_id::server_keep_alive:
            out.server_keep_alive = pr.u16();
            break;
        case property_id::authentication_method:
            out.authentication_method = pr.utf8();
            break;
        case property_id::authentication_data:
            out.authentication_data = pr.binary();
            break;
        case property_id::request_problem_information:
            out.request_problem_information = boolean_byte();
            break;
        case property_id::will_delay_interval:
            out.will_delay_interval = pr.u32();
            break;
        case property_id::request_response_information:
            out.request_response_information = boolean_byte();
            break;
        case property_id::response_information:
            out.response_information = pr.utf8();
            break;
        case property_id::server_reference:
            out.server_reference = pr.utf8();
            break;
        case property_id::reason_string:
            out.reason_string = pr.utf8();
            break;
        case property_id::receive_maximum:
            out.receive_maximum = nonzero_u16();
            break;
        case property_id::topic_alias_maximum:
            out.topic_alias_maximum = pr.u16();
            break;
        case property_id::topic_alias:
            out.topic_alias = nonzero_u16();
            break;
        case property_id::maximum_qos:
            out.maximum_qos = boolean_byte();
            break;
        case property_id::retain_available:
            out.retain_available = boolean_byte();
            break;
        case property_id::user_property: {
            std::string_view key = pr.utf8();
            std::string_view value = pr.utf8();
            out.user_properties.push_back({key, value});
            break;
        }
        case property_id::maximum_packet_size: {
            std::uint32_t v = pr.u32();
            if (pr.ok() && v == 0) {
                pr.fail(ce::invalid_property_value);
            }
            out.maximum_packet_size = v;
            break;
        }
        case property_id::wildcard_subscription_available:
            out.wildcard_subscription_available = boolean_byte();
            break;
        case property_id::subscription_identifier_available:
            out.subscription_identifier_available = boolean_byte();
            break;
        case property_id::shared_subscription_available:
            out.shared_subscription_available = boolean_byte();
            break;
        }
    }
    if (!pr.ok()) {
        r.fail(pr.error());
    }
}

/// The packet is over: anything left is an error.
void expect_end(reader& r) {
    if (r.ok() && !r.empty()) {
        r.fail(ce::trailing_bytes);
    }
}

std::uint16_t read_packet_id(reader& r) {
    std::uint16_t id = r.u16();
    if (r.ok() && id == 0) { // [MQTT-2.2.1-3]
        r.fail(ce::zero_packet_identifier);
    }
    return id;
}

reason_code read_reason(reader& r, packet_type t) {
    auto rc = static_cast<reason_code>(r.u8());
    if (r.ok() && !is_allowed_in(rc, t)) {
        r.fail(ce::invalid_reason_code);
    }
    return rc;
}

boost::system::error_code finish(reader& r) {
    expect_end(r);
    if (!r.ok()) {
        return make_error_code(r.error());
    }
    return {};
}

boost::system::error_code decode_connect(packet& out, reader& r) {
    auto& c = out.emplace<connect>();
    // The protocol name decides which levels are acceptable [MQTT-3.1.2-1, MQTT-3.1.2-2].
    std::string_view name = r.utf8();
    std::uint8_t level = r.u8();
    if (!r.ok()) {
        return make_error_code(r.error());
    }
    // Mosquitto's bridges (`try_private`) set the top bit of a 3.1/3.1.1 level.
    if (level == 0x83 || level == 0x84) {
        c.bridge = true;
        level &= 0x7F;
    }
    if (name == "MQTT") {
        if (level != 4 && level != 5) {
            return make_error_code(ce::unsupported_protocol_version);
        }
    } else if (name == "MQIsdp") {
        if (level != 3) {
            return make_error_code(ce::unsupported_protocol_version);
        }
    } else {
        return make_error_code(ce::invalid_protocol_name);
    }
    c.version = static_cast<protocol_version>(level);
    const bool v5 = c.version == protocol_version::v5;

    std::uint8_t flags = r.u8();
    if (!r.ok()) {
        return make_error_code(r.error());
    }
    if ((flags & 0x01) != 0) { // [MQTT-3.1.2-3]
        return make_error_code(ce::reserved_connect_flag_set);
    }
    c.clean_start = (flags & 0x02) != 0;
    const bool has_will = (flags & 0x04) != 0;
    const auto will_qos = static_cast<std::uint8_t>((flags >> 3) & 0x03);
    const bool will_retain = (flags & 0x20) != 0;
    const bool has_password = (flags & 0x40) != 0;
    const bool has_username = (flags & 0x80) != 0;
    if (!has_will && (will_qos != 0 || will_retain)) { // [MQTT-3.1.2-11, 3.1.2-13, 3.1.2-15]
        return make_error_code(ce::invalid_will_flags);
    }
    if (will_qos == 3) { // [MQTT-3.1.2-14]
        return make_error_code(ce::invalid_qos);
    }
    if (!v5 && has_password && !has_username) { // 3.1.1 [MQTT-3.1.2-22]; allowed in v5
        return make_error_code(ce::password_without_username);
    }
    c.keep_alive = r.u16();
    if (v5) {
        read_properties(r, property_context::connect, c.props);
        if (r.ok() && c.props.authentication_data && !c.props.authentication_method) {
            r.fail(ce::missing_authentication_method); // [MQTT-3.1.2.11.10]
        }
    }
    c.client_id = r.utf8();
    if (has_will) {
        will_message w;
        w.qos = static_cast<qos>(will_qos);
        w.retain = will_retain;
        if (v5) {
            read_properties(r, property_context::will, w.props);
        }
        w.topic = r.utf8();
        if (r.ok() && validate_topic_name(w.topic)) { // [MQTT-3.1.3-11]
            r.fail(ce::topic_name_invalid);
        }
        w.payload = r.binary();
        c.will = std::move(w);
    }
    if (has_username) {
        c.username = r.utf8();
    }
    if (has_password) {
        c.password = r.binary();
    }
    return finish(r);
}

boost::system::error_code decode_connack(packet& out, reader& r, protocol_version v) {
    auto& c = out.emplace<connack>();
    std::uint8_t flags = r.u8();
    if (r.ok() && (flags & 0xFE) != 0) { // [MQTT-3.2.2-1]
        r.fail(ce::invalid_connack_flags);
    }
    c.session_present = (flags & 0x01) != 0;
    std::uint8_t code = r.u8();
    if (!r.ok()) {
        return make_error_code(r.error());
    }
    if (is_v3(v)) {
        auto mapped = from_v3_connack_return_code(code);
        if (!mapped) {
            return make_error_code(ce::invalid_reason_code);
        }
        c.reason = *mapped;
    } else {
        c.reason = static_cast<reason_code>(code);
        if (!is_allowed_in(c.reason, packet_type::connack)) {
            return make_error_code(ce::invalid_reason_code);
        }
        read_properties(r, property_context::connack, c.props);
    }
    if (c.session_present && is_failure(c.reason)) { // [MQTT-3.2.2-6], 3.1.1 [MQTT-3.2.2-4]
        return make_error_code(ce::invalid_connack_flags);
    }
    return finish(r);
}

boost::system::error_code decode_publish(packet& out, reader& r, const fixed_header& h,
                                         protocol_version v, receiver_role role) {
    auto& p = out.emplace<publish>();
    p.retain = (h.flags & 0x01) != 0;
    p.qos = static_cast<qos>((h.flags >> 1) & 0x03); // QoS 3 was refused with the header
    p.dup = (h.flags & 0x08) != 0;
    p.topic = r.binary();
    if (r.ok()) {
        // UTF-8 and wildcards in one scan [MQTT-1.5.4-1, MQTT-3.3.2-2]; an empty topic is
        // judged below, once the properties tell whether a Topic Alias stands in for it.
        if (codec_error e = detail::check_topic_characters(p.topic); e != codec_error{}) {
            return make_error_code(e);
        }
    }
    if (p.qos != qos::at_most_once) {
        p.packet_id = read_packet_id(r);
    }
    if (!is_v3(v)) {
        read_properties(r, property_context::publish, p.props);
    }
    if (!r.ok()) {
        return make_error_code(r.error());
    }
    if (p.topic.empty()) {
        // v5 allows an empty topic when a Topic Alias names it [MQTT-3.3.2-1].
        if (is_v3(v)) {
            return make_error_code(ce::topic_name_invalid);
        }
        if (!p.props.topic_alias) {
            return make_error_code(ce::empty_topic_without_alias);
        }
    }
    // Subscription Identifiers travel only from server to client [MQTT-3.3.4-6].
    if (role == receiver_role::server && !p.props.subscription_identifiers.empty()) {
        return make_error_code(ce::property_not_allowed_from_sender);
    }
    p.payload = r.rest();
    return {};
}

template <typename Ack>
boost::system::error_code decode_ack(packet& out, reader& r, protocol_version v,
                                     property_context ctx) {
    auto& a = out.emplace<Ack>();
    a.packet_id = read_packet_id(r);
    // v5: the reason code and then the properties may be omitted [MQTT-3.4.2.1, 3.4.2.2.1].
    if (!is_v3(v) && r.ok() && !r.empty()) {
        a.reason = read_reason(r, Ack::type);
        if (r.ok() && !r.empty()) {
            read_properties(r, ctx, a.props);
        }
    }
    return finish(r);
}

boost::system::error_code decode_subscribe(packet& out, reader& r, protocol_version v) {
    auto& s = out.emplace<subscribe>();
    s.packet_id = read_packet_id(r);
    const bool v5 = !is_v3(v);
    if (v5) {
        read_properties(r, property_context::subscribe, s.props);
    }
    while (r.ok() && !r.empty()) {
        subscription sub;
        sub.filter = r.utf8();
        std::uint8_t opts = r.u8();
        if (!r.ok()) {
            break;
        }
        // Reserved bits: 7..6 in v5 [MQTT-3.8.3-5], 7..2 in 3.1.1 [MQTT-3-8.3-4].
        if ((opts & (v5 ? 0xC0 : 0xFC)) != 0) {
            return make_error_code(ce::invalid_subscribe_options);
        }
        if ((opts & 0x03) == 3) {
            return make_error_code(ce::invalid_qos);
        }
        sub.options.qos = static_cast<qos>(opts & 0x03);
        sub.options.no_local = (opts & 0x04) != 0;
        sub.options.retain_as_published = (opts & 0x08) != 0;
        auto handling = static_cast<std::uint8_t>((opts >> 4) & 0x03);
        if (handling == 3) {
            return make_error_code(ce::invalid_retain_handling);
        }
        sub.options.retain_handling = static_cast<retain_handling>(handling);
        auto parsed = parse_topic_filter(sub.filter);
        if (!parsed) {
            return parsed.error();
        }
        if (parsed->is_shared() && sub.options.no_local) { // [MQTT-3.8.3-4]
            return make_error_code(ce::no_local_on_shared);
        }
        s.subscriptions.push_back(sub);
    }
    if (r.ok() && s.subscriptions.empty()) { // [MQTT-3.8.3-3]
        r.fail(ce::empty_subscription_list);
    }
    return finish(r);
}

template <typename Ack>
boost::system::error_code decode_sub_ack(packet& out, reader& r, protocol_version v,
                                         property_context ctx, packet_type t) {
    auto& a = out.emplace<Ack>();
    a.packet_id = read_packet_id(r);
    if (!is_v3(v)) {
        read_properties(r, ctx, a.props);
    } else if (t == packet_type::unsuback) {
        return finish(r); // 3.1.1 UNSUBACK is the packet identifier alone
    }
    while (r.ok() && !r.empty()) {
        std::uint8_t code = r.u8();
        if (is_v3(v)) {
            // 3.1.1 SUBACK return codes: 0, 1, 2 or 0x80 Failure [MQTT-3.9.3-2].
            if (code > 2 && code != 0x80) {
                r.fail(ce::invalid_reason_code);
            }
        } else if (!is_allowed_in(static_cast<reason_code>(code), t)) {
            r.fail(ce::invalid_reason_code);
        }
        a.reasons.push_back(static_cast<reason_code>(code));
    }
    if (r.ok() && a.reasons.empty()) {
        r.fail(ce::empty_subscription_list);
    }
    return finish(r);
}

boost::system::error_code decode_unsubscribe(packet& out, reader& r, protocol_version v) {
    auto& u = out.emplace<unsubscribe>();
    u.packet_id = read_packet_id(r);
    if (!is_v3(v)) {
        read_properties(r, property_context::unsubscribe, u.props);
    }
    while (r.ok() && !r.empty()) {
        std::string_view filter = r.utf8();
        if (!r.ok()) {
            break;
        }
        auto parsed = parse_topic_filter(filter);
        if (!parsed) {
            return parsed.error();
        }
        u.filters.push_back(filter);
    }
    if (r.ok() && u.filters.empty()) { // [MQTT-3.10.3-2]
        r.fail(ce::empty_subscription_list);
    }
    return finish(r);
}

/// DISCONNECT and AUTH: in v5 an absent reason code means Success, and the properties may be
/// omitted when the Remaining Length is below 2 [MQTT-3.14.2.1, MQTT-3.15.2.1].
template <typename P>
boost::system::error_code decode_reason_only(packet& out, reader& r, protocol_version v,
                                             property_context ctx, packet_type t) {
    auto& p = out.emplace<P>();
    if (!is_v3(v) && !r.empty()) {
        p.reason = read_reason(r, t);
        if (r.ok() && !r.empty()) {
            read_properties(r, ctx, p.props);
        }
    }
    return finish(r);
}

bool accepted_by(packet_type t, receiver_role role) noexcept {
    switch (role) {
    case receiver_role::any:
        return true;
    case receiver_role::server:
        return t != packet_type::connack && t != packet_type::suback &&
               t != packet_type::unsuback && t != packet_type::pingresp;
    case receiver_role::client:
        return t != packet_type::connect && t != packet_type::subscribe &&
               t != packet_type::unsubscribe && t != packet_type::pingreq;
    }
    return false;
}

} // namespace

boost::system::result<fixed_header> decode_fixed_header(std::span<const std::uint8_t> input,
                                                        const decode_options& options) noexcept {
    if (input.empty()) {
        return make_error_code(ce::need_more);
    }
    fixed_header h;
    const std::uint8_t first = input[0];
    const std::uint8_t type = first >> 4;
    h.flags = first & 0x0F;
    if (type == 0 || (type == 15 && is_v3(options.version))) {
        return make_error_code(ce::reserved_packet_type);
    }
    h.type = static_cast<packet_type>(type);
    if (!accepted_by(h.type, options.role)) {
        return make_error_code(ce::unexpected_packet);
    }
    // Reserved flag bits [MQTT-2.1.3-1]; PUBLISH flags carry DUP, QoS and RETAIN.
    switch (h.type) {
    case packet_type::publish:
        if ((h.flags & 0x06) == 0x06) { // [MQTT-3.3.1-4]
            return make_error_code(ce::invalid_qos);
        }
        if ((h.flags & 0x06) == 0 && (h.flags & 0x08) != 0) { // [MQTT-3.3.1-2]
            return make_error_code(ce::dup_flag_on_qos0);
        }
        break;
    case packet_type::pubrel:
    case packet_type::subscribe:
    case packet_type::unsubscribe:
        if (h.flags != 0x02) {
            return make_error_code(ce::invalid_fixed_header_flags);
        }
        break;
    default:
        if (h.flags != 0) {
            return make_error_code(ce::invalid_fixed_header_flags);
        }
        break;
    }
    // Remaining Length: a Variable Byte Integer of at most four bytes, minimally encoded.
    std::uint32_t length = 0;
    std::size_t i = 1;
    for (;; ++i) {
        if (i == 5) {
            return make_error_code(ce::malformed_variable_byte_integer);
        }
        if (i >= input.size()) {
            return make_error_code(ce::need_more);
        }
        const std::uint8_t b = input[i];
        length |= std::uint32_t{b & 0x7Fu} << (7 * (i - 1));
        if ((b & 0x80) == 0) {
            if (i > 1 && b == 0) {
                return make_error_code(ce::malformed_variable_byte_integer);
            }
            break;
        }
    }
    h.remaining_length = length;
    h.size = static_cast<std::uint8_t>(i + 1);
    if (std::uint64_t{h.size} + length > options.maximum_packet_size) {
        return make_error_code(ce::packet_too_large);
    }
    return h;
}

namespace {

/// Decodes straight into `out` (no packet-sized moves on the hot path).
boost::system::error_code decode_into(const fixed_header& h, std::span<const std::uint8_t> body,
                                      const decode_options& options, packet& out) {
    reader r(body);
    const protocol_version v = options.version;
    switch (h.type) {
    case packet_type::connect:
        return decode_connect(out, r);
    case packet_type::connack:
        return decode_connack(out, r, v);
    case packet_type::publish:
        return decode_publish(out, r, h, v, options.role);
    case packet_type::puback:
        return decode_ack<puback>(out, r, v, property_context::puback);
    case packet_type::pubrec:
        return decode_ack<pubrec>(out, r, v, property_context::pubrec);
    case packet_type::pubrel:
        return decode_ack<pubrel>(out, r, v, property_context::pubrel);
    case packet_type::pubcomp:
        return decode_ack<pubcomp>(out, r, v, property_context::pubcomp);
    case packet_type::subscribe:
        return decode_subscribe(out, r, v);
    case packet_type::suback:
        return decode_sub_ack<suback>(out, r, v, property_context::suback, packet_type::suback);
    case packet_type::unsubscribe:
        return decode_unsubscribe(out, r, v);
    case packet_type::unsuback:
        return decode_sub_ack<unsuback>(out, r, v, property_context::unsuback,
                                        packet_type::unsuback);
    case packet_type::pingreq:
        out.emplace<pingreq>();
        return finish(r);
    case packet_type::pingresp:
        out.emplace<pingresp>();
        return finish(r);
    case packet_type::disconnect: {
        auto ec = decode_reason_only<disconnect>(out, r, v, property_context::disconnect,
                                                 packet_type::disconnect);
        // A server never sends Session Expiry Interval in DISCONNECT [MQTT-3.14.2-2].
        if (!ec && options.role == receiver_role::client &&
            std::get<disconnect>(out).props.session_expiry_interval) {
            return make_error_code(ce::property_not_allowed_from_sender);
        }
        return ec;
    }
    case packet_type::auth: {
        if (is_v3(v)) {
            return make_error_code(ce::reserved_packet_type);
        }
        auto ec = decode_reason_only<auth>(out, r, v, property_context::auth, packet_type::auth);
        // Only the bare "Success" form may omit the Authentication Method [MQTT-3.15.2.2.2].
        if (!ec) {
            const auto& a = std::get<auth>(out);
            if (!a.props.authentication_method &&
                (a.reason != reason_code::success || !a.props.empty())) {
                return make_error_code(ce::missing_authentication_method);
            }
        }
        return ec;
    }
    }
    return make_error_code(ce::reserved_packet_type);
}

} // namespace

boost::system::result<packet> decode_body(const fixed_header& h, std::span<const std::uint8_t> body,
                                          const decode_options& options) {
    packet out;
    if (auto ec = decode_into(h, body, options, out)) {
        return ec;
    }
    return out;
}

boost::system::result<decoded_packet> decode(std::span<const std::uint8_t> input,
                                             const decode_options& options) {
    auto header = decode_fixed_header(input, options);
    if (!header) {
        return header.error();
    }
    const std::size_t total = std::size_t{header->size} + header->remaining_length;
    if (input.size() < total) {
        return make_error_code(ce::need_more);
    }
    std::shared_ptr<std::uint8_t[]> storage;
    if (header->remaining_length != 0) {
        storage = std::make_shared_for_overwrite<std::uint8_t[]>(header->remaining_length);
        std::memcpy(storage.get(), input.data() + header->size, header->remaining_length);
    }
    // decode() is the convenience form (tools, tests); read loops use stream_decoder's in-place
    // next(chunk, packet), which never moves the packet.
    decoded_packet out;
    if (auto ec = decode_into(*header, {storage.get(), header->remaining_length}, options,
                              out.packet.packet)) {
        return ec;
    }
    out.packet.storage = std::move(storage);
    out.consumed = total;
    return out;
}

boost::system::error_code stream_decoder::next(std::span<const std::uint8_t>& input,
                                               received_packet& out) {
    if (failed_) {
        return failed_;
    }
    if (!header_done_ && header_bytes_ == 0 && !input.empty()) {
        // Fast path: the whole fixed header is usually in the chunk; parse it in place.
        auto h = decode_fixed_header(input, options_);
        if (h) {
            header_ = *h;
            header_done_ = true;
            header_bytes_ = h->size;
            input = input.subspan(h->size);
            start_body();
        } else if (h.error() != ce::need_more) {
            failed_ = h.error();
            return failed_;
        }
    }
    if (!header_done_) {
        // Gather the fixed header (2..5 bytes) into header_buf_, a byte at a time when the
        // input arrives that way, and decide on it before buffering any of the body.
        while (!input.empty()) {
            header_buf_[header_bytes_++] = input.front();
            input = input.subspan(1);
            auto h = decode_fixed_header({header_buf_, header_bytes_}, options_);
            if (h) {
                header_ = *h;
                header_done_ = true;
                break;
            }
            if (h.error() != ce::need_more) {
                failed_ = h.error();
                return failed_;
            }
        }
        if (!header_done_) {
            return make_error_code(ce::need_more);
        }
        start_body();
    }
    const std::size_t want = header_.remaining_length - body_filled_;
    const std::size_t n = std::min(want, input.size());
    if (n != 0) {
        std::memcpy(body_.get() + body_filled_, input.data(), n);
        body_filled_ += n;
        input = input.subspan(n);
    }
    if (body_filled_ < header_.remaining_length) {
        return make_error_code(ce::need_more);
    }
    // A whole packet: decode it, then get ready for the next fixed header.
    std::shared_ptr<const std::uint8_t[]> storage = std::move(body_);
    const fixed_header h = header_;
    header_done_ = false;
    header_bytes_ = 0;
    body_filled_ = 0;
    if (auto ec = decode_into(h, {storage.get(), h.remaining_length}, options_, out.packet)) {
        failed_ = ec;
        return failed_;
    }
    out.storage = std::move(storage);
    return {};
}

boost::system::result<received_packet> stream_decoder::next(std::span<const std::uint8_t>& input) {
    received_packet out;
    if (auto ec = next(input, out)) {
        return ec;
    }
    return out;
}

void stream_decoder::start_body() {
    body_filled_ = 0;
    body_.reset();
    if (header_.remaining_length != 0) {
        body_ = std::make_shared_for_overwrite<std::uint8_t[]>(header_.remaining_length);
    }
}

void stream_decoder::reset() noexcept {
    header_bytes_ = 0;
    header_done_ = false;
    body_.reset();
    body_filled_ = 0;
    failed_.clear();
}

} // namespace tern::protocol
