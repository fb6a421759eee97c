// Topic names, topic filters, shared subscriptions and matching [MQTT-4.7, MQTT-4.8], and the
// UTF-8 rules of [MQTT-1.5.4]. Table-driven.

#include "test_support.hpp"

namespace tern::protocol::test {
namespace {

using namespace std::literals;

TEST_CASE("is_valid_utf8 [MQTT-1.5.4-1] [MQTT-1.5.4-2]",
          "[protocol][topic][MQTT-1.5.4-1][MQTT-1.5.4-2]") {
    struct utf8_case {
        std::string_view text;
        bool valid;
        const char* why;
    };
    const utf8_case cases[] = {
        {""sv, true, "empty"},
        {"abc/def"sv, true, "ASCII"},
        {"\x01\x1f\x7f"sv, true, "control characters are well-formed (SHOULD NOT only)"},
        {"\xc3\xa9"sv, true, "U+00E9, two bytes"},
        {"\xc2\x80"sv, true, "U+0080, smallest two-byte"},
        {"\xdf\xbf"sv, true, "U+07FF"},
        {"\xe0\xa0\x80"sv, true, "U+0800, smallest three-byte"},
        {"\xe2\x82\xac"sv, true, "U+20AC euro sign"},
        {"\xed\x9f\xbf"sv, true, "U+D7FF, just below the surrogates"},
        {"\xee\x80\x80"sv, true, "U+E000, just above the surrogates"},
        {"\xef\xbb\xbf"sv, true, "U+FEFF BOM [MQTT-1.5.4-3]"},
        {"\xef\xbf\xbf"sv, true, "U+FFFF non-character is well-formed"},
        {"\xf0\x90\x80\x80"sv, true, "U+10000, smallest four-byte"},
        {"\xf0\x9d\x84\x9e"sv, true, "U+1D11E"},
        {"\xf4\x8f\xbf\xbf"sv, true, "U+10FFFF, the largest code point"},
        {"\0"sv, false, "U+0000 [MQTT-1.5.4-2]"},
        {"a\0b"sv, false, "U+0000 inside"},
        {"\xc0\x80"sv, false, "overlong U+0000"},
        {"\xc1\xbf"sv, false, "overlong two-byte"},
        {"\xe0\x80\x80"sv, false, "overlong three-byte"},
        {"\xe0\x9f\xbf"sv, false, "overlong U+07FF in three bytes"},
        {"\xf0\x80\x80\x80"sv, false, "overlong four-byte"},
        {"\xf0\x8f\xbf\xbf"sv, false, "overlong U+FFFF in four bytes"},
        {"\xed\xa0\x80"sv, false, "U+D800 surrogate [MQTT-1.5.4-1]"},
        {"\xed\xbf\xbf"sv, false, "U+DFFF surrogate"},
        {"\xed\xa0\xbd\xed\xb8\x80"sv, false, "CESU-8 surrogate pair"},
        {"\xf4\x90\x80\x80"sv, false, "U+110000, above U+10FFFF"},
        {"\xf5\x80\x80\x80"sv, false, "F5 lead byte"},
        {"\xf8\x88\x80\x80\x80"sv, false, "five-byte form"},
        {"\xff"sv, false, "FF"},
        {"\xfe"sv, false, "FE"},
        {"\x80"sv, false, "lone continuation byte"},
        {"a\xbf"sv, false, "continuation byte after ASCII"},
        {"\xc3"sv, false, "truncated two-byte"},
        {"\xe2\x82"sv, false, "truncated three-byte"},
        {"\xf0\x9d\x84"sv, false, "truncated four-byte"},
        {"\xc3\x28"sv, false, "bad continuation"},
        {"\xe2\x28\xa1"sv, false, "bad second byte"},
        {"\xe2\x82\x28"sv, false, "bad third byte"},
    };
    for (const auto& c : cases) {
        INFO(c.why << ": "
                   << to_hex(std::span(reinterpret_cast<const std::uint8_t*>(c.text.data()),
                                       c.text.size())));
        CHECK(is_valid_utf8(c.text) == c.valid);
    }
}

TEST_CASE("validate_topic_name [MQTT-4.7.1-1] [MQTT-4.7.3-1]",
          "[protocol][topic][MQTT-4.7.1-1][MQTT-4.7.3-1]") {
    const std::pair<std::string_view, boost::system::error_code> cases[] = {
        {"a", {}},
        {"a/b/c", {}},
        {"/", {}},
        {"//", {}},
        {"/finance", {}},
        {"sport/", {}},
        {"$SYS/broker/load", {}},
        {"a b/c d", {}},
        {"ü/€", {}},
        {"$share/g/a", {}}, // a topic name may look like a shared filter; no wildcards
        {"", codec_error::topic_name_invalid},
        {"+", codec_error::topic_name_invalid},
        {"#", codec_error::topic_name_invalid},
        {"a/+/c", codec_error::topic_name_invalid},
        {"a/#", codec_error::topic_name_invalid},
        {"a+", codec_error::topic_name_invalid},
        {"a#b", codec_error::topic_name_invalid},
        {"a\0b"sv, codec_error::invalid_utf8},
        {"\xed\xa0\x80"sv, codec_error::invalid_utf8},
        {"\xc0\x80"sv, codec_error::invalid_utf8},
    };
    for (const auto& [topic, expected] : cases) {
        INFO("topic \"" << std::string(topic) << '"');
        CHECK(validate_topic_name(topic) == expected);
    }
}

TEST_CASE("parse_topic_filter accepts valid filters and splits shared groups [MQTT-4.8.2]",
          "[protocol][topic][MQTT-4.7.1-2][MQTT-4.7.1-3][MQTT-4.8.2-1]") {
    const std::pair<std::string_view, topic_filter_view> cases[] = {
        {"a", {"", "a"}},
        {"a/b/c", {"", "a/b/c"}},
        {"#", {"", "#"}},
        {"+", {"", "+"}},
        {"/", {"", "/"}},
        {"/#", {"", "/#"}},
        {"+/+", {"", "+/+"}},
        {"a/+/#", {"", "a/+/#"}},
        {"sport/tennis/#", {"", "sport/tennis/#"}},
        {"+/tennis/#", {"", "+/tennis/#"}},
        {"sport/+/player1", {"", "sport/+/player1"}},
        {"//+//", {"", "//+//"}},
        {"$SYS/#", {"", "$SYS/#"}},
        {"$share/g/a", {"g", "a"}},
        {"$share/consumer1/sport/tennis/+", {"consumer1", "sport/tennis/+"}},
        {"$share/g/#", {"g", "#"}},
        {"$share/g/+/x", {"g", "+/x"}},
        {"$share/g//", {"g", "/"}},
        {"$share/ü-€/a", {"ü-€", "a"}},
        {"$sharex/a", {"", "$sharex/a"}},
        {"$SHARE/g/a", {"", "$SHARE/g/a"}}, // "$share" is case-sensitive
        {"a/$share/g/b", {"", "a/$share/g/b"}},
    };
    for (const auto& [filter, expected] : cases) {
        INFO("filter \"" << std::string(filter) << '"');
        auto r = parse_topic_filter(filter);
        REQUIRE(r.has_value());
        CHECK(r->share_group == expected.share_group);
        CHECK(r->filter == expected.filter);
        CHECK(r->is_shared() == !expected.share_group.empty());
        // The views point into the argument.
        CHECK(r->filter.data() >= filter.data());
        CHECK(r->filter.data() + r->filter.size() == filter.data() + filter.size());
    }
}

TEST_CASE("parse_topic_filter rejects misplaced wildcards and bad shared filters "
          "[MQTT-4.7.1-2] [MQTT-4.7.1-3] [MQTT-4.8.2-1] [MQTT-4.8.2-2]",
          "[protocol][topic][MQTT-4.7.1-2][MQTT-4.7.1-3][MQTT-4.8.2-2]") {
    const std::pair<std::string_view, codec_error> cases[] = {
        {"", codec_error::topic_filter_invalid},
        {"a/#/b", codec_error::topic_filter_invalid},
        {"a/b#", codec_error::topic_filter_invalid},
        {"#/", codec_error::topic_filter_invalid},
        {"##", codec_error::topic_filter_invalid},
        {"a#", codec_error::topic_filter_invalid},
        {"a+/b", codec_error::topic_filter_invalid},
        {"a/+b", codec_error::topic_filter_invalid},
        {"++", codec_error::topic_filter_invalid},
        {"sport+", codec_error::topic_filter_invalid},
        {"+#", codec_error::topic_filter_invalid},
        {"$share/g", codec_error::topic_filter_invalid},
        {"$share/", codec_error::topic_filter_invalid},
        {"$share//a", codec_error::topic_filter_invalid},
        {"$share/g+/a", codec_error::topic_filter_invalid},
        {"$share/+/a", codec_error::topic_filter_invalid},
        {"$share/g#/a", codec_error::topic_filter_invalid},
        {"$share/#/a", codec_error::topic_filter_invalid},
        {"$share/g/", codec_error::topic_filter_invalid},
        {"$share/g/a/#/b", codec_error::topic_filter_invalid},
        {"$share/g/a+", codec_error::topic_filter_invalid},
        {"a\0b"sv, codec_error::invalid_utf8},
        {"a/\xc0\x80"sv, codec_error::invalid_utf8},
        {"\xed\xa0\x80/#"sv, codec_error::invalid_utf8},
    };
    for (const auto& [filter, expected] : cases) {
        INFO("filter \"" << std::string(filter) << '"');
        auto r = parse_topic_filter(filter);
        REQUIRE(r.has_error());
        CHECK(r.error() == expected);
    }
}

TEST_CASE("topic_matches [MQTT-4.7.1] [MQTT-4.7.2-1]", "[protocol][topic][MQTT-4.7.2-1]") {
    struct match_case {
        std::string_view filter;
        std::string_view topic;
        bool matches;
    };
    const match_case cases[] = {
        // Section 4.7.1.2 examples.
        {"sport/tennis/player1/#", "sport/tennis/player1", true},
        {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
        {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
        {"sport/#", "sport", true}, // '#' includes the parent level
        {"sport/#", "sport/", true},
        {"sport/#", "sports", false},
        {"#", "sport", true},
        {"#", "/", true},
        {"#", "a/b/c/d", true},
        // Section 4.7.1.3 examples.
        {"sport/tennis/+", "sport/tennis/player1", true},
        {"sport/tennis/+", "sport/tennis/player2", true},
        {"sport/tennis/+", "sport/tennis/player1/ranking", false},
        {"sport/+", "sport", false},
        {"sport/+", "sport/", true}, // '+' matches an empty level
        {"+/+", "/finance", true},
        {"/+", "/finance", true},
        {"+", "/finance", false},
        {"+/tennis/#", "sport/tennis", true},
        {"+/tennis/#", "sport/tennis/player1", true},
        {"+/tennis/#", "sport/golf", false},
        {"+", "a", true},
        {"+/+/+", "a//c", true},
        {"a/+/c", "a//c", true},
        {"a/+/c", "a/b/c/d", false},
        // Exact matches are case-sensitive and level-exact.
        {"a/b", "a/b", true},
        {"a/b", "a/B", false},
        {"a/b", "a/b/", false},
        {"a/b/", "a/b", false},
        {"a//b", "a//b", true},
        {"/", "/", true},
        {"a/#", "a", true},
        {"a/#", "ab", false},
        {"a/#", "b/a", false},
        // '$' topics are not matched by wildcards in the first level [MQTT-4.7.2-1].
        {"#", "$SYS", false},
        {"#", "$SYS/monitor/Clients", false},
        {"+/monitor/Clients", "$SYS/monitor/Clients", false},
        {"+", "$SYS", false},
        {"+/#", "$SYS/x", false},
        {"$SYS/#", "$SYS/monitor/Clients", true},
        {"$SYS/#", "$SYS", true},
        {"$SYS/monitor/+", "$SYS/monitor/Clients", true},
        {"$SYS", "$SYS", true},
        {"$x/+", "$x/y", true},
        // ... but '$' in a later level is an ordinary character.
        {"a/+", "a/$b", true},
        {"a/#", "a/$b/c", true},
    };
    for (const auto& c : cases) {
        INFO("filter \"" << std::string(c.filter) << "\" topic \"" << std::string(c.topic) << '"');
        CHECK(topic_matches(c.filter, c.topic) == c.matches);
    }
}

} // namespace
} // namespace tern::protocol::test
