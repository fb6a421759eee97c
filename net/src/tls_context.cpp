#include <tern/net/tls_context.hpp>

#include <fmt/format.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <mutex>

namespace tern::net {

namespace {

// The TLS 1.2 suites of AWS IoT Core's 2022 policies (forward-secret AEAD and CBC-SHA2 suites;
// the 2022 policies dropped SHA-1 CBC) and of its older, wider ones. docs/configuration.md
// "tls_policy" lists where these come from.
constexpr std::string_view aws_2022_tls12 =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-SHA256:"
    "ECDHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384:AES128-GCM-SHA256:AES128-SHA256:"
    "AES256-GCM-SHA384:AES256-SHA256";
constexpr std::string_view aws_legacy_tls12 =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-SHA256:"
    "ECDHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES256-SHA384:"
    "ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES256-SHA:ECDHE-ECDSA-AES256-SHA:AES128-GCM-SHA256:"
    "AES128-SHA256:AES128-SHA:AES256-GCM-SHA384:AES256-SHA256:AES256-SHA:@SECLEVEL=0";
constexpr std::string_view all_tls13 =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

int min_version_of(std::string_view name) {
    if (name == "tlsv1.3") {
        return TLS1_3_VERSION;
    }
    if (name == "tlsv1.1") {
        return TLS1_1_VERSION;
    }
    return TLS1_2_VERSION; // "tlsv1.2" and the default
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

/// "*.example.com" matches exactly one label in front of ".example.com".
bool host_matches(std::string_view pattern, std::string_view host) {
    if (pattern.size() > 2 && pattern.substr(0, 2) == "*.") {
        const auto suffix = pattern.substr(1);
        if (host.size() <= suffix.size() || host.substr(host.size() - suffix.size()) != suffix) {
            return false;
        }
        const auto label = host.substr(0, host.size() - suffix.size());
        return label.find('.') == std::string_view::npos;
    }
    return pattern == host;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

} // namespace

std::string openssl_error_text(std::string_view fallback) {
    std::string text;
    unsigned long code = 0;
    while ((code = ERR_get_error()) != 0) {
        char buf[256];
        ERR_error_string_n(code, buf, sizeof buf);
        if (!text.empty()) {
            text += "; ";
        }
        text += buf;
    }
    return text.empty() ? std::string(fallback) : text;
}

const std::vector<tls_policy>& tls_policies() {
    static const std::vector<tls_policy> policies{
        {"IoTSecurityPolicy_TLS13_1_3_2022_10", TLS1_3_VERSION, 0, aws_2022_tls12, all_tls13},
        {"IoTSecurityPolicy_TLS13_1_2_2022_10", TLS1_2_VERSION, 0, aws_2022_tls12, all_tls13},
        {"IoTSecurityPolicy_TLS12_1_2_2022_10", TLS1_2_VERSION, TLS1_2_VERSION, aws_2022_tls12, ""},
        {"IoTSecurityPolicy_TLS12_1_0_2016_01", TLS1_VERSION, TLS1_2_VERSION, aws_legacy_tls12, ""},
        {"IoTSecurityPolicy_TLS12_1_0_2015_01", TLS1_VERSION, TLS1_2_VERSION, aws_legacy_tls12, ""},
        {"modern", TLS1_3_VERSION, 0, aws_2022_tls12, all_tls13},
        {"default", TLS1_2_VERSION, 0, aws_2022_tls12, all_tls13},
    };
    return policies;
}

const tls_policy* find_tls_policy(std::string_view name) {
    for (const auto& p : tls_policies()) {
        if (p.name == name) {
            return &p;
        }
    }
    return nullptr;
}

namespace {

/// ex_data slot of an SSL holding the PSK identity its client used (a heap std::string, freed
/// with the SSL).
int psk_identity_slot() {
    static const int slot = SSL_get_ex_new_index(
        0, nullptr, nullptr, nullptr, [](void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
            delete static_cast<std::string*>(ptr);
        });
    return slot;
}

} // namespace

std::string tls_server_context::psk_identity(const ssl_st* ssl) {
    const auto* identity =
        static_cast<const std::string*>(SSL_get_ex_data(ssl, psk_identity_slot()));
    return identity != nullptr ? *identity : std::string();
}

struct tls_server_context::callbacks {
    static const tls_server_context* self(SSL* ssl) {
        return static_cast<const tls_server_context*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
    }

    /// SNI: switch to the context of the certificate for the requested name; an unknown name
    /// (or none) keeps the listener's default certificate, unless require_sni refuses it.
    /// OpenSSL (1.1.1 on) calls this for every hello, with or without a server name.
    static int servername(SSL* ssl, int* alert, void* arg) {
        const auto* ctx = static_cast<const tls_server_context*>(arg);
        const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
        if (name == nullptr) {
            if (ctx->options_.require_sni) {
                *alert = SSL_AD_UNRECOGNIZED_NAME;
                return SSL_TLSEXT_ERR_ALERT_FATAL;
            }
            return SSL_TLSEXT_ERR_OK;
        }
        const auto host = lower(name);
        for (const auto& [pattern, sni_ctx] : ctx->sni_) {
            if (host_matches(pattern, host)) {
                SSL_set_SSL_CTX(ssl, sni_ctx);
                return SSL_TLSEXT_ERR_OK;
            }
        }
        if (ctx->options_.require_sni) {
            // The default certificate may be for this name (its SAN or CN, wildcards included).
            X509* cert = SSL_CTX_get0_certificate(ctx->ctx_);
            if (cert == nullptr ||
                X509_check_host(cert, host.data(), host.size(), 0, nullptr) != 1) {
                *alert = SSL_AD_UNRECOGNIZED_NAME;
                return SSL_TLSEXT_ERR_ALERT_FATAL;
            }
        }
        return SSL_TLSEXT_ERR_OK;
    }

    /// require_alpn: a hello without the ALPN extension never reaches alpn_select, so it is
    /// refused here, before anything else of the handshake.
    static int client_hello(SSL* ssl, int* alert, void*) {
        const unsigned char* ext = nullptr;
        std::size_t len = 0;
        if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &ext,
                                      &len) != 1) {
            *alert = SSL_AD_NO_APPLICATION_PROTOCOL;
            return SSL_CLIENT_HELLO_ERROR;
        }
        return SSL_CLIENT_HELLO_SUCCESS;
    }

