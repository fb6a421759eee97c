#pragma once
/// mosquitto's `acl_file` (Mosquitto 2.0, src/security_default.c): which topics a client may
/// publish on, receive messages from and subscribe to.
///
/// File format (aclfile__parse), one directive per line:
///
///     # a comment                  `#` as the first character of the line
///     topic [read|write|readwrite|deny] <topic>
///     user <username>
///     pattern [read|write|readwrite|deny] <topic>
///
///   - Trailing white space (isspace(), so CR of CRLF files too) is removed; blank lines are
///     skipped. Words are separated by runs of spaces (only spaces: mosquitto tokenises with
///     strtok(" "), so `topic\tread a` is an unknown keyword there and here).
///   - The access word is optional and defaults to readwrite; everything after it is the topic,
///     trimmed, so a topic may contain spaces when an access word is given ("topic read a b"
///     is the topic "a b"; "topic a b" is the unknown access type "a", as in mosquitto).
///     Keywords and access words are case-sensitive. `deny` grants nothing and is checked first.
///   - The topic is a topic filter (`+` and `#` as in subscriptions), checked as
///     mosquitto_sub_topic_check() does: `+` a whole level, `#` a whole level and the last
///     one, at most 65535 bytes and at most 200 `/` separators (TOPIC_HIERARCHY_LIMIT).
///   - `user <name>`: the rest of the line, trimmed, may contain spaces. The `topic` lines that
///     follow (until the next `user` line) apply to clients whose MQTT User Name is exactly
///     that (byte for byte). Several sections for one name are merged (add__acl).
///   - `topic` lines before the first `user` line apply to anonymous clients only (clients
///     that sent no User Name; acl__find_acls), not to every client.
///   - `pattern` lines apply to every client, wherever they appear in the file, even after a
///     `user` line (add__acl_pattern). `%c` is replaced by the client id and `%u` by the user
///     name, anywhere in the topic, not only as a whole level (mosquitto 2.0's code; its
///     manual says a whole level, and 2.1 substitutes whole levels only). Other `%` sequences
///     are literal. A pattern that uses `%u` is skipped for anonymous clients.
///
/// Deliberately stricter than mosquitto (the file is refused where mosquitto starts):
///   - `topic read` / `topic deny` with no topic: mosquitto takes the access word as the topic
///     ("deny" becomes a readwrite rule for the topic `deny`); here it is an error.
///   - Topics and user names must be valid UTF-8 without U+0000 (a client can never send
///     other bytes, so such a rule could never match). User names are at most 65535 bytes.
/// And more lenient (files mosquitto refuses, so no working mosquitto file changes meaning):
///   - Leading tabs are skipped like leading spaces, and a line whose first non-blank
///     character is `#` is a comment (mosquitto: "Invalid line").
/// Warnings (the file still loads): a pattern with neither `%c` nor `%u` (mosquitto warns
/// too), a `topic` line containing `%c`/`%u` (taken literally; probably meant `pattern`), and
/// a rule on a `$share` topic (can never match, see dollar_topic_allowed()).
///
/// Checks, in mosquitto_acl_check_default()'s order (first verdict wins):
///   1. The client's section: the `user` section named by its User Name, or the anonymous
///      section when it has none. A matching `deny` rule refuses; then a matching rule that
///      grants the requested access allows.
///   2. If the file has any `pattern` line and the client id or User Name contains `+` or `#`,
///      the client is refused (mosquitto: "ACL denying access to client with dangerous ...");
///      without this a client named `#` would match every `%c` pattern.
///   3. The patterns, substituted, the same way: matching `deny` refuses, matching grant allows.
///   4. Otherwise refused. An empty file (or a user with no section and no patterns) refuses
///      everything, as mosquitto does once an acl_file is configured.
/// So a `deny` overrides grants of its own list only: a section's grant wins over a `pattern
/// deny`, and a section's `deny` wins over a pattern grant.
///
/// `$` topics: wildcards in the first level of a rule do not match topics beginning with `$`
/// (mosquitto_topic_matches_sub; [MQTT-4.7.2-1]), so `topic read #` does not give `$SYS`;
/// `topic read $SYS/#` does. allowed() also applies mosquitto's acl__check_dollar() first
/// (see dollar_topic_allowed()).
///
/// SUBSCRIBE, where Tern differs from mosquitto 2.0 on purpose: mosquitto's acl_file allows
/// every SUBSCRIBE (mosquitto_acl_check_default returns success for MOSQ_ACL_SUBSCRIBE, "FIXME
/// - implement ACL subscription strings") and only filters deliveries with the read check.
/// Tern refuses a SUBSCRIBE whose filter is not covered by a rule granting read: every topic
/// the filter can match must be matched by the rule (the rule in mosquitto 2.1's
/// mosquitto_sub_matches_acl, which its dynamic-security plugin uses). With `topic read a/#`,
/// `a/+/b` and `a/#` may be subscribed, `#` and `+/b` may not (mosquitto 2.0 grants them and
/// delivers nothing outside a/). A `deny` rule refuses a SUBSCRIBE only when it covers the
/// whole filter; a partly denied filter is granted and its deliveries are still filtered by the
/// read check, which the broker must keep doing on every delivery. A `$share/<group>/` prefix
/// is removed before the check (rules are about the topics delivered).
///
/// Not in this class (the broker's part of mosquitto_acl_check): bridges bypass the ACL;
/// which file applies with per_listener_settings; wills are checked with `write` when they are
/// published; retained messages with `read` when delivered (and check_retain_source); queued
/// messages are checked again when a client reconnects (connection_check_acl).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tern::auth {

