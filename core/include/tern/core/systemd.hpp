#pragma once
/// systemd's readiness protocol (sd_notify(3)) without libsystemd: one datagram to the socket
/// named by $NOTIFY_SOCKET (a path, or `@name` in the abstract namespace). The unit says
/// `Type=notify`; outside systemd the variable is unset and nothing is sent.
///
/// Thread contract: thread-safe.

#include <string_view>

namespace tern::core {

/// Sends `state` ("READY=1", "RELOADING=1", "STOPPING=1", "STATUS=...", lines joined by '\n').
/// Returns false when $NOTIFY_SOCKET is unset or the datagram could not be sent.
bool notify_service_manager(std::string_view state) noexcept;

} // namespace tern::core
