#include <tern/protocol/topic.hpp>

#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "wire.hpp"

namespace tern::protocol {

namespace {

// Word-at-a-time scanning (SWAR): the common topic and string is plain ASCII, and checking
// eight bytes per step for "non-ASCII, NUL, '+' or '#'" makes validation cheap.
constexpr std::uint64_t ones = 0x0101010101010101ull;
constexpr std::uint64_t highs = 0x8080808080808080ull;

constexpr std::uint64_t has_zero_byte(std::uint64_t w) noexcept {
    return (w - ones) & ~w & highs;
}
constexpr std::uint64_t has_byte(std::uint64_t w, unsigned char c) noexcept {
    return has_zero_byte(w ^ (ones * c));
}

inline std::uint64_t load64(const unsigned char* p) noexcept {
    std::uint64_t w;
    std::memcpy(&w, p, sizeof w);
    return w;
}

/// Length of the prefix of [p, p + n) that is made of whole 8-byte words of ASCII without NUL
/// (and, when `wildcards`, without '+' and '#'); the bytes after it need the byte-wise check.
std::size_t clean_ascii_words(const unsigned char* p, std::size_t n, bool wildcards) noexcept {
    std::size_t i = 0;
#if defined(__SSE2__)
    // Sixteen bytes per step where SSE2 is there (every x86-64): a byte is "bad" when its high
    // bit is set (non-ASCII) or it equals NUL, '+' or '#'.
    const __m128i zero = _mm_setzero_si128();
    const __m128i plus = _mm_set1_epi8('+');
    const __m128i hash = _mm_set1_epi8('#');
    for (; i + 16 <= n; i += 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
        __m128i bad = _mm_cmpeq_epi8(v, zero);
        if (wildcards) {
            bad = _mm_or_si128(bad, _mm_or_si128(_mm_cmpeq_epi8(v, plus), _mm_cmpeq_epi8(v, hash)));
        }
        if ((_mm_movemask_epi8(bad) | _mm_movemask_epi8(v)) != 0) {
            return i;
        }
    }
#endif
    for (; i + 8 <= n; i += 8) {
        const std::uint64_t w = load64(p + i);
        std::uint64_t bad = (w & highs) | has_zero_byte(w);
        if (wildcards) {
            bad |= has_byte(w, '+') | has_byte(w, '#');
        }
        if (bad != 0) {
            break;
        }
    }
    return i;
}

} // namespace

bool is_valid_utf8(std::string_view s) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const auto* end = p + s.size();
    p += clean_ascii_words(p, s.size(), false);
    while (p < end) {
        unsigned char c = *p;
        if (c < 0x80) {
            // ASCII fast path; U+0000 is forbidden [MQTT-1.5.4-2].
            if (c == 0) {
                return false;
            }
            ++p;
            continue;
        }
        std::uint32_t cp = 0;
        int extra = 0;
        if (c >= 0xC2 && c <= 0xDF) { // C0 and C1 would be overlong two-byte forms
            cp = c & 0x1Fu;
            extra = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            cp = c & 0x0Fu;
            extra = 2;
        } else if (c >= 0xF0 && c <= 0xF4) {
            cp = c & 0x07u;
            extra = 3;
        } else {
            return false;
        }
        if (end - p <= extra) {
            return false;
        }
        for (int i = 1; i <= extra; ++i) {
            unsigned char cc = p[i];
            if ((cc & 0xC0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (cc & 0x3Fu);
        }
        // Overlong three- and four-byte forms, surrogates [MQTT-1.5.4-1], beyond U+10FFFF.
        if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF)) {
            return false;
        }
        p += extra + 1;
    }
    return true;
}

