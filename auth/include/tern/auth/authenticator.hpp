#pragma once
/// The access-control seam (STYLE.md §1): who may connect, and what a connected client may
/// publish and subscribe to. The broker asks an `authenticator` at CONNECT, PUBLISH and
/// SUBSCRIBE; which one is plugged in (the built-in anonymous policy, password and ACL files,
/// AWS IoT-style policies) is the composition root's choice, passed in broker_services.

#include <tern/net/peer_identity.hpp>
#include <tern/protocol/reason_code.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tern::auth {

/// Who a client is, as the broker knows it once CONNECT has been read. Built by the
/// connection and kept by it for the connection's life, so authorize() sees the same identity
/// authenticate() accepted.
struct client_identity {
    /// As sent; empty when the server is about to assign one.
    std::string client_id;
    /// The User Name: as sent, or the certificate/PSK identity when the listener uses it as
    /// the user name (use_identity_as_username, use_subject_as_username).
    std::optional<std::string> username;
    /// True when `username` was proven by the TLS layer (a verified client certificate or a
    /// PSK identity) rather than merely claimed.
    bool username_verified = false;
    /// Index of the accepting listener in broker_config::listeners (per_listener_settings).
    std::size_t listener = 0;
    /// The transport's view of the peer (address, TLS details, verified certificate). Owned by
    /// the connection's transport; valid while the connection lives.
    const net::peer_identity* peer = nullptr;
};

/// The outcome of authenticate(): success, or the reason the CONNECT is refused (a CONNACK
/// reason code; the broker maps it to a 3.1.1 return code) and why, for the log line.
struct verdict {
    protocol::reason_code reason = protocol::reason_code::success;
    std::string why;

    bool allowed() const noexcept { return reason == protocol::reason_code::success; }
    static verdict allow() { return {}; }
    static verdict deny(protocol::reason_code r, std::string why) { return {r, std::move(why)}; }
};

/// What a client asks to do with a topic.
enum class access : std::uint8_t {
    publish,   ///< send a PUBLISH (or have its will published) on a topic name
    subscribe, ///< SUBSCRIBE with a topic filter (as sent, including any $share prefix)
    receive,   ///< be sent a message on a topic name (asked only when checks_delivery())
};

/// Thread contract: thread-safe — every worker calls it concurrently, on the connection's
/// worker, between packets. Calls must not block on I/O (they run on the data path); an
/// implementation that reloads its rules swaps an immutable snapshot.
class authenticator {
public:
    virtual ~authenticator() = default;

    /// May this client connect? `password` is the CONNECT Password (binary), if any.
    virtual verdict authenticate(const client_identity& who,
                                 std::optional<std::string_view> password) const = 0;

    /// Whether authenticate(who, password) costs enough (a deliberately slow key derivation,
    /// later a remote call) that the broker should run it on its blocking pool rather than on
    /// the connection's worker, whose other clients would wait meanwhile. Must itself be
    /// cheap. The broker then calls authenticate() from a pool thread, so the thread contract
    /// above (thread-safe, no shared mutable state) is what makes that safe.
    virtual bool authenticate_is_costly(const client_identity& who,
                                        std::optional<std::string_view> password) const noexcept {
        (void)who;
        (void)password;
        return false;
    }

    /// May `who` (authenticated before) do `what` with `topic`? A topic name for publish, a
    /// topic filter for subscribe. False: the broker refuses that one action with Not
    /// authorized and keeps the connection (as mosquitto does).
    virtual bool authorize(const client_identity& who, access what,
                           std::string_view topic) const = 0;

    /// Whether the broker must ask authorize(receive) before each delivery to a client (an ACL
    /// with read rules). False lets the delivery path skip the call.
    virtual bool checks_delivery() const noexcept { return false; }
};

} // namespace tern::auth
