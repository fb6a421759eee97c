/// fuzz_decode: one byte stream through stream_decoder (cut into chunks derived from the input)
/// and through repeated decode() calls. Both must yield the same packets and end with the same
/// error; nothing may crash, leak, read out of bounds or hit undefined behaviour.
///
/// Each chunk handed to stream_decoder, and the buffer handed to decode(), is a fresh heap copy
/// freed before the packets are compared, so a packet whose views point into the caller's bytes
/// instead of its own storage shows up as an ASan use-after-free.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <tern/protocol/decoder.hpp>

#include "fuzz_common.hpp"

namespace {

using namespace tern::protocol;
using tern::fuzz::fuzz_config;

struct outcome {
    std::vector<received_packet> packets;
    boost::system::error_code error; ///< what ended the stream; need_more if it just ran out
    std::size_t unconsumed = 0;      ///< bytes after the last whole packet (decode() only)
};

outcome run_decode(std::span<const std::uint8_t> stream, const fuzz_config& cfg) {
    outcome out;
    std::size_t offset = 0;
    {
        const std::vector<std::uint8_t> copy(stream.begin(), stream.end());
        const std::span<const std::uint8_t> input(copy);
        for (;;) {
            auto r = decode(input.subspan(offset), cfg.options);
            if (!r) {
                out.error = r.error();
                break;
            }
            TERN_FUZZ_CHECK(r->consumed > 0);
            TERN_FUZZ_CHECK(r->consumed <= input.size() - offset);
            // The fixed header alone must describe the same frame.
            auto h = decode_fixed_header(input.subspan(offset), cfg.options);
            TERN_FUZZ_CHECK(h.has_value());
            TERN_FUZZ_CHECK(h->size >= 2 && h->size <= 5);
            TERN_FUZZ_CHECK(h->size + std::size_t{h->remaining_length} == r->consumed);
            TERN_FUZZ_CHECK(h->type == type_of(r->packet.packet));
            TERN_FUZZ_CHECK(r->consumed <= cfg.options.maximum_packet_size);
            offset += r->consumed;
            out.packets.push_back(std::move(r->packet));
        }
    } // `copy` is freed here: the packets must only use their own storage from now on.
    out.unconsumed = stream.size() - offset;
    return out;
}

/// Chunk lengths for stream_decoder: deterministic in the input, so a crash reproduces.
class chunker {
public:
    chunker(std::uint8_t mode, std::span<const std::uint8_t> stream) noexcept : mode_(mode) {
        std::uint64_t h = 0xcbf29ce484222325u; // FNV-1a over the input seeds the lengths
        for (std::uint8_t b : stream) {
            h = (h ^ b) * 0x100000001b3u;
        }
        state_ = h | 1u;
    }
    std::size_t next(std::size_t remaining) noexcept {
        std::size_t n = remaining;
        if (mode_ == 1) {
            n = 1;
        } else if (mode_ >= 2) {
            state_ ^= state_ << 13; // xorshift64
            state_ ^= state_ >> 7;
            state_ ^= state_ << 17;
            n = 1 + static_cast<std::size_t>(state_ % 64u);
        }
        return n < remaining ? n : remaining;
    }

private:
    std::uint8_t mode_;
    std::uint64_t state_;
};

/// `in_place` drives the read-loop overload next(in, packet) with one reused received_packet.
outcome run_stream(std::span<const std::uint8_t> stream, const fuzz_config& cfg, bool in_place) {
    outcome out;
    received_packet reused;
    stream_decoder dec(cfg.options);
    chunker cut(cfg.chunk_mode, stream);
    std::size_t pos = 0;
    bool failed = false;
    do {
        const std::size_t n = cut.next(stream.size() - pos);
        const std::vector<std::uint8_t> chunk(stream.begin() + static_cast<std::ptrdiff_t>(pos),
                                              stream.begin() +
                                                  static_cast<std::ptrdiff_t>(pos + n));
        pos += n;
        std::span<const std::uint8_t> in(chunk);
        for (;;) {
            const std::size_t before = in.size();
            auto step = [&]() -> boost::system::result<received_packet> {
                if (!in_place) {
                    return dec.next(in);
                }
                if (auto ec = dec.next(in, reused)) {
                    return ec;
                }
                return reused;
            };
            auto r = step();
            TERN_FUZZ_CHECK(in.size() <= before);
            if (r) {
                out.packets.push_back(std::move(*r));
                continue;
            }
            if (r.error() == codec_error::need_more) {
                TERN_FUZZ_CHECK(in.empty()); // need_more only once the chunk is used up
                break;
            }
            out.error = r.error();
            failed = true;
            // A failed decoder stays failed until reset().
            auto again = dec.next(in);
            TERN_FUZZ_CHECK(!again && again.error() == out.error);
            break;
        }
    } while (!failed && pos < stream.size());
    if (!failed) {
        out.error = codec_error::need_more;
        out.unconsumed = dec.buffered_bytes();
        TERN_FUZZ_CHECK(dec.mid_packet() == (dec.buffered_bytes() != 0));
    }
    dec.reset();
    TERN_FUZZ_CHECK(!dec.mid_packet());
    TERN_FUZZ_CHECK(dec.buffered_bytes() == 0);
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const fuzz_config cfg = tern::fuzz::config_from_selector(data[0]);
    const std::span<const std::uint8_t> stream(data + 1, size - 1);

    const outcome whole = run_decode(stream, cfg);
    const outcome chunked = run_stream(stream, cfg, false);
    const outcome in_place = run_stream(stream, cfg, true);
    TERN_FUZZ_CHECK(in_place.packets.size() == chunked.packets.size());
    for (std::size_t i = 0; i < in_place.packets.size(); ++i) {
        TERN_FUZZ_CHECK(in_place.packets[i].packet == chunked.packets[i].packet);
    }
    TERN_FUZZ_CHECK(in_place.error == chunked.error);

    TERN_FUZZ_CHECK(whole.packets.size() == chunked.packets.size());
    for (std::size_t i = 0; i < whole.packets.size(); ++i) {
        TERN_FUZZ_CHECK(whole.packets[i].packet == chunked.packets[i].packet);
    }
    TERN_FUZZ_CHECK(whole.error == chunked.error);
    if (whole.error == codec_error::need_more) {
        // Everything after the last packet is buffered as the packet in progress.
        TERN_FUZZ_CHECK(whole.unconsumed == chunked.unconsumed);
    }
    // Every error must map to some reason code without crashing.
    (void)to_reason_code(whole.error);
    (void)whole.error.message();
    return 0;
}
