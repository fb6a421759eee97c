// auth::acl_file: mosquitto 2.0's acl_file (src/security_default.c: aclfile__parse, add__acl,
// add__acl_pattern, mosquitto_acl_check_default; src/security.c: acl__check_dollar;
// lib/util_topic.c: mosquitto_sub_topic_check, mosquitto_topic_matches_sub), plus Tern's
// SUBSCRIBE coverage check (mosquitto 2.1's mosquitto_sub_matches_acl).
#include <tern/auth/acl_file.hpp>

#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <unistd.h>

namespace {

using tern::auth::acl_access;
using tern::auth::acl_error;
using tern::auth::acl_file;
using tern::auth::acl_permission;
using tern::auth::acl_rule_info;
using tern::auth::dollar_topic_allowed;

constexpr std::optional<std::string_view> anonymous = std::nullopt;
constexpr acl_access R = acl_access::read;
constexpr acl_access W = acl_access::write;
constexpr acl_access S = acl_access::subscribe;

acl_file parse_ok(std::string_view text) {
    auto r = acl_file::parse(text, "test.acl");
    INFO(text);
    if (r.error) {
        INFO(r.error->to_string());
    }
    REQUIRE_FALSE(r.error.has_value());
    REQUIRE(r.file.has_value());
    return std::move(*r.file);
}

acl_error parse_error(std::string_view text) {
    auto r = acl_file::parse(text, "test.acl");
    INFO(text);
    REQUIRE_FALSE(r.file.has_value());
    REQUIRE(r.error.has_value());
    return *r.error;
}

struct check {
    std::string_view client_id;
    std::optional<std::string_view> username;
    acl_access what;
    std::string_view topic;
    bool expect;
};

const char* name(acl_access a) {
    return a == R ? "read" : a == W ? "write" : "subscribe";
}

void run(const acl_file& acl, const std::vector<check>& cases) {
    for (const check& c : cases) {
        INFO("client " << c.client_id << ", user "
                       << (c.username ? std::string(*c.username) : std::string("<anonymous>"))
                       << ", " << name(c.what) << " " << c.topic);
        CHECK(acl.allowed(c.client_id, c.username, c.what, c.topic) == c.expect);
    }
}

/// "topic <access> <rule>"
std::string one_rule(std::string_view access, std::string_view rule) {
    std::string text("topic ");
    text.append(access).append(" ").append(rule);
    return text;
}

} // namespace

// ---------------------------------------------------------------------------------------------
// Line forms and access kinds

TEST_CASE("acl_file: topic lines grant read, write, readwrite (the default) or deny",
          "[auth][acl]") {
    const acl_file acl = parse_ok("topic read r/#\n"
                                  "topic write w/#\n"
                                  "topic readwrite rw/#\n"
                                  "topic both/#\n"
                                  "topic deny rw/secret\n");
    run(acl, {
                 {"c", anonymous, R, "r/x", true},
                 {"c", anonymous, W, "r/x", false},
                 {"c", anonymous, R, "w/x", false},
                 {"c", anonymous, W, "w/x", true},
                 {"c", anonymous, R, "rw/x", true},
                 {"c", anonymous, W, "rw/x", true},
                 {"c", anonymous, R, "both/x", true}, // no access word: readwrite (aclfile__parse)
                 {"c", anonymous, W, "both/x", true},
                 {"c", anonymous, R, "rw/secret", false},
                 {"c", anonymous, W, "rw/secret", false},
                 {"c", anonymous, R, "other", false}, // only listed topics have access
                 {"c", anonymous, W, "other", false},
             });
    CHECK(acl.rule_count() == 5);
    CHECK(acl.user_count() == 0);
}

TEST_CASE("acl_file: a topic with spaces needs an access word", "[auth][acl]") {
    // aclfile__parse: the access word is the second token; the rest of the line, trimmed, is the
    // topic (mosquitto.conf(5): "optional (unless <topic> includes a space character)").
    const acl_file acl = parse_ok("topic read  my topic/with spaces  \n");
    run(acl, {
                 {"c", anonymous, R, "my topic/with spaces", true},
                 {"c", anonymous, R, "my", false},
             });
    CHECK(parse_error("topic my topic").message ==
          "invalid topic access type \"my\" (expected read, write, readwrite or deny)");
}