    /// ALPN: pick the first of our protocols the client offers; none in common (or an unknown
    /// one) is served without ALPN rather than refused.
    static int alpn_select(SSL*, const unsigned char** out, unsigned char* outlen,
                           const unsigned char* in, unsigned int inlen, void* arg) {
        const auto* ctx = static_cast<const tls_server_context*>(arg);
        if (ctx->alpn_wire_.empty()) {
            return SSL_TLSEXT_ERR_NOACK;
        }
        unsigned char* selected = nullptr;
        if (SSL_select_next_proto(&selected, outlen, ctx->alpn_wire_.data(),
                                  static_cast<unsigned int>(ctx->alpn_wire_.size()), in,
                                  inlen) != OPENSSL_NPN_NEGOTIATED) {
            // OpenSSL sends no_application_protocol for ALERT_FATAL here.
            return ctx->options_.require_alpn ? SSL_TLSEXT_ERR_ALERT_FATAL : SSL_TLSEXT_ERR_NOACK;
        }
        *out = selected;
        return SSL_TLSEXT_ERR_OK;
    }

    static unsigned int psk(SSL* ssl, const char* identity, unsigned char* psk_out,
                            unsigned int max_psk_len) {
        const auto* ctx = self(ssl);
        if (ctx == nullptr || identity == nullptr) {
            return 0;
        }
        const auto it = ctx->psk_keys_.find(std::string_view(identity));
        if (it == ctx->psk_keys_.end() || it->second.size() > max_psk_len) {
            return 0; // unknown identity: the handshake fails
        }
        std::memcpy(psk_out, it->second.data(), it->second.size());
        // SSL_get_psk_identity() knows it only for TLS <= 1.2: keep it for the connection.
        const int slot = psk_identity_slot();
        delete static_cast<std::string*>(SSL_get_ex_data(ssl, slot));
        auto* kept = new std::string(identity);
        if (SSL_set_ex_data(ssl, slot, kept) != 1) {
            delete kept;
        }
        return static_cast<unsigned int>(it->second.size());
    }
};

namespace {

/// Everything but the certificate: versions, ciphers, verification, CRL, DH, modes.
std::string configure_common(SSL_CTX* ctx, const tls_server_options& o) {
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION |
                                 // A peer closing TCP without close_notify is an ordinary EOF
                                 // here: MQTT decides (by DISCONNECT) whether it was orderly.
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    // Session resumption with client certificates needs a context id.
    static const unsigned char sid[] = "tern";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);
    // Resumption by stateless tickets only (mosquitto 2.0 resumes too): OpenSSL's server-side
    // session cache would keep an SSL_SESSION (with the client's certificate) for up to 20,480
    // recent handshakes, a few KiB each, on top of the live connections. Tickets are sealed
    // with keys of this context, so a SIGHUP reload (new CAs, a new CRL) also ends resumption
    // of sessions verified before it.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    // One TLS 1.3 ticket per handshake, not OpenSSL's default two: a device resumes with one,
    // and each ticket costs both ends CPU on every full handshake (sealed here, parsed into a
    // session by the client) — a 4000-connection storm: 0.36 -> 0.29 ms of broker CPU per
    // handshake with none; docs/performance.md.
    SSL_CTX_set_num_tickets(ctx, 1);

