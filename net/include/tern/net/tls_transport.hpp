#pragma once
/// The server side of TLS for listeners: a tls_stream made from the listener's current
/// tls_server_context. The handshake is lazy — it runs inside the first try_read/try_write
/// calls — so a client that stalls mid-handshake is cut off by the connection's connect
/// timeout like one that never sends CONNECT, and no extra state machine sits in the accept
/// path. Once it completes, peer() holds the SNI name, the PSK identity and the verified
/// client certificate (subject, CN, SANs, issuer, serial, SHA-256 fingerprint, validity).
///
/// Thread contract: owner worker only (see transport.hpp).

#include <tern/net/tls_context.hpp>
#include <tern/net/tls_stream.hpp>

#include <memory>

namespace tern::net {

class tls_transport final : public tls_stream {
public:
    /// Takes an accepted TCP socket and a server context; nothing is sent until the client's
    /// ClientHello arrives. When OpenSSL cannot allocate the session, every call fails.
    tls_transport(boost::asio::ip::tcp::socket socket,
                  std::shared_ptr<const tls_server_context> context);

private:
    void on_handshake_done() override;

    /// Keeps the context (and the SNI/ALPN/PSK callbacks' data) alive for this session.
    std::shared_ptr<const tls_server_context> context_;
};

} // namespace tern::net
