#pragma once
/// Helpers shared by the codec tests: a byte builder that is independent of the encoder (so that
/// hand-written vectors really are hand-written), decode/encode wrappers that keep the frame
/// alive, sample packets of every type, and Catch2 printers for packets.
///
/// Thread contract: test code, single-threaded.

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <tern/protocol/mqtt.hpp>

namespace tern::protocol::test {

using bytes = std::vector<std::uint8_t>;

/// Bytes from hex digits; whitespace, '|' and '_' are ignored so vectors can be laid out by field.
bytes hex(std::string_view text);
/// Lower-case hex with a space between bytes.
std::string to_hex(std::span<const std::uint8_t> data);

// --- Byte builder (mirrors MQTT 5 section 1.5 data representations, written independently) ---
bytes u8(std::uint8_t v);
bytes u16(std::uint16_t v);
bytes u32(std::uint32_t v);
/// Variable Byte Integer [MQTT-1.5.5], minimal encoding.
bytes vbi(std::uint32_t v);
/// Two-byte length followed by the raw bytes of `s` (UTF-8 string or binary data).
bytes str(std::string_view s);
/// The raw bytes of `s`, no length.
bytes raw(std::string_view s);
/// Concatenation.
bytes cat(std::initializer_list<bytes> parts);
/// A property block: Variable Byte Integer length + the concatenated properties.
bytes props(std::initializer_list<bytes> items);
/// A whole packet: first byte, Remaining Length, body.
bytes frame(std::uint8_t first_byte, const bytes& body);

// --- Codec wrappers ---
decode_options opts(protocol_version v, receiver_role role = receiver_role::any);

/// decode() of `in`; on success also checks that the whole input was consumed.
boost::system::result<received_packet> decode_one(const bytes& in, const decode_options& o);
/// The error decode() reports for `in`, or a default error_code on success.
boost::system::error_code decode_error(const bytes& in, const decode_options& o);
/// The first error a stream_decoder reports when fed `in` whole (default error_code if it
/// yields packets and then asks for more at a packet boundary).
boost::system::error_code stream_error(const bytes& in, const decode_options& o);

/// encode_to_vector() that must succeed.
bytes encode_ok(const packet& p, protocol_version v);

/// Valid packets of every type the version allows. v5 packets carry every property the packet
/// type allows, user properties repeated, several subscription identifiers in PUBLISH.
/// Views point into static storage.
std::vector<packet> sample_packets(protocol_version v);

/// Human-readable dump of a packet, for failure messages.
std::string describe(const packet& p);
std::string describe(const properties& p);

/// The version of the tests' main packets: 3.1.1 and 5.
inline constexpr protocol_version both_versions[] = {protocol_version::v3_1_1,
                                                     protocol_version::v5};

} // namespace tern::protocol::test

namespace Catch {
template <> struct StringMaker<tern::protocol::packet> {
    static std::string convert(const tern::protocol::packet& p) {
        return tern::protocol::test::describe(p);
    }
};
template <> struct StringMaker<tern::protocol::properties> {
    static std::string convert(const tern::protocol::properties& p) {
        return tern::protocol::test::describe(p);
    }
};
template <> struct StringMaker<boost::system::error_code> {
    static std::string convert(const boost::system::error_code& ec) {
        if (!ec) {
            return "{no error}";
        }
        return std::string(ec.category().name()) + ":" + std::to_string(ec.value()) + " (" +
               ec.message() + ")";
    }
};
template <> struct StringMaker<tern::protocol::codec_error> {
    static std::string convert(tern::protocol::codec_error e) {
        return "codec_error " + std::to_string(static_cast<int>(e)) + " (" +
               std::string(tern::protocol::to_string(e)) + ")";
    }
};
template <> struct StringMaker<tern::protocol::reason_code> {
    static std::string convert(tern::protocol::reason_code rc) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "0x%02X", static_cast<unsigned>(rc));
        return std::string(buf) + " (" + std::string(tern::protocol::to_string(rc)) + ")";
    }
};
} // namespace Catch
