// Every packet type survives encode -> decode -> encode unchanged, in MQTT 3.1, 3.1.1 and 5.

#include "test_support.hpp"

namespace tern::protocol::test {
namespace {

using namespace std::literals;

void check_round_trip(const packet& p, protocol_version v) {
    INFO("version " << static_cast<int>(v) << ": " << describe(p));
    const bytes wire = encode_ok(p, v);
    REQUIRE(wire.size() >= 2);
    // The first nibble is the control packet type [MQTT-2.1.2].
    CHECK((wire[0] >> 4) == static_cast<int>(type_of(p)));

    auto size = encoded_size(p, v);
    REQUIRE(size.has_value());
    CHECK(*size == wire.size());

    auto decoded = decode_one(wire, opts(v));
    INFO("wire: " << to_hex(wire));
    REQUIRE(decoded.has_value());
    CHECK(decoded->packet == p);

    // Encoding what was decoded gives the same bytes.
    CHECK(encode_ok(decoded->packet, v) == wire);
}

TEST_CASE("every packet type round-trips in MQTT 3.1.1", "[protocol][roundtrip]") {
    const auto samples = sample_packets(protocol_version::v3_1_1);
    std::vector<bool> seen(16, false);
    for (const auto& p : samples) {
        seen[static_cast<std::size_t>(type_of(p))] = true;
        check_round_trip(p, protocol_version::v3_1_1);
    }
    // Every 3.1.1 packet type 1..14 is covered.
    for (int t = 1; t <= 14; ++t) {
        INFO("packet type " << t);
        CHECK(seen[static_cast<std::size_t>(t)]);
    }
}

TEST_CASE("every packet type round-trips in MQTT 5 with every property",
          "[protocol][roundtrip][v5]") {
    const auto samples = sample_packets(protocol_version::v5);
    std::vector<bool> seen(16, false);
    for (const auto& p : samples) {
        seen[static_cast<std::size_t>(type_of(p))] = true;
        check_round_trip(p, protocol_version::v5);
    }
    for (int t = 1; t <= 15; ++t) {
        INFO("packet type " << t);
        CHECK(seen[static_cast<std::size_t>(t)]);
    }
}

TEST_CASE("every packet type round-trips in MQTT 3.1 (MQIsdp, level 3)", "[protocol][roundtrip]") {
    for (const auto& p : sample_packets(protocol_version::v3_1)) {
        check_round_trip(p, protocol_version::v3_1);
    }
}

TEST_CASE("MQTT 3.1 CONNECT from hand-written bytes decodes and round-trips",
          "[protocol][roundtrip]") {
    // MQTT 3.1 section 3.1: protocol name "MQIsdp", protocol version 3.
    const bytes wire = hex("10 1c"                   // CONNECT, Remaining Length 28
                           "00 06 4d 51 49 73 64 70" // "MQIsdp"
                           "03"                      // protocol version 3
                           "ce"                      // user, password, will QoS 1, will, clean
                           "00 0a"                   // keep alive 10
                           "00 02 63 31"             // client id "c1"
                           "00 01 77"                // will topic "w"
                           "00 01 78"                // will message "x"
                           "00 01 75"                // user name "u"
                           "00 01 70");              // password "p"
    connect expected;
    expected.version = protocol_version::v3_1;
    expected.clean_start = true;
    expected.keep_alive = 10;
    expected.client_id = "c1";
    expected.will = will_message{"w", "x", qos::at_least_once, false, {}};
    expected.username = "u";
    expected.password = "p";

    // CONNECT carries its own level: the decoder's version option does not matter.
    for (auto v : {protocol_version::v3_1, protocol_version::v3_1_1, protocol_version::v5}) {
        auto r = decode_one(wire, opts(v, receiver_role::server));
        REQUIRE(r.has_value());
        CHECK(r->packet == packet{expected});
    }
    CHECK(encode_ok(expected, protocol_version::v3_1) == wire);
}

TEST_CASE("CONNECT carries its own protocol level whatever the decoder version",
          "[protocol][roundtrip]") {
    for (auto level : {protocol_version::v3_1_1, protocol_version::v5}) {
        connect c;
        c.version = level;
        c.client_id = "abc";
        const bytes wire = encode_ok(c, level);
        for (auto v : {protocol_version::v3_1, protocol_version::v3_1_1, protocol_version::v5}) {
            auto r = decode_one(wire, opts(v));
            REQUIRE(r.has_value());
            CHECK(r->packet == packet{c});
        }
    }
}

TEST_CASE("a Mosquitto bridge's CONNECT (level 0x83, 0x84) decodes as 3.1/3.1.1 with bridge set",
          "[protocol][roundtrip]") {
    for (auto level : {protocol_version::v3_1, protocol_version::v3_1_1}) {
        connect c;
        c.version = level;
        c.client_id = "bridge";
        c.bridge = true;
        const bytes wire = encode_ok(c, level);
        // The level byte follows the 2-byte length and the protocol name.
        const std::size_t at = 2 + 2 + (level == protocol_version::v3_1 ? 6 : 4);
        REQUIRE(wire.size() > at);
        CHECK(int{wire[at]} == (0x80 | static_cast<int>(level)));
        auto r = decode_one(wire, opts(level, receiver_role::server));
        REQUIRE(r.has_value());
        CHECK(r->packet == packet{c});
    }
    // MQTT 5 has no bridge bit: 0x85 is an unsupported level, and encoding leaves it out.
    connect v5;
    v5.version = protocol_version::v5;
    v5.client_id = "b5";
    v5.bridge = true;
    const bytes wire = encode_ok(v5, protocol_version::v5);
    CHECK(int{wire[2 + 2 + 4]} == 5);
    bytes high = wire;
    high[2 + 2 + 4] = 0x85;
    CHECK(decode_one(high, opts(protocol_version::v5, receiver_role::server)).has_error());
}

TEST_CASE("AUTH exists only in MQTT 5", "[protocol][roundtrip][v5][MQTT-2.1.2]") {
    auth a{reason_code::continue_authentication, {}};
    a.props.authentication_method = "PLAIN";
    for (auto v : {protocol_version::v3_1, protocol_version::v3_1_1}) {
        auto e = encode_to_vector(a, v);
        REQUIRE(e.has_error());
        CHECK(e.error() == codec_error::not_encodable);
        auto s = encoded_size(a, v);
        REQUIRE(s.has_error());
        CHECK(s.error() == codec_error::not_encodable);
        bytes buf(64, 0xAA);
        auto w = encode(a, v, buf);
        REQUIRE(w.has_error());
        CHECK(w.error() == codec_error::not_encodable);
        CHECK(buf == bytes(64, 0xAA));
    }
    check_round_trip(a, protocol_version::v5);
}

TEST_CASE("decoded views outlive the input buffer and follow the storage",
          "[protocol][roundtrip]") {
    publish p{"a/b", "payload", qos::at_least_once, false, false, 5, {}};
    p.props.user_properties = {{"k", "v"}};
    p.props.content_type = "text/plain";
    received_packet kept;
    {
        bytes wire = encode_ok(p, protocol_version::v5);
        auto r = decode(wire, opts(protocol_version::v5));
        REQUIRE(r.has_value());
        kept = r->packet; // copy
        // Scribble over the input: the packet must not point into it.
        std::fill(wire.begin(), wire.end(), std::uint8_t{0xEE});
    }
    CHECK(kept.packet == packet{p});
    received_packet moved = std::move(kept);
    CHECK(moved.packet == packet{p});
}

TEST_CASE("v5 acks with Success and no properties may use the short forms",
          "[protocol][roundtrip][v5]") {
    // MQTT 5 3.4.2.1: "The Reason Code and Property Length can be omitted if the Reason Code is
    // 0x00 (Success) and there are no Properties. In this case the PUBACK has a Remaining Length
    // of 2." Likewise PUBREC, PUBREL, PUBCOMP; DISCONNECT and AUTH may have Remaining Length 0
    // [3.14.2.1, 3.15.2.1]. A Reason Code without a Property Length means no properties
    // [3.4.2.2.1]. (AUTH 0x18/0x19 always needs an Authentication Method [3.15.2.2.2].)
    struct vector_case {
        const char* wire;
        packet expected;
    };
    const vector_case cases[] = {
        {"40 02 00 01", puback{1, reason_code::success, {}}},
        {"40 03 00 01 00", puback{1, reason_code::success, {}}},
        {"40 04 00 01 00 00", puback{1, reason_code::success, {}}},
        {"40 03 00 01 10", puback{1, reason_code::no_matching_subscribers, {}}},
        {"50 02 00 02", pubrec{2, reason_code::success, {}}},
        {"50 03 00 02 80", pubrec{2, reason_code::unspecified_error, {}}},
        {"62 02 00 03", pubrel{3, reason_code::success, {}}},
        {"62 03 00 03 92", pubrel{3, reason_code::packet_identifier_not_found, {}}},
        {"70 02 00 04", pubcomp{4, reason_code::success, {}}},
        {"70 04 00 04 00 00", pubcomp{4, reason_code::success, {}}},
        {"e0 00", disconnect{reason_code::normal_disconnection, {}}},
        {"e0 01 8b", disconnect{reason_code::server_shutting_down, {}}},
        {"e0 02 04 00", disconnect{reason_code::disconnect_with_will_message, {}}},
        {"f0 00", auth{reason_code::success, {}}},
    };
    for (const auto& c : cases) {
        INFO(c.wire);
        auto r = decode_one(hex(c.wire), opts(protocol_version::v5));
        REQUIRE(r.has_value());
        CHECK(r->packet == c.expected);
        // And whatever form the encoder picks decodes back to the same packet.
        auto again =
            decode_one(encode_ok(c.expected, protocol_version::v5), opts(protocol_version::v5));
        REQUIRE(again.has_value());
        CHECK(again->packet == c.expected);
    }
}

} // namespace
} // namespace tern::protocol::test
