#include <tern/auth/acl_file.hpp>
#include <tern/core/file.hpp>

#include <tern/protocol/topic.hpp>

#include <boost/container/small_vector.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <map>
#include <new>
#include <span>
#include <string>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <unistd.h>

namespace tern::auth {

namespace {

/// mosquitto_sub_topic_check(): the longest topic, and TOPIC_HIERARCHY_LIMIT ('/' count).
constexpr std::size_t max_topic_bytes = 65'535;
constexpr std::size_t max_topic_separators = 200;
/// An MQTT UTF-8 string holds at most 65535 bytes, so no longer User Name can ever match.
constexpr std::size_t max_username_bytes = 65'535;
/// How much of a topic or name an error message quotes.
constexpr std::size_t max_quoted_bytes = 256;

constexpr std::uint8_t read_bit = static_cast<std::uint8_t>(acl_permission::read);
constexpr std::uint8_t write_bit = static_cast<std::uint8_t>(acl_permission::write);

enum class level_kind : std::uint8_t {
    literal, ///< [begin, begin + size) of the rule's topic
    plus,    ///< '+'
    hash,    ///< '#' (always the last level)
    pattern, ///< pieces [begin, begin + size) of the rule's pieces: %c / %u inside the level
};

enum class piece_kind : std::uint8_t { literal, client_id, username };

/// Offsets rather than views: the rule's string may move (SSO) while the rule is built.
struct level {
    level_kind kind = level_kind::literal;
    std::uint32_t begin = 0;
    std::uint32_t size = 0;
};

struct piece {
    piece_kind kind = piece_kind::literal;
    std::uint32_t begin = 0; ///< literal: byte range of the rule's topic
    std::uint32_t size = 0;
};

struct rule {
    std::string topic;
    std::vector<level> levels;
    std::vector<piece> pieces;
    acl_permission permission = acl_permission::readwrite;
    bool uses_username = false;
    std::size_t line = 0;
};

/// One list of mosquitto's (a user's acl list, or the patterns). add__acl() puts `deny` rules
/// at the front and grants at the back in file order; the check walks the list and stops at
/// the first matching deny or matching grant of the requested access. Since every deny
/// refuses whatever was asked, two vectors give the same verdicts.
struct rule_list {
    std::vector<rule> denies;
    std::vector<rule> grants;

    bool empty() const noexcept { return denies.empty() && grants.empty(); }
    std::size_t size() const noexcept { return denies.size() + grants.size(); }
    void add(rule r) {
        (r.permission == acl_permission::deny ? denies : grants).push_back(std::move(r));
    }
};

struct user_section {
    std::string name;
    rule_list rules;
};

/// The identity a pattern is substituted with.
struct identity {
    std::string_view client_id;
    std::optional<std::string_view> username;
};

bool is_blank(char c) noexcept {
    // isspace() in the "C" locale, what mosquitto trims with.
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && is_blank(s.front())) {
        s.remove_prefix(1);
    }
    while (!s.empty() && is_blank(s.back())) {
        s.remove_suffix(1);
    }
    return s;
}

std::string_view skip_spaces(std::string_view s) noexcept {
    while (!s.empty() && s.front() == ' ') {
        s.remove_prefix(1);
    }
    return s;
}

/// `s` in double quotes for a message: control characters (and, when `s` is not valid UTF-8,
/// every byte above 0x7E) as \xNN, cut to max_quoted_bytes.
std::string quoted(std::string_view s) {
    const bool utf8 = protocol::is_valid_utf8(s);
    bool cut = false;
    if (s.size() > max_quoted_bytes) {
        std::size_t n = max_quoted_bytes;
        while (utf8 && n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0u) == 0x80u) {
            --n; // do not split a UTF-8 sequence
        }
        s = s.substr(0, n);
        cut = true;
    }
    std::string out;
    out.reserve(s.size() + 5);
    out.push_back('"');
    for (const char c : s) {
        const auto b = static_cast<unsigned char>(c);
        if (b < 0x20u || b == 0x7Fu || (!utf8 && b > 0x7Eu)) {
            out.append(fmt::format("\\x{:02x}", b));
        } else {
            out.push_back(c);
        }
    }
    out.push_back('"');
    if (cut) {
        out.append("...");
    }
    return out;
}