    int min_version = min_version_of(o.tls_version);
    int max_version = 0;
    std::string ciphers = o.ciphers;
    std::string ciphers13 = o.ciphers_tls13;
    if (!o.policy.empty()) {
        const auto* p = find_tls_policy(o.policy);
        if (p == nullptr) {
            return fmt::format("unknown tls_policy '{}'", o.policy);
        }
        min_version = p->min_version;
        max_version = p->max_version;
        ciphers = std::string(p->ciphers);
        ciphers13 = std::string(p->ciphers_tls13);
    }
    if (min_version < TLS1_2_VERSION) {
        // OpenSSL 3 refuses TLS 1.0/1.1 at security level 1 and above; the operator asked.
        SSL_CTX_set_security_level(ctx, 0);
    }
    SSL_CTX_set_min_proto_version(ctx, min_version);
    if (max_version != 0) {
        SSL_CTX_set_max_proto_version(ctx, max_version);
    }
    if (!ciphers.empty() && SSL_CTX_set_cipher_list(ctx, ciphers.c_str()) != 1) {
        return fmt::format("ciphers '{}': {}", ciphers, openssl_error_text("no usable cipher"));
    }
    if (!ciphers13.empty() && SSL_CTX_set_ciphersuites(ctx, ciphers13.c_str()) != 1) {
        return fmt::format("ciphers_tls1.3 '{}': {}", ciphers13,
                           openssl_error_text("no usable cipher suite"));
    }

