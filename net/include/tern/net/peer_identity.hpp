#pragma once
/// Who is at the other end of a transport: address, TLS details and the verified client
/// certificate, WebSocket details. A plain value (no Asio, no OpenSSL) so that code which only
/// decides on identities — the authenticator, the registry — can use it without the I/O layer.
///
/// Thread contract: a plain value; the transport that fills it is owner worker only.

#include <optional>
#include <string>
#include <vector>

namespace tern::net {

/// The client certificate a TLS peer presented and the broker verified.
struct peer_certificate {
    /// Subject as mosquitto's `use_subject_as_username` writes it (RFC 2253, e.g.
    /// "CN=device-1,O=Fleet,C=DE").
    std::string subject;
    /// The subject's first Common Name; empty when it has none. `use_identity_as_username`.
    std::string common_name;
    /// Subject Alternative Names in certificate order, each with its type as OpenSSL prints it:
    /// "DNS:device-1.example", "URI:spiffe://fleet/d1", "email:a@b", "IP:10.0.0.1".
    std::vector<std::string> subject_alt_names;
    /// Issuer, RFC 2253.
    std::string issuer;
    /// Serial number in upper-case hex.
    std::string serial;
    /// SHA-256 of the DER encoding, lower-case hex (64 characters): AWS IoT's certificate id.
    std::string sha256_fingerprint;
    /// notBefore / notAfter as "YYYYMMDDHHMMSSZ".
    std::string not_before;
    std::string not_after;
    /// DER of the OCSP CertID (SHA-1, as RFC 6960 clients send) of this certificate and its
    /// issuer from the verified chain; empty when the issuer was not in the chain (a
    /// certificate trusted directly). What ocsp_checker::async_check takes (tern/net/ocsp.hpp).
    std::string ocsp_cert_id;
};

/// Who is at the other end, as far as the transport knows. Filled in as the transport learns
/// it: the TLS fields once the handshake has completed, the WebSocket fields once the upgrade
/// has been answered.
struct peer_identity {
    /// "ADDRESS:PORT" ("[v6]:PORT") of the TCP peer, or the client's real address when a PROXY
    /// protocol header supplied it.
    std::string address;
    /// "tcp", "tls", "ws" or "wss".
    std::string transport;
    bool tls = false;
    /// TLS: the negotiated version ("TLSv1.3"), cipher, SNI server name (empty without SNI) and
    /// ALPN protocol (empty when none was negotiated).
    std::string tls_version;
    std::string cipher;
    std::string server_name;
    std::string alpn;
    /// TLS-PSK: the identity the client used.
    std::string psk_identity;
    /// TLS with a verified client certificate.
    std::optional<peer_certificate> certificate;
    /// WebSocket: the request path and the subprotocol agreed ("mqtt" or "mqttv3.1").
    std::string websocket_path;
    std::string websocket_protocol;
};

} // namespace tern::net
