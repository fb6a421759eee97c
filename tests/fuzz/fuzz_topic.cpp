/// fuzz_topic: is_valid_utf8, validate_topic_name, parse_topic_filter and topic_matches against
/// small reference implementations written straight from the specification, plus a few
/// algebraic invariants. Input: "<filter>\0<topic>" (without a NUL the whole input is both).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <tern/protocol/topic.hpp>

#include "fuzz_common.hpp"

namespace {

using namespace tern::protocol;

/// Well-formed UTF-8 (Unicode 3.9 table 3-7) without U+0000 [MQTT-1.5.4-1, MQTT-1.5.4-2].
bool ref_utf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto b = static_cast<std::uint8_t>(s[i]);
        std::size_t len = 0;
        std::uint8_t lo = 0x80;
        std::uint8_t hi = 0xBF;
        if (b == 0x00) {
            return false;
        } else if (b < 0x80) {
            len = 1;
        } else if (b >= 0xC2 && b <= 0xDF) {
            len = 2;
        } else if (b == 0xE0) {
            len = 3, lo = 0xA0;
        } else if (b == 0xED) {
            len = 3, hi = 0x9F; // excludes the surrogates U+D800..U+DFFF
        } else if (b >= 0xE1 && b <= 0xEF) {
            len = 3;
        } else if (b == 0xF0) {
            len = 4, lo = 0x90;
        } else if (b >= 0xF1 && b <= 0xF3) {
            len = 4;
        } else if (b == 0xF4) {
            len = 4, hi = 0x8F;
        } else {
            return false;
        }
        if (i + len > s.size()) {
            return false;
        }
        for (std::size_t k = 1; k < len; ++k) {
            const auto c = static_cast<std::uint8_t>(s[i + k]);
            const std::uint8_t l = k == 1 ? lo : 0x80;
            const std::uint8_t h = k == 1 ? hi : 0xBF;
            if (c < l || c > h) {
                return false;
            }
        }
        i += len;
    }
    return true;
}

std::vector<std::string_view> levels(std::string_view s) {
    std::vector<std::string_view> out;
    for (;;) {
        const auto slash = s.find('/');
        out.push_back(s.substr(0, slash));
        if (slash == std::string_view::npos) {
            return out;
        }
        s.remove_prefix(slash + 1);
    }
}

bool has_wildcard(std::string_view s) {
    return s.find_first_of("+#") != std::string_view::npos;
}

/// A plain (non-shared) filter: '#' only as the whole last level, '+' only as a whole level.
bool ref_plain_filter(std::string_view f) {
    if (f.empty() || !ref_utf8(f)) {
        return false;
    }
    const auto lv = levels(f);
    for (std::size_t i = 0; i < lv.size(); ++i) {
        if (lv[i].find('#') != std::string_view::npos && (lv[i] != "#" || i + 1 != lv.size())) {
            return false;
        }
        if (lv[i].find('+') != std::string_view::npos && lv[i] != "+") {
            return false;
        }
    }
    return true;
}

constexpr std::string_view share_prefix = "$share/";

bool ref_topic_name(std::string_view t) {
    return !t.empty() && ref_utf8(t) && !has_wildcard(t);
}

bool ref_matches(std::string_view filter, std::string_view topic) {
    // [MQTT-4.7.2-1]: a wildcard first level does not match topics starting with '$'.
    if (!topic.empty() && topic[0] == '$' && (filter[0] == '+' || filter[0] == '#')) {
        return false;
    }
    const auto fl = levels(filter);
    const auto tl = levels(topic);
    for (std::size_t i = 0; i < fl.size(); ++i) {
        if (fl[i] == "#") {
            return true; // also matches the parent level: "a/#" matches "a" [MQTT-4.7.1-2]
        }
        if (i >= tl.size() || (fl[i] != "+" && fl[i] != tl[i])) {
            return false;
        }
    }
    return fl.size() == tl.size();
}

void check_utf8(std::string_view s) {
    TERN_FUZZ_CHECK(is_valid_utf8(s) == ref_utf8(s));
}

void check_topic_name(std::string_view t) {
    const auto ec = validate_topic_name(t);
    TERN_FUZZ_CHECK(!ec == ref_topic_name(t));
    if (ec == codec_error::invalid_utf8) {
        TERN_FUZZ_CHECK(!ref_utf8(t));
    } else if (ec) {
        TERN_FUZZ_CHECK(ec == codec_error::topic_name_invalid);
        TERN_FUZZ_CHECK(t.empty() || has_wildcard(t));
    }
}

void check_filter(std::string_view f) {
    const auto r = parse_topic_filter(f);
    if (f.starts_with(share_prefix)) {
        const std::string_view rest = f.substr(share_prefix.size());
        const auto slash = rest.find('/');
        if (slash != std::string_view::npos && rest.substr(slash + 1).starts_with(share_prefix)) {
            return; // "$share/g/$share/..." : the specification does not settle it; skip
        }
        const bool ok = slash != std::string_view::npos && slash != 0 && ref_utf8(f) &&
                        !has_wildcard(rest.substr(0, slash)) &&
                        ref_plain_filter(rest.substr(slash + 1));
        TERN_FUZZ_CHECK(r.has_value() == ok);
        if (ok) {
            TERN_FUZZ_CHECK(r->share_group == rest.substr(0, slash));
            TERN_FUZZ_CHECK(r->filter == rest.substr(slash + 1));
            TERN_FUZZ_CHECK(r->is_shared());
        }
    } else {
        TERN_FUZZ_CHECK(r.has_value() == ref_plain_filter(f));
        if (r) {
            TERN_FUZZ_CHECK(r->share_group.empty() && !r->is_shared());
            TERN_FUZZ_CHECK(r->filter == f);
        }
    }
    if (!r) {
        TERN_FUZZ_CHECK(r.error() == codec_error::invalid_utf8 ||
                        r.error() == codec_error::topic_filter_invalid);
        if (r.error() == codec_error::invalid_utf8) {
            TERN_FUZZ_CHECK(!ref_utf8(f));
        }
    }
}

void check_match(std::string_view f, std::string_view t) {
    if (!ref_topic_name(t)) {
        return;
    }
    // Invariants that need no second string.
    if (!t.starts_with(share_prefix)) {
        TERN_FUZZ_CHECK(topic_matches(t, t));
        const std::string sub = std::string(t) + "/#";
        TERN_FUZZ_CHECK(topic_matches(sub, t));
    }
    TERN_FUZZ_CHECK(topic_matches("#", t) == (t[0] != '$'));
    TERN_FUZZ_CHECK(topic_matches("+", t) ==
                    (t[0] != '$' && t.find('/') == std::string_view::npos));

    const auto pf = parse_topic_filter(f);
    if (!pf || pf->is_shared()) {
        return;
    }
    TERN_FUZZ_CHECK(topic_matches(pf->filter, t) == ref_matches(pf->filter, t));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view all(reinterpret_cast<const char*>(data), size);
    const auto nul = all.find('\0');
    const std::string_view filter = all.substr(0, nul);
    const std::string_view topic = nul == std::string_view::npos ? all : all.substr(nul + 1);

    check_utf8(all);
    check_utf8(filter);
    check_utf8(topic);
    check_topic_name(topic);
    check_topic_name(all);
    check_filter(filter);
    check_filter(all);
    check_match(filter, topic);
    check_match(topic, topic);
    return 0;
}