    if (!o.cafile.empty() || !o.capath.empty()) {
        if (SSL_CTX_load_verify_locations(ctx, o.cafile.empty() ? nullptr : o.cafile.c_str(),
                                          o.capath.empty() ? nullptr : o.capath.c_str()) != 1) {
            return fmt::format("cannot load CA certificates from {}: {}",
                               o.cafile.empty() ? o.capath : o.cafile, openssl_error_text());
        }
        if (!o.cafile.empty()) {
            // Tell clients which CAs we accept, so one holding several certificates picks right.
            if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(o.cafile.c_str())) {
                SSL_CTX_set_client_CA_list(ctx, names);
            }
            ERR_clear_error();
        }
    }
    if (o.require_certificate) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    } else if (o.request_certificate) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    }
    if (!o.crlfile.empty()) {
        X509_STORE* store = SSL_CTX_get_cert_store(ctx);
        X509_LOOKUP* lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());
        if (lookup == nullptr ||
            X509_load_crl_file(lookup, o.crlfile.c_str(), X509_FILETYPE_PEM) <= 0) {
            return fmt::format("cannot load crlfile {}: {}", o.crlfile, openssl_error_text());
        }
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    }
    if (!o.dhparamfile.empty()) {
        BIO* bio = BIO_new_file(o.dhparamfile.c_str(), "r");
        EVP_PKEY* dh = bio != nullptr ? PEM_read_bio_Parameters(bio, nullptr) : nullptr;
        BIO_free(bio);
        if (dh == nullptr) {
            return fmt::format("cannot read dhparamfile {}: {}", o.dhparamfile,
                               openssl_error_text());
        }
        if (SSL_CTX_set0_tmp_dh_pkey(ctx, dh) != 1) {
            EVP_PKEY_free(dh);
            return fmt::format("dhparamfile {}: {}", o.dhparamfile, openssl_error_text());
        }
    } else {
        SSL_CTX_set_dh_auto(ctx, 1);
    }
    return {};
}

std::string load_certificate(SSL_CTX* ctx, const std::string& certfile,
                             const std::string& keyfile) {
    if (SSL_CTX_use_certificate_chain_file(ctx, certfile.c_str()) != 1) {
        return fmt::format("cannot load certfile {}: {}", certfile, openssl_error_text());
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, keyfile.c_str(), SSL_FILETYPE_PEM) != 1) {
        return fmt::format("cannot load keyfile {}: {}", keyfile, openssl_error_text());
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        return fmt::format("keyfile {} does not match certfile {}: {}", keyfile, certfile,
                           openssl_error_text());
    }
    return {};
}

/// psk_file: "identity:hexkey" per line; blank lines and '#' comments ignored.
std::string load_psk_file(const std::string& path,
                          std::map<std::string, std::vector<std::uint8_t>, std::less<>>& out) {
    std::ifstream in(path);
    if (!in) {
        return fmt::format("cannot read psk_file {}: {}", path, std::strerror(errno));
    }
    std::string text;
    for (std::size_t line_no = 1; std::getline(in, text); ++line_no) {
        if (!text.empty() && text.back() == '\r') {
            text.pop_back();
        }
        if (text.empty() || text[0] == '#') {
            continue;
        }
        const auto colon = text.find(':');
        if (colon == std::string::npos || colon == 0) {
            return fmt::format("{}:{}: expected identity:hexkey", path, line_no);
        }
        const std::string_view hex = std::string_view(text).substr(colon + 1);
        if (hex.empty() || hex.size() % 2 != 0 || hex.size() > 2 * PSK_MAX_PSK_LEN) {
            return fmt::format("{}:{}: the key must be an even number of hex digits (at most {})",
                               path, line_no, 2 * PSK_MAX_PSK_LEN);
        }
        std::vector<std::uint8_t> key;
        for (std::size_t i = 0; i < hex.size(); i += 2) {
            const int hi = hex_value(hex[i]);
            const int lo = hex_value(hex[i + 1]);
            if (hi < 0 || lo < 0) {
                return fmt::format("{}:{}: '{}' is not a hex key", path, line_no, hex);
            }
            key.push_back(static_cast<std::uint8_t>(hi * 16 + lo));
        }
        out[text.substr(0, colon)] = std::move(key);
    }
    return {};
}

} // namespace

