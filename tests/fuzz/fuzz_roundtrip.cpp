/// fuzz_roundtrip: every packet that decodes must encode again, and the encoding must decode to
/// an equal packet. Also checked for each packet:
///   - encoded_size() equals the bytes encode() writes, and encode_to_vector() agrees;
///   - a buffer one byte short gives buffer_too_small and is left untouched;
///   - the encoding is canonical: encoding the re-decoded packet gives the same bytes;
///   - for PUBLISH, publish_size() / encode_publish_header() followed by the payload equal
///     encode().
/// Input layout: see fuzz_common.hpp. CONNECT is re-encoded in its own protocol level, every
/// other packet in the level the selector picked.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <variant>
#include <vector>

#include <tern/protocol/decoder.hpp>
#include <tern/protocol/encoder.hpp>

#include "fuzz_common.hpp"

namespace {

using namespace tern::protocol;

std::vector<std::uint8_t> encode_checked(const packet& p, protocol_version version) {
    auto size = encoded_size(p, version);
    TERN_FUZZ_CHECK(size.has_value()); // a packet that decoded must be encodable
    TERN_FUZZ_CHECK(*size >= 2);

    // One spare byte on each side, filled with a sentinel, catches writes outside the span.
    std::vector<std::uint8_t> buf(*size + 2, 0xA5);
    auto written = encode(p, version, std::span<std::uint8_t>(buf.data() + 1, *size));
    TERN_FUZZ_CHECK(written.has_value());
    TERN_FUZZ_CHECK(*written == *size);
    TERN_FUZZ_CHECK(buf.front() == 0xA5 && buf.back() == 0xA5);
    std::vector<std::uint8_t> bytes(buf.begin() + 1, buf.end() - 1);

    auto vec = encode_to_vector(p, version);
    TERN_FUZZ_CHECK(vec.has_value());
    TERN_FUZZ_CHECK(*vec == bytes);

    // Too small by one byte: an error, and nothing written.
    std::vector<std::uint8_t> small(*size - 1, 0x5A);
    auto short_result = encode(p, version, std::span<std::uint8_t>(small));
    TERN_FUZZ_CHECK(!short_result);
    TERN_FUZZ_CHECK(short_result.error() == codec_error::buffer_too_small);
    TERN_FUZZ_CHECK(
        std::all_of(small.begin(), small.end(), [](std::uint8_t b) { return b == 0x5A; }));
    return bytes;
}

void check_publish_split(const publish& p, protocol_version version,
                         const std::vector<std::uint8_t>& whole) {
    auto layout = publish_size(p, version);
    TERN_FUZZ_CHECK(layout.has_value());
    TERN_FUZZ_CHECK(layout->total_size == whole.size());
    TERN_FUZZ_CHECK(layout->header_size + p.payload.size() == layout->total_size);

    std::vector<std::uint8_t> header(layout->header_size + 1, 0xA5);
    auto written = encode_publish_header(
        p, version, std::span<std::uint8_t>(header.data(), layout->header_size));
    TERN_FUZZ_CHECK(written.has_value());
    TERN_FUZZ_CHECK(written->header_size == layout->header_size);
    TERN_FUZZ_CHECK(written->total_size == layout->total_size);
    TERN_FUZZ_CHECK(header.back() == 0xA5);
    header.pop_back();
    header.insert(header.end(), p.payload.begin(), p.payload.end());
    TERN_FUZZ_CHECK(header == whole);
}

void check_roundtrip(const received_packet& first, const decode_options& options) {
    const packet& p = first.packet;
    const auto* c = std::get_if<connect>(&p);
    const protocol_version version = c != nullptr ? c->version : options.version;

    const std::vector<std::uint8_t> bytes = encode_checked(p, version);
    if (const auto* pub = std::get_if<publish>(&p)) {
        check_publish_split(*pub, version, bytes);
    }

    // The canonical form may be shorter than what the peer sent (e.g. a v5 ack that omitted
    // nothing), never an illegal packet: decode it without the size cap.
    decode_options again = options;
    again.maximum_packet_size = max_packet_size;
    auto second = decode(bytes, again);
    TERN_FUZZ_CHECK(second.has_value());
    TERN_FUZZ_CHECK(second->consumed == bytes.size());
    TERN_FUZZ_CHECK(second->packet.packet == p);

    TERN_FUZZ_CHECK(encode_checked(second->packet.packet, version) == bytes);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const auto cfg = tern::fuzz::config_from_selector(data[0]);
    std::span<const std::uint8_t> stream(data + 1, size - 1);
    while (!stream.empty()) {
        auto r = decode(stream, cfg.options);
        if (!r) {
            break;
        }
        check_roundtrip(r->packet, cfg.options);
        stream = stream.subspan(r->consumed);
    }
    return 0;
}
