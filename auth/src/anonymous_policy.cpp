#include <tern/auth/anonymous_policy.hpp>

#include <utility>

namespace tern::auth {

anonymous_policy::anonymous_policy(bool allow_anonymous,
                                   std::vector<std::optional<bool>> per_listener)
    : allow_anonymous_(allow_anonymous), per_listener_(std::move(per_listener)) {}

bool anonymous_policy::anonymous_allowed(std::size_t listener) const noexcept {
    if (listener < per_listener_.size() && per_listener_[listener]) {
        return *per_listener_[listener];
    }
    return allow_anonymous_;
}

verdict anonymous_policy::authenticate(const client_identity& who,
                                       std::optional<std::string_view> /*password*/) const {
    if (who.username_verified || anonymous_allowed(who.listener)) {
        return verdict::allow();
    }
    // No password store is configured: a User Name alone proves nothing (mosquitto refuses
    // such clients the same way when allow_anonymous is false and no password_file is set).
    return verdict::deny(protocol::reason_code::not_authorized, "allow_anonymous is false");
}

bool anonymous_policy::authorize(const client_identity& /*who*/, access /*what*/,
                                 std::string_view /*topic*/) const {
    return true;
}

} // namespace tern::auth
