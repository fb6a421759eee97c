#pragma once
/// The malformed/forbidden packet table (one row per rejected input, with the precise
/// codec_error), the reason code each error maps to, and the test-side packet builders used to
/// write the rows. Shared by decoder_test.cpp and conformance_vectors_test.cpp.
///
/// Thread contract: test code, single-threaded.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "test_support.hpp"

namespace tern::protocol::test {

/// The reason code each decoding error must map to, written from the groups of error.hpp and
/// MQTT 5 section 2.4 independently of to_reason_code().
reason_code expected_reason(codec_error e);

/// One input the decoder must reject.
struct bad_case {
    std::string name; ///< what is wrong, with the normative statement, e.g. "[MQTT-3.3.1-4]"
    protocol_version version;
    receiver_role role;
    bytes wire;
    codec_error expected;
};

/// Every malformed or forbidden packet of the suite.
std::vector<bad_case> malformed_cases();

/// The enumerator name of a decoding error ("invalid_utf8"); "unknown" for others.
std::string_view error_name(codec_error e);
/// The decoding error with that enumerator name.
std::optional<codec_error> error_from_name(std::string_view name);
/// Every decoding error with its enumerator name.
const std::vector<std::pair<std::string_view, codec_error>>& error_names();

// --- Packet builders (test-side, independent of the encoder) ---
bytes mqtt_name();
/// 3.1.1 CONNECT: variable header with `flags`, keep alive 60, then `payload`.
bytes connect4(std::uint8_t flags, const bytes& payload);
/// 5.0 CONNECT: variable header with `flags`, keep alive 60, `properties`, then `payload`.
bytes connect5(std::uint8_t flags, const bytes& properties, const bytes& payload);
/// 3.1.1 PUBLISH with the given first byte; `id` is written when non-empty.
bytes publish4(std::uint8_t first, std::string_view topic, const bytes& id,
               std::string_view payload);
bytes publish5(std::uint8_t first, std::string_view topic, const bytes& id, const bytes& properties,
               std::string_view payload);
/// SUBSCRIBE with one filter.
bytes subscribe4(std::uint16_t id, std::string_view filter, std::uint8_t options);
bytes subscribe5(std::uint16_t id, const bytes& properties, std::string_view filter,
                 std::uint8_t options);
bytes unsubscribe4(std::uint16_t id, std::string_view filter);
/// An empty property block (Property Length 0).
bytes no_props();
/// A property of each wire type [MQTT-2.2.2.2].
bytes p_byte(std::uint8_t id, std::uint8_t v);
bytes p_u16(std::uint8_t id, std::uint16_t v);
bytes p_u32(std::uint8_t id, std::uint32_t v);
bytes p_vbi(std::uint8_t id, std::uint32_t v);
bytes p_str(std::uint8_t id, std::string_view v);
bytes p_pair(std::string_view k, std::string_view v);

} // namespace tern::protocol::test
