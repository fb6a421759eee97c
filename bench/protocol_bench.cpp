// Codec micro-benchmarks (Google Benchmark): decode and encode of PUBLISH and of a
// property-rich MQTT 5 CONNECT, and stream_decoder over a socket-like stream of PUBLISH packets.
// Numbers are for comparison between builds on one machine; nothing here passes or fails on
// time (STYLE.md §8). Run through tools/run-bench.sh.

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include <tern/protocol/decoder.hpp>
#include <tern/protocol/encoder.hpp>

#include "codec_fixtures.hpp"

namespace {

using namespace tern::bench;

void set_counters(benchmark::State& state, std::size_t bytes_per_item) {
    const auto items = static_cast<std::int64_t>(state.iterations());
    state.SetItemsProcessed(items);
    state.SetBytesProcessed(items * static_cast<std::int64_t>(bytes_per_item));
}

void decode_publish(benchmark::State& state, protocol_version v, std::size_t payload_size) {
    const publish_fixture f(v, payload_size);
    const auto bytes = must(proto::encode_to_vector(f.packet, v), "encode");
    const auto options = options_for(v);
    for (auto _ : state) {
        auto r = proto::decode(bytes, options);
        benchmark::DoNotOptimize(r);
    }
    set_counters(state, bytes.size());
}

void encode_publish(benchmark::State& state, protocol_version v, std::size_t payload_size) {
    const publish_fixture f(v, payload_size);
    const proto::packet p = f.packet;
    std::vector<std::uint8_t> out(must(proto::encoded_size(p, v), "encoded_size"));
    for (auto _ : state) {
        auto r = proto::encode(p, v, out);
        benchmark::DoNotOptimize(r);
        benchmark::DoNotOptimize(out.data());
    }
    set_counters(state, out.size());
}

/// The fan-out path: only the header is written; the payload is sent from its own buffer.
void encode_publish_header(benchmark::State& state, protocol_version v, std::size_t payload_size) {
    const publish_fixture f(v, payload_size);
    const auto layout = must(proto::publish_size(f.packet, v), "publish_size");
    std::vector<std::uint8_t> out(layout.header_size);
    for (auto _ : state) {
        auto r = proto::encode_publish_header(f.packet, v, out);
        benchmark::DoNotOptimize(r);
        benchmark::DoNotOptimize(out.data());
    }
    set_counters(state, layout.total_size);
}

void decode_connect_v5(benchmark::State& state) {
    const connect_fixture f;
    const auto bytes = must(proto::encode_to_vector(f.packet, protocol_version::v5), "encode");
    const auto options = options_for(protocol_version::v5);
    for (auto _ : state) {
        auto r = proto::decode(bytes, options);
        benchmark::DoNotOptimize(r);
    }
    set_counters(state, bytes.size());
}

void encode_connect_v5(benchmark::State& state) {
    const connect_fixture f;
    const proto::packet p = f.packet;
    std::vector<std::uint8_t> out(must(proto::encoded_size(p, protocol_version::v5), "size"));
    for (auto _ : state) {
        auto r = proto::encode(p, protocol_version::v5, out);
        benchmark::DoNotOptimize(r);
        benchmark::DoNotOptimize(out.data());
    }
    set_counters(state, out.size());
}

/// stream_decoder over `count` back-to-back PUBLISH packets, handed over in reads of
/// `chunk` bytes as a socket would; one iteration decodes the whole buffer.
void stream_decode_publish(benchmark::State& state, protocol_version v) {
    const auto payload_size = static_cast<std::size_t>(state.range(0));
    const auto chunk = static_cast<std::size_t>(state.range(1));
    constexpr std::size_t count = 1000;
    const publish_fixture f(v, payload_size);
    const auto one = must(proto::encode_to_vector(f.packet, v), "encode");
    std::vector<std::uint8_t> stream;
    stream.reserve(one.size() * count);
    for (std::size_t i = 0; i < count; ++i) {
        stream.insert(stream.end(), one.begin(), one.end());
    }
    proto::stream_decoder decoder(options_for(v));
    // The read-loop form a connection uses: decode into one reused received_packet.
    proto::received_packet packet;
    for (auto _ : state) {
        std::size_t packets = 0;
        for (std::size_t pos = 0; pos < stream.size(); pos += chunk) {
            std::span<const std::uint8_t> in(stream.data() + pos,
                                             std::min(chunk, stream.size() - pos));
            while (!decoder.next(in, packet)) { // need_more ends the read
                benchmark::DoNotOptimize(packet);
                ++packets;
            }
        }
        if (packets != count) {
            state.SkipWithError("stream_decoder lost packets");
            break;
        }
    }
    const auto iters = static_cast<std::int64_t>(state.iterations());
    state.SetItemsProcessed(iters * static_cast<std::int64_t>(count));
    state.SetBytesProcessed(iters * static_cast<std::int64_t>(stream.size()));
}

constexpr auto v311 = protocol_version::v3_1_1;
constexpr auto v5 = protocol_version::v5;

BENCHMARK_CAPTURE(decode_publish, v311_16B, v311, 16);
BENCHMARK_CAPTURE(decode_publish, v311_4KiB, v311, 4096);
BENCHMARK_CAPTURE(decode_publish, v5_16B, v5, 16);
BENCHMARK_CAPTURE(decode_publish, v5_4KiB, v5, 4096);
BENCHMARK_CAPTURE(encode_publish, v311_16B, v311, 16);
BENCHMARK_CAPTURE(encode_publish, v311_4KiB, v311, 4096);
BENCHMARK_CAPTURE(encode_publish, v5_16B, v5, 16);
BENCHMARK_CAPTURE(encode_publish, v5_4KiB, v5, 4096);
BENCHMARK_CAPTURE(encode_publish_header, v311_4KiB, v311, 4096);
BENCHMARK_CAPTURE(encode_publish_header, v5_4KiB, v5, 4096);
BENCHMARK(decode_connect_v5);
BENCHMARK(encode_connect_v5);
// Args: payload bytes, bytes per read.
BENCHMARK_CAPTURE(stream_decode_publish, v311, v311)
    ->ArgNames({"payload", "read"})
    ->Args({16, 4096})
    ->Args({16, 65536})
    ->Args({4096, 65536});
BENCHMARK_CAPTURE(stream_decode_publish, v5, v5)
    ->ArgNames({"payload", "read"})
    ->Args({16, 4096})
    ->Args({16, 65536})
    ->Args({4096, 65536});

} // namespace

BENCHMARK_MAIN();
