#include <tern/auth/file_authenticator.hpp>

#include <map>
#include <utility>

namespace tern::auth {

file_authenticator::file_authenticator(std::vector<access_settings> settings,
                                       anonymous_policy anonymous,
                                       std::vector<listener_rules> rules)
    : settings_(std::move(settings)), anonymous_(std::move(anonymous)), rules_(std::move(rules)) {
    for (const auto& r : rules_) {
        any_acl_ = any_acl_ || r.acl != nullptr;
    }
}

file_authenticator::load_result
file_authenticator::load(const std::vector<access_settings>& per_listener) {
    // A file named by several listeners (always, without per_listener_settings) is read once.
    std::map<std::string, std::shared_ptr<const password_file>> passwords;
    std::map<std::string, std::shared_ptr<const acl_file>> acls;
    std::vector<listener_rules> rules;
    std::vector<std::optional<bool>> anonymous;
    rules.reserve(per_listener.size());
    for (const auto& s : per_listener) {
        listener_rules r;
        if (!s.password_file.empty()) {
            auto& slot = passwords[s.password_file];
            if (!slot) {
                auto loaded = password_file::load(s.password_file);
                if (!loaded.file) {
                    return {nullptr, loaded.error ? loaded.error->to_string()
                                                  : s.password_file + ": cannot be read"};
                }
                slot = std::make_shared<const password_file>(std::move(*loaded.file));
            }
            r.passwords = slot;
        }
        if (!s.acl_file.empty()) {
            auto& slot = acls[s.acl_file];
            if (!slot) {
                auto loaded = acl_file::load(s.acl_file);
                if (!loaded.file) {
                    return {nullptr, loaded.error ? loaded.error->to_string()
                                                  : s.acl_file + ": cannot be read"};
                }
                slot = std::make_shared<const acl_file>(std::move(*loaded.file));
            }
            r.acl = slot;
        }
        rules.push_back(std::move(r));
        anonymous.emplace_back(s.allow_anonymous);
    }
    // allow_anonymous is resolved per listener by the caller; the global value only matters
    // for listener indexes beyond the list, which the broker never passes.
    anonymous_policy policy(false, std::move(anonymous));
    return {std::shared_ptr<const file_authenticator>(
                new file_authenticator(per_listener, std::move(policy), std::move(rules))),
            {}};
}

const file_authenticator::listener_rules*
file_authenticator::rules_of(std::size_t listener) const noexcept {
    return listener < rules_.size() ? &rules_[listener] : nullptr;
}

verdict file_authenticator::authenticate(const client_identity& who,
                                         std::optional<std::string_view> password) const {
    if (who.username_verified) {
        return verdict::allow(); // the certificate or PSK is the credential
    }
    const auto* r = rules_of(who.listener);
    if (r != nullptr && r->passwords && who.username) {
        // mosquitto hands a zero-length Password over as none, which never matches.
        if (password && !password->empty() && r->passwords->verify(*who.username, *password)) {
            return verdict::allow();
        }
        return verdict::deny(protocol::reason_code::not_authorized,
                             "unknown user or wrong password");
    }
    return anonymous_.authenticate(who, password);
}

bool file_authenticator::authenticate_is_costly(
    const client_identity& who, std::optional<std::string_view> password) const noexcept {
    if (who.username_verified || !who.username || !password || password->empty()) {
        return false; // decided without hashing
    }
    const auto* r = rules_of(who.listener);
    if (r == nullptr || !r->passwords) {
        return false;
    }
    try {
        // An unknown user pays for one default (101-round) derivation, inline like a known one.
        const auto info = r->passwords->hash_info(*who.username);
        return info && info->kind == password_hash_kind::sha512_pbkdf2 &&
               info->iterations >= costly_pbkdf2_iterations;
    } catch (...) {
        return false; // asked again inline by authenticate(), which reports the failure
    }
}

bool file_authenticator::authorize(const client_identity& who, access what,
                                   std::string_view topic) const {
    // `$SYS` is the broker's own, ACL or not (mosquitto's acl__check_dollar).
    if (what == access::publish && !dollar_topic_allowed(acl_access::write, topic)) {
        return false;
    }
    const auto* r = rules_of(who.listener);
    if (r == nullptr || !r->acl) {
        return true;
    }
    const std::optional<std::string_view> username =
        who.username ? std::optional<std::string_view>(*who.username) : std::nullopt;
    const acl_access kind = what == access::publish     ? acl_access::write
                            : what == access::subscribe ? acl_access::subscribe
                                                        : acl_access::read;
    return r->acl->allowed(who.client_id, username, kind, topic);
}

} // namespace tern::auth