TEST_CASE("acl_file: rules() lists the lines as loaded, in file order", "[auth][acl]") {
    const acl_file acl = parse_ok("topic deny a/b\n"
                                  "pattern write p/%c\n"
                                  "topic c\n"
                                  "user bob\n"
                                  "topic read d/#\n"
                                  "topic deny d/e\n");
    const std::vector<acl_rule_info> expected = {
        {false, std::nullopt, acl_permission::deny, "a/b", 1},
        {true, std::nullopt, acl_permission::write, "p/%c", 2},
        {false, std::nullopt, acl_permission::readwrite, "c", 3},
        {false, std::string("bob"), acl_permission::read, "d/#", 5},
        {false, std::string("bob"), acl_permission::deny, "d/e", 6},
    };
    CHECK(acl.rules() == expected);
    CHECK(acl.rule_count() == 5);
    CHECK(acl.user_count() == 1);
}

// ---------------------------------------------------------------------------------------------
// Which section applies

TEST_CASE("acl_file: mosquitto's 09-acl-access-variants table", "[auth][acl]") {
    // test/broker/09-acl-access-variants.py with all three parts of its file enabled: the
    // topics before the first user line apply to anonymous clients only (acl__find_acls), a
    // user section to that user, patterns to everyone.
    const acl_file acl = parse_ok("topic readwrite topic/global/#\n"
                                  "topic deny      topic/global/except\n"
                                  "user username\n"
                                  "topic readwrite topic/username/#\n"
                                  "topic deny      topic/username/except\n"
                                  "pattern readwrite pattern/%u/#\n"
                                  "pattern deny      pattern/%u/except\n");
    for (const acl_access what : {R, W}) {
        run(acl, {
                     {"acl-check", anonymous, what, "topic/global", true},
                     {"acl-check", "username", what, "topic/global", false},
                     {"acl-check", anonymous, what, "topic/global/except", false},
                     {"acl-check", anonymous, what, "topic/username", false},
                     {"acl-check", "username", what, "topic/username", true},
                     {"acl-check", "username", what, "topic/username/except", false},
                     {"acl-check", anonymous, what, "pattern/username", false},
                     {"acl-check", "username", what, "pattern/username", true},
                     {"acl-check", "username", what, "pattern/username/except", false},
                 });
    }
}

TEST_CASE("acl_file: user sections: the rest of the line, trimmed, exact, merged", "[auth][acl]") {
    const acl_file acl = parse_ok("user   bob smith  \t\n" // misc__trimblanks on the rest
                                  "topic read a\n"
                                  "user alice\n"
                                  "topic read b\n"
                                  "user bob smith\n" // add__acl: the same acl_user again
                                  "topic write c\n"
                                  "user nobody\n"); // a user line without rules adds nothing
    run(acl, {
                 {"c", "bob smith", R, "a", true},
                 {"c", "bob smith", W, "c", true},
                 {"c", "bob smith", R, "b", false},
                 {"c", "Bob smith", R, "a", false}, // strcmp: case-sensitive
                 {"c", "bob", R, "a", false},
                 {"c", " bob smith", R, "a", false},
                 {"c", "alice", R, "b", true},
                 {"c", "alice", R, "a", false},
                 {"c", "nobody", R, "a", false},
                 {"c", "", R, "a", false}, // an empty User Name is a User Name, not anonymous
                 {"c", anonymous, R, "a", false},
             });
    CHECK(acl.user_count() == 2);
}

TEST_CASE("acl_file: without an anonymous section anonymous clients get patterns only",
          "[auth][acl]") {
    const acl_file acl = parse_ok("user u\n"
                                  "topic read a\n"
                                  "pattern read dev/%c\n");
    run(acl, {
                 {"d1", anonymous, R, "a", false},
                 {"d1", anonymous, R, "dev/d1", true},
                 {"d1", "stranger", R, "dev/d1", true}, // no section: patterns still apply
                 {"d1", "stranger", R, "a", false},
             });
}

TEST_CASE("acl_file: an empty file, or a default one, refuses everything", "[auth][acl]") {
    // mosquitto_acl_check_default: no acl_list for the client and no patterns: denied.
    for (const std::string_view text : {"", "\n\n", "# only a comment\n", "user bob\n"}) {
        const acl_file acl = parse_ok(text);
        CHECK(acl.rule_count() == 0);
        run(acl, {
                     {"c", anonymous, R, "a", false},
                     {"c", "bob", W, "a", false},
                     {"c", "bob", S, "#", false},
                 });
    }
    const acl_file none;
    CHECK_FALSE(none.allowed("c", anonymous, R, "a"));
    CHECK_FALSE(none.allowed("c", anonymous, S, "a"));
    CHECK(none.rules().empty());
    CHECK(none.rule_count() == 0);
}