std::optional<acl_permission> access_word(std::string_view w) noexcept {
    if (w == "read") {
        return acl_permission::read;
    }
    if (w == "write") {
        return acl_permission::write;
    }
    if (w == "readwrite") {
        return acl_permission::readwrite;
    }
    if (w == "deny") {
        return acl_permission::deny;
    }
    return std::nullopt;
}

/// Why `t` is not an acceptable ACL topic: mosquitto_sub_topic_check() plus UTF-8.
std::optional<std::string_view> topic_problem(std::string_view t) noexcept {
    if (t.size() > max_topic_bytes) {
        return "longer than 65535 bytes";
    }
    if (!protocol::is_valid_utf8(t)) {
        return "not valid UTF-8";
    }
    std::size_t separators = 0;
    for (std::size_t i = 0; i < t.size(); ++i) {
        const bool level_start = i == 0 || t[i - 1] == '/';
        if (t[i] == '+') {
            if (!level_start || (i + 1 < t.size() && t[i + 1] != '/')) {
                return "'+' must be a whole level";
            }
        } else if (t[i] == '#') {
            if (!level_start || i + 1 != t.size()) {
                return "'#' must be a whole level and the last one";
            }
        } else if (t[i] == '/') {
            ++separators;
        }
    }
    if (separators > max_topic_separators) {
        return "more than 200 '/' separators";
    }
    return std::nullopt;
}

/// Splits a valid ACL topic into levels. In a pattern, `%c` and `%u` are found left to right
/// as mosquitto_acl_check_default() substitutes them ("%%c" is '%' then the client id).
rule make_rule(std::string_view topic, acl_permission permission, bool is_pattern,
               std::size_t line) {
    rule r;
    r.topic.assign(topic);
    r.permission = permission;
    r.line = line;
    const auto u32 = [](std::size_t v) { return static_cast<std::uint32_t>(v); };
    std::size_t b = 0;
    for (;;) {
        const std::size_t slash = topic.find('/', b);
        const std::size_t e = slash == std::string_view::npos ? topic.size() : slash;
        const std::string_view text = topic.substr(b, e - b);
        level lv{level_kind::literal, u32(b), u32(e - b)};
        if (text == "+") {
            lv.kind = level_kind::plus;
        } else if (text == "#") {
            lv.kind = level_kind::hash;
        } else if (is_pattern) {
            const std::size_t first_piece = r.pieces.size();
            std::size_t literal_from = b;
            std::size_t i = b;
            bool substituted = false;
            while (i < e) {
                if (topic[i] == '%' && i + 1 < e && (topic[i + 1] == 'c' || topic[i + 1] == 'u')) {
                    if (i > literal_from) {
                        r.pieces.push_back(
                            {piece_kind::literal, u32(literal_from), u32(i - literal_from)});
                    }
                    const bool user = topic[i + 1] == 'u';
                    r.pieces.push_back({user ? piece_kind::username : piece_kind::client_id, 0, 0});
                    r.uses_username = r.uses_username || user;
                    substituted = true;
                    i += 2;
                    literal_from = i;
                } else {
                    ++i;
                }
            }
            if (substituted) {
                if (e > literal_from) {
                    r.pieces.push_back(
                        {piece_kind::literal, u32(literal_from), u32(e - literal_from)});
                }
                lv = level{level_kind::pattern, u32(first_piece),
                           u32(r.pieces.size() - first_piece)};
            }
        }
        r.levels.push_back(lv);
        if (slash == std::string_view::npos) {
            return r;
        }
        b = slash + 1;
    }
}