/// What a client asks to do with a topic.
enum class acl_access : std::uint8_t {
    read,      ///< be sent a message on a topic name (MOSQ_ACL_READ), retained ones included
    write,     ///< publish on a topic name, or have its will or a retained message published
    subscribe, ///< SUBSCRIBE with a topic filter (Tern's coverage check; see the file comment)
};

/// What a rule grants. `deny` grants nothing and is checked before the grants.
enum class acl_permission : std::uint8_t { deny = 0, read = 1, write = 2, readwrite = 3 };

/// Why an ACL file was refused, or a warning about a file that loads.
struct acl_error {
    /// The path given to load(), or the name given to parse().
    std::string file;
    /// 1-based line; 0 when the error is about the whole file (it could not be read).
    std::size_t line = 0;
    /// What is wrong. Never empty. Text quoted from the file is cut after 256 bytes, with
    /// control characters (and, in text that is not valid UTF-8, every non-ASCII byte)
    /// written as \xNN.
    std::string message;

    /// "FILE:LINE: MESSAGE", or "FILE: MESSAGE" for line 0.
    std::string to_string() const;

    bool operator==(const acl_error&) const = default;
};

/// One `topic` or `pattern` line as loaded (for logs, the admin API and tests).
struct acl_rule_info {
    /// True for a `pattern` line (applies to every client), false for a `topic` line.
    bool pattern = false;
    /// The `user` section of a `topic` line; nullopt for the anonymous section and for
    /// patterns.
    std::optional<std::string> user;
    acl_permission permission = acl_permission::readwrite;
    /// The topic filter as written (trimmed), `%c`/`%u` not substituted.
    std::string topic;
    /// 1-based line in the file.
    std::size_t line = 0;

    bool operator==(const acl_rule_info&) const = default;
};

struct acl_file_parse_result;

/// A parsed ACL file. Checks allocate nothing (patterns are substituted while matching, not
/// into a string).
///
/// Cost of one check: a binary search for the client's section (O(log users) name
/// comparisons), then per rule examined at most one pass over the topic: O(levels of the rule
/// + bytes of the topic compared), usually stopping at the first level that differs. Rules
/// granting a different access are skipped without looking at the topic. Patterns add a
/// scan of the client id and User Name for `+`/`#`.
///
/// Thread contract: immutable after parse()/load(); any number of threads may call the const
/// members of one object, or of copies of it, concurrently. Copies share the rules (a
/// reference-counted pointer to const data), so copying is cheap; reloading means parsing a
/// new object and publishing it.
class acl_file {
public:
    /// What parse() and load() return (defined below: it holds an acl_file).
    using parse_result = acl_file_parse_result;