// ---------------------------------------------------------------------------------------------
// Wildcards

TEST_CASE("acl_file: rule filters match topic names as mosquitto_topic_matches_sub does",
          "[auth][acl]") {
    struct row {
        std::string_view rule;
        std::string_view topic;
        bool match;
    };
    const std::vector<row> rows = {
        {"a/b", "a/b", true},
        {"a/b", "a/b/c", false},
        {"a/b", "a", false},
        {"a/b", "A/b", false},
        {"a/+", "a/b", true},
        {"a/+", "a/", true}, // '+' matches an empty level
        {"a/+", "a", false},
        {"a/+", "a/b/c", false},
        {"+/+", "/", true},
        {"+", "/", false},
        {"+", "a", true},
        {"a/#", "a", true}, // '#' includes the parent level
        {"a/#", "a/b/c", true},
        {"a/#", "ab", false},
        {"a/+/#", "a", false},
        {"a/+/#", "a/b", true}, // "foo/bar matching foo/+/#"
        {"#", "a", true},
        {"#", "/", true},
        {"/#", "/x", true},
        {"/#", "x", false},
        {"a//b", "a//b", true},
        {"%c", "%c", true},                 // a topic line does not substitute
        {"#", "$SYS/broker/uptime", false}, // [MQTT-4.7.2-1]
        {"+/broker/uptime", "$SYS/broker/uptime", false},
        {"#", "$", false},
        {"$SYS/#", "$SYS/broker/uptime", true},
        {"$SYS/#", "$SYS", true},
        {"$SYS/+/uptime", "$SYS/broker/uptime", true},
        {"$x", "$x", true},
        {"x", "$x", false},
    };
    for (const row& r : rows) {
        const acl_file acl = parse_ok(one_rule("read", r.rule));
        INFO("rule " << r.rule << ", topic " << r.topic);
        CHECK(acl.allowed("c", anonymous, R, r.topic) == r.match);
    }
}

TEST_CASE("acl_file: topic names with wildcards or empty never match", "[auth][acl]") {
    // mosquitto_topic_matches_sub returns MOSQ_ERR_INVAL (no match) for these.
    const acl_file acl = parse_ok("topic readwrite #\n");
    run(acl, {
                 {"c", anonymous, R, "", false},
                 {"c", anonymous, W, "a/+", false},
                 {"c", anonymous, W, "a/#", false},
                 {"c", anonymous, R, "#", false},
                 {"c", anonymous, W, "a", true},
             });
}

// ---------------------------------------------------------------------------------------------
// SUBSCRIBE: Tern's check (some topic of the filter may be read)

TEST_CASE("acl_file: SUBSCRIBE needs a read rule that some topic of the filter satisfies",
          "[auth][acl]") {
    // Not mosquitto 2.0, whose mosquitto_acl_check_default allows every SUBSCRIBE ("FIXME -
    // implement ACL subscription strings") and filters deliveries: Tern refuses only filters
    // on which nothing could ever be delivered, and filters deliveries the same way.
    struct row {
        std::string_view rule;
        std::string_view filter;
        bool covered; ///< the filter and the rule share a topic
    };
    const std::vector<row> rows = {
        {"a/#", "a/+/b", true},
        {"a/#", "a/#", true},
        {"a/#", "a", true},
        {"a/#", "a/b", true},
        {"a/#", "#", true}, // granted; deliveries outside a/# are filtered
        {"a/#", "+/b", true},
        {"a/#", "b/#", false},
        {"a/+", "a/+", true},
        {"a/+", "a/b", true},
        {"a/+", "a/#", true},
        {"a/+", "a/+/b", false},
        {"a/+", "b/+", false},
        {"a/b", "a/+", true},
        {"a/b", "a/b", true},
        {"a/b", "a/#", true},
        {"a/b", "a/c", false},
        {"a/b", "a/b/c", false},
        {"+/b", "a/b", true},
        {"+/b", "+/b", true},
        {"+/b", "+/+", true},
        {"+/b", "+/c", false},
        {"a/+/#", "a/#", true},
        {"a/+/#", "a/+", true},
        {"+", "+", true},
        {"#", "#", true},
        {"#", "+/#", true},
        {"#", "$SYS/#", false}, // '#' never matches '$' topics
        {"+", "$x", false},
        {"$SYS/#", "$SYS/broker/#", true},
        {"$SYS/broker/uptime", "$SYS/broker/#", true},
        {"$SYS/#", "#", false},
        {"a/#", "$share/g/a/b", true}, // the $share/<group>/ prefix is not part of the check
        {"a/#", "$share/g/#", true},
        {"a/#", "$share/g/b", false},
        {"$share/g/#", "$share/g/a", false},
        {"a/#", "$share/g", false}, // not a valid filter
        {"a/#", "a/#/b", false},
        {"a/#", "a/b+", false},
        {"a/#", "", false},
    };
    for (const row& r : rows) {
        const acl_file acl = parse_ok(one_rule("read", r.rule));
        INFO("rule " << r.rule << ", filter " << r.filter);
        CHECK(acl.allowed("c", anonymous, S, r.filter) == r.covered);
        CHECK(acl.subscribe_allowed("c", anonymous, r.filter) == r.covered);
    }
}