/// True when every topic `text` can match is matched by rule `r` (`text` a topic name or a
/// non-shared filter; a topic name is covered exactly when it matches), substituting `who`
/// into pattern levels. The same answers as mosquitto_topic_matches_sub() on the substituted
/// rule for topic names, and as mosquitto 2.1's mosquitto_sub_matches_acl() for filters.
///
/// One pass over `text`, no allocation: a pattern level's substitution is compared piece by
/// piece in place. It may contain '/' (a client id "a/b" spans two levels, as the
/// substituted string does in mosquitto) but never '+' or '#' (check() refuses such ids).
bool covers(const rule& r, std::string_view text, const identity* who) noexcept {
    const std::string_view topic = r.topic;
    // [MQTT-4.7.2-1]: a wildcard in the first level does not match '$' topics, so a filter
    // starting with '$' is covered only by a rule whose first level is not a wildcard.
    const bool dollar = !text.empty() && text.front() == '$';
    std::size_t pos = 0;
    bool more = !text.empty();
    for (std::size_t i = 0; i < r.levels.size(); ++i) {
        const level& lv = r.levels[i];
        if (lv.kind == level_kind::hash) {
            return !(dollar && i == 0); // '#' also matches the parent level ("a/#" and "a")
        }
        if (!more) {
            return false;
        }
        std::size_t end = 0;
        if (lv.kind == level_kind::pattern) {
            std::size_t q = pos;
            for (std::uint32_t k = lv.begin; k < lv.begin + lv.size; ++k) {
                const piece& p = r.pieces[k];
                std::string_view value;
                if (p.kind == piece_kind::literal) {
                    value = topic.substr(p.begin, p.size);
                } else if (p.kind == piece_kind::client_id) {
                    value = who->client_id;
                } else {
                    value = *who->username; // rules using %u are skipped for anonymous clients
                }
                if (text.size() - q < value.size() || text.compare(q, value.size(), value) != 0) {
                    return false;
                }
                q += value.size();
            }
            if (q != text.size() && text[q] != '/') {
                return false;
            }
            end = q;
        } else {
            end = std::min(text.find('/', pos), text.size());
            const std::string_view got = text.substr(pos, end - pos);
            if (got == "#") {
                return false; // only a rule's '#' covers a filter's '#'
            }
            if (lv.kind == level_kind::plus) {
                if (dollar && i == 0) {
                    return false;
                }
            } else if (got != topic.substr(lv.begin, lv.size)) {
                return false; // also refuses a filter's '+' against a literal level
            }
        }
        if (end == text.size()) {
            more = false;
        } else {
            pos = end + 1; // "a/" has a second, empty level
        }
    }
    return !more;
}

/// mosquitto_acl_check_default()'s walk of one list: nullopt when no rule decides.
std::optional<bool> walk(const rule_list& list, std::string_view text, std::uint8_t bit,
                         const identity* who) noexcept {
    const auto applies = [who](const rule& r) {
        // A pattern with %u is skipped for a client without a User Name.
        return who == nullptr || !r.uses_username || who->username.has_value();
    };
    for (const rule& r : list.denies) {
        if (applies(r) && covers(r, text, who)) {
            return false;
        }
    }
    for (const rule& r : list.grants) {
        if ((static_cast<std::uint8_t>(r.permission) & bit) != 0 && applies(r) &&
            covers(r, text, who)) {
            return true;
        }
    }
    return std::nullopt;
}

/// Splits a topic or filter into its levels ("a/" has two, the second empty).
template <typename Out> void split_levels(std::string_view s, Out& out) {
    std::size_t b = 0;
    for (;;) {
        const std::size_t slash = s.find('/', b);
        out.push_back(s.substr(b, slash == std::string_view::npos ? s.npos : slash - b));
        if (slash == std::string_view::npos) {
            return;
        }
        b = slash + 1;
    }
}

/// True when some topic matches both filters `a` and `b` (levels). '#' matches its parent
/// level too; a wildcard in the first level never matches a '$' topic [MQTT-4.7.2-1].
bool filters_intersect(std::span<const std::string_view> a,
                       std::span<const std::string_view> b) noexcept {
    const auto wildcard = [](std::string_view l) { return l == "+" || l == "#"; };
    if (!a.empty() && !b.empty() &&
        ((a[0].starts_with('$') && wildcard(b[0])) || (b[0].starts_with('$') && wildcard(a[0])))) {
        return false;
    }
    for (std::size_t i = 0;; ++i) {
        const bool a_end = i == a.size();
        const bool b_end = i == b.size();
        if ((!a_end && a[i] == "#") || (!b_end && b[i] == "#")) {
            return true;
        }
        if (a_end || b_end) {
            return a_end && b_end;
        }
        if (a[i] != "+" && b[i] != "+" && a[i] != b[i]) {
            return false;
        }
    }
}

