// Reason codes [MQTT-2.4], codec errors as boost::system error codes, packet type names, and the
// property table [MQTT-2.2.2.2].

#include "malformed_cases.hpp"
#include "test_support.hpp"

#include <algorithm>
#include <set>

namespace tern::protocol::test {
namespace {

using namespace std::literals;

TEST_CASE("reason code names are the specification's", "[protocol][reason_code]") {
    CHECK(to_string(reason_code::packet_too_large) == "Packet too large");
    CHECK(to_string(reason_code::success) == "Success");
    CHECK(to_string(reason_code::granted_qos_1) == "Granted QoS 1");
    CHECK(to_string(reason_code::no_matching_subscribers) == "No matching subscribers");
    CHECK(to_string(reason_code::unspecified_error) == "Unspecified error");
    CHECK(to_string(reason_code::malformed_packet) == "Malformed Packet");
    CHECK(to_string(reason_code::protocol_error) == "Protocol Error");
    CHECK(to_string(reason_code::not_authorized) == "Not authorized");
    CHECK(to_string(reason_code::quota_exceeded) == "Quota exceeded");
    CHECK(to_string(reason_code::topic_name_invalid) == "Topic Name invalid");
    CHECK(to_string(reason_code::unsupported_protocol_version) == "Unsupported Protocol Version");
    CHECK(to_string(reason_code::wildcard_subscriptions_not_supported) ==
          "Wildcard Subscriptions not supported");
}

const std::set<int> defined_codes = {
    0x00, 0x01, 0x02, 0x04, 0x10, 0x11, 0x18, 0x19, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86,
    0x87, 0x88, 0x89, 0x8A, 0x8B, 0x8C, 0x8D, 0x8E, 0x8F, 0x90, 0x91, 0x92, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2};

TEST_CASE("is_defined, is_failure and names cover exactly the codes of section 2.4",
          "[protocol][reason_code]") {
    CHECK(defined_codes.size() == 43);
    for (int v = 0; v <= 255; ++v) {
        INFO("reason code " << v);
        const auto rc = static_cast<reason_code>(v);
        const bool defined = defined_codes.count(v) != 0;
        CHECK(is_defined(rc) == defined);
        CHECK(is_failure(rc) == (v >= 0x80));
        if (defined) {
            CHECK_FALSE(to_string(rc).empty());
            CHECK(to_string(rc) != "Unknown reason code");
        } else {
            CHECK(to_string(rc) == "Unknown reason code");
        }
    }
}

TEST_CASE("is_allowed_in follows the per-packet tables of MQTT 5 [MQTT-2.4]",
          "[protocol][reason_code]") {
    // Sections 3.2.2.2, 3.4.2.1, 3.5.2.1, 3.6.2.1, 3.7.2.1, 3.9.3, 3.11.3, 3.14.2.1, 3.15.2.1.
    const std::pair<packet_type, std::set<int>> tables[] = {
        {packet_type::connack, {0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
                                0x8A, 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F}},
        {packet_type::puback, {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99}},
        {packet_type::pubrec, {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99}},
        {packet_type::pubrel, {0x00, 0x92}},
        {packet_type::pubcomp, {0x00, 0x92}},
        {packet_type::suback,
         {0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2}},
        {packet_type::unsuback, {0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91}},
        {packet_type::disconnect,
         {0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94,
          0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2}},
        {packet_type::auth, {0x00, 0x18, 0x19}},
    };
    for (const auto& [type, allowed] : tables) {
        for (int v = 0; v <= 255; ++v) {
            const bool expected = allowed.count(v) != 0;
            const auto rc = static_cast<reason_code>(v);
            if (is_allowed_in(rc, type) != expected) {
                INFO(to_string(type) << " reason code " << v);
                CHECK(is_allowed_in(rc, type) == expected);
            }
        }
    }
    // Spot checks, readable.
    CHECK(is_allowed_in(reason_code::granted_qos_1, packet_type::suback));
    CHECK_FALSE(is_allowed_in(reason_code::granted_qos_1, packet_type::connack));
    CHECK_FALSE(is_allowed_in(reason_code::disconnect_with_will_message, packet_type::puback));
    CHECK(is_allowed_in(reason_code::packet_identifier_not_found, packet_type::pubrel));
    CHECK_FALSE(is_allowed_in(reason_code::server_shutting_down, packet_type::connack));
    CHECK(is_allowed_in(reason_code::re_authenticate, packet_type::auth));
}

TEST_CASE("codec errors are boost::system error codes with messages and reason codes",
          "[protocol][error]") {
    const boost::system::error_code ec = codec_error::invalid_utf8;
    CHECK(ec == codec_error::invalid_utf8);
    CHECK(ec != codec_error::invalid_qos);
    CHECK(ec.category() == codec_error_category());
    CHECK(ec != reason_code::malformed_packet);
    CHECK(std::string_view(codec_error_category().name()).size() > 0);
    CHECK(std::string_view(reason_code_category().name()).size() > 0);
    CHECK(std::string_view(codec_error_category().name()) !=
          std::string_view(reason_code_category().name()));
    CHECK_FALSE(ec.message().empty());
    CHECK(to_reason_code(ec) == reason_code::malformed_packet);

    const boost::system::error_code rc = reason_code::quota_exceeded;
    CHECK(rc.category() == reason_code_category());
    CHECK(rc == reason_code::quota_exceeded);
    CHECK(rc.message() == "Quota exceeded");
    CHECK(to_reason_code(rc) == reason_code::quota_exceeded);

    const auto other = make_error_code(boost::system::errc::connection_reset);
    CHECK(to_reason_code(other) == reason_code::unspecified_error);

    // Every error has a distinct, non-empty description.
    std::set<std::string> messages;
    for (int v = static_cast<int>(codec_error::need_more);
         v <= static_cast<int>(codec_error::not_encodable); ++v) {
        const auto e = static_cast<codec_error>(v);
        INFO("codec_error " << v);
        CHECK_FALSE(to_string(e).empty());
        const boost::system::error_code as_ec = e;
        CHECK_FALSE(as_ec.message().empty());
        CHECK(messages.insert(std::string(to_string(e))).second);
        CHECK(to_reason_code(e) == to_reason_code(as_ec));
    }
}

TEST_CASE("to_reason_code maps each codec error to its reason code [MQTT-2.4]",
          "[protocol][error]") {
    const std::pair<codec_error, reason_code> table[] = {
        {codec_error::reserved_packet_type, reason_code::malformed_packet},
        {codec_error::invalid_fixed_header_flags, reason_code::malformed_packet},
        {codec_error::malformed_variable_byte_integer, reason_code::malformed_packet},
        {codec_error::truncated_packet, reason_code::malformed_packet},
        {codec_error::trailing_bytes, reason_code::malformed_packet},
        {codec_error::invalid_utf8, reason_code::malformed_packet},
        {codec_error::invalid_qos, reason_code::malformed_packet},
        // [MQTT-3.1.2-1]: a wrong protocol name is answered like an unknown level.
        {codec_error::invalid_protocol_name, reason_code::unsupported_protocol_version},
        {codec_error::reserved_connect_flag_set, reason_code::malformed_packet},
        {codec_error::invalid_will_flags, reason_code::malformed_packet},
        {codec_error::password_without_username, reason_code::malformed_packet},
        {codec_error::invalid_connack_flags, reason_code::malformed_packet},
        {codec_error::unknown_property, reason_code::malformed_packet},
        {codec_error::property_not_allowed, reason_code::malformed_packet},
        {codec_error::invalid_subscribe_options, reason_code::malformed_packet},
        {codec_error::dup_flag_on_qos0, reason_code::malformed_packet},
        {codec_error::duplicate_property, reason_code::protocol_error},
        {codec_error::invalid_property_value, reason_code::protocol_error},
        {codec_error::zero_packet_identifier, reason_code::protocol_error},
        {codec_error::empty_subscription_list, reason_code::protocol_error},
        {codec_error::invalid_retain_handling, reason_code::protocol_error},
        {codec_error::no_local_on_shared, reason_code::protocol_error},
        {codec_error::empty_topic_without_alias, reason_code::protocol_error},
        {codec_error::invalid_reason_code, reason_code::protocol_error},
        {codec_error::unexpected_packet, reason_code::protocol_error},
        {codec_error::unsupported_protocol_version, reason_code::unsupported_protocol_version},
        {codec_error::packet_too_large, reason_code::packet_too_large},
        {codec_error::topic_name_invalid, reason_code::topic_name_invalid},
        {codec_error::topic_filter_invalid, reason_code::topic_filter_invalid},
    };
    for (const auto& [e, rc] : table) {
        INFO(to_string(e));
        CHECK(to_reason_code(e) == rc);
        CHECK(is_failure(to_reason_code(e)));
    }
}

TEST_CASE("packet type and version names", "[protocol][types]") {
    CHECK(to_string(packet_type::connect) == "CONNECT");
    CHECK(to_string(packet_type::pubrel) == "PUBREL");
    CHECK(to_string(packet_type::unsuback) == "UNSUBACK");
    CHECK(to_string(packet_type::auth) == "AUTH");
    CHECK(to_string(static_cast<packet_type>(0)) == "RESERVED");
    CHECK_FALSE(to_string(protocol_version::v5).empty());
    CHECK(to_string(protocol_version::v3_1_1) != to_string(protocol_version::v5));
    CHECK(is_v3(protocol_version::v3_1));
    CHECK(is_v3(protocol_version::v3_1_1));
    CHECK_FALSE(is_v3(protocol_version::v5));
    // The variant's alternative index + 1 is the packet type number.
    CHECK(type_of(packet{connect{}}) == packet_type::connect);
    CHECK(type_of(packet{pubcomp{}}) == packet_type::pubcomp);
    CHECK(type_of(packet{auth{}}) == packet_type::auth);
}

TEST_CASE("property table: types and allowed packets of Table 2-4 [MQTT-2.2.2.2]",
          "[protocol][properties]") {
    using ctx = property_context;
    using pt = property_type;
    struct row {
        std::uint8_t id;
        property_type type;
        std::vector<property_context> where;
    };
    const std::vector<row> table = {
        {0x01, pt::byte, {ctx::publish, ctx::will}},
        {0x02, pt::four_byte_integer, {ctx::publish, ctx::will}},
        {0x03, pt::utf8_string, {ctx::publish, ctx::will}},
        {0x08, pt::utf8_string, {ctx::publish, ctx::will}},
        {0x09, pt::binary_data, {ctx::publish, ctx::will}},
        {0x0B, pt::variable_byte_integer, {ctx::publish, ctx::subscribe}},
        {0x11, pt::four_byte_integer, {ctx::connect, ctx::connack, ctx::disconnect}},
        {0x12, pt::utf8_string, {ctx::connack}},
        {0x13, pt::two_byte_integer, {ctx::connack}},
        {0x15, pt::utf8_string, {ctx::connect, ctx::connack, ctx::auth}},
        {0x16, pt::binary_data, {ctx::connect, ctx::connack, ctx::auth}},
        {0x17, pt::byte, {ctx::connect}},
        {0x18, pt::four_byte_integer, {ctx::will}},
        {0x19, pt::byte, {ctx::connect}},
        {0x1A, pt::utf8_string, {ctx::connack}},
        {0x1C, pt::utf8_string, {ctx::connack, ctx::disconnect}},
        {0x1F,
         pt::utf8_string,
         {ctx::connack, ctx::puback, ctx::pubrec, ctx::pubrel, ctx::pubcomp, ctx::suback,
          ctx::unsuback, ctx::disconnect, ctx::auth}},
        {0x21, pt::two_byte_integer, {ctx::connect, ctx::connack}},
        {0x22, pt::two_byte_integer, {ctx::connect, ctx::connack}},
        {0x23, pt::two_byte_integer, {ctx::publish}},
        {0x24, pt::byte, {ctx::connack}},
        {0x25, pt::byte, {ctx::connack}},
        {0x26,
         pt::utf8_string_pair,
         {ctx::connect, ctx::connack, ctx::publish, ctx::will, ctx::puback, ctx::pubrec,
          ctx::pubrel, ctx::pubcomp, ctx::subscribe, ctx::suback, ctx::unsubscribe, ctx::unsuback,
          ctx::disconnect, ctx::auth}},
        {0x27, pt::four_byte_integer, {ctx::connect, ctx::connack}},
        {0x28, pt::byte, {ctx::connack}},
        {0x29, pt::byte, {ctx::connack}},
        {0x2A, pt::byte, {ctx::connack}},
    };
    std::set<int> ids;
    for (const auto& r : table) {
        ids.insert(r.id);
        INFO("property " << static_cast<int>(r.id));
        const property_info* info = find_property(r.id);
        REQUIRE(info != nullptr);
        CHECK(static_cast<int>(info->id) == r.id);
        CHECK(info->type == r.type);
        CHECK_FALSE(info->name.empty());
        for (int c = 0; c <= static_cast<int>(ctx::auth); ++c) {
            const auto context = static_cast<property_context>(c);
            const bool expected =
                std::find(r.where.begin(), r.where.end(), context) != r.where.end();
            INFO("context " << c);
            CHECK(is_allowed_in(static_cast<property_id>(r.id), context) == expected);
            CHECK(((info->contexts >> c) & 1u) == (expected ? 1u : 0u));
        }
    }
    for (int id = 0; id <= 255; ++id) {
        if (ids.count(id) == 0) {
            INFO("property " << id);
            CHECK(find_property(static_cast<std::uint8_t>(id)) == nullptr);
        }
    }
    CHECK(find_property(0x21)->name == "Receive Maximum");
    CHECK(find_property(0x26)->name == "User Property");
    CHECK(find_property(0x0B)->name == "Subscription Identifier");
    properties empty;
    CHECK(empty.empty());
    properties one;
    one.user_properties.push_back({"k", "v"});
    CHECK_FALSE(one.empty());
    properties sub;
    sub.subscription_identifiers.push_back(1);
    CHECK_FALSE(sub.empty());
}

} // namespace
} // namespace tern::protocol::test

TEST_CASE("enumerator_name spells every decoding error as the conformance vectors do",
          "[protocol][error]") {
    for (const auto& [name, value] : tern::protocol::test::error_names()) {
        INFO(name);
        CHECK(tern::protocol::enumerator_name(value) == name);
    }
    CHECK(tern::protocol::enumerator_name(static_cast<tern::protocol::codec_error>(250)) ==
          "unknown");
}