TEST_CASE("acl_file: SUBSCRIBE: only read grants it; deny refuses only what it covers",
          "[auth][acl]") {
    run(parse_ok("topic write a/#\n"), {{"c", anonymous, S, "a/#", false}});
    run(parse_ok("topic readwrite a/#\n"), {{"c", anonymous, S, "a/#", true}});
    const acl_file acl = parse_ok("topic read a/#\n"
                                  "topic deny a/secret/#\n");
    run(acl, {
                 {"c", anonymous, S, "a/#", true},         // partly denied: granted...
                 {"c", anonymous, R, "a/secret/x", false}, // ...and filtered on delivery
                 {"c", anonymous, R, "a/public", true},
                 {"c", anonymous, S, "a/+", true},
                 {"c", anonymous, S, "a/secret", false},
                 {"c", anonymous, S, "a/secret/#", false},
                 {"c", anonymous, S, "a/secret/+/x", false},
             });
}

TEST_CASE("acl_file: SUBSCRIBE with patterns substitutes before the check", "[auth][acl]") {
    const acl_file acl = parse_ok("pattern read dev/%c/#\n"
                                  "pattern read users/%u/+\n");
    run(acl, {
                 {"d1", anonymous, S, "dev/d1/#", true},
                 {"d1", anonymous, S, "dev/d1/+/temp", true},
                 {"d1", anonymous, S, "dev/+/#", true}, // dev/d1/x may be read
                 {"d1", anonymous, S, "dev/d2/#", false},
                 {"a/b", anonymous, S, "dev/a/b/#", true},
                 {"a/b", anonymous, S, "dev/a/+/#", true},
                 {"d1", "u", S, "users/u/+", true},
                 {"d1", "u", S, "users/u/#", true},
                 {"d1", anonymous, S, "users//+", false}, // %u: skipped without a User Name
                 {"d1", "", S, "users//+", true},
             });
}

// ---------------------------------------------------------------------------------------------
// Patterns

TEST_CASE("acl_file: patterns substitute %c and %u anywhere; other % sequences are literal",
          "[auth][acl]") {
    // mosquitto_acl_check_default copies the pattern, replacing each "%c"/"%u" found left to
    // right, also inside a level (2.0's code; its manual asks for whole levels).
    const acl_file acl = parse_ok("pattern read dev/%c/#\n"
                                  "pattern write users/%u/out\n"
                                  "pattern readwrite both/%c/%u\n"
                                  "pattern read x%cy/z\n"
                                  "pattern read lit/%x/%%c\n"
                                  "pattern read twice/%c%c\n");
    run(acl, {
                 {"d1", anonymous, R, "dev/d1/t", true},
                 {"d1", anonymous, R, "dev/d1", true},
                 {"d1", anonymous, R, "dev/d2/t", false},
                 {"d1", anonymous, R, "dev/d1x/t", false},
                 {"d1", anonymous, R, "dev/d", false},
                 {"d1", anonymous, W, "dev/d1/t", false},
                 {"d1", anonymous, W, "users//out", false}, // %u skipped for anonymous
                 {"d1", anonymous, R, "both/d1/", false},
                 {"d1", "u", W, "users/u/out", true},
                 {"d1", "u", W, "users/v/out", false},
                 {"d1", "u", R, "both/d1/u", true},
                 {"d1", "u", W, "both/d1/u", true},
                 {"d1", "", W, "users//out", true}, // an empty User Name substitutes as ""
                 {"d1", anonymous, R, "xd1y/z", true},
                 {"d1", anonymous, R, "xy/z", false},
                 {"d1", anonymous, R, "lit/%x/%d1", true},
                 {"d1", anonymous, R, "twice/d1d1", true},
                 {"d1", anonymous, R, "twice/d1", false},
                 {"", anonymous, R, "dev//t", true}, // an empty id is substituted as ""
             });
}

