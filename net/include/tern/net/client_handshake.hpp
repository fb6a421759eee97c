#pragma once
/// The step-wise handshake of the client-side transports (tls_client_transport,
/// websocket_client_transport). A client speaks first (ClientHello, the HTTP upgrade request), so
/// unlike the server side's lazy handshake the client's is driven explicitly, before any MQTT
/// byte, by async_connect_transport (client_connect.hpp) under its connect deadline.
///
/// Thread contract: plain values.

#include <cstdint>

namespace tern::net {

/// What one handshake step needs next.
enum class handshake_status : std::uint8_t {
    done,       ///< the transport is ready for application bytes
    want_read,  ///< call wait_readable(), then handshake() again
    want_write, ///< call wait_writable(), then handshake() again
    failed,     ///< the error code is set; describe_error() names the cause
};

} // namespace tern::net