/// The rule's topic with `who` substituted into its pattern levels.
std::string substituted(const rule& r, const identity* who) {
    std::string out;
    for (std::size_t i = 0; i < r.levels.size(); ++i) {
        const level& lv = r.levels[i];
        if (i != 0) {
            out += '/';
        }
        if (lv.kind != level_kind::pattern) {
            out += std::string_view(r.topic).substr(lv.begin, lv.size);
            continue;
        }
        for (std::uint32_t k = lv.begin; k < lv.begin + lv.size; ++k) {
            const piece& p = r.pieces[k];
            if (p.kind == piece_kind::literal) {
                out += std::string_view(r.topic).substr(p.begin, p.size);
            } else if (p.kind == piece_kind::client_id) {
                out += who->client_id;
            } else {
                out += *who->username;
            }
        }
    }
    return out;
}

/// The SUBSCRIBE walk of one list: a deny covering the whole filter refuses it; a read grant
/// that some topic of the filter can satisfy allows it (deliveries are checked one by one).
std::optional<bool> walk_subscribe(const rule_list& list, std::string_view filter,
                                   std::span<const std::string_view> filter_levels,
                                   const identity* who) {
    const auto applies = [who](const rule& r) {
        return who == nullptr || !r.uses_username || who->username.has_value();
    };
    for (const rule& r : list.denies) {
        if (applies(r) && covers(r, filter, who)) {
            return false;
        }
    }
    boost::container::small_vector<std::string_view, 8> rule_levels;
    for (const rule& r : list.grants) {
        if ((static_cast<std::uint8_t>(r.permission) & read_bit) == 0 || !applies(r)) {
            continue;
        }
        const std::string topic = r.pieces.empty() ? r.topic : substituted(r, who);
        rule_levels.clear();
        split_levels(topic, rule_levels);
        if (filters_intersect(rule_levels, filter_levels)) {
            return true;
        }
    }
    return std::nullopt;
}

bool dangerous(std::string_view s) noexcept {
    return s.find_first_of("+#") != std::string_view::npos;
}

std::string format_error(const acl_error& e) {
    if (e.line == 0) {
        return fmt::format("{}: {}", e.file, e.message);
    }
    return fmt::format("{}:{}: {}", e.file, e.line, e.message);
}

} // namespace

struct acl_file::data {
    rule_list anonymous;
    /// Sorted by name (byte order), no duplicates, none empty.
    std::vector<user_section> users;
    rule_list patterns;

    /// acl__find_acls(): the section of the User Name, or the anonymous one.
    const rule_list* section(std::optional<std::string_view> username) const noexcept {
        if (!username) {
            return anonymous.empty() ? nullptr : &anonymous;
        }
        const auto it = std::lower_bound(users.begin(), users.end(), *username,
                                         [](const user_section& s, std::string_view name) {
                                             return std::string_view(s.name) < name;
                                         });
        if (it == users.end() || it->name != *username) {
            return nullptr;
        }
        return &it->rules;
    }

    /// mosquitto_acl_check_default(), for one access bit.
    bool check(std::string_view client_id, std::optional<std::string_view> username,
               std::uint8_t bit, std::string_view text) const noexcept {
        if (const rule_list* own = section(username)) {
            if (const auto verdict = walk(*own, text, bit, nullptr)) {
                return *verdict;
            }
        }
        if (patterns.empty()) {
            return false;
        }
        // "ACL denying access to client with dangerous username/client id": a client called
        // '#' would otherwise match every %c pattern.
        if (dangerous(client_id) || (username && dangerous(*username))) {
            return false;
        }
        const identity who{client_id, username};
        return walk(patterns, text, bit, &who).value_or(false);
    }

    /// check() for SUBSCRIBE: the same lists in the same order, with walk_subscribe().
    bool check_subscribe(std::string_view client_id, std::optional<std::string_view> username,
                         std::string_view filter) const {
        boost::container::small_vector<std::string_view, 8> levels;
        split_levels(filter, levels);
        if (const rule_list* own = section(username)) {
            if (const auto verdict = walk_subscribe(*own, filter, levels, nullptr)) {
                return *verdict;
            }
        }
        if (patterns.empty() || dangerous(client_id) || (username && dangerous(*username))) {
            return false;
        }
        const identity who{client_id, username};
        return walk_subscribe(patterns, filter, levels, &who).value_or(false);
    }
};

std::string acl_error::to_string() const {
    return format_error(*this);
}