TEST_CASE("acl_file: a substituted id with '/' spans levels, as the substituted string does",
          "[auth][acl]") {
    const acl_file acl = parse_ok("pattern read dev/%c/data\n");
    run(acl, {
                 {"a/b", anonymous, R, "dev/a/b/data", true},
                 {"a/b", anonymous, R, "dev/a/data", false},
                 {"a/", anonymous, R, "dev/a//data", true},
                 {"$SYS", anonymous, R, "dev/$SYS/data", true},
             });
}

TEST_CASE("acl_file: ids and user names with '+' or '#' get nothing from patterns", "[auth][acl]") {
    // mosquitto_acl_check_default: "ACL denying access to client with dangerous username" /
    // "... client id": once the file has patterns, such a client is refused before any
    // pattern is tried, even patterns that do not use the offending value. Its own user
    // section is checked before that and still applies.
    const acl_file acl = parse_ok("pattern read %c\n"
                                  "pattern read dev/%c/#\n"
                                  "pattern write users/%u/out\n"
                                  "pattern read open/all\n"
                                  "user u#\n"
                                  "topic read own/#\n");
    run(acl, {
                 {"#", anonymous, R, "anything", false}, // "%c" would be the filter '#'
                 {"+", anonymous, R, "anything", false},
                 {"a+b", anonymous, R, "open/all", false},
                 {"d1", "u#", R, "dev/d1/x", false},
                 {"d1", "u#", R, "open/all", false},
                 {"d1", "u#", R, "own/x", true},
                 {"d1", "u+", W, "users/u+/out", false},
                 {"x+", "u", W, "users/u/out", false},
                 {"d1", "u", W, "users/u/out", true},
                 {"d1", anonymous, R, "open/all", true},   // a pattern without %c/%u: everyone
                 {"a/b", anonymous, R, "dev/a/b/x", true}, // '/' is not refused
             });
    // Without patterns the check is not made.
    run(parse_ok("topic read a\n"), {{"#", anonymous, R, "a", true}});
}

// ---------------------------------------------------------------------------------------------
// deny

TEST_CASE("acl_file: deny overrides grants of the same list wherever it is written",
          "[auth][acl]") {
    // add__acl / add__acl_pattern put deny rules at the front of their list.
    for (const std::string_view text :
         {"topic readwrite a/#\ntopic deny a/b\n", "topic deny a/b\ntopic readwrite a/#\n"}) {
        const acl_file acl = parse_ok(text);
        run(acl, {
                     {"c", anonymous, R, "a/b", false},
                     {"c", anonymous, W, "a/b", false},
                     {"c", anonymous, R, "a/c", true},
                 });
    }
    for (const std::string_view text : {"pattern readwrite p/%c/#\npattern deny p/%c/x\n",
                                        "pattern deny p/%c/x\npattern readwrite p/%c/#\n"}) {
        const acl_file acl = parse_ok(text);
        run(acl, {
                     {"c", anonymous, W, "p/c/x", false},
                     {"c", anonymous, W, "p/c/y", true},
                 });
    }
}

TEST_CASE("acl_file: the client's section is decided before the patterns", "[auth][acl]") {
    // mosquitto_acl_check_default walks the client's acl_list first and returns on the first
    // verdict, so a section grant beats a pattern deny and a section deny a pattern grant.
    const acl_file acl = parse_ok("user u\n"
                                  "topic read a/#\n"
                                  "topic deny p/#\n"
                                  "pattern deny a/%c\n"
                                  "pattern read p/%u\n"
                                  "pattern read q/%u\n");
    run(acl, {
                 {"c", "u", R, "a/c", true},
                 {"c", "u", R, "p/u", false},
                 {"c", "u", R, "q/u", true},  // the section has no verdict: patterns decide
                 {"c", "v", R, "a/c", false}, // no section: the pattern deny applies
             });
}

TEST_CASE("acl_file: a matching rule of another access does not stop the search", "[auth][acl]") {
    const acl_file acl = parse_ok("topic write a/b\n"
                                  "topic read a/#\n");
    run(acl, {
                 {"c", anonymous, R, "a/b", true},
                 {"c", anonymous, W, "a/b", true},
                 {"c", anonymous, W, "a/c", false},
             });
}