namespace detail {

codec_error check_topic_characters(std::string_view topic) noexcept {
    // One pass over the ASCII prefix looking for U+0000 and wildcards at once: this runs for
    // every PUBLISH received, and two separate scans were half the cost of decoding a small one.
    const auto* p = reinterpret_cast<const unsigned char*>(topic.data());
    const std::size_t n = topic.size();
    std::size_t i = clean_ascii_words(p, n, true);
    for (; i < n; ++i) {
        const unsigned char c = p[i];
        if (c >= 0x80) {
            break;
        }
        if (c == '+' || c == '#') {
            return codec_error::topic_name_invalid;
        }
        if (c == 0) {
            return codec_error::invalid_utf8;
        }
    }
    if (i == n) {
        return codec_error{};
    }
    std::string_view rest = topic.substr(i);
    if (!is_valid_utf8(rest)) {
        return codec_error::invalid_utf8;
    }
    if (rest.find_first_of("+#") != std::string_view::npos) {
        return codec_error::topic_name_invalid;
    }
    return codec_error{};
}

} // namespace detail

boost::system::error_code validate_topic_name(std::string_view topic) noexcept {
    if (topic.empty()) {
        return codec_error::topic_name_invalid;
    }
    if (codec_error e = detail::check_topic_characters(topic); e != codec_error{}) {
        return e;
    }
    return {};
}

namespace {

// '+' and '#' each occupy a whole level; '#' only the last [MQTT-4.7.1-2, MQTT-4.7.1-3].
bool wildcards_well_placed(std::string_view filter) noexcept {
    const std::size_t n = filter.size();
    for (std::size_t i = 0; i < n; ++i) {
        char c = filter[i];
        if (c != '+' && c != '#') {
            continue;
        }
        bool starts_level = i == 0 || filter[i - 1] == '/';
        bool ends_level = i + 1 == n || filter[i + 1] == '/';
        if (!starts_level || !ends_level) {
            return false;
        }
        if (c == '#' && i + 1 != n) {
            return false;
        }
    }
    return true;
}

constexpr std::string_view share_prefix = "$share/";

} // namespace

boost::system::result<topic_filter_view> parse_topic_filter(std::string_view filter) noexcept {
    if (!is_valid_utf8(filter)) {
        return codec_error::invalid_utf8;
    }
    topic_filter_view out{{}, filter};
    if (filter.starts_with(share_prefix)) {
        std::string_view rest = filter.substr(share_prefix.size());
        std::size_t slash = rest.find('/');
        if (slash == std::string_view::npos) {
            return codec_error::topic_filter_invalid; // "$share/group" has no filter
        }
        out.share_group = rest.substr(0, slash);
        out.filter = rest.substr(slash + 1);
        // ShareName: at least one character, no '/', '+' or '#' [MQTT-4.8.2-1, MQTT-4.8.2-2].
        if (out.share_group.empty() ||
            out.share_group.find_first_of("+#") != std::string_view::npos) {
            return codec_error::topic_filter_invalid;
        }
    }
    if (out.filter.empty() || !wildcards_well_placed(out.filter)) {
        return codec_error::topic_filter_invalid;
    }
    return out;
}

bool topic_matches(std::string_view filter, std::string_view topic) noexcept {
    // Wildcards at the first level never match topics starting with '$' [MQTT-4.7.2-1].
    if (!topic.empty() && topic.front() == '$' && !filter.empty() &&
        (filter.front() == '+' || filter.front() == '#')) {
        return false;
    }
    std::size_t f = 0;
    std::size_t t = 0;
    for (;;) {
        std::size_t f_end = filter.find('/', f);
        if (f_end == std::string_view::npos) {
            f_end = filter.size();
        }
        std::string_view f_level = filter.substr(f, f_end - f);
        if (f_level == "#") {
            return true; // matches the parent level and everything below [MQTT-4.7.1-2]
        }
        std::size_t t_end = topic.find('/', t);
        if (t_end == std::string_view::npos) {
            t_end = topic.size();
        }
        if (f_level != "+" && f_level != topic.substr(t, t_end - t)) {
            return false;
        }
        bool filter_done = f_end == filter.size();
        bool topic_done = t_end == topic.size();
        if (filter_done || topic_done) {
            if (filter_done && topic_done) {
                return true;
            }
            // "sport/#" matches "sport": the filter may go on with exactly "/#".
            return topic_done && filter.substr(f_end) == "/#";
        }
        f = f_end + 1;
        t = t_end + 1;
    }
}

} // namespace tern::protocol