tls_server_context::build_result tls_server_context::build(const tls_server_options& options) {
    ERR_clear_error();
    std::shared_ptr<tls_server_context> self(new tls_server_context);
    self->options_ = options;
    auto make_ctx = [&](const std::string& certfile, const std::string& keyfile,
                        std::string& error) -> SSL_CTX* {
        SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
        if (ctx == nullptr) {
            error = openssl_error_text("SSL_CTX_new failed");
            return nullptr;
        }
        error = configure_common(ctx, options);
        if (error.empty() && !certfile.empty()) {
            error = load_certificate(ctx, certfile, keyfile);
        }
        if (!error.empty()) {
            SSL_CTX_free(ctx);
            return nullptr;
        }
        SSL_CTX_set_app_data(ctx, self.get());
        SSL_CTX_set_alpn_select_cb(ctx, &callbacks::alpn_select, self.get());
        if (options.require_alpn) {
            SSL_CTX_set_client_hello_cb(ctx, &callbacks::client_hello, self.get());
        }
        return ctx;
    };

    if (options.certfile.empty() && options.psk_hint.empty()) {
        return {nullptr, "a TLS listener needs certfile and keyfile (or psk_hint for TLS-PSK)"};
    }
    if (!options.certfile.empty() && options.keyfile.empty()) {
        return {nullptr, "certfile is set but keyfile is not"};
    }
    for (const auto& p : options.alpn) {
        if (p.empty() || p.size() > 255) {
            return {nullptr, fmt::format("ALPN protocol '{}' must be 1..255 bytes", p)};
        }
        self->alpn_wire_.push_back(static_cast<std::uint8_t>(p.size()));
        self->alpn_wire_.insert(self->alpn_wire_.end(), p.begin(), p.end());
    }
    std::string error;
    self->ctx_ = make_ctx(options.certfile, options.keyfile, error);
    if (self->ctx_ == nullptr) {
        return {nullptr, error};
    }
    for (const auto& entry : options.sni) {
        SSL_CTX* sni_ctx = make_ctx(entry.certfile, entry.keyfile, error);
        if (sni_ctx == nullptr) {
            return {nullptr, fmt::format("sni_certificate {}: {}", entry.host, error)};
        }
        self->sni_.emplace_back(lower(entry.host), sni_ctx);
    }
    if (options.require_sni && options.certfile.empty() && options.sni.empty()) {
        return {nullptr, "require_sni is set but the listener has no certificate a name could "
                         "match (TLS-PSK only)"};
    }
    if (options.require_alpn && options.alpn.empty()) {
        return {nullptr, "require_alpn is set but no ALPN protocol is served"};
    }
    if (!self->sni_.empty() || options.require_sni) {
        SSL_CTX_set_tlsext_servername_callback(self->ctx_, &callbacks::servername);
        SSL_CTX_set_tlsext_servername_arg(self->ctx_, self.get());
    }
    if (!options.psk_hint.empty()) {
        if (options.psk_file.empty()) {
            return {nullptr, "psk_hint is set but no psk_file gives the keys"};
        }
        if (auto e = load_psk_file(options.psk_file, self->psk_keys_); !e.empty()) {
            return {nullptr, e};
        }
        for (SSL_CTX* c : {self->ctx_}) {
            SSL_CTX_use_psk_identity_hint(c, options.psk_hint.c_str());
            SSL_CTX_set_psk_server_callback(c, &callbacks::psk);
        }
    }
    return {std::move(self), {}};
}

tls_server_context::~tls_server_context() {
    for (auto& [name, ctx] : sni_) {
        SSL_CTX_free(ctx);
    }
    SSL_CTX_free(ctx_);
}

ssl_st* tls_server_context::new_session() const {
    SSL* ssl = SSL_new(ctx_);
    if (ssl != nullptr) {
        SSL_set_accept_state(ssl);
    }
    return ssl;
}

struct tls_context_slot::impl {
    mutable std::mutex mutex;
    std::shared_ptr<const tls_server_context> current;
};

tls_context_slot::tls_context_slot(std::shared_ptr<const tls_server_context> initial)
    : impl_(std::make_shared<impl>()) {
    impl_->current = std::move(initial);
}

std::shared_ptr<const tls_server_context> tls_context_slot::get() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->current;
}

void tls_context_slot::set(std::shared_ptr<const tls_server_context> next) {
    {
        std::lock_guard lock(impl_->mutex);
        impl_->current.swap(next);
    }
    // The old context is released here, outside the lock (its connections may still hold it).
}

} // namespace tern::net
