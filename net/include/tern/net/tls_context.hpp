#pragma once
/// TLS server contexts for listeners: the operator's own CAs (a bundle, a directory, or both),
/// server certificates per SNI name on one listener, optional ALPN, client-certificate
/// verification (mTLS) with CRLs, TLS-PSK, and named policies that pin versions and cipher
/// suites in one word (modelled on AWS IoT Core's security policies). Built from mosquitto's
/// listener directives (docs/configuration.md "TLS").
///
/// A context is immutable once built. SIGHUP builds a new one from the same options (re-reading
/// every file) and the listener swaps it in: new handshakes use it, established connections
/// keep the one they started with (each transport holds a reference).
///
/// Thread contract: create() is pure apart from reading the named files; a built context is
/// thread-safe (OpenSSL's SSL_CTX is safe to create sessions from concurrently once configured).

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct ssl_ctx_st;
struct ssl_st;

namespace tern::net {

/// A server certificate for one SNI host name (Tern's `sni_certificate HOST CERTFILE KEYFILE`).
struct sni_certificate {
    std::string host; ///< exact name, or "*.example.com" for one label of any value
    std::string certfile;
    std::string keyfile;
    bool operator==(const sni_certificate&) const = default;
};

/// The TLS settings of one listener, as the directives give them.
struct tls_server_options {
    std::string cafile;   ///< PEM bundle of CAs trusted for client certificates
    std::string capath;   ///< directory of hashed CA files (c_rehash / openssl rehash)
    std::string certfile; ///< server certificate chain (PEM), the default for clients without SNI
    std::string keyfile;  ///< its private key (PEM)
    std::string crlfile;  ///< CRL(s) checked against client certificates (PEM)
    std::string dhparamfile;
    /// Ask for a client certificate, verify it against cafile/capath (and crlfile), and refuse
    /// the handshake without one. False: no client certificate is asked for (mosquitto 2.0
    /// semantics: its `require_certificate false` sets SSL_VERIFY_NONE).
    bool require_certificate = false;
    /// Ask for a client certificate and verify it when sent, but accept clients without one.
    bool request_certificate = false;
    /// `tls_version`: the lowest version accepted ("tlsv1.3", "tlsv1.2", "tlsv1.1"); empty:
    /// TLS 1.2 (mosquitto 2.0's default).
    std::string tls_version;
    std::string ciphers;       ///< TLS ≤ 1.2 cipher list (OpenSSL syntax)
    std::string ciphers_tls13; ///< TLS 1.3 cipher suites (OpenSSL syntax)
    std::string policy;        ///< named policy (see tls_policy_names()); empty: none
    std::vector<sni_certificate> sni;
    /// TLS-PSK: `psk_hint` enables it; identities and keys come from `psk_file`
    /// ("identity:hexkey" lines).
    std::string psk_hint;
    std::string psk_file;
    /// ALPN protocols served, in preference order. A client offering none of them (or no ALPN at
    /// all) is still served, without ALPN, as AWS IoT Core and mosquitto do.
    std::vector<std::string> alpn{"mqtt", "x-amzn-mqtt-ca", "x-amzn-http-ca"};
    /// Refuse a client that offers no ALPN, or none of `alpn` (fatal alert
    /// no_application_protocol): AWS IoT Core's port 443 serves MQTT over mutual TLS only to
    /// clients asking for `x-amzn-mqtt-ca`.
    bool require_alpn = false;
    /// Refuse a client whose hello names no server, or a name that neither an `sni` entry nor
    /// the default certificate is for (fatal alert unrecognized_name): AWS IoT Core's custom
    /// domains are told apart by SNI alone.
    bool require_sni = false;

    bool operator==(const tls_server_options&) const = default;
};

/// A named TLS policy: minimum/maximum version and the cipher lists it pins.
struct tls_policy {
    std::string_view name;
    int min_version = 0; ///< OpenSSL TLS1_x_VERSION
    int max_version = 0; ///< 0: the newest OpenSSL supports
    std::string_view ciphers;
    std::string_view ciphers_tls13;
};

/// Every policy `tls_policy NAME` accepts (AWS IoT Core's predefined names, plus the aliases
/// "modern" = TLS13_1_3 and "default" = TLS13_1_2).
const std::vector<tls_policy>& tls_policies();
const tls_policy* find_tls_policy(std::string_view name);

/// One TLS server context. Create with build(); hand to tls_transport.
class tls_server_context : public std::enable_shared_from_this<tls_server_context> {
public:
    /// A built context, or the error text (naming the file and OpenSSL's reason).
    struct build_result {
        std::shared_ptr<const tls_server_context> context;
        std::string error;
    };
    /// Reads every file the options name and configures OpenSSL. Never throws.
    static build_result build(const tls_server_options& options);

    ~tls_server_context();
    tls_server_context(const tls_server_context&) = delete;
    tls_server_context& operator=(const tls_server_context&) = delete;

    /// A new server-side SSL for one connection (nullptr when OpenSSL is out of memory).
    ssl_st* new_session() const;
    /// The TLS-PSK identity the client of `ssl` used (captured by the PSK callback, since
    /// SSL_get_psk_identity() is empty for TLS 1.3 PSK handshakes); empty without one.
    static std::string psk_identity(const ssl_st* ssl);
    const tls_server_options& options() const noexcept { return options_; }

    /// Internal: the SNI, ALPN and PSK callbacks.
    struct callbacks;

private:
    tls_server_context() = default;
    tls_server_options options_;
    ssl_ctx_st* ctx_ = nullptr;
    /// Per SNI name (lower case), its own SSL_CTX with that certificate and the same
    /// verification settings.
    std::vector<std::pair<std::string, ssl_ctx_st*>> sni_;
    std::map<std::string, std::vector<std::uint8_t>, std::less<>> psk_keys_;
    std::vector<std::uint8_t> alpn_wire_;
    friend struct callbacks;
};

/// The slot a listener keeps its current context in: read by the workers on every accept,
/// replaced by a reload. Thread-safe.
class tls_context_slot {
public:
    explicit tls_context_slot(std::shared_ptr<const tls_server_context> initial);
    std::shared_ptr<const tls_server_context> get() const;
    void set(std::shared_ptr<const tls_server_context> next);

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

/// OpenSSL's queued errors as one line ("error:0A000086:SSL routines::certificate verify
/// failed"), emptying the queue; `fallback` when the queue is empty.
std::string openssl_error_text(std::string_view fallback = "unknown error");

} // namespace tern::net