// ---------------------------------------------------------------------------------------------
// $ topics

TEST_CASE("acl_file: dollar_topic_allowed is mosquitto's acl__check_dollar", "[auth][acl]") {
    struct row {
        acl_access what;
        std::string_view topic;
        bool allowed;
    };
    const std::vector<row> rows = {
        {R, "$SYS/broker/uptime", true},
        {W, "$SYS/broker/uptime", false},
        {W, "$SYS/broker/connection/bridge1/state", true}, // bridge status
        {W, "$SYS/broker/connection//state", true},
        {W, "$SYS/broker/connection/a/b/state", false},
        {W, "$SYS/broker/connection/bridge1/state/x", false},
        {W, "$SYS/broker/connection/+/state", false},
        {W, "$SYSTEM/x", false}, // strncmp(topic, "$SYS", 4)
        {S, "$SYS/#", true},
        {R, "$share/g/a", false},
        {W, "$share/g/a", false},
        {W, "$shared/x", false}, // strncmp(topic, "$share", 6)
        {S, "$share/g/a", true},
        {W, "$other/x", true}, // unknown '$' topics: left to the ACL
        {W, "a/$SYS", true},
        {W, "", true},
    };
    for (const row& r : rows) {
        INFO(name(r.what) << " " << r.topic);
        CHECK(dollar_topic_allowed(r.what, r.topic) == r.allowed);
    }
}

TEST_CASE("acl_file: allowed() applies the $SYS and $share rules before the file", "[auth][acl]") {
    // aclfile.example: "topic read $SYS/#" for anonymous clients and the bridge-state pattern.
    const acl_file acl = parse_ok("topic readwrite $SYS/#\n"
                                  "topic readwrite $share/#\n"
                                  "topic readwrite $other/#\n"
                                  "pattern write $SYS/broker/connection/%c/state\n");
    run(acl, {
                 {"c", anonymous, R, "$SYS/broker/uptime", true},
                 {"c", anonymous, W, "$SYS/broker/uptime", false},
                 {"c", anonymous, S, "$SYS/#", true},
                 {"c", anonymous, W, "$share/g/x", false},
                 {"c", anonymous, R, "$share/g/x", false},
                 {"c", anonymous, W, "$other/x", true},
                 {"bridge1", "u", W, "$SYS/broker/connection/bridge1/state", true},
                 {"bridge1", "u", W, "$SYS/broker/connection/bridge2/state", false},
             });
}

// ---------------------------------------------------------------------------------------------
// Comments and white space

TEST_CASE("acl_file: comments, blank lines, leading and trailing white space, CRLF",
          "[auth][acl]") {
    const acl_file acl = parse_ok("# a comment\n"
                                  "#topic read commented\n"
                                  "   # an indented comment (mosquitto: Invalid line)\n"
                                  "\t# also\n"
                                  "\n"
                                  "    \n"
                                  "\t\t\r\n"
                                  "   topic read a\n"      // strtok skips leading spaces
                                  "\t topic read b\n"      // leading tab: Tern only
                                  "topic    read    c  \n" // runs of spaces
                                  "topic read d\r\n"       // CR is trailing isspace()
                                  "topic read \te\t\n"     // the topic is trimmed
                                  "topic f\t\r\n"
                                  "topic read g"); // no final newline
    std::vector<std::string> topics;
    for (const acl_rule_info& r : acl.rules()) {
        topics.push_back(r.topic);
    }
    CHECK(topics == std::vector<std::string>{"a", "b", "c", "d", "e", "f", "g"});
    CHECK(acl.rules().front().line == 8);
    CHECK(acl.rules().back().line == 14);
    CHECK_FALSE(acl.allowed("c", anonymous, R, "commented"));
    CHECK(acl.allowed("c", anonymous, W, "f"));
}

TEST_CASE("acl_file: a '#' after a topic is not a comment", "[auth][acl]") {
    CHECK(parse_error("topic read a # note").message ==
          "invalid ACL topic \"a # note\": '#' must be a whole level and the last one");
}

TEST_CASE("acl_file: a lone token that is not an access word is the topic", "[auth][acl]") {
    // aclfile__parse: without a third token the second is the topic (readwrite); a tab is not a
    // separator, so "read\tx" is one token.
    const acl_file acl = parse_ok("topic read\tx\n");
    CHECK(acl.allowed("c", anonymous, W, "read\tx"));
}