acl_file::parse_result acl_file::parse(std::string_view text, std::string_view name) {
    parse_result result;
    rule_list anonymous;
    std::map<std::string, rule_list, std::less<>> users;
    rule_list patterns;
    std::optional<std::string> user; // the current `user` section; none before the first
    std::size_t line_no = 0;
    const auto fail = [&](std::string message) {
        result.error = acl_error{std::string(name), line_no, std::move(message)};
    };
    const auto warn = [&](std::string message) {
        result.warnings.push_back(acl_error{std::string(name), line_no, std::move(message)});
    };

    std::size_t pos = 0;
    for (;;) {
        const std::size_t nl = text.find('\n', pos);
        std::string_view line =
            text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        ++line_no;

        // aclfile__parse(): trailing isspace() removed; '#' in column 0 is a comment; words
        // split by strtok(" "), which skips leading spaces. Leading tabs and indented comments
        // are accepted here (mosquitto: "Invalid line").
        while (!line.empty() && is_blank(line.back())) {
            line.remove_suffix(1);
        }
        while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
            line.remove_prefix(1);
        }
        if (!line.empty() && line.front() != '#') {
            const std::size_t space = line.find(' ');
            const std::string_view keyword = line.substr(0, space);
            const std::string_view rest =
                space == std::string_view::npos ? std::string_view{} : line.substr(space + 1);
            if (keyword == "topic" || keyword == "pattern") {
                const bool is_pattern = keyword == "pattern";
                const std::string_view args = skip_spaces(rest);
                if (args.empty()) {
                    fail(fmt::format("missing topic after \"{}\"", keyword));
                    return result;
                }
                const std::size_t gap = args.find(' ');
                const std::string_view word = args.substr(0, gap);
                std::string_view topic;
                acl_permission permission = acl_permission::readwrite;
                if (gap == std::string_view::npos) {
                    // mosquitto would take a lone access word as the topic ("topic deny"
                    // granting readwrite on `deny`): refused here.
                    if (access_word(word)) {
                        fail(fmt::format("missing topic after access \"{}\"", word));
                        return result;
                    }
                    topic = word;
                } else {
                    const auto p = access_word(word);
                    if (!p) {
                        fail(fmt::format("invalid topic access type {} (expected read, write, "
                                         "readwrite or deny)",
                                         quoted(word)));
                        return result;
                    }
                    permission = *p;
                    // Not empty: the line's last character is not blank.
                    topic = trim(args.substr(gap + 1));
                }
                if (const auto problem = topic_problem(topic)) {
                    fail(fmt::format("invalid ACL topic {}: {}", quoted(topic), *problem));
                    return result;
                }
                rule r = make_rule(topic, permission, is_pattern, line_no);
                if (is_pattern && r.pieces.empty()) {
                    warn(fmt::format("ACL pattern {} does not contain %c or %u", quoted(topic)));
                }
                if (!is_pattern && (topic.find("%c") != std::string_view::npos ||
                                    topic.find("%u") != std::string_view::npos)) {
                    warn(fmt::format("ACL topic {} is taken literally: only \"pattern\" lines "
                                     "substitute %c and %u",
                                     quoted(topic)));
                }
                if (topic == "$share" || topic.starts_with("$share/")) {
                    warn(fmt::format("ACL topic {} can never match: $share topics are never "
                                     "read or written, and a SUBSCRIBE is checked without its "
                                     "$share/<group>/ prefix",
                                     quoted(topic)));
                }
                if (is_pattern) {
                    patterns.add(std::move(r));
                } else if (!user) {
                    anonymous.add(std::move(r));
                } else {
                    // add__acl(): a second section for the same name adds to the first.
                    users[*user].add(std::move(r));
                }
            } else if (keyword == "user") {
                const std::string_view username = trim(rest);
                if (username.empty()) {
                    fail("missing username after \"user\"");
                    return result;
                }
                if (username.size() > max_username_bytes) {
                    fail("invalid username: longer than 65535 bytes");
                    return result;
                }
                if (!protocol::is_valid_utf8(username)) {
                    fail(fmt::format("invalid username {}: not valid UTF-8", quoted(username)));
                    return result;
                }
                user.emplace(username);
            } else {
                fail(fmt::format("unknown keyword {} (expected topic, pattern or user)",
                                 quoted(keyword)));
                return result;
            }
        }
        if (nl == std::string_view::npos) {
            break;
        }
        pos = nl + 1;
    }

    auto d = std::make_shared<data>();
    d->anonymous = std::move(anonymous);
    d->patterns = std::move(patterns);
    d->users.reserve(users.size());
    for (auto& [username, rules] : users) {
        d->users.push_back(user_section{username, std::move(rules)});
    }
    result.file = acl_file(std::move(d));
    return result;
}

