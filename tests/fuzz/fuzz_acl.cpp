/// fuzz_acl: acl_file::parse on arbitrary text; when it succeeds, every check is compared with a
/// small reference written from mosquitto 2.0's mosquitto_acl_check_default (string
/// substitution of %c/%u, then a level-by-level match; acl__check_dollar first) and, for
/// SUBSCRIBE (Tern's rule: a deny covering the whole filter refuses, a read grant sharing a
/// topic with it allows), run over acl_file::rules().
///
/// Input: "<acl text>\0<client id>\0<user name>\0<topic or filter>\0..." — everything after
/// the first NUL is optional; without a user name field the client is anonymous. Identities
/// and topics derived from the rules themselves are checked as well.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <tern/auth/acl_file.hpp>
#include <tern/protocol/topic.hpp>

#include "fuzz_common.hpp"

namespace {

using tern::auth::acl_access;
using tern::auth::acl_file;
using tern::auth::acl_permission;
using tern::auth::acl_rule_info;

/// Bounds that keep one input well under a millisecond or so.
constexpr std::size_t max_derived_rules = 16;
constexpr std::size_t max_queries = 16;

struct identity {
    std::string client_id;
    std::optional<std::string> username;
};

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

bool dollar_mismatch(std::string_view filter, std::string_view text) {
    // mosquitto_topic_matches_sub / sub_matches_acl compare the first characters.
    return (filter.front() == '$') != (text.front() == '$');
}

/// Does topic name `t` match filter `f`?
bool ref_matches(std::string_view f, std::string_view t) {
    if (f.empty() || t.empty() || dollar_mismatch(f, t)) {
        return false;
    }
    const auto fl = levels(f);
    const auto tl = levels(t);
    for (std::size_t i = 0; i < fl.size(); ++i) {
        if (fl[i] == "#") {
            return true;
        }
        if (i >= tl.size() || (fl[i] != "+" && fl[i] != tl[i])) {
            return false;
        }
    }
    return fl.size() == tl.size();
}

/// Does ACL filter `a` cover every topic of subscription filter `s`?
bool ref_covers(std::string_view a, std::string_view s) {
    if (a.empty() || s.empty() || dollar_mismatch(a, s)) {
        return false;
    }
    const auto al = levels(a);
    const auto sl = levels(s);
    for (std::size_t i = 0; i < al.size(); ++i) {
        if (al[i] == "#") {
            return true;
        }
        if (i >= sl.size() || sl[i] == "#") {
            return false;
        }
        if (al[i] != "+" && al[i] != sl[i]) {
            return false;
        }
    }
    return al.size() == sl.size();
}

/// Is there a topic that both filters match? ('#' includes its parent level; a first-level
/// wildcard never matches a '$' topic.)
bool ref_intersects(std::string_view a, std::string_view s) {
    if (a.empty() || s.empty()) {
        return false;
    }
    const auto wild = [](char c) { return c == '+' || c == '#'; };
    if ((a.front() == '$' && wild(s.front())) || (s.front() == '$' && wild(a.front()))) {
        return false;
    }
    const auto al = levels(a);
    const auto sl = levels(s);
    const std::size_t n = std::max(al.size(), sl.size());
    for (std::size_t i = 0; i < n; ++i) {
        const bool a_hash = i < al.size() && al[i] == "#";
        const bool s_hash = i < sl.size() && sl[i] == "#";
        if (a_hash || s_hash) {
            return true;
        }
        if (i >= al.size() || i >= sl.size()) {
            return false;
        }
        if (al[i] != "+" && sl[i] != "+" && al[i] != sl[i]) {
            return false;
        }
    }
    return true;
}

/// mosquitto_acl_check_default's copy loop.
std::string substitute(std::string_view t, const identity& who) {
    std::string out;
    for (std::size_t i = 0; i < t.size(); ++i) {
        if (i + 1 < t.size() && t[i] == '%') {
            if (t[i + 1] == 'c') {
                out.append(who.client_id);
                ++i;
                continue;
            }
            if (who.username && t[i + 1] == 'u') {
                out.append(*who.username);
                ++i;
                continue;
            }
        }
        out.push_back(t[i]);
    }
    return out;
}

bool uses_username(std::string_view t) {
    // add__acl_pattern counts strstr(s, "%u").
    return t.find("%u") != std::string_view::npos;
}

bool has_wildcard(std::string_view s) {
    return s.find_first_of("+#") != std::string_view::npos;
}

struct ref_acl {
    std::vector<acl_rule_info> anonymous;
    std::map<std::string, std::vector<acl_rule_info>, std::less<>> users;
    std::vector<acl_rule_info> patterns;
};

ref_acl build(const std::vector<acl_rule_info>& rules) {
    ref_acl r;
    for (const auto& rule : rules) {
        // Denies first, as add__acl / add__acl_pattern link them.
        auto& list = rule.pattern ? r.patterns : rule.user ? r.users[*rule.user] : r.anonymous;
        if (rule.permission == acl_permission::deny) {
            list.insert(list.begin(), rule);
        } else {
            list.push_back(rule);
        }
    }
    return r;
}

/// One list; nullopt when nothing decides.
std::optional<bool> ref_walk(const std::vector<acl_rule_info>& list, std::string_view text,
                             unsigned bit, bool subscribe, const identity* who) {
    for (const auto& rule : list) {
        std::string filter = rule.topic;
        if (who != nullptr) {
            if (uses_username(rule.topic) && !who->username) {
                continue;
            }
            filter = substitute(rule.topic, *who);
        }
        // SUBSCRIBE: a deny must cover the whole filter, a grant only share a topic with it.
        const bool hit = !subscribe                                ? ref_matches(filter, text)
                         : rule.permission == acl_permission::deny ? ref_covers(filter, text)
                                                                   : ref_intersects(filter, text);
        if (!hit) {
            continue;
        }
        if (rule.permission == acl_permission::deny) {
            return false;
        }
        if ((static_cast<unsigned>(rule.permission) & bit) != 0) {
            return true;
        }
    }
    return std::nullopt;
}

bool ref_check(const ref_acl& acl, const identity& who, unsigned bit, bool subscribe,
               std::string_view text) {
    const std::vector<acl_rule_info>* own = nullptr;
    if (!who.username) {
        own = acl.anonymous.empty() ? nullptr : &acl.anonymous;
    } else if (const auto it = acl.users.find(*who.username); it != acl.users.end()) {
        own = &it->second;
    }
    if (own != nullptr) {
        if (const auto v = ref_walk(*own, text, bit, subscribe, nullptr)) {
            return *v;
        }
    }
    if (acl.patterns.empty()) {
        return false;
    }
    if (has_wildcard(who.client_id) || (who.username && has_wildcard(*who.username))) {
        return false;
    }
    return ref_walk(acl.patterns, text, bit, subscribe, &who).value_or(false);
}

/// acl__check_dollar.
bool ref_dollar(acl_access what, std::string_view t) {
    if (t.empty() || t[0] != '$' || what == acl_access::subscribe) {
        return true;
    }
    if (t.substr(0, 4) == "$SYS") {
        return what == acl_access::read ||
               (!has_wildcard(t) && ref_matches("$SYS/broker/connection/+/state", t));
    }
    return t.substr(0, 6) != "$share";
}

void check_one(const acl_file& file, const ref_acl& ref, const identity& who,
               std::string_view text) {
    const std::optional<std::string_view> user =
        who.username ? std::optional<std::string_view>(*who.username) : std::nullopt;

    for (const acl_access what : {acl_access::read, acl_access::write}) {
        const bool got = file.allowed(who.client_id, user, what, text);
        TERN_FUZZ_CHECK(got == file.topic_allowed(who.client_id, user, what, text));
        if (text.empty() || has_wildcard(text)) {
            TERN_FUZZ_CHECK(!got);
            continue;
        }
        const unsigned bit = what == acl_access::read ? 1u : 2u;
        const bool want = ref_dollar(what, text) && ref_check(ref, who, bit, false, text);
        TERN_FUZZ_CHECK(got == want);
    }

    const bool sub = file.allowed(who.client_id, user, acl_access::subscribe, text);
    TERN_FUZZ_CHECK(sub == file.subscribe_allowed(who.client_id, user, text));
    const auto parsed = tern::protocol::parse_topic_filter(text);
    if (!parsed) {
        TERN_FUZZ_CHECK(!sub);
        return;
    }
    TERN_FUZZ_CHECK(sub == ref_check(ref, who, 1u, true, parsed->filter));
    // A filter without wildcards is a topic name: SUBSCRIBE coverage is then exactly the read
    // check (outside "$share", which acl__check_dollar treats differently per access).
    if (!has_wildcard(text) && text.substr(0, 6) != "$share") {
        TERN_FUZZ_CHECK(sub == file.allowed(who.client_id, user, acl_access::read, text));
    }
}

/// A topic name matched by filter `f`: wildcards replaced by literal levels.
std::string instance_of(std::string_view f) {
    std::string out;
    bool first = true;
    for (const auto level : levels(f)) {
        if (!first) {
            out.push_back('/');
        }
        first = false;
        if (level == "+") {
            out.append("x");
        } else if (level == "#") {
            out.append("x/y");
        } else {
            out.append(level);
        }
    }
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view all(reinterpret_cast<const char*>(data), size);
    const auto nul = all.find('\0');
    const std::string_view text = all.substr(0, nul);
    std::vector<std::string_view> fields;
    if (nul != std::string_view::npos) {
        std::string_view rest = all.substr(nul + 1);
        while (fields.size() < max_queries + 2) {
            const auto next = rest.find('\0');
            fields.push_back(rest.substr(0, next));
            if (next == std::string_view::npos) {
                break;
            }
            rest.remove_prefix(next + 1);
        }
    }

    const auto result = acl_file::parse(text, "fuzz.acl");
    TERN_FUZZ_CHECK(result.file.has_value() != result.error.has_value());
    for (const auto& w : result.warnings) {
        TERN_FUZZ_CHECK(w.line >= 1 && !w.message.empty());
    }
    if (result.error) {
        TERN_FUZZ_CHECK(result.error->line >= 1 && !result.error->message.empty());
        TERN_FUZZ_CHECK(result.error->to_string().starts_with("fuzz.acl:"));
        return 0;
    }
    const acl_file& file = *result.file;
    const auto rules = file.rules();
    TERN_FUZZ_CHECK(rules.size() == file.rule_count());
    for (std::size_t i = 1; i < rules.size(); ++i) {
        TERN_FUZZ_CHECK(rules[i - 1].line < rules[i].line);
    }
    const auto again = acl_file::parse(text, "fuzz.acl");
    TERN_FUZZ_CHECK(again.file && again.file->rules() == rules &&
                    again.warnings == result.warnings);
    const ref_acl ref = build(rules);

    std::vector<identity> identities = {
        {"c", std::nullopt}, {"c", "u"}, {"#", std::nullopt}, {"a/b", "u+"}, {"", ""},
    };
    for (const auto& [name, list] : ref.users) {
        (void)list;
        identities.push_back({"c", name});
        break;
    }
    if (!fields.empty()) {
        identity who{std::string(fields[0]), std::nullopt};
        if (fields.size() > 1) {
            who.username = std::string(fields[1]);
        }
        identities.push_back(std::move(who));
    }

    std::vector<std::string> topics;
    for (std::size_t i = 2; i < fields.size(); ++i) {
        topics.emplace_back(fields[i]);
    }
    for (std::size_t i = 0; i < rules.size() && i < max_derived_rules; ++i) {
        topics.push_back(rules[i].topic);
        topics.push_back(instance_of(rules[i].topic));
        topics.push_back(substitute(instance_of(rules[i].topic), identities.back()));
    }
    topics.emplace_back("$SYS/broker/connection/c/state");

    for (const auto& who : identities) {
        for (const auto& t : topics) {
            check_one(file, ref, who, t);
        }
    }
    return 0;
}
