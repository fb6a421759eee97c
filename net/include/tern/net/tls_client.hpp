#pragma once
/// The client side of TLS, for outbound connections (tern-bench, the bridge): a client context
/// (trusted CAs by bundle, directory or the system store; a client certificate for mTLS; ALPN;
/// the lowest version) and tls_client_transport, OpenSSL driven on the non-blocking socket's
/// descriptor through the same tls_stream as the server's tls_transport.
///
/// Per connection: the SNI server name sent in the ClientHello and the name the server
/// certificate must carry (X509_VERIFY_PARAM host check, or the IP address check for an IP
/// literal). AWS IoT Core, for one, needs SNI to pick the account's endpoint and, on port 443,
/// ALPN `x-amzn-mqtt-ca`.
///
/// Thread contract: a built context is immutable and thread-safe (sessions may be created from
/// it on any worker); a transport is owner worker only.

#include <tern/net/client_handshake.hpp>
#include <tern/net/tls_stream.hpp>
#include <tern/net/transport.hpp>

#include <boost/asio/ip/tcp.hpp>

#include <memory>
#include <string>
#include <vector>

struct ssl_ctx_st;
struct ssl_st;

namespace tern::net {

/// What an outbound TLS connection trusts and presents.
struct tls_client_options {
    /// PEM bundle of CAs trusted for the server certificate.
    std::string cafile;
    /// Directory of hashed CA files (openssl rehash).
    std::string capath;
    /// With neither cafile nor capath: trust OpenSSL's default store (the system CAs).
    bool system_ca = true;
    /// Client certificate chain and key (PEM), for mTLS; both or neither.
    std::string certfile;
    std::string keyfile;
    /// ALPN protocols offered, in preference order (e.g. {"x-amzn-mqtt-ca"}); empty: no ALPN.
    std::vector<std::string> alpn;
    /// Lowest version accepted: "tlsv1.2" (the default when empty) or "tlsv1.3".
    std::string tls_version;
    /// No certificate verification at all (no chain, no host name check). Tests only.
    bool insecure = false;

    bool operator==(const tls_client_options&) const = default;
};

/// One client context. Build once, share among connections.
class tls_client_context {
public:
    struct build_result {
        std::shared_ptr<const tls_client_context> context;
        std::string error; ///< names the file and OpenSSL's reason when context is null
    };
    /// Reads every file the options name and configures OpenSSL. Never throws.
    static build_result build(const tls_client_options& options);

    ~tls_client_context();
    tls_client_context(const tls_client_context&) = delete;
    tls_client_context& operator=(const tls_client_context&) = delete;

    /// A new client-side SSL (nullptr when OpenSSL is out of memory).
    ssl_st* new_session() const;
    const tls_client_options& options() const noexcept { return options_; }

private:
    tls_client_context() = default;
    tls_client_options options_;
    ssl_ctx_st* ctx_ = nullptr;
};

/// Who the server is expected to be, per connection.
struct tls_client_target {
    /// Sent as SNI; empty: no SNI (an IP literal has none, RFC 6066 §3).
    std::string server_name;
    /// The name (DNS name or IP literal) the server certificate must carry; empty: the chain
    /// is verified but not the name. Ignored with tls_client_options::insecure.
    std::string verify_name;
};

/// TLS to a server over a connected TCP socket. Call handshake() until it returns done (or
/// failed) before reading or writing; async_connect_transport does.
class tls_client_transport final : public tls_stream {
public:
    /// Takes a connected socket (made non-blocking, TCP_NODELAY). When the session cannot be
    /// created (OpenSSL out of memory, a bad name), handshake() fails with describe_error().
    tls_client_transport(boost::asio::ip::tcp::socket socket,
                         std::shared_ptr<const tls_client_context> context,
                         tls_client_target target);

    /// One step of the handshake (SSL_do_handshake). Errors: protocol_error with
    /// describe_error() "TLS handshake failed: ... certificate verify failed (server
    /// certificate: Hostname mismatch)", a socket error, or eof.
    handshake_status handshake(boost::system::error_code& ec);

private:
    std::shared_ptr<const tls_client_context> context_;
};

} // namespace tern::net
