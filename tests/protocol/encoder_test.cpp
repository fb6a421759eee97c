// The encoder: exact sizes, caller-owned buffers left untouched on error, PUBLISH scatter/gather,
// range checks and the 3.1.1 return code mappings.

#include "test_support.hpp"

#include <string>

namespace tern::protocol::test {
namespace {

using namespace std::literals;

constexpr auto v3 = protocol_version::v3_1_1;
constexpr auto v5 = protocol_version::v5;
constexpr std::uint8_t sentinel = 0xA5;

std::vector<std::pair<packet, protocol_version>> all_samples() {
    std::vector<std::pair<packet, protocol_version>> out;
    for (auto v : {protocol_version::v3_1, v3, v5}) {
        for (auto& p : sample_packets(v)) {
            out.emplace_back(std::move(p), v);
        }
    }
    return out;
}

TEST_CASE("encoded_size equals the bytes encode writes, for every packet", "[protocol][encoder]") {
    for (const auto& [p, v] : all_samples()) {
        INFO(describe(p) << " v" << static_cast<int>(v));
        auto size = encoded_size(p, v);
        REQUIRE(size.has_value());
        bytes buf(*size + 32, sentinel);
        auto n = encode(p, v, buf);
        REQUIRE(n.has_value());
        CHECK(*n == *size);
        // Nothing is written past the packet.
        CHECK(std::all_of(buf.begin() + static_cast<std::ptrdiff_t>(*n), buf.end(),
                          [](std::uint8_t b) { return b == sentinel; }));
        // encode_to_vector gives the same bytes.
        auto vec = encode_to_vector(p, v);
        REQUIRE(vec.has_value());
        CHECK(*vec == bytes(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n)));
    }
}

TEST_CASE("encode into a too-small buffer fails with buffer_too_small and writes nothing",
          "[protocol][encoder]") {
    for (const auto& [p, v] : all_samples()) {
        INFO(describe(p) << " v" << static_cast<int>(v));
        auto size = encoded_size(p, v);
        REQUIRE(size.has_value());
        for (std::size_t n = 0; n < *size; ++n) {
            bytes buf(n + 8, sentinel);
            auto r = encode(p, v, std::span<std::uint8_t>(buf.data(), n));
            if (!r.has_error() || r.error() != codec_error::buffer_too_small) {
                INFO("buffer of " << n << " bytes");
                REQUIRE(r.has_error());
                CHECK(r.error() == codec_error::buffer_too_small);
            }
            if (!std::all_of(buf.begin(), buf.end(),
                             [](std::uint8_t b) { return b == sentinel; })) {
                INFO("buffer of " << n << " bytes was written to");
                FAIL_CHECK("encode wrote into a too-small buffer");
            }
        }
        bytes exact(*size, sentinel);
        auto ok = encode(p, v, exact);
        REQUIRE(ok.has_value());
        CHECK(*ok == *size);
    }
}

std::vector<publish> publishes(const std::string& big) {
    std::vector<publish> out;
    for (auto v : {v3, v5}) {
        for (const auto& p : sample_packets(v)) {
            if (const auto* pub = std::get_if<publish>(&p)) {
                out.push_back(*pub);
            }
        }
    }
    out.push_back(publish{"big", big, qos::at_least_once, true, false, 9, {}});
    return out;
}

TEST_CASE("encode_publish_header + payload equals encode(), publish_size agrees",
          "[protocol][encoder]") {
    const std::string big(100 * 1024, 'z');
    for (auto v : {v3, v5}) {
        for (const auto& p : publishes(big)) {
            if (is_v3(v) && !p.props.empty()) {
                continue; // v5 samples carry properties 3.1.1 cannot express
            }
            if (is_v3(v) && p.topic.empty()) {
                continue;
            }
            INFO(describe(p) << " v" << static_cast<int>(v));
            const bytes whole = encode_ok(p, v);
            auto layout = publish_size(p, v);
            REQUIRE(layout.has_value());
            CHECK(layout->total_size == whole.size());
            CHECK(layout->header_size + p.payload.size() == layout->total_size);

            bytes header(layout->header_size + 16, sentinel);
            auto written = encode_publish_header(p, v, header);
            REQUIRE(written.has_value());
            CHECK(written->header_size == layout->header_size);
            CHECK(written->total_size == layout->total_size);
            bytes joined(header.begin(),
                         header.begin() + static_cast<std::ptrdiff_t>(written->header_size));
            joined.insert(joined.end(), p.payload.begin(), p.payload.end());
            CHECK(joined == whole);

            // The header buffer needs header_size bytes, not total_size.
            bytes exact(layout->header_size, sentinel);
            CHECK(encode_publish_header(p, v, exact).has_value());
            if (layout->header_size > 0) {
                bytes small(layout->header_size - 1, sentinel);
                auto r = encode_publish_header(p, v, small);
                REQUIRE(r.has_error());
                CHECK(r.error() == codec_error::buffer_too_small);
                CHECK(small == bytes(layout->header_size - 1, sentinel));
            }
        }
    }
}

TEST_CASE("Remaining Length uses the minimal Variable Byte Integer [MQTT-1.5.5-1]",
          "[protocol][encoder][MQTT-1.5.5-1]") {
    // 3.1.1 QoS 0 PUBLISH to "t": Remaining Length = 3 + payload size.
    struct rl_case {
        std::uint32_t remaining_length;
        const char* header;
    };
    const rl_case cases[] = {
        {3, "30 03"},
        {127, "30 7f"},
        {128, "30 80 01"},
        {16383, "30 ff 7f"},
        {16384, "30 80 80 01"},
        {2097151, "30 ff ff 7f"},
        {2097152, "30 80 80 80 01"},
    };
    const std::string payload(2097152, 'p');
    for (const auto& c : cases) {
        INFO(c.remaining_length);
        publish p{"t",
                  std::string_view(payload).substr(0, c.remaining_length - 3),
                  qos::at_most_once,
                  false,
                  false,
                  0,
                  {}};
        const bytes expected_header = hex(c.header);
        auto layout = encode_publish_header(p, v3, std::span<std::uint8_t>());
        bytes header(16, 0);
        auto r = encode_publish_header(p, v3, header);
        REQUIRE(r.has_value());
        CHECK(r->header_size == expected_header.size() + 3);
        CHECK(bytes(header.begin(),
                    header.begin() + static_cast<std::ptrdiff_t>(expected_header.size())) ==
              expected_header);
        CHECK(r->total_size == expected_header.size() + c.remaining_length);
        REQUIRE(layout.has_error());
        CHECK(layout.error() == codec_error::buffer_too_small);
    }
}

TEST_CASE("strings and binary data over 65535 bytes cannot be encoded [MQTT-1.5.4] [MQTT-1.5.6]",
          "[protocol][encoder]") {
    const std::string long_text(65536, 'a');
    const std::string max_text(65535, 'a');
    const std::string_view big = long_text;

    std::vector<std::pair<const char*, packet>> too_long;
    too_long.emplace_back("PUBLISH topic",
                          publish{big, "x", qos::at_most_once, false, false, 0, {}});
    {
        connect c;
        c.client_id = big;
        too_long.emplace_back("client id", c);
    }
    {
        connect c;
        c.client_id = "c";
        c.will = will_message{big, "m", qos::at_most_once, false, {}};
        too_long.emplace_back("will topic", c);
    }
    {
        connect c;
        c.client_id = "c";
        c.will = will_message{"w", big, qos::at_most_once, false, {}};
        too_long.emplace_back("will payload", c);
    }
    {
        connect c;
        c.client_id = "c";
        c.username = big;
        too_long.emplace_back("user name", c);
    }
    {
        connect c;
        c.client_id = "c";
        c.password = big;
        too_long.emplace_back("password", c);
    }
    {
        publish p{"t", "x", qos::at_most_once, false, false, 0, {}};
        p.props.user_properties = {{"k", big}};
        too_long.emplace_back("user property value", p);
    }
    {
        publish p{"t", "x", qos::at_most_once, false, false, 0, {}};
        p.props.user_properties = {{big, "v"}};
        too_long.emplace_back("user property key", p);
    }
    {
        publish p{"t", "x", qos::at_most_once, false, false, 0, {}};
        p.props.correlation_data = big;
        too_long.emplace_back("correlation data", p);
    }
    {
        puback a{1, reason_code::unspecified_error, {}};
        a.props.reason_string = big;
        too_long.emplace_back("reason string", a);
    }
    too_long.emplace_back("subscribe filter", subscribe{1, {{big, {}}}, {}});
    too_long.emplace_back("unsubscribe filter", unsubscribe{1, {big}, {}});

    for (const auto& [what, p] : too_long) {
        INFO(what);
        auto size = encoded_size(p, v5);
        REQUIRE(size.has_error());
        CHECK(size.error() == codec_error::string_too_long);
        bytes buf(200000, sentinel);
        auto r = encode(p, v5, buf);
        REQUIRE(r.has_error());
        CHECK(r.error() == codec_error::string_too_long);
        CHECK(std::all_of(buf.begin(), buf.begin() + 1024,
                          [](std::uint8_t b) { return b == sentinel; }));
    }
    // 65535 bytes is fine, and round-trips.
    const publish ok{max_text, "x", qos::at_most_once, false, false, 0, {}};
    for (auto v : {v3, v5}) {
        auto wire = encode_ok(ok, v);
        auto d = decode_one(wire, opts(v));
        REQUIRE(d.has_value());
        CHECK(d->packet == packet{ok});
    }
    // A PUBLISH payload is not length-prefixed: 100 KiB is fine.
    const std::string payload = long_text + long_text;
    const publish large{"t", payload, qos::at_most_once, false, false, 0, {}};
    CHECK(encoded_size(large, v5).has_value());
}

TEST_CASE("values a version cannot carry are not encodable", "[protocol][encoder]") {
    std::vector<std::tuple<const char*, packet, protocol_version>> cases;
    cases.emplace_back("PUBLISH QoS 3 [MQTT-3.3.1-4]",
                       publish{"t", "x", static_cast<qos>(3), false, false, 1, {}}, v5);
    cases.emplace_back("PUBLISH QoS 1 packet identifier 0 [MQTT-2.2.1-3]",
                       publish{"t", "x", qos::at_least_once, false, false, 0, {}}, v3);
    cases.emplace_back("SUBSCRIBE packet identifier 0 [MQTT-2.2.1-3]",
                       subscribe{0, {{"a", {}}}, {}}, v3);
    cases.emplace_back("UNSUBSCRIBE packet identifier 0 [MQTT-2.2.1-3]", unsubscribe{0, {"a"}, {}},
                       v5);
    cases.emplace_back("subscription QoS 3 [MQTT-3.8.3-4]",
                       subscribe{1, {{"a", {static_cast<qos>(3)}}}, {}}, v5);
    cases.emplace_back(
        "Retain Handling 3 [MQTT-3.8.3.1]",
        subscribe{
            1, {{"a", {qos::at_most_once, false, false, static_cast<retain_handling>(3)}}}, {}},
        v5);
    {
        connect c;
        c.version = v5;
        c.client_id = "c";
        c.will = will_message{"w", "m", static_cast<qos>(3), false, {}};
        cases.emplace_back("will QoS 3 [MQTT-3.1.2-12]", c, v5);
    }
    {
        publish p{"t", "x", qos::at_most_once, false, false, 0, {}};
        p.props.subscription_identifiers = {max_subscription_identifier + 1};
        cases.emplace_back("Subscription Identifier over 268435455 [MQTT-1.5.5]", p, v5);
    }
    cases.emplace_back("AUTH in 3.1.1 [MQTT-2.1.2]", auth{}, v3);
    cases.emplace_back("3.1.1 PUBACK with a failure reason (no reason codes in 3.1.1)",
                       puback{1, reason_code::not_authorized, {}}, v3);
    cases.emplace_back("v5 PUBACK with reason 0x04 [MQTT-3.4.2.1]",
                       puback{1, reason_code::disconnect_with_will_message, {}}, v5);
    cases.emplace_back("v5 SUBACK with reason 0x8B [MQTT-3.9.3]",
                       suback{1, {reason_code::server_shutting_down}, {}}, v5);
    cases.emplace_back("v5 DISCONNECT with reason 0x01 [MQTT-3.14.2.1]",
                       disconnect{reason_code::granted_qos_1, {}}, v5);
    cases.emplace_back("CONNACK session present with a failure [MQTT-3.2.2-6]",
                       connack{true, reason_code::not_authorized, {}}, v5);
    {
        publish p{"t", "x", qos::at_most_once, false, false, 0, {}};
        p.props.topic_alias = 0;
        cases.emplace_back("Topic Alias 0 [MQTT-3.3.2-8]", p, v5);
    }
    for (const auto& [what, p, v] : cases) {
        INFO(what);
        // CHECK, not REQUIRE: one failure must not hide the other cases.
        auto size = encoded_size(p, v);
        CHECK(size.has_error());
        if (size.has_error()) {
            CHECK(size.error() == codec_error::not_encodable);
        }
        bytes buf(256, sentinel);
        auto r = encode(p, v, buf);
        CHECK(r.has_error());
        if (r.has_error()) {
            CHECK(r.error() == codec_error::not_encodable);
        }
        CHECK(buf == bytes(256, sentinel));
    }
}

TEST_CASE("3.1.1 acks leave out success-class reason codes", "[protocol][encoder]") {
    // No Matching Subscribers (0x10) is a success: a 3.1.1 PUBACK is just the identifier.
    auto wire = encode_to_vector(puback{7, reason_code::no_matching_subscribers, {}}, v3);
    REQUIRE(wire.has_value());
    CHECK(*wire == bytes{0x40, 0x02, 0x00, 0x07});
}

TEST_CASE("3.1.1 SUBACK maps failure reason codes to 0x80 [MQTT-3.9.3]",
          "[protocol][encoder][MQTT-3.9.3-2]") {
    const suback s{
        10,
        {reason_code::granted_qos_1, reason_code::not_authorized, reason_code::topic_filter_invalid,
         reason_code::granted_qos_0, reason_code::quota_exceeded, reason_code::granted_qos_2,
         reason_code::unspecified_error, reason_code::wildcard_subscriptions_not_supported},
        {}};
    CHECK(encode_ok(s, v3) == hex("90 0a 00 0a 01 80 80 00 80 02 80 80"));
    // And back: 0x80 is Failure, carried as Unspecified error.
    auto d = decode_one(hex("90 0a 00 0a 01 80 80 00 80 02 80 80"), opts(v3));
    REQUIRE(d.has_value());
    const suback expected{10,
                          {reason_code::granted_qos_1, reason_code::unspecified_error,
                           reason_code::unspecified_error, reason_code::granted_qos_0,
                           reason_code::unspecified_error, reason_code::granted_qos_2,
                           reason_code::unspecified_error, reason_code::unspecified_error},
                          {}};
    CHECK(d->packet == packet{expected});

    CHECK(to_v3_suback_return_code(reason_code::granted_qos_0) == 0x00);
    CHECK(to_v3_suback_return_code(reason_code::granted_qos_1) == 0x01);
    CHECK(to_v3_suback_return_code(reason_code::granted_qos_2) == 0x02);
    CHECK(to_v3_suback_return_code(reason_code::unspecified_error) == 0x80);
    CHECK(to_v3_suback_return_code(reason_code::not_authorized) == 0x80);
    CHECK(to_v3_suback_return_code(reason_code::shared_subscriptions_not_supported) == 0x80);
}

TEST_CASE("3.1.1 CONNACK return codes map to and from reason codes [MQTT-3.2.2.3]",
          "[protocol][encoder][MQTT-3.2.2-5]") {
    // MQTT 3.1.1 Table 3.1: 0 accepted, 1 unacceptable protocol version, 2 identifier rejected,
    // 3 server unavailable, 4 bad user name or password, 5 not authorized.
    const std::pair<reason_code, std::uint8_t> table[] = {
        {reason_code::success, 0},
        {reason_code::unsupported_protocol_version, 1},
        {reason_code::client_identifier_not_valid, 2},
        {reason_code::server_unavailable, 3},
        {reason_code::bad_user_name_or_password, 4},
        {reason_code::not_authorized, 5},
    };
    for (const auto& [rc, code] : table) {
        INFO(static_cast<int>(code));
        CHECK(to_v3_connack_return_code(rc) == code);
        auto back = from_v3_connack_return_code(code);
        REQUIRE(back.has_value());
        CHECK(*back == rc);
        CHECK(encode_ok(connack{false, rc, {}}, v3) == bytes{0x20, 0x02, 0x00, code});
        auto d = decode_one(bytes{0x20, 0x02, 0x00, code}, opts(v3));
        REQUIRE(d.has_value());
        CHECK(d->packet == packet{connack{false, rc, {}}});
    }
    // Failures without a 3.1.1 equivalent become 3, Server unavailable.
    for (auto rc : {reason_code::server_busy, reason_code::unspecified_error,
                    reason_code::quota_exceeded, reason_code::packet_too_large}) {
        INFO(static_cast<int>(rc));
        CHECK(to_v3_connack_return_code(rc) == 3);
        CHECK(encode_ok(connack{false, rc, {}}, v3) == hex("20 02 00 03"));
    }
    for (int code = 6; code <= 255; ++code) {
        CHECK_FALSE(from_v3_connack_return_code(static_cast<std::uint8_t>(code)).has_value());
    }
    // Session present survives [MQTT-3.2.2-2].
    CHECK(encode_ok(connack{true, reason_code::success, {}}, v3) == hex("20 02 01 00"));
}

} // namespace
} // namespace tern::protocol::test
