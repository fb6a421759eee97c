// The table of malformed and forbidden packets shared by decoder_test.cpp and the conformance
// vectors (tests/conformance/vectors/*.json), plus a test-side packet builder.

#include "malformed_cases.hpp"

namespace tern::protocol::test {

using namespace std::literals;

namespace {
constexpr auto v3 = protocol_version::v3_1_1;
constexpr auto v5 = protocol_version::v5;
constexpr auto any = receiver_role::any;
constexpr auto server = receiver_role::server;
constexpr auto client = receiver_role::client;
} // namespace

reason_code expected_reason(codec_error e) {
    switch (e) {
    case codec_error::reserved_packet_type:
    case codec_error::invalid_fixed_header_flags:
    case codec_error::malformed_variable_byte_integer:
    case codec_error::truncated_packet:
    case codec_error::trailing_bytes:
    case codec_error::invalid_utf8:
    case codec_error::invalid_qos:
    case codec_error::reserved_connect_flag_set:
    case codec_error::invalid_will_flags:
    case codec_error::password_without_username:
    case codec_error::invalid_connack_flags:
    case codec_error::unknown_property:
    case codec_error::property_not_allowed:
    case codec_error::invalid_subscribe_options:
    case codec_error::dup_flag_on_qos0:
        return reason_code::malformed_packet;
    case codec_error::duplicate_property:
    case codec_error::invalid_property_value:
    case codec_error::zero_packet_identifier:
    case codec_error::empty_subscription_list:
    case codec_error::invalid_retain_handling:
    case codec_error::no_local_on_shared:
    case codec_error::empty_topic_without_alias:
    case codec_error::invalid_reason_code:
    case codec_error::unexpected_packet:
    case codec_error::missing_authentication_method:
    case codec_error::property_not_allowed_from_sender:
        return reason_code::protocol_error;
    // [MQTT-3.1.2-1] leaves the answer to a wrong protocol name open; like an unknown level it
    // means "not a protocol I speak", so the codec answers 0x84 for both.
    case codec_error::invalid_protocol_name:
    case codec_error::unsupported_protocol_version:
        return reason_code::unsupported_protocol_version;
    case codec_error::packet_too_large:
        return reason_code::packet_too_large;
    case codec_error::topic_name_invalid:
        return reason_code::topic_name_invalid;
    case codec_error::topic_filter_invalid:
        return reason_code::topic_filter_invalid;
    default:
        return reason_code::unspecified_error;
    }
}

// --- Packet builders (test-side, independent of the encoder) ---

bytes mqtt_name() {
    return str("MQTT");
}

/// 3.1.1 CONNECT: variable header with `flags`, keep alive 60, then `payload`.
bytes connect4(std::uint8_t flags, const bytes& payload) {
    return frame(0x10, cat({mqtt_name(), u8(4), u8(flags), u16(60), payload}));
}
/// 5.0 CONNECT: variable header with `flags`, keep alive 60, `properties`, then `payload`.
bytes connect5(std::uint8_t flags, const bytes& properties, const bytes& payload) {
    return frame(0x10, cat({mqtt_name(), u8(5), u8(flags), u16(60), properties, payload}));
}
/// 3.1.1 PUBLISH with the given first byte; `id` is written when non-empty.
bytes publish4(std::uint8_t first, std::string_view topic, const bytes& id,
               std::string_view payload) {
    return frame(first, cat({str(topic), id, raw(payload)}));
}
bytes publish5(std::uint8_t first, std::string_view topic, const bytes& id, const bytes& properties,
               std::string_view payload) {
    return frame(first, cat({str(topic), id, properties, raw(payload)}));
}
/// SUBSCRIBE with one filter.
bytes subscribe4(std::uint16_t id, std::string_view filter, std::uint8_t options) {
    return frame(0x82, cat({u16(id), str(filter), u8(options)}));
}
bytes subscribe5(std::uint16_t id, const bytes& properties, std::string_view filter,
                 std::uint8_t options) {
    return frame(0x82, cat({u16(id), properties, str(filter), u8(options)}));
}
bytes unsubscribe4(std::uint16_t id, std::string_view filter) {
    return frame(0xA2, cat({u16(id), str(filter)}));
}
bytes no_props() {
    return u8(0);
}

/// A property of each wire type [MQTT-2.2.2.2].
bytes p_byte(std::uint8_t id, std::uint8_t v) {
    return cat({u8(id), u8(v)});
}
bytes p_u16(std::uint8_t id, std::uint16_t v) {
    return cat({u8(id), u16(v)});
}
bytes p_u32(std::uint8_t id, std::uint32_t v) {
    return cat({u8(id), u32(v)});
}
bytes p_vbi(std::uint8_t id, std::uint32_t v) {
    return cat({u8(id), vbi(v)});
}
bytes p_str(std::uint8_t id, std::string_view v) {
    return cat({u8(id), str(v)});
}
bytes p_pair(std::string_view k, std::string_view v) {
    return cat({u8(0x26), str(k), str(v)});
}

std::vector<bad_case> malformed_cases() {
    std::vector<bad_case> c;
    auto add = [&](std::string name, protocol_version v, receiver_role r, bytes wire,
                   codec_error e) {
        c.push_back({std::move(name), v, r, std::move(wire), e});
    };

    // --- Fixed header [MQTT-2.1] ---
    add("packet type 0 is reserved [MQTT-2.1.2]", v5, any, hex("00 00"),
        codec_error::reserved_packet_type);
    add("packet type 0 is reserved in 3.1.1 [MQTT-2.2.1]", v3, any, hex("00 00"),
        codec_error::reserved_packet_type);
    add("packet type 15 is reserved in 3.1.1 [MQTT-2.2.1]", v3, any, hex("f0 00"),
        codec_error::reserved_packet_type);
    add("packet type 15 is reserved in 3.1 (level 3)", protocol_version::v3_1, any, hex("f0 00"),
        codec_error::reserved_packet_type);
    add("PUBREL flags 0000 [MQTT-3.6.1-1]", v3, any, hex("60 02 00 01"),
        codec_error::invalid_fixed_header_flags);
    add("PUBREL flags 0011 [MQTT-3.6.1-1]", v5, any, hex("63 02 00 01"),
        codec_error::invalid_fixed_header_flags);
    add("SUBSCRIBE flags 0000 [MQTT-3.8.1-1]", v3, any, hex("80 08 00 01 00 03 61 2f 62 00"),
        codec_error::invalid_fixed_header_flags);
    add("SUBSCRIBE flags 1010 [MQTT-3.8.1-1]", v5, any, hex("8a 09 00 01 00 00 03 61 2f 62 00"),
        codec_error::invalid_fixed_header_flags);
    add("UNSUBSCRIBE flags 0000 [MQTT-3.10.1-1]", v3, any, hex("a0 07 00 01 00 03 61 2f 62"),
        codec_error::invalid_fixed_header_flags);
    add("PINGREQ flags 0001 [MQTT-2.1.3-1]", v3, any, hex("c1 00"),
        codec_error::invalid_fixed_header_flags);
    add("PINGREQ flags 1000 [MQTT-2.1.3-1]", v5, any, hex("c8 00"),
        codec_error::invalid_fixed_header_flags);
    add("PINGRESP flags 0010 [MQTT-2.1.3-1]", v3, any, hex("d2 00"),
        codec_error::invalid_fixed_header_flags);
    add("CONNECT flags 0001 [MQTT-2.1.3-1]", v3, any,
        hex("11 0c 00 04 4d 51 54 54 04 02 00 3c 00 00"), codec_error::invalid_fixed_header_flags);
    add("CONNACK flags 0100 [MQTT-2.1.3-1]", v3, any, hex("24 02 00 00"),
        codec_error::invalid_fixed_header_flags);
    add("PUBACK flags 0010 [MQTT-2.1.3-1]", v3, any, hex("42 02 00 01"),
        codec_error::invalid_fixed_header_flags);
    add("PUBREC flags 0010 [MQTT-2.1.3-1]", v5, any, hex("52 02 00 01"),
        codec_error::invalid_fixed_header_flags);
    add("PUBCOMP flags 0010 [MQTT-2.1.3-1]", v5, any, hex("72 02 00 01"),
        codec_error::invalid_fixed_header_flags);
    add("SUBACK flags 0010 [MQTT-2.1.3-1]", v3, any, hex("92 03 00 01 00"),
        codec_error::invalid_fixed_header_flags);
    add("UNSUBACK flags 0010 [MQTT-2.1.3-1]", v3, any, hex("b2 02 00 01"),
        codec_error::invalid_fixed_header_flags);
    add("DISCONNECT flags 0001 [MQTT-2.1.3-1]", v3, any, hex("e1 00"),
        codec_error::invalid_fixed_header_flags);
    add("AUTH flags 0001 [MQTT-2.1.3-1]", v5, any, hex("f1 00"),
        codec_error::invalid_fixed_header_flags);
    add("Remaining Length of 5 bytes [MQTT-1.5.5]", v5, any, hex("30 ff ff ff ff 7f"),
        codec_error::malformed_variable_byte_integer);
    add("Remaining Length with a 4th continuation bit [MQTT-1.5.5]", v3, any,
        hex("30 80 80 80 80 01"), codec_error::malformed_variable_byte_integer);
    add("Remaining Length 0 in two bytes, not minimal [MQTT-1.5.5-1]", v5, any, hex("c0 80 00"),
        codec_error::malformed_variable_byte_integer);
    add("Remaining Length 2 in three bytes, not minimal [MQTT-1.5.5-1]", v3, any,
        hex("40 82 80 00 00 01"), codec_error::malformed_variable_byte_integer);

    // --- PUBLISH [MQTT-3.3] ---
    add("PUBLISH QoS 3 [MQTT-3.3.1-4]", v3, any, publish4(0x36, "a/b", u16(1), "x"),
        codec_error::invalid_qos);
    add("PUBLISH QoS 3 in v5 [MQTT-3.3.1-4]", v5, any,
        publish5(0x36, "a/b", u16(1), no_props(), "x"), codec_error::invalid_qos);
    add("PUBLISH DUP on QoS 0 [MQTT-3.3.1-2]", v3, any, publish4(0x38, "a/b", {}, "x"),
        codec_error::dup_flag_on_qos0);
    add("PUBLISH DUP on QoS 0 in v5 [MQTT-3.3.1-2]", v5, any,
        publish5(0x39, "a/b", {}, no_props(), "x"), codec_error::dup_flag_on_qos0);
    add("PUBLISH QoS 1 packet identifier 0 [MQTT-2.2.1-3]", v3, any,
        publish4(0x32, "a/b", u16(0), "x"), codec_error::zero_packet_identifier);
    add("PUBLISH QoS 2 packet identifier 0 [MQTT-2.2.1-3]", v5, any,
        publish5(0x34, "a/b", u16(0), no_props(), "x"), codec_error::zero_packet_identifier);
    add("PUBLISH topic with '+' [MQTT-3.3.2-2]", v3, any, publish4(0x30, "a/+", {}, "x"),
        codec_error::topic_name_invalid);
    add("PUBLISH topic with '#' [MQTT-3.3.2-2]", v5, any,
        publish5(0x30, "a/#", {}, no_props(), "x"), codec_error::topic_name_invalid);
    add("PUBLISH topic with '+' inside a level [MQTT-4.7.1-1]", v3, any,
        publish4(0x32, "a+b", u16(1), "x"), codec_error::topic_name_invalid);
    add("PUBLISH empty topic in 3.1.1 [MQTT-4.7.3-1]", v3, any, publish4(0x30, "", {}, "x"),
        codec_error::topic_name_invalid);
    add("PUBLISH empty topic without Topic Alias in v5 [MQTT-3.3.2.3.4]", v5, any,
        publish5(0x30, "", {}, no_props(), "x"), codec_error::empty_topic_without_alias);
    add("PUBLISH topic with U+0000 [MQTT-1.5.4-2]", v3, any, publish4(0x30, "a\0b"sv, {}, "x"),
        codec_error::invalid_utf8);
    add("PUBLISH topic with encoded surrogate ED A0 80 [MQTT-1.5.4-1]", v3, any,
        publish4(0x30, "\xed\xa0\x80", {}, "x"), codec_error::invalid_utf8);
    add("PUBLISH topic with overlong C0 80 [MQTT-1.5.4-1]", v5, any,
        publish5(0x30, "a\xc0\x80", {}, no_props(), "x"), codec_error::invalid_utf8);
    add("PUBLISH topic with byte FF [MQTT-1.5.4-1]", v3, any, publish4(0x30, "\xff", {}, "x"),
        codec_error::invalid_utf8);
    add("PUBLISH topic with truncated sequence E2 82 [MQTT-1.5.4-1]", v3, any,
        publish4(0x30, "a\xe2\x82", {}, "x"), codec_error::invalid_utf8);
    add("PUBLISH topic length past the end [MQTT-1.5.4]", v3, any, hex("30 04 00 09 61 62"),
        codec_error::truncated_packet);
    add("PUBLISH with only one byte of topic length", v3, any, hex("30 01 00"),
        codec_error::truncated_packet);
    add("PUBLISH QoS 1 without packet identifier", v3, any, hex("32 04 00 02 61 62"),
        codec_error::truncated_packet);
    add("PUBLISH v5 without property length", v5, any, hex("30 05 00 03 61 2f 62"),
        codec_error::truncated_packet);
    add("PUBLISH property length past the end [MQTT-2.2.2.1]", v5, any, hex("30 05 00 01 61 05 01"),
        codec_error::truncated_packet);
    add("PUBLISH property value past the property length [MQTT-2.2.2.1]", v5, any,
        hex("30 07 00 01 61 02 02 00 78"), codec_error::truncated_packet);
    add("PUBLISH Topic Alias 0 [MQTT-3.3.2-8]", v5, any,
        publish5(0x30, "a", {}, props({p_u16(0x23, 0)}), "x"), codec_error::invalid_property_value);
    add("PUBLISH Payload Format Indicator 2 [MQTT-3.3.2.3.2]", v5, any,
        publish5(0x30, "a", {}, props({p_byte(0x01, 2)}), "x"),
        codec_error::invalid_property_value);
    add("PUBLISH Subscription Identifier 0 [MQTT-3.3.2.3.8]", v5, any,
        publish5(0x30, "a", {}, props({p_vbi(0x0B, 0)}), "x"), codec_error::invalid_property_value);
    add("PUBLISH Subscription Identifier not minimal [MQTT-1.5.5-1]", v5, any,
        publish5(0x30, "a", {}, props({hex("0b 81 00")}), "x"),
        codec_error::malformed_variable_byte_integer);
    add("PUBLISH property length not minimal [MQTT-1.5.5-1]", v5, any,
        publish5(0x30, "a", {}, hex("80 00"), "x"), codec_error::malformed_variable_byte_integer);
    add("PUBLISH Message Expiry Interval twice [MQTT-3.3.2.3.3]", v5, any,
        publish5(0x30, "a", {}, props({p_u32(0x02, 1), p_u32(0x02, 2)}), "x"),
        codec_error::duplicate_property);
    add("PUBLISH Payload Format Indicator twice [MQTT-3.3.2.3.2]", v5, any,
        publish5(0x30, "a", {}, props({p_byte(0x01, 1), p_byte(0x01, 1)}), "x"),
        codec_error::duplicate_property);
    add("PUBLISH Topic Alias twice [MQTT-3.3.2.3.4]", v5, any,
        publish5(0x30, "a", {}, props({p_u16(0x23, 1), p_u16(0x23, 2)}), "x"),
        codec_error::duplicate_property);
    add("PUBLISH Content Type twice [MQTT-3.3.2.3.9]", v5, any,
        publish5(0x30, "a", {}, props({p_str(0x03, "a"), p_str(0x03, "b")}), "x"),
        codec_error::duplicate_property);
    add("PUBLISH Session Expiry Interval is not a PUBLISH property [MQTT-2.2.2.2]", v5, any,
        publish5(0x30, "a", {}, props({p_u32(0x11, 1)}), "x"), codec_error::property_not_allowed);
    add("PUBLISH Will Delay Interval is not a PUBLISH property [MQTT-2.2.2.2]", v5, any,
        publish5(0x30, "a", {}, props({p_u32(0x18, 1)}), "x"), codec_error::property_not_allowed);
    add("PUBLISH Reason String is not a PUBLISH property [MQTT-2.2.2.2]", v5, any,
        publish5(0x30, "a", {}, props({p_str(0x1F, "r")}), "x"), codec_error::property_not_allowed);
    add("PUBLISH unknown property 0x05 [MQTT-2.2.2.2]", v5, any,
        publish5(0x30, "a", {}, props({hex("05 00")}), "x"), codec_error::unknown_property);
    add("PUBLISH unknown property 0x00 [MQTT-2.2.2.2]", v5, any,
        publish5(0x30, "a", {}, props({hex("00 00")}), "x"), codec_error::unknown_property);
    add("PUBLISH unknown property 0x7F [MQTT-2.2.2.2]", v5, any,
        publish5(0x30, "a", {}, props({hex("7f 00")}), "x"), codec_error::unknown_property);
    add("PUBLISH User Property key with U+0000 [MQTT-1.5.4-2]", v5, any,
        publish5(0x30, "a", {}, props({p_pair("\0"sv, "")}), "x"), codec_error::invalid_utf8);
    add("PUBLISH User Property value with a surrogate [MQTT-1.5.4-1]", v5, any,
        publish5(0x30, "a", {}, props({p_pair("k", "\xed\xbf\xbf")}), "x"),
        codec_error::invalid_utf8);
    add("PUBLISH Content Type ill-formed [MQTT-1.5.4-1]", v5, any,
        publish5(0x30, "a", {}, props({p_str(0x03, "\xff")}), "x"), codec_error::invalid_utf8);
    add("PUBLISH Response Topic with a wildcard [MQTT-3.3.2-14]", v5, any,
        publish5(0x30, "a", {}, props({p_str(0x08, "r/#")}), "x"), codec_error::topic_name_invalid);

    // --- PUBACK, PUBREC, PUBREL, PUBCOMP [MQTT-3.4 .. 3.7] ---
    add("PUBACK packet identifier 0 [MQTT-2.2.1-3]", v3, any, hex("40 02 00 00"),
        codec_error::zero_packet_identifier);
    add("PUBACK packet identifier 0 in v5 [MQTT-2.2.1-3]", v5, any, hex("40 02 00 00"),
        codec_error::zero_packet_identifier);
    add("PUBREC packet identifier 0 [MQTT-2.2.1-3]", v3, any, hex("50 02 00 00"),
        codec_error::zero_packet_identifier);
    add("PUBREL packet identifier 0 [MQTT-2.2.1-3]", v3, any, hex("62 02 00 00"),
        codec_error::zero_packet_identifier);
    add("PUBCOMP packet identifier 0 [MQTT-2.2.1-3]", v5, any, hex("70 02 00 00"),
        codec_error::zero_packet_identifier);
    add("PUBACK reason 0x04 is not a PUBACK reason code [MQTT-3.4.2.1]", v5, any,
        hex("40 03 00 01 04"), codec_error::invalid_reason_code);
    add("PUBACK reason 0x05 is undefined [MQTT-3.4.2.1]", v5, any, hex("40 03 00 01 05"),
        codec_error::invalid_reason_code);
    add("PUBREL reason 0x10 is not a PUBREL reason code [MQTT-3.6.2.1]", v5, any,
        hex("62 03 00 01 10"), codec_error::invalid_reason_code);
    add("PUBCOMP reason 0x80 is not a PUBCOMP reason code [MQTT-3.7.2.1]", v5, any,
        hex("70 03 00 01 80"), codec_error::invalid_reason_code);
    add("PUBREC reason 0x92 is not a PUBREC reason code [MQTT-3.5.2.1]", v5, any,
        hex("50 03 00 01 92"), codec_error::invalid_reason_code);
    add("PUBACK Remaining Length 3 in 3.1.1 [MQTT-3.4.1]", v3, any, hex("40 03 00 01 00"),
        codec_error::trailing_bytes);
    add("PUBACK Remaining Length 1", v3, any, hex("40 01 00"), codec_error::truncated_packet);
    add("PUBACK Remaining Length 0", v5, any, hex("40 00"), codec_error::truncated_packet);
    add("PUBACK v5 bytes after the properties", v5, any, hex("40 05 00 01 00 00 00"),
        codec_error::trailing_bytes);
    add("PUBACK v5 Session Expiry Interval not allowed [MQTT-3.4.2.2]", v5, any,
        frame(0x40, cat({u16(1), u8(0), props({p_u32(0x11, 1)})})),
        codec_error::property_not_allowed);
    add("PUBACK v5 Reason String twice [MQTT-3.4.2.2.2]", v5, any,
        frame(0x40, cat({u16(1), u8(0x10), props({p_str(0x1F, "a"), p_str(0x1F, "b")})})),
        codec_error::duplicate_property);

    // --- SUBSCRIBE [MQTT-3.8] ---
    add("SUBSCRIBE without filters [MQTT-3.8.3-3]", v3, any, hex("82 02 00 01"),
        codec_error::empty_subscription_list);
    add("SUBSCRIBE v5 without filters [MQTT-3.8.3-3]", v5, any, hex("82 03 00 01 00"),
        codec_error::empty_subscription_list);
    add("SUBSCRIBE packet identifier 0 [MQTT-2.2.1-3]", v3, any, subscribe4(0, "a/b", 0),
        codec_error::zero_packet_identifier);
    add("SUBSCRIBE v5 packet identifier 0 [MQTT-2.2.1-3]", v5, any,
        subscribe5(0, no_props(), "a/b", 0), codec_error::zero_packet_identifier);
    add("SUBSCRIBE QoS 3 [MQTT-3.8.3-4]", v3, any, subscribe4(1, "a/b", 0x03),
        codec_error::invalid_qos);
    add("SUBSCRIBE v5 QoS 3 [MQTT-3.8.3.1]", v5, any, subscribe5(1, no_props(), "a/b", 0x03),
        codec_error::invalid_qos);
    add("SUBSCRIBE 3.1.1 reserved option bit 2 [MQTT-3.8.3-4]", v3, any, subscribe4(1, "a/b", 0x04),
        codec_error::invalid_subscribe_options);
    add("SUBSCRIBE 3.1.1 reserved option bit 7 [MQTT-3.8.3-4]", v3, any, subscribe4(1, "a/b", 0x81),
        codec_error::invalid_subscribe_options);
    add("SUBSCRIBE v5 reserved option bit 6 [MQTT-3.8.3-5]", v5, any,
        subscribe5(1, no_props(), "a/b", 0x40), codec_error::invalid_subscribe_options);
    add("SUBSCRIBE v5 reserved option bit 7 [MQTT-3.8.3-5]", v5, any,
        subscribe5(1, no_props(), "a/b", 0x80), codec_error::invalid_subscribe_options);
    add("SUBSCRIBE v5 Retain Handling 3 [MQTT-3.8.3.1]", v5, any,
        subscribe5(1, no_props(), "a/b", 0x30), codec_error::invalid_retain_handling);
    add("SUBSCRIBE v5 No Local on a shared subscription [MQTT-3.8.3-4]", v5, any,
        subscribe5(1, no_props(), "$share/g/a", 0x04), codec_error::no_local_on_shared);
    for (const char* bad : {"a/#/b", "a/b#", "a+/b", "a/+b", "#/a", "##", "++", ""}) {
        add("SUBSCRIBE filter \""s + bad + "\" [MQTT-4.7.1-2] [MQTT-4.7.1-3] [MQTT-4.7.3-1]", v3,
            any, subscribe4(1, bad, 0), codec_error::topic_filter_invalid);
    }
    for (const char* bad :
         {"$share/g", "$share/", "$share//a", "$share/g+/a", "$share/g#/a", "$share/g/"}) {
        add("SUBSCRIBE shared filter \""s + bad + "\" [MQTT-4.8.2-1] [MQTT-4.8.2-2]", v5, any,
            subscribe5(1, no_props(), bad, 0), codec_error::topic_filter_invalid);
    }
    add("SUBSCRIBE shared filter with a bad filter part [MQTT-4.8.2-2]", v5, any,
        subscribe5(1, no_props(), "$share/g/a/#/b", 0), codec_error::topic_filter_invalid);
    add("SUBSCRIBE filter with overlong C0 80 [MQTT-1.5.4-1]", v3, any,
        subscribe4(1, "a\xc0\x80", 0), codec_error::invalid_utf8);
    add("SUBSCRIBE second filter invalid [MQTT-4.7.1-2]", v3, any,
        frame(0x82, cat({u16(1), str("a"), u8(0), str("b/#/c"), u8(0)})),
        codec_error::topic_filter_invalid);
    add("SUBSCRIBE filter without options byte", v3, any, hex("82 07 00 01 00 03 61 2f 62"),
        codec_error::truncated_packet);
    add("SUBSCRIBE v5 two Subscription Identifiers [MQTT-3.8.2.1.2]", v5, any,
        subscribe5(1, props({p_vbi(0x0B, 1), p_vbi(0x0B, 2)}), "a", 0),
        codec_error::duplicate_property);
    add("SUBSCRIBE v5 Subscription Identifier 0 [MQTT-3.8.2.1.2]", v5, any,
        subscribe5(1, props({p_vbi(0x0B, 0)}), "a", 0), codec_error::invalid_property_value);
    add("SUBSCRIBE v5 Topic Alias is not a SUBSCRIBE property [MQTT-3.8.2.1]", v5, any,
        subscribe5(1, props({p_u16(0x23, 1)}), "a", 0), codec_error::property_not_allowed);

    // --- UNSUBSCRIBE [MQTT-3.10] ---
    add("UNSUBSCRIBE without filters [MQTT-3.10.3-2]", v3, any, hex("a2 02 00 01"),
        codec_error::empty_subscription_list);
    add("UNSUBSCRIBE v5 without filters [MQTT-3.10.3-2]", v5, any, hex("a2 03 00 01 00"),
        codec_error::empty_subscription_list);
    add("UNSUBSCRIBE packet identifier 0 [MQTT-2.2.1-3]", v3, any, unsubscribe4(0, "a/b"),
        codec_error::zero_packet_identifier);
    add("UNSUBSCRIBE filter \"a/#/b\" [MQTT-4.7.1-2]", v3, any, unsubscribe4(1, "a/#/b"),
        codec_error::topic_filter_invalid);
    add("UNSUBSCRIBE filter \"$share//a\" [MQTT-4.8.2-1]", v3, any, unsubscribe4(1, "$share//a"),
        codec_error::topic_filter_invalid);
    add("UNSUBSCRIBE filter with a surrogate [MQTT-1.5.4-1]", v3, any,
        unsubscribe4(1, "\xed\xa0\x80"), codec_error::invalid_utf8);
    add("UNSUBSCRIBE filter length past the end", v3, any, hex("a2 05 00 01 00 05 61"),
        codec_error::truncated_packet);
    add("UNSUBSCRIBE v5 Subscription Identifier not allowed [MQTT-3.10.2.1]", v5, any,
        frame(0xA2, cat({u16(1), props({p_vbi(0x0B, 1)}), str("a")})),
        codec_error::property_not_allowed);

    // --- SUBACK, UNSUBACK [MQTT-3.9, 3.11] ---
    add("SUBACK packet identifier 0 [MQTT-2.2.1-3]", v3, any, hex("90 03 00 00 00"),
        codec_error::zero_packet_identifier);
    add("UNSUBACK packet identifier 0 [MQTT-2.2.1-3]", v3, any, hex("b0 02 00 00"),
        codec_error::zero_packet_identifier);
    add("SUBACK without reason codes [MQTT-3.9.3]", v3, any, hex("90 02 00 01"),
        codec_error::empty_subscription_list);
    add("SUBACK v5 without reason codes [MQTT-3.9.3]", v5, any, hex("90 03 00 01 00"),
        codec_error::empty_subscription_list);
    add("UNSUBACK v5 without reason codes [MQTT-3.11.3]", v5, any, hex("b0 03 00 01 00"),
        codec_error::empty_subscription_list);
    add("SUBACK 3.1.1 return code 0x03 [MQTT-3.9.3]", v3, any, hex("90 03 00 01 03"),
        codec_error::invalid_reason_code);
    add("SUBACK v5 reason 0x04 [MQTT-3.9.3]", v5, any, hex("90 04 00 01 00 04"),
        codec_error::invalid_reason_code);
    add("SUBACK v5 reason 0x11 (UNSUBACK only) [MQTT-3.9.3]", v5, any, hex("90 04 00 01 00 11"),
        codec_error::invalid_reason_code);
    add("UNSUBACK v5 reason 0x01 (SUBACK only) [MQTT-3.11.3]", v5, any, hex("b0 04 00 01 00 01"),
        codec_error::invalid_reason_code);
    add("UNSUBACK 3.1.1 with a payload [MQTT-3.11.3]", v3, any, hex("b0 03 00 01 00"),
        codec_error::trailing_bytes);
    add("SUBACK v5 Subscription Identifier not allowed [MQTT-3.9.2.1]", v5, any,
        frame(0x90, cat({u16(1), props({p_vbi(0x0B, 1)}), u8(0)})),
        codec_error::property_not_allowed);

    // --- CONNACK [MQTT-3.2] ---
    add("CONNACK acknowledge flags bit 1 [MQTT-3.2.2-1]", v3, any, hex("20 02 02 00"),
        codec_error::invalid_connack_flags);
    add("CONNACK 3.1.1 session present with return code 5 [MQTT-3.2.2-4]", v3, any,
        hex("20 02 01 05"), codec_error::invalid_connack_flags);
    add("CONNACK v5 session present with reason 0x87 [MQTT-3.2.2-6]", v5, any,
        hex("20 03 01 87 00"), codec_error::invalid_connack_flags);
    add("PUBLISH from a client with a Subscription Identifier [MQTT-3.3.4-6]", v5, server,
        publish5(0x30, "a", {}, props({p_vbi(0x0B, 1)}), "x"),
        codec_error::property_not_allowed_from_sender);
    add("DISCONNECT from a server with Session Expiry Interval [MQTT-3.14.2-2]", v5, client,
        frame(0xE0, cat({u8(0x00), props({p_u32(0x11, 10)})})),
        codec_error::property_not_allowed_from_sender);
    add("CONNACK v5 acknowledge flags bit 7 [MQTT-3.2.2-1]", v5, any, hex("20 03 80 00 00"),
        codec_error::invalid_connack_flags);
    add("CONNACK 3.1.1 return code 6 is reserved [MQTT-3.2.2.3]", v3, any, hex("20 02 00 06"),
        codec_error::invalid_reason_code);
    add("CONNACK v5 reason 0x04 [MQTT-3.2.2.2]", v5, any, hex("20 03 00 04 00"),
        codec_error::invalid_reason_code);
    add("CONNACK v5 reason 0x8B (DISCONNECT only) [MQTT-3.2.2.2]", v5, any, hex("20 03 00 8b 00"),
        codec_error::invalid_reason_code);
    add("CONNACK 3.1.1 with a trailing byte", v3, any, hex("20 03 00 00 00"),
        codec_error::trailing_bytes);
    add("CONNACK truncated", v3, any, hex("20 01 00"), codec_error::truncated_packet);
    add("CONNACK v5 Topic Alias is not a CONNACK property [MQTT-3.2.2.3]", v5, any,
        frame(0x20, cat({u8(0), u8(0), props({p_u16(0x23, 1)})})),
        codec_error::property_not_allowed);
    add("CONNACK v5 Maximum QoS 2 [MQTT-3.2.2.3.4]", v5, any,
        frame(0x20, cat({u8(0), u8(0), props({p_byte(0x24, 2)})})),
        codec_error::invalid_property_value);
    add("CONNACK v5 Retain Available 2 [MQTT-3.2.2.3.5]", v5, any,
        frame(0x20, cat({u8(0), u8(0), props({p_byte(0x25, 2)})})),
        codec_error::invalid_property_value);
    add("CONNACK v5 Receive Maximum 0 [MQTT-3.2.2.3.3]", v5, any,
        frame(0x20, cat({u8(0), u8(0), props({p_u16(0x21, 0)})})),
        codec_error::invalid_property_value);
    add("CONNACK v5 Maximum Packet Size 0 [MQTT-3.2.2.3.6]", v5, any,
        frame(0x20, cat({u8(0), u8(0), props({p_u32(0x27, 0)})})),
        codec_error::invalid_property_value);
    add("CONNACK v5 Shared Subscription Available 2 [MQTT-3.2.2.3.13]", v5, any,
        frame(0x20, cat({u8(0), u8(0), props({p_byte(0x2A, 2)})})),
        codec_error::invalid_property_value);
    add("CONNACK v5 Server Keep Alive twice [MQTT-3.2.2.3.14]", v5, any,
        frame(0x20, cat({u8(0), u8(0), props({p_u16(0x13, 1), p_u16(0x13, 2)})})),
        codec_error::duplicate_property);

    // --- DISCONNECT, AUTH [MQTT-3.14, 3.15] ---
    add("DISCONNECT v5 reason 0x05 undefined [MQTT-3.14.2.1]", v5, any, hex("e0 01 05"),
        codec_error::invalid_reason_code);
    add("DISCONNECT v5 reason 0x10 (PUBACK only) [MQTT-3.14.2.1]", v5, any, hex("e0 01 10"),
        codec_error::invalid_reason_code);
    add("DISCONNECT 3.1.1 with a payload [MQTT-3.14.1]", v3, any, hex("e0 01 00"),
        codec_error::trailing_bytes);
    add("DISCONNECT v5 Receive Maximum not allowed [MQTT-3.14.2.2]", v5, any,
        frame(0xE0, cat({u8(0), props({p_u16(0x21, 1)})})), codec_error::property_not_allowed);
    add("DISCONNECT v5 bytes after the properties", v5, any, hex("e0 03 00 00 00"),
        codec_error::trailing_bytes);
    add("AUTH reason 0x04 [MQTT-3.15.2.1]", v5, any, hex("f0 02 04 00"),
        codec_error::invalid_reason_code);
    add("AUTH Session Expiry Interval not allowed [MQTT-3.15.2.2]", v5, any,
        frame(0xF0, cat({u8(0x18), props({p_u32(0x11, 1)})})), codec_error::property_not_allowed);
    add("AUTH Authentication Method twice [MQTT-3.15.2.2.2]", v5, any,
        frame(0xF0, cat({u8(0x18), props({p_str(0x15, "a"), p_str(0x15, "a")})})),
        codec_error::duplicate_property);

    // --- CONNECT [MQTT-3.1] ---
    add("CONNECT protocol name \"MQTX\" [MQTT-3.1.2-1]", v3, server,
        frame(0x10, cat({str("MQTX"), u8(4), u8(2), u16(60), str("c")})),
        codec_error::invalid_protocol_name);
    add("CONNECT protocol name \"mqtt\" is case-sensitive [MQTT-3.1.2-1]", v5, server,
        frame(0x10, cat({str("mqtt"), u8(5), u8(2), u16(60), u8(0), str("c")})),
        codec_error::invalid_protocol_name);
    add("CONNECT protocol level 6 [MQTT-3.1.2-2]", v5, server,
        frame(0x10, cat({mqtt_name(), u8(6), u8(2), u16(60), u8(0), str("c")})),
        codec_error::unsupported_protocol_version);
    add("CONNECT protocol level 0 [MQTT-3.1.2-2]", v5, server,
        frame(0x10, cat({mqtt_name(), u8(0), u8(2), u16(60), str("c")})),
        codec_error::unsupported_protocol_version);
    add("CONNECT reserved flag bit 0 [MQTT-3.1.2-3]", v3, server, connect4(0x03, str("c")),
        codec_error::reserved_connect_flag_set);
    add("CONNECT v5 reserved flag bit 0 [MQTT-3.1.2-3]", v5, server,
        connect5(0x03, no_props(), str("c")), codec_error::reserved_connect_flag_set);
    add("CONNECT will QoS 1 without will flag [MQTT-3.1.2-11]", v3, server,
        connect4(0x0A, str("c")), codec_error::invalid_will_flags);
    add("CONNECT will QoS 2 without will flag [MQTT-3.1.2-11]", v5, server,
        connect5(0x12, no_props(), str("c")), codec_error::invalid_will_flags);
    add("CONNECT will retain without will flag [MQTT-3.1.2-13]", v3, server,
        connect4(0x22, str("c")), codec_error::invalid_will_flags);
    add("CONNECT will QoS 3 [MQTT-3.1.2-12]", v3, server,
        connect4(0x1E, cat({str("c"), str("w"), str("m")})), codec_error::invalid_qos);
    add("CONNECT v5 will QoS 3 [MQTT-3.1.2-12]", v5, server,
        connect5(0x1E, no_props(), cat({str("c"), no_props(), str("w"), str("m")})),
        codec_error::invalid_qos);
    add("CONNECT 3.1.1 password without user name [MQTT-3.1.2-22]", v3, server,
        connect4(0x42, cat({str("c"), str("p")})), codec_error::password_without_username);
    add("CONNECT client id with U+0000 [MQTT-1.5.4-2]", v3, server, connect4(0x02, str("a\0"sv)),
        codec_error::invalid_utf8);
    add("CONNECT client id with overlong C0 80 [MQTT-1.5.4-1]", v5, server,
        connect5(0x02, no_props(), str("\xc0\x80")), codec_error::invalid_utf8);
    add("CONNECT user name with a surrogate [MQTT-3.1.3-11]", v3, server,
        connect4(0x82, cat({str("c"), str("\xed\xa0\x80")})), codec_error::invalid_utf8);
    add("CONNECT will topic ill-formed [MQTT-3.1.3-11]", v3, server,
        connect4(0x06, cat({str("c"), str("\xff"), str("m")})), codec_error::invalid_utf8);
    add("CONNECT will topic with a wildcard [MQTT-4.7.1-1]", v3, server,
        connect4(0x06, cat({str("c"), str("a/#"), str("m")})), codec_error::topic_name_invalid);
    add("CONNECT empty will topic [MQTT-4.7.3-1]", v5, server,
        connect5(0x06, no_props(), cat({str("c"), no_props(), str(""), str("m")})),
        codec_error::topic_name_invalid);
    add("CONNECT client id length past the end", v3, server, connect4(0x02, hex("00 05 61 62")),
        codec_error::truncated_packet);
    add("CONNECT without client id", v3, server, connect4(0x02, {}), codec_error::truncated_packet);
    add("CONNECT will flag without will message", v3, server,
        connect4(0x06, cat({str("c"), str("w")})), codec_error::truncated_packet);
    add("CONNECT user name flag without user name", v3, server, connect4(0x82, str("c")),
        codec_error::truncated_packet);
    add("CONNECT truncated inside the protocol name", v3, server, hex("10 03 00 04 4d"),
        codec_error::truncated_packet);
    add("CONNECT with a byte after the password [MQTT-3.1.3]", v3, server,
        connect4(0xC2, cat({str("c"), str("u"), str("p"), u8(0)})), codec_error::trailing_bytes);
    add("CONNECT with a byte after the client id [MQTT-3.1.3]", v5, server,
        connect5(0x02, no_props(), cat({str("c"), u8(0)})), codec_error::trailing_bytes);
    add("CONNECT v5 Receive Maximum 0 [MQTT-3.1.2.11.3]", v5, server,
        connect5(0x02, props({p_u16(0x21, 0)}), str("c")), codec_error::invalid_property_value);
    add("CONNECT v5 Maximum Packet Size 0 [MQTT-3.1.2.11.4]", v5, server,
        connect5(0x02, props({p_u32(0x27, 0)}), str("c")), codec_error::invalid_property_value);
    add("CONNECT v5 Request Problem Information 2 [MQTT-3.1.2.11.7]", v5, server,
        connect5(0x02, props({p_byte(0x17, 2)}), str("c")), codec_error::invalid_property_value);
    add("CONNECT v5 Request Response Information 2 [MQTT-3.1.2.11.6]", v5, server,
        connect5(0x02, props({p_byte(0x19, 2)}), str("c")), codec_error::invalid_property_value);
    add("CONNECT v5 Session Expiry Interval twice [MQTT-3.1.2.11.2]", v5, server,
        connect5(0x02, props({p_u32(0x11, 1), p_u32(0x11, 1)}), str("c")),
        codec_error::duplicate_property);
    add("CONNECT v5 Topic Alias is not a CONNECT property [MQTT-3.1.2.11]", v5, server,
        connect5(0x02, props({p_u16(0x23, 1)}), str("c")), codec_error::property_not_allowed);
    add("CONNECT v5 Will Delay Interval is a will property only [MQTT-3.1.2.11]", v5, server,
        connect5(0x02, props({p_u32(0x18, 1)}), str("c")), codec_error::property_not_allowed);
    add("CONNECT v5 Session Expiry Interval in will properties [MQTT-3.1.3.2]", v5, server,
        connect5(0x06, no_props(), cat({str("c"), props({p_u32(0x11, 1)}), str("w"), str("m")})),
        codec_error::property_not_allowed);
    add("CONNECT v5 will Payload Format Indicator 2 [MQTT-3.1.3.2.3]", v5, server,
        connect5(0x06, no_props(), cat({str("c"), props({p_byte(0x01, 2)}), str("w"), str("m")})),
        codec_error::invalid_property_value);
    add("CONNECT v5 will Will Delay Interval twice [MQTT-3.1.3.2.2]", v5, server,
        connect5(0x06, no_props(),
                 cat({str("c"), props({p_u32(0x18, 1), p_u32(0x18, 1)}), str("w"), str("m")})),
        codec_error::duplicate_property);
    add("CONNECT v5 unknown property 0x2B [MQTT-2.2.2.2]", v5, server,
        connect5(0x02, props({hex("2b 00")}), str("c")), codec_error::unknown_property);

    // --- Receiver role [MQTT-3.1..3.15 "sent by"] ---
    add("server receives CONNACK", v3, server, hex("20 02 00 00"), codec_error::unexpected_packet);
    add("server receives SUBACK", v5, server, hex("90 04 00 01 00 00"),
        codec_error::unexpected_packet);
    add("server receives UNSUBACK", v3, server, hex("b0 02 00 01"), codec_error::unexpected_packet);
    add("server receives PINGRESP", v5, server, hex("d0 00"), codec_error::unexpected_packet);
    add("client receives CONNECT", v3, client, connect4(0x02, str("c")),
        codec_error::unexpected_packet);
    add("client receives SUBSCRIBE", v3, client, subscribe4(1, "a", 0),
        codec_error::unexpected_packet);
    add("client receives UNSUBSCRIBE", v3, client, unsubscribe4(1, "a"),
        codec_error::unexpected_packet);
    add("client receives PINGREQ", v5, client, hex("c0 00"), codec_error::unexpected_packet);
    return c;
}

std::string_view error_name(codec_error e) {
    for (const auto& [name, value] : error_names()) {
        if (value == e) {
            return name;
        }
    }
    return "unknown";
}

std::optional<codec_error> error_from_name(std::string_view name) {
    for (const auto& [n, value] : error_names()) {
        if (n == name) {
            return value;
        }
    }
    return std::nullopt;
}

const std::vector<std::pair<std::string_view, codec_error>>& error_names() {
    using ce = codec_error;
    static const std::vector<std::pair<std::string_view, codec_error>> names = {
        {"reserved_packet_type", ce::reserved_packet_type},
        {"invalid_fixed_header_flags", ce::invalid_fixed_header_flags},
        {"malformed_variable_byte_integer", ce::malformed_variable_byte_integer},
        {"truncated_packet", ce::truncated_packet},
        {"trailing_bytes", ce::trailing_bytes},
        {"invalid_utf8", ce::invalid_utf8},
        {"invalid_qos", ce::invalid_qos},
        {"invalid_protocol_name", ce::invalid_protocol_name},
        {"reserved_connect_flag_set", ce::reserved_connect_flag_set},
        {"invalid_will_flags", ce::invalid_will_flags},
        {"password_without_username", ce::password_without_username},
        {"invalid_connack_flags", ce::invalid_connack_flags},
        {"unknown_property", ce::unknown_property},
        {"property_not_allowed", ce::property_not_allowed},
        {"invalid_subscribe_options", ce::invalid_subscribe_options},
        {"dup_flag_on_qos0", ce::dup_flag_on_qos0},
        {"duplicate_property", ce::duplicate_property},
        {"invalid_property_value", ce::invalid_property_value},
        {"zero_packet_identifier", ce::zero_packet_identifier},
        {"empty_subscription_list", ce::empty_subscription_list},
        {"invalid_retain_handling", ce::invalid_retain_handling},
        {"no_local_on_shared", ce::no_local_on_shared},
        {"empty_topic_without_alias", ce::empty_topic_without_alias},
        {"invalid_reason_code", ce::invalid_reason_code},
        {"unexpected_packet", ce::unexpected_packet},
        {"missing_authentication_method", ce::missing_authentication_method},
        {"property_not_allowed_from_sender", ce::property_not_allowed_from_sender},
        {"unsupported_protocol_version", ce::unsupported_protocol_version},
        {"packet_too_large", ce::packet_too_large},
        {"topic_name_invalid", ce::topic_name_invalid},
        {"topic_filter_invalid", ce::topic_filter_invalid},
    };
    return names;
}

} // namespace tern::protocol::test
