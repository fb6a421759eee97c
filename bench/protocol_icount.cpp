// Instruction-count driver for the codec: runs one operation COUNT times and nothing else, so
// `valgrind --tool=callgrind` gives a figure that is repeatable on a noisy shared machine
// (wall-clock benchmarks here vary by ±20 %). tools/run-bench.sh --instructions runs it at two
// counts and reports the difference per operation, which cancels the set-up cost.
//
//   protocol_icount OPERATION COUNT

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

#include "codec_fixtures.hpp"

namespace {

using namespace tern::bench;

/// COUNT back-to-back copies of one packet's bytes, fed to one stream_decoder in 64 KiB reads
/// as a socket would hand them over.
std::size_t stream_decode(const std::vector<std::uint8_t>& one, protocol_version v, long count) {
    std::vector<std::uint8_t> stream;
    stream.reserve(one.size() * static_cast<std::size_t>(count));
    for (long i = 0; i < count; ++i) {
        stream.insert(stream.end(), one.begin(), one.end());
    }
    proto::stream_decoder decoder(options_for(v));
    std::size_t packets = 0;
    for (std::size_t at = 0; at < stream.size(); at += 65536) {
        std::span<const std::uint8_t> chunk(stream.data() + at,
                                            std::min<std::size_t>(65536, stream.size() - at));
        proto::received_packet packet;
        while (!decoder.next(chunk, packet)) {
            ++packets;
        }
    }
    return packets;
}

std::size_t encode_many(const proto::packet& p, protocol_version v, long count) {
    std::vector<std::uint8_t> out(must(proto::encoded_size(p, v), "encoded_size"));
    std::size_t total = 0;
    for (long i = 0; i < count; ++i) {
        total += must(proto::encode(p, v, out), "encode");
    }
    return total;
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(
            stderr,
            "usage: protocol_icount OPERATION COUNT\n"
            "operations: stream_decode_publish_v311_16B stream_decode_publish_v5_16B\n"
            "            stream_decode_publish_v5_4KiB stream_decode_connect_v5\n"
            "            encode_publish_v311_16B encode_publish_v5_16B encode_connect_v5\n");
        return 2;
    }
    const std::string_view op = argv[1];
    const long count = std::strtol(argv[2], nullptr, 10);
    const auto v311 = protocol_version::v3_1_1;
    const auto v5 = protocol_version::v5;
    std::size_t result = 0;
    if (op == "stream_decode_publish_v311_16B") {
        publish_fixture f(v311, 16);
        result =
            stream_decode(must(proto::encode_to_vector(f.packet, v311), "encode"), v311, count);
    } else if (op == "stream_decode_publish_v5_16B") {
        publish_fixture f(v5, 16);
        result = stream_decode(must(proto::encode_to_vector(f.packet, v5), "encode"), v5, count);
    } else if (op == "stream_decode_publish_v5_4KiB") {
        publish_fixture f(v5, 4096);
        result = stream_decode(must(proto::encode_to_vector(f.packet, v5), "encode"), v5, count);
    } else if (op == "stream_decode_connect_v5") {
        connect_fixture f;
        result = stream_decode(must(proto::encode_to_vector(f.packet, v5), "encode"), v5, count);
    } else if (op == "encode_publish_v311_16B") {
        publish_fixture f(v311, 16);
        result = encode_many(f.packet, v311, count);
    } else if (op == "encode_publish_v5_16B") {
        publish_fixture f(v5, 16);
        result = encode_many(f.packet, v5, count);
    } else if (op == "encode_connect_v5") {
        connect_fixture f;
        result = encode_many(f.packet, v5, count);
    } else {
        std::fprintf(stderr, "protocol_icount: unknown operation %s\n", argv[1]);
        return 2;
    }
    std::printf("%zu\n", result);
    return result == 0 ? 1 : 0;
}
