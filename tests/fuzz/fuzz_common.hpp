#pragma once
/// Helpers shared by the codec fuzz targets: how the first input byte selects the decoder
/// configuration, and a hard failure that libFuzzer records as a crash with its input.
///
/// Input layout of fuzz_decode and fuzz_roundtrip: byte 0 is a selector, the rest is the byte
/// stream a peer sent. Selector bits:
///   0-1  protocol version for non-CONNECT packets: 0 -> 3 (3.1), 1 -> 4 (3.1.1), 2/3 -> 5
///   2-3  receiver role: 0/3 -> any, 1 -> server, 2 -> client
///   4-5  maximum_packet_size: 0 -> unlimited, 1 -> 16, 2 -> 128, 3 -> 1024
///   6-7  how fuzz_decode cuts the stream for stream_decoder: 0 -> one chunk, 1 -> one byte at
///        a time, 2/3 -> pseudo-random chunk lengths (1..64) derived from the input
/// tests/fuzz/make_corpus.py writes the seed files with the same layout.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include <tern/protocol/decoder.hpp>

namespace tern::fuzz {

struct fuzz_config {
    protocol::decode_options options;
    std::uint8_t chunk_mode = 0;
};

inline fuzz_config config_from_selector(std::uint8_t selector) noexcept {
    fuzz_config c;
    switch (selector & 0x03u) {
    case 0:
        c.options.version = protocol::protocol_version::v3_1;
        break;
    case 1:
        c.options.version = protocol::protocol_version::v3_1_1;
        break;
    default:
        c.options.version = protocol::protocol_version::v5;
        break;
    }
    switch ((selector >> 2) & 0x03u) {
    case 1:
        c.options.role = protocol::receiver_role::server;
        break;
    case 2:
        c.options.role = protocol::receiver_role::client;
        break;
    default:
        c.options.role = protocol::receiver_role::any;
        break;
    }
    static constexpr std::uint32_t sizes[] = {protocol::max_packet_size, 16, 128, 1024};
    c.options.maximum_packet_size = sizes[(selector >> 4) & 0x03u];
    c.chunk_mode = static_cast<std::uint8_t>((selector >> 6) & 0x03u);
    return c;
}

/// Prints `what` and aborts, so libFuzzer saves the input as a crash-* reproducer.
[[noreturn]] inline void fail(const char* what) noexcept {
    std::fprintf(stderr, "FUZZ INVARIANT VIOLATED: %s\n", what);
    std::fflush(stderr);
    std::abort();
}

#define TERN_FUZZ_CHECK(cond)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            ::tern::fuzz::fail(__FILE__ ":" TERN_FUZZ_STR(__LINE__) ": " #cond);                   \
        }                                                                                          \
    } while (false)
#define TERN_FUZZ_STR(x) TERN_FUZZ_STR2(x)
#define TERN_FUZZ_STR2(x) #x

} // namespace tern::fuzz