acl_file::parse_result acl_file::load(const std::string& path) {
    const auto read = core::read_whole_file(path);
    if (!read.content) {
        parse_result result;
        result.error = acl_error{path, 0, read.describe_failure("ACL file")};
        return result;
    }
    return parse(*read.content, path);
}

bool acl_file::allowed(std::string_view client_id, std::optional<std::string_view> username,
                       acl_access what, std::string_view topic_or_filter) const noexcept {
    if (what == acl_access::subscribe) {
        return subscribe_allowed(client_id, username, topic_or_filter);
    }
    return topic_allowed(client_id, username, what, topic_or_filter);
}

bool acl_file::topic_allowed(std::string_view client_id, std::optional<std::string_view> username,
                             acl_access what, std::string_view topic) const noexcept {
    if (what == acl_access::subscribe) {
        return subscribe_allowed(client_id, username, topic);
    }
    // mosquitto_topic_matches_sub() fails (no match) on an empty topic or one with wildcards.
    if (!data_ || topic.empty() || dangerous(topic) || !dollar_topic_allowed(what, topic)) {
        return false;
    }
    return data_->check(client_id, username, what == acl_access::read ? read_bit : write_bit,
                        topic);
}

bool acl_file::subscribe_allowed(std::string_view client_id,
                                 std::optional<std::string_view> username,
                                 std::string_view filter) const noexcept {
    if (!data_) {
        return false;
    }
    const auto parsed = protocol::parse_topic_filter(filter);
    if (!parsed) {
        return false;
    }
    // The rules are about delivered topics, which never carry the $share/<group>/ prefix.
    try {
        return data_->check_subscribe(client_id, username, parsed->filter);
    } catch (const std::bad_alloc&) {
        return false; // substituting a pattern could not allocate: refuse, never throw
    }
}

std::vector<acl_rule_info> acl_file::rules() const {
    std::vector<acl_rule_info> out;
    if (!data_) {
        return out;
    }
    const auto add = [&out](const rule_list& list, bool pattern,
                            const std::optional<std::string>& user) {
        for (const auto* v : {&list.denies, &list.grants}) {
            for (const rule& r : *v) {
                out.push_back(acl_rule_info{pattern, user, r.permission, r.topic, r.line});
            }
        }
    };
    add(data_->anonymous, false, std::nullopt);
    for (const user_section& s : data_->users) {
        add(s.rules, false, s.name);
    }
    add(data_->patterns, true, std::nullopt);
    std::sort(out.begin(), out.end(),
              [](const acl_rule_info& a, const acl_rule_info& b) { return a.line < b.line; });
    return out;
}

std::size_t acl_file::rule_count() const noexcept {
    if (!data_) {
        return 0;
    }
    std::size_t n = data_->anonymous.size() + data_->patterns.size();
    for (const user_section& s : data_->users) {
        n += s.rules.size();
    }
    return n;
}

std::size_t acl_file::user_count() const noexcept {
    return data_ ? data_->users.size() : 0;
}

bool dollar_topic_allowed(acl_access what, std::string_view topic) noexcept {
    // acl__check_dollar(): SUBSCRIBE to $SYS and $share succeeds, other '$' topics are left to
    // the ACL, so a SUBSCRIBE is never refused here.
    if (topic.empty() || topic.front() != '$' || what == acl_access::subscribe) {
        return true;
    }
    if (topic.starts_with("$SYS")) {
        if (what == acl_access::read) {
            return true;
        }
        // Only bridges' status, mosquitto_topic_matches_sub("$SYS/broker/connection/+/state").
        constexpr std::string_view prefix = "$SYS/broker/connection/";
        if (!topic.starts_with(prefix)) {
            return false;
        }
        const std::string_view rest = topic.substr(prefix.size());
        const std::size_t slash = rest.find('/');
        return slash != std::string_view::npos && rest.substr(slash + 1) == "state" &&
               !dangerous(rest.substr(0, slash));
    }
    // Messages are never published to, nor delivered from, $share topics.
    return !topic.starts_with("$share");
}

} // namespace tern::auth
