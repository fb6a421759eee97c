#pragma once
/// MQTT packets as JSON, for debugging tools (tern-codec) and test diagnostics: every field,
/// properties included, reason codes by name. Also a hex-dump reader and a decoder loop that
/// turns a captured byte stream into one JSON object per packet.
///
/// Thread contract: pure functions; thread-safe. Nothing returned refers to the arguments.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include <boost/system/error_code.hpp>
#include <nlohmann/json.hpp>

#include <tern/protocol/decoder.hpp>
#include <tern/protocol/packets.hpp>

namespace tern::tools {

/// Binary data as {"size": n, "hex": "0a1b..."} plus "text" when the bytes are valid MQTT UTF-8.
nlohmann::ordered_json binary_to_json(std::string_view bytes);

/// A reason code as {"code": 135, "name": "Not authorized"}. With the packet type it travels
/// in, 0x00 gets the name that packet gives it ("Normal disconnection", "Granted QoS 0").
nlohmann::ordered_json reason_to_json(protocol::reason_code rc);
nlohmann::ordered_json reason_to_json(protocol::reason_code rc, protocol::packet_type in);

/// The properties that are present, keyed by their snake_case field name of
/// protocol::properties. User properties become [[key, value], ...] in wire order. An empty
/// set gives an empty object.
nlohmann::ordered_json properties_to_json(const protocol::properties& props);

/// Every field of `p` plus "type" ("PUBLISH", ...). Fields that only MQTT 5 carries (reason
/// codes of acks, DISCONNECT and AUTH; properties) are included only when `version` is 5,
/// except for CONNECT, which carries its own level.
nlohmann::ordered_json packet_to_json(const protocol::packet& p,
                                      protocol::protocol_version version);

/// The enumerator name of a codec error ("invalid_utf8"); "unknown" for other values.
std::string_view error_name(protocol::codec_error e) noexcept;

/// An error as {"error": name, "message": ..., "reason_code": {...}, "offset": n}. Errors of
/// other categories use their category name and message.
nlohmann::ordered_json error_to_json(const boost::system::error_code& ec, std::size_t offset);

/// Parses a hex dump: pairs of hex digits, optionally separated by whitespace, ':', ',' or
/// '-', each pair optionally prefixed by "0x". nullopt when anything else appears or a digit
/// is left over.
std::optional<std::vector<std::uint8_t>> parse_hex(std::string_view text);

/// Result of decode_all(): one JSON object per packet (with "offset" and "size" of its frame),
/// and the error that stopped decoding, if any ("need_more" when the input ends mid-packet).
struct decode_report {
    std::vector<nlohmann::ordered_json> packets;
    std::optional<nlohmann::ordered_json> error;
};

/// Decodes every packet of `bytes` in order with `options`. A CONNECT switches
/// options.version to its own protocol level for the packets after it, as a broker does.
decode_report decode_all(std::span<const std::uint8_t> bytes, protocol::decode_options options);

} // namespace tern::tools
