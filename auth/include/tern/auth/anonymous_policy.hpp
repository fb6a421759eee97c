#pragma once
/// The built-in authenticator when no password file, ACL or policy is configured: mosquitto's
/// `allow_anonymous` rules. Without a password store a User Name proves nothing, so a client is
/// let in when its listener allows anonymous clients or when the TLS layer verified its
/// identity (a client certificate or PSK identity used as the user name). Everything a
/// connected client asks to publish or subscribe is allowed.

#include <tern/auth/authenticator.hpp>

#include <cstddef>
#include <optional>
#include <string_view>
#include <vector>

namespace tern::auth {

/// Thread contract: immutable after construction; thread-safe.
class anonymous_policy final : public authenticator {
public:
    /// `allow_anonymous`: the global setting. `per_listener`: the listener's own setting where
    /// it has one (per_listener_settings true), indexed like broker_config::listeners.
    anonymous_policy(bool allow_anonymous, std::vector<std::optional<bool>> per_listener);

    /// Not authorized (0x87) for an anonymous client where anonymous clients are not allowed.
    verdict authenticate(const client_identity& who,
                         std::optional<std::string_view> password) const override;
    /// Always true.
    bool authorize(const client_identity& who, access what, std::string_view topic) const override;

    /// The allow_anonymous setting that applies on `listener`.
    bool anonymous_allowed(std::size_t listener) const noexcept;

private:
    bool allow_anonymous_;
    std::vector<std::optional<bool>> per_listener_;
};

} // namespace tern::auth
