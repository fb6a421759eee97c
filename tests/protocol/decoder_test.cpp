// The decoder rejects every malformed or forbidden packet with the precise codec_error, which maps
// to the reason code a server sends (0x81 Malformed Packet, 0x82 Protocol Error, or a specific
// one), and accepts the edge cases the specification allows.

#include "malformed_cases.hpp"
#include "test_support.hpp"

namespace tern::protocol::test {
namespace {

using namespace std::literals;

constexpr auto v3 = protocol_version::v3_1_1;
constexpr auto v5 = protocol_version::v5;
constexpr auto any = receiver_role::any;
constexpr auto server = receiver_role::server;
constexpr auto client = receiver_role::client;

TEST_CASE("malformed and forbidden packets are rejected with the precise error",
          "[protocol][decoder][malformed]") {
    for (const auto& c : malformed_cases()) {
        INFO(c.name);
        INFO("version " << static_cast<int>(c.version) << ", role " << static_cast<int>(c.role)
                        << ", wire " << to_hex(c.wire));
        const auto o = opts(c.version, c.role);
        const auto ec = decode_error(c.wire, o);
        CHECK(ec == c.expected);
        CHECK(to_reason_code(ec) == expected_reason(c.expected));
        // The streaming decoder agrees, whole and one byte at a time.
        CHECK(stream_error(c.wire, o) == c.expected);
        stream_decoder dec(o);
        boost::system::error_code first;
        for (std::size_t i = 0; i < c.wire.size() && !first; ++i) {
            std::span<const std::uint8_t> one(&c.wire[i], 1);
            auto r = dec.next(one);
            if (!r && r.error() != codec_error::need_more) {
                first = r.error();
            }
        }
        CHECK(first == c.expected);
    }
}

TEST_CASE("protocol errors the specification defines on a single CONNECT or AUTH",
          "[protocol][decoder][v5]") {
    // Protocol Errors (0x82) that need two properties (or a reason and a property) together.
    const std::pair<const char*, bytes> cases[] = {
        {"CONNECT Authentication Data without Authentication Method [MQTT-3.1.2.11.10]: \"It is "
         "a Protocol Error to include Authentication Data if there is no Authentication Method\"",
         connect5(0x02, props({cat({u8(0x16), str("data")})}), str("c"))},
        {"AUTH 0x18 without Authentication Method [MQTT-3.15.2.2.2]: \"It is a Protocol Error to "
         "omit the Authentication Method\"",
         frame(0xF0, cat({u8(0x18), props({cat({u8(0x16), str("data")})})}))},
        {"AUTH 0x19 without any property [MQTT-3.15.2.2.2]", hex("f0 02 19 00")},
    };
    for (const auto& [name, wire] : cases) {
        INFO(name << ": " << to_hex(wire));
        const auto ec = decode_error(wire, opts(v5, server));
        CHECK(ec == codec_error::missing_authentication_method);
        CHECK(to_reason_code(ec) == reason_code::protocol_error);
    }
}

TEST_CASE("the same bytes are fine in the right role", "[protocol][decoder]") {
    // Each packet of the role table, accepted by the side that does receive it.
    const std::pair<receiver_role, bytes> ok[] = {
        {client, hex("20 02 00 00")},
        {client, hex("b0 02 00 01")},
        {client, hex("d0 00")},
        {server, hex("c0 00")},
        {server, hex("a2 05 00 01 00 01 61")},
        {server, hex("82 06 00 01 00 01 61 00")},
        {server, hex("30 03 00 01 61")},
        {client, hex("30 03 00 01 61")},
        {server, hex("e0 00")},
        {client, hex("e0 00")},
        {server, hex("40 02 00 01")},
        {client, hex("62 02 00 01")},
    };
    for (const auto& [role, wire] : ok) {
        INFO(to_hex(wire) << " role " << static_cast<int>(role));
        auto r = decode_one(wire, opts(v3, role));
        CHECK(r.has_value());
    }
    // AUTH flows both ways in v5 [MQTT-3.15].
    CHECK(decode_one(hex("f0 00"), opts(v5, server)).has_value());
    CHECK(decode_one(hex("f0 00"), opts(v5, client)).has_value());
}

TEST_CASE("edge cases the specification allows are accepted", "[protocol][decoder]") {
    struct ok_case {
        const char* name;
        protocol_version version;
        bytes wire;
        packet expected;
    };
    publish alias_only{"", "x", qos::at_most_once, false, false, 0, {}};
    alias_only.props.topic_alias = 1;
    connect pw_only;
    pw_only.version = v5;
    pw_only.client_id = "c";
    pw_only.keep_alive = 60;
    pw_only.password = "p";
    connect bom;
    bom.version = v3;
    bom.client_id = "\xef\xbb\xbf";
    bom.keep_alive = 60;
    subscribe shared;
    shared.packet_id = 1;
    shared.subscriptions = {
        {"$share/g/a", {qos::at_most_once, false, true, retain_handling::do_not_send}}};
    const ok_case cases[] = {
        {"v5 empty topic with a Topic Alias [MQTT-3.3.2.3.4]", v5,
         publish5(0x30, "", {}, props({p_u16(0x23, 1)}), "x"), alias_only},
        {"v5 password without user name [MQTT-3.1.2.9]", v5,
         connect5(0x42, no_props(), cat({str("c"), str("p")})), pw_only},
        {"U+FEFF is not skipped or stripped [MQTT-1.5.4-3]", v3,
         connect4(0x02, str("\xef\xbb\xbf")), bom},
        {"v5 shared subscription without No Local [MQTT-3.8.3-4]", v5,
         subscribe5(1, no_props(), "$share/g/a", 0x28), shared},
        {"topic with spaces, '$' not first, and empty levels [MQTT-4.7.3]", v3,
         publish4(0x30, "/a b//$c/", {}, ""),
         publish{"/a b//$c/", "", qos::at_most_once, false, false, 0, {}}},
        {"PUBLISH maximum-length topic level characters (U+10FFFF) [MQTT-1.5.4]", v3,
         publish4(0x30, "\xf4\x8f\xbf\xbf", {}, "p"),
         publish{"\xf4\x8f\xbf\xbf", "p", qos::at_most_once, false, false, 0, {}}},
    };
    for (const auto& c : cases) {
        INFO(c.name << ": " << to_hex(c.wire));
        auto r = decode_one(c.wire, opts(c.version, receiver_role::any));
        REQUIRE(r.has_value());
        CHECK(r->packet == c.expected);
    }
}

TEST_CASE("decode_fixed_header parses type, flags and Remaining Length [MQTT-2.1] [MQTT-1.5.5]",
          "[protocol][decoder][MQTT-1.5.5-1]") {
    struct header_case {
        const char* wire;
        packet_type type;
        std::uint8_t flags;
        std::uint32_t remaining_length;
        std::uint8_t size;
    };
    const header_case cases[] = {
        {"c0 00", packet_type::pingreq, 0, 0, 2},
        {"3d 7f", packet_type::publish, 0x0D, 127, 2},
        {"30 80 01", packet_type::publish, 0, 128, 3},
        {"30 ff 7f", packet_type::publish, 0, 16383, 3},
        {"30 80 80 01", packet_type::publish, 0, 16384, 4},
        {"30 ff ff 7f", packet_type::publish, 0, 2097151, 4},
        {"30 80 80 80 01", packet_type::publish, 0, 2097152, 5},
        {"30 ff ff ff 7f", packet_type::publish, 0, 268435455, 5},
        {"62 02", packet_type::pubrel, 2, 2, 2},
        {"82 c1 02", packet_type::subscribe, 2, 321, 3},
    };
    for (const auto& c : cases) {
        INFO(c.wire);
        bytes in = hex(c.wire);
        auto h = decode_fixed_header(in, opts(v5));
        REQUIRE(h.has_value());
        CHECK(h->type == c.type);
        CHECK(h->flags == c.flags);
        CHECK(h->remaining_length == c.remaining_length);
        CHECK(h->size == c.size);
        // Every proper prefix needs more.
        for (std::size_t n = 0; n < in.size(); ++n) {
            auto p = decode_fixed_header(std::span<const std::uint8_t>(in.data(), n), opts(v5));
            REQUIRE(p.has_error());
            CHECK(p.error() == codec_error::need_more);
        }
        // Bytes after the header are not looked at.
        in.push_back(0xFF);
        auto h2 = decode_fixed_header(in, opts(v5));
        REQUIRE(h2.has_value());
        CHECK(h2->size == c.size);
    }
    // decode() of an incomplete packet needs more, it is not an error.
    const bytes partial = hex("30 05 00 03 61");
    for (std::size_t n = 0; n <= partial.size(); ++n) {
        auto r = decode(std::span<const std::uint8_t>(partial.data(), n), opts(v5));
        REQUIRE(r.has_error());
        CHECK(r.error() == codec_error::need_more);
    }
    // Malformed headers are reported from the header bytes alone.
    for (const char* bad : {"30 ff ff ff ff", "c0 80 00", "00 00", "c1 00", "f0 00"}) {
        INFO(bad);
        auto r = decode_fixed_header(hex(bad), opts(v3));
        REQUIRE(r.has_error());
        CHECK(r.error() != codec_error::need_more);
    }
}

TEST_CASE("Remaining Length over maximum_packet_size is rejected from the fixed header alone "
          "[MQTT-3.1.2-24]",
          "[protocol][decoder][MQTT-3.1.2-24]") {
    decode_options o = opts(v5);
    o.maximum_packet_size = 100;
    // Whole packet = 2 header bytes + 98 = 100: allowed; 2 + 99 = 101: too large.
    {
        auto h = decode_fixed_header(hex("30 62"), o);
        REQUIRE(h.has_value());
        CHECK(h->remaining_length == 98);
        auto r = decode(hex("30 62"), o);
        REQUIRE(r.has_error());
        CHECK(r.error() == codec_error::need_more);
    }
    for (const char* header : {"30 63", "30 80 01", "30 ff ff ff 7f", "82 e4 01"}) {
        INFO(header);
        const bytes in = hex(header);
        auto h = decode_fixed_header(in, o);
        REQUIRE(h.has_error());
        CHECK(h.error() == codec_error::packet_too_large);
        CHECK(to_reason_code(h.error()) == reason_code::packet_too_large);
        auto r = decode(in, o);
        REQUIRE(r.has_error());
        CHECK(r.error() == codec_error::packet_too_large);
        // The streaming decoder fails as soon as the header is complete, without the body.
        stream_decoder dec(o);
        std::span<const std::uint8_t> input(in);
        auto s = dec.next(input);
        REQUIRE(s.has_error());
        CHECK(s.error() == codec_error::packet_too_large);
        // ... also byte by byte.
        stream_decoder dec2(o);
        boost::system::error_code last;
        for (auto b : in) {
            std::span<const std::uint8_t> one(&b, 1);
            auto n = dec2.next(one);
            REQUIRE(n.has_error());
            last = n.error();
        }
        CHECK(last == codec_error::packet_too_large);
    }
    // A tiny pre-CONNECT cap (the whole packet counts: header + body).
    o.maximum_packet_size = 2;
    CHECK(decode_one(hex("c0 00"), o).has_value());
    auto r = decode_fixed_header(hex("40 02"), o);
    REQUIRE(r.has_error());
    CHECK(r.error() == codec_error::packet_too_large);
    // The largest packet the protocol allows passes the default cap.
    CHECK(decode_fixed_header(hex("30 ff ff ff 7f"), opts(v5)).has_value());
}

} // namespace
} // namespace tern::protocol::test
