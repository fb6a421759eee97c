#include "payload.hpp"

#include <ctime>

namespace tern::bench {

namespace {

template <class T> void put_le(std::uint8_t* out, T v) noexcept {
    for (std::size_t i = 0; i < sizeof(T); ++i) {
        out[i] = static_cast<std::uint8_t>(v >> (8 * i));
    }
}

template <class T> T get_le(const char* in) noexcept {
    T v = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) {
        v |= static_cast<T>(static_cast<T>(static_cast<unsigned char>(in[i])) << (8 * i));
    }
    return v;
}

} // namespace

void write_payload_header(std::uint8_t* out, const payload_header& h) noexcept {
    put_le(out, payload_magic);
    put_le(out + 4, h.run_tag);
    put_le(out + 8, h.publisher);
    put_le(out + 12, h.stream);
    put_le(out + 16, h.sequence);
    put_le(out + 24, h.sent_ns);
}

std::optional<payload_header> read_payload_header(std::string_view payload) noexcept {
    if (payload.size() < payload_header_size ||
        get_le<std::uint32_t>(payload.data()) != payload_magic) {
        return std::nullopt;
    }
    const char* p = payload.data();
    return payload_header{get_le<std::uint32_t>(p + 4), get_le<std::uint32_t>(p + 8),
                          get_le<std::uint32_t>(p + 12), get_le<std::uint64_t>(p + 16),
                          get_le<std::uint64_t>(p + 24)};
}

std::uint64_t realtime_ns() noexcept {
    timespec ts{};
    // CLOCK_REALTIME cannot fail with a valid pointer; a zero timestamp would only skew latency.
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

} // namespace tern::bench