    /// A file without rules: allowed() is always false (like an empty mosquitto acl_file).
    acl_file() = default;

    /// Parses the text of an ACL file, as if read from a file called `name` (used in messages
    /// only). Returns the first error in file order, or the file and its warnings. Pure: no
    /// I/O. Thread-safe.
    static parse_result parse(std::string_view text, std::string_view name);

    /// Reads and parses the file at `path`. A file that cannot be opened or read gives an
    /// error with line 0 and the OS reason ("cannot open ACL file: No such file or
    /// directory"). Blocking file I/O: call at startup or reload, not on a worker.
    /// Thread-safe.
    static parse_result load(const std::string& path);

    /// May the client do `what` with `topic_or_filter`: a topic name for read and write (see
    /// topic_allowed()), a topic filter for subscribe (see subscribe_allowed()).
    /// `client_id`: the client identifier in use (the assigned one if the server assigned
    /// it). `username`: the MQTT User Name, nullopt for an anonymous client (an empty User
    /// Name is a User Name). Thread-safe; allocates nothing.
    bool allowed(std::string_view client_id, std::optional<std::string_view> username,
                 acl_access what, std::string_view topic_or_filter) const noexcept;

    /// The read or write check of mosquitto 2.0 (dollar_topic_allowed(), then the rules as
    /// described in the file comment) on a topic name. False for an empty topic or one that
    /// contains `+` or `#` (mosquitto_topic_matches_sub refuses those too); the caller has
    /// validated the topic otherwise. `what == subscribe` is subscribe_allowed().
    /// Thread-safe; allocates nothing.
    bool topic_allowed(std::string_view client_id, std::optional<std::string_view> username,
                       acl_access what, std::string_view topic) const noexcept;

    /// Tern's SUBSCRIBE check (not mosquitto 2.0's, which always allows): true when some topic
    /// the filter can match may be read — a rule granting read intersects the filter — and no
    /// `deny` rule of the same list, checked first, covers the whole filter. So `#` is granted
    /// to a client that may read `a/#` (the deliveries are filtered, as mosquitto does), and
    /// `b/1` is refused to it. `filter` may carry `$share/<group>/`; an invalid filter gives
    /// false. The broker must still check read on every delivery.
    /// Thread-safe; allocates only to substitute %c/%u into pattern rules.
    bool subscribe_allowed(std::string_view client_id, std::optional<std::string_view> username,
                           std::string_view filter) const noexcept;

    /// The rules in file order. Allocates; not for the data path. Thread-safe.
    std::vector<acl_rule_info> rules() const;

    /// Number of `topic` and `pattern` lines. Thread-safe.
    std::size_t rule_count() const noexcept;

    /// Number of distinct `user` sections that hold at least one rule. Thread-safe.
    std::size_t user_count() const noexcept;

    /// Implementation data, defined in acl_file.cpp.
    struct data;

private:
    explicit acl_file(std::shared_ptr<const data> d) noexcept : data_(std::move(d)) {}

    /// Never modified after construction; null for a default-constructed file.
    std::shared_ptr<const data> data_;
};

/// The outcome of acl_file::parse() and load(): exactly one of `file` and `error` is set.
struct acl_file_parse_result {
    std::optional<acl_file> file;
    std::optional<acl_error> error;
    /// Non-fatal findings, in file order (also set when `error` is).
    std::vector<acl_error> warnings;
};

/// mosquitto's acl__check_dollar(), which mosquitto_acl_check() applies before any ACL
/// (with or without an acl_file): writing to a `$SYS` topic is refused except
/// `$SYS/broker/connection/+/state` (bridge status); reading from or writing to a topic
/// beginning with `$share` is refused; SUBSCRIBE is never refused here. Other topics are
/// allowed. Prefixes are compared as mosquitto does (strncmp), so `$SYSTEM/x` counts as
/// `$SYS` and `$shared/x` as `$share`. acl_file::allowed() includes this check; the broker
/// applies it itself when no ACL is configured. Thread-safe; allocates nothing.
bool dollar_topic_allowed(acl_access what, std::string_view topic) noexcept;

} // namespace tern::auth