// ---------------------------------------------------------------------------------------------
// Errors and warnings

TEST_CASE("acl_file: every parse error, with its line and exact message", "[auth][acl]") {
    std::string long_topic(65'536, 'a');
    std::string long_message("invalid ACL topic \"");
    long_message.append(256, 'a').append("\"...: longer than 65535 bytes");
    std::string deep_topic("a");
    for (int i = 0; i < 201; ++i) {
        deep_topic.append("/a");
    }
    std::string deep_message("invalid ACL topic \"");
    deep_message.append(deep_topic.substr(0, 256)).append("\"...: more than 200 '/' separators");
    std::string long_user("user ");
    long_user.append(65'536, 'u');

    struct row {
        std::string text;
        std::size_t line;
        std::string message;
    };
    const std::vector<row> rows = {
        // mosquitto: "Empty topic in acl_file"
        {"topic", 1, "missing topic after \"topic\""},
        {"pattern   ", 1, "missing topic after \"pattern\""},
        // mosquitto takes the word as the topic; refused here
        {"topic read", 1, "missing topic after access \"read\""},
        {"topic deny", 1, "missing topic after access \"deny\""},
        {"pattern readwrite   ", 1, "missing topic after access \"readwrite\""},
        // mosquitto: "Invalid topic access type"
        {"topic READ a", 1,
         "invalid topic access type \"READ\" (expected read, write, readwrite or deny)"},
        {"topic \tread a", 1,
         "invalid topic access type \"\\x09read\" (expected read, write, readwrite or deny)"},
        // mosquitto: "Invalid ACL topic" (mosquitto_sub_topic_check)
        {"topic read a/b#", 1,
         "invalid ACL topic \"a/b#\": '#' must be a whole level and the last one"},
        {"topic read a/#/b", 1,
         "invalid ACL topic \"a/#/b\": '#' must be a whole level and the last one"},
        {"topic read a+", 1, "invalid ACL topic \"a+\": '+' must be a whole level"},
        {"pattern read %c/+x", 1, "invalid ACL topic \"%c/+x\": '+' must be a whole level"},
        {"topic read a/\xff", 1, "invalid ACL topic \"a/\\xff\": not valid UTF-8"},
        {"topic read \xc3\xa9/\xc3", 1, "invalid ACL topic \"\\xc3\\xa9/\\xc3\": not valid UTF-8"},
        {std::string("topic read a\0b", 14), 1, "invalid ACL topic \"a\\x00b\": not valid UTF-8"},
        {one_rule("read", long_topic), 1, long_message},
        {one_rule("read", deep_topic), 1, deep_message},
        // mosquitto: "Missing username in acl_file"
        {"user", 1, "missing username after \"user\""},
        {"user   \t", 1, "missing username after \"user\""},
        {"user \xc3(", 1, "invalid username \"\\xc3(\": not valid UTF-8"},
        {long_user, 1, "invalid username: longer than 65535 bytes"},
        // mosquitto: "Invalid line in acl_file"
        {"User bob", 1, "unknown keyword \"User\" (expected topic, pattern or user)"},
        {"topics read a", 1, "unknown keyword \"topics\" (expected topic, pattern or user)"},
        {"topic\tread a", 1,
         "unknown keyword \"topic\\x09read\" (expected topic, pattern or user)"},
        {"user\tbob", 1, "unknown keyword \"user\\x09bob\" (expected topic, pattern or user)"},
        // The first error, on its own line.
        {"topic a\n\n# c\ntopic read a+\ntopic read b+\n", 4,
         "invalid ACL topic \"a+\": '+' must be a whole level"},
        {"topic a\r\nuser\r\n", 2, "missing username after \"user\""},
    };
    for (const row& r : rows) {
        const acl_error e = parse_error(r.text);
        CHECK(e.file == "test.acl");
        CHECK(e.line == r.line);
        CHECK(e.message == r.message);
    }
}

TEST_CASE("acl_file: 200 separators are accepted, as TOPIC_HIERARCHY_LIMIT allows", "[auth][acl]") {
    std::string deep_topic("a");
    for (int i = 0; i < 200; ++i) {
        deep_topic.append("/a");
    }
    const acl_file acl = parse_ok(one_rule("read", deep_topic));
    CHECK(acl.allowed("c", anonymous, R, deep_topic));
}

TEST_CASE("acl_file: error strings", "[auth][acl]") {
    CHECK(acl_error{"/etc/tern/acl", 12, "bad"}.to_string() == "/etc/tern/acl:12: bad");
    CHECK(acl_error{"/etc/tern/acl", 0, "bad"}.to_string() == "/etc/tern/acl: bad");
    const auto r = acl_file::parse("topic a\ntopic read a+\n", "/etc/tern/acl");
    REQUIRE(r.error);
    CHECK(r.error->to_string() == "/etc/tern/acl:2: invalid ACL topic \"a+\": '+' must be a "
                                  "whole level");
}

TEST_CASE("acl_file: warnings do not stop the file from loading", "[auth][acl]") {
    const auto r = acl_file::parse("pattern read a/b\n"      // add__acl_pattern warns too
                                   "topic read d/%c/%u\n"    // literal: probably meant pattern
                                   "topic read $share/g/#\n" // can never match
                                   "pattern read ok/%c\n",
                                   "test.acl");
    REQUIRE(r.file);
    const std::vector<acl_error> expected = {
        {"test.acl", 1, "ACL pattern \"a/b\" does not contain %c or %u"},
        {"test.acl", 2,
         "ACL topic \"d/%c/%u\" is taken literally: only \"pattern\" lines substitute %c and "
         "%u"},
        {"test.acl", 3,
         "ACL topic \"$share/g/#\" can never match: $share topics are never read or written, "
         "and a SUBSCRIBE is checked without its $share/<group>/ prefix"},
    };
    CHECK(r.warnings == expected);
    CHECK(r.file->allowed("anyone", anonymous, R, "a/b"));
    CHECK(r.file->allowed("c", anonymous, R, "d/%c/%u"));

    // Warnings found before an error are kept.
    const auto bad = acl_file::parse("pattern read a/b\ntopic\n", "test.acl");
    CHECK(bad.error);
    CHECK(bad.warnings.size() == 1);
}

// ---------------------------------------------------------------------------------------------
// Loading, copies, threads

TEST_CASE("acl_file: load reads a file, and reports one it cannot read", "[auth][acl]") {
    const auto dir = std::filesystem::temp_directory_path();
    std::string file_name("tern_acl_file_test_");
    file_name.append(std::to_string(::getpid())).append(".acl");
    const auto path = dir / file_name;
    {
        std::ofstream out(path, std::ios::binary);
        out << "user bob\ntopic read a/#\n";
    }
    const auto r = acl_file::load(path.string());
    std::filesystem::remove(path);
    REQUIRE(r.file);
    CHECK(r.file->allowed("c", "bob", R, "a/b"));

    const auto missing = acl_file::load(path.string());
    REQUIRE(missing.error);
    CHECK(missing.error->line == 0);
    CHECK(missing.error->file == path.string());
    CHECK(missing.error->message == "cannot open ACL file: No such file or directory");

    const auto directory = acl_file::load(dir.string());
    REQUIRE(directory.error);
    CHECK(directory.error->message == "cannot read ACL file: Is a directory");
}

TEST_CASE("acl_file: copies share the rules and outlive the original", "[auth][acl]") {
    std::optional<acl_file> original = parse_ok("user a long user name beyond the SSO buffer\n"
                                                "topic read short\n"
                                                "pattern read dev/%c/%u/x\n");
    const acl_file copy = *original;
    original.reset();
    CHECK(copy.allowed("c", "a long user name beyond the SSO buffer", R, "short"));
    CHECK(copy.allowed("c", "u", R, "dev/c/u/x"));
    CHECK(copy.rule_count() == 2);
}

TEST_CASE("acl_file: concurrent checks on one object", "[auth][acl]") {
    const acl_file acl = parse_ok("topic read a/#\npattern readwrite dev/%c/#\n");
    std::vector<std::thread> threads;
    std::vector<int> failures(4, 0);
    for (std::size_t t = 0; t < failures.size(); ++t) {
        threads.emplace_back([&acl, &failures, t] {
            for (int i = 0; i < 2000; ++i) {
                const bool ok = acl.allowed("d", anonymous, R, "a/b") &&
                                acl.allowed("d", anonymous, W, "dev/d/x") &&
                                !acl.allowed("d", anonymous, W, "a/b") &&
                                acl.allowed("d", anonymous, S, "dev/d/#");
                failures[t] += ok ? 0 : 1;
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    CHECK(failures == std::vector<int>(4, 0));
}
