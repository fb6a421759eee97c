#pragma once
/// The authenticator built from mosquitto's files: `password_file`, `acl_file` and
/// `allow_anonymous`, broker-wide or per listener (`per_listener_settings true`). One object
/// is one immutable snapshot of those files; a reload builds a new one and the broker swaps it
/// in on every worker between packets (STYLE.md §4).
///
/// Rules, as mosquitto 2.0 applies them (security_default.c, handle_connect.c):
/// - a user name the TLS layer verified (use_identity_as_username / use_subject_as_username,
///   a PSK identity) needs no password;
/// - with a password file, a client that sends a User Name must give that user's password;
///   one that sends none is anonymous;
/// - anonymous clients get in only where allow_anonymous is true;
/// - with an ACL, publish needs write (a will on a topic the client may not write is dropped,
///   the CONNECT accepted), subscribe needs a read rule some topic of the filter can satisfy
///   (Tern refuses a filter nothing could ever be delivered on; mosquitto grants it and
///   delivers nothing), and every delivery needs read;
/// - no client may publish to `$SYS` topics (except bridges' `$SYS/broker/connection/+/state`),
///   ACL or not; anonymous clients and unknown passwords are refused with Not authorized
///   (v5 0x87, 3.1.1 return code 5), as mosquitto 2.0.11 does in every case.

#include <tern/auth/acl_file.hpp>
#include <tern/auth/anonymous_policy.hpp>
#include <tern/auth/authenticator.hpp>
#include <tern/auth/password_file.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tern::auth {

/// What one listener checks.
struct access_settings {
    /// allow_anonymous: the listener's own, or the broker-wide one.
    bool allow_anonymous = false;
    /// Paths; empty: none.
    std::string password_file;
    std::string acl_file;

    bool operator==(const access_settings&) const = default;
};

/// PBKDF2 rounds from which a password check leaves the worker (about 0.6 ms and more).
inline constexpr std::uint32_t costly_pbkdf2_iterations = 1000;

/// Thread contract: immutable after load(); thread-safe.
class file_authenticator final : public authenticator {
public:
    struct load_result {
        std::shared_ptr<const file_authenticator> authenticator;
        /// "FILE:LINE: message" of the first file that does not load; empty on success.
        std::string error;
    };
    /// Reads every file named in `per_listener` (indexed like broker_config::listeners; a
    /// file named by several listeners is read once and shared).
    static load_result load(const std::vector<access_settings>& per_listener);

    verdict authenticate(const client_identity& who,
                         std::optional<std::string_view> password) const override;
    /// True when the password is checked against a `$7$` entry of at least
    /// costly_pbkdf2_iterations rounds. mosquitto_passwd's 101 rounds (~60 µs, like the
    /// dummy derivation of an unknown user) and `$6$` (one SHA-512) are checked inline: the
    /// two thread hops of the pool cost more latency than they save (measured: CONNACK p99
    /// 2.3 ms with every `$7$` offloaded vs 1.75 ms for mosquitto in a 2k/s storm).
    bool authenticate_is_costly(const client_identity& who,
                                std::optional<std::string_view> password) const noexcept override;
    bool authorize(const client_identity& who, access what, std::string_view topic) const override;
    bool checks_delivery() const noexcept override { return any_acl_; }

    /// The settings it was loaded from.
    const std::vector<access_settings>& settings() const noexcept { return settings_; }

private:
    struct listener_rules {
        std::shared_ptr<const password_file> passwords; ///< null: no password file
        std::shared_ptr<const acl_file> acl;            ///< null: every topic allowed
    };
    file_authenticator(std::vector<access_settings> settings, anonymous_policy anonymous,
                       std::vector<listener_rules> rules);
    const listener_rules* rules_of(std::size_t listener) const noexcept;

    std::vector<access_settings> settings_;
    anonymous_policy anonymous_;
    std::vector<listener_rules> rules_;
    bool any_acl_ = false;
};

} // namespace tern::auth
