#pragma once
/// The admin module's configuration (docs/admin.md): an HTTP listener for Prometheus metrics,
/// the JSON admin API and the readiness page.
///
///     admin_listener PORT [ADDRESS]   # ADDRESS default 127.0.0.1
///     admin_token TOKEN               # required unless ADDRESS is a loopback address
///
/// Thread contract: register_directives() and the handlers run on the parsing thread; the
/// config is a value type.

#include <tern/broker/config_registry.hpp>

#include <cstdint>
#include <string>

namespace tern::admin {

struct admin_config {
    bool enabled = false;
    std::uint16_t port = 0; ///< 0: an ephemeral port (tests), logged at start
    std::string address = "127.0.0.1";
    /// Every request must carry `Authorization: Bearer TOKEN` when set. Never anonymous off
    /// loopback: a non-loopback address without a token is a configuration error.
    std::string token;
    std::string origin; ///< "FILE:LINE" of admin_listener, for errors
};

/// Registers `admin_listener` and `admin_token`, filling `config`; the finisher refuses a
/// non-loopback listener without a token.
void register_directives(broker::config_registry& registry, admin_config& config);

/// True for 127.0.0.0/8, ::1 and "localhost".
bool is_loopback(const std::string& address) noexcept;

} // namespace tern::admin
