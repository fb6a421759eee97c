#include <tern/net/tcp_transport.hpp>
#include <tern/net/tls_client.hpp>
#include <tern/net/tls_context.hpp>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <fmt/format.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace tern::net {

namespace asio = boost::asio;

namespace {

bool is_ip_literal(const std::string& name) {
    boost::system::error_code ec;
    (void)asio::ip::make_address(name, ec);
    return !ec;
}

} // namespace

tls_client_context::build_result tls_client_context::build(const tls_client_options& o) {
    build_result r;
    std::shared_ptr<tls_client_context> self(new tls_client_context());
    self->options_ = o;
    ERR_clear_error();
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == nullptr) {
        r.error = "cannot create a TLS context: " + openssl_error_text();
        return r;
    }
    self->ctx_ = ctx;
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // A server closing TCP without close_notify is an ordinary EOF: MQTT decides whether the
    // end was orderly.
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    const int min_version = o.tls_version == "tlsv1.3" ? TLS1_3_VERSION : TLS1_2_VERSION;
    if (!o.tls_version.empty() && o.tls_version != "tlsv1.2" && o.tls_version != "tlsv1.3") {
        r.error = fmt::format("tls_version '{}': expected tlsv1.2 or tlsv1.3", o.tls_version);
        return r;
    }
    SSL_CTX_set_min_proto_version(ctx, min_version);
    if (o.insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
        if (!o.cafile.empty() || !o.capath.empty()) {
            if (SSL_CTX_load_verify_locations(ctx, o.cafile.empty() ? nullptr : o.cafile.c_str(),
                                              o.capath.empty() ? nullptr : o.capath.c_str()) != 1) {
                r.error = fmt::format("cannot load CA certificates from {}: {}",
                                      o.cafile.empty() ? o.capath : o.cafile, openssl_error_text());
                return r;
            }
        } else if (o.system_ca && SSL_CTX_set_default_verify_paths(ctx) != 1) {
            r.error = "cannot load the system CA certificates: " + openssl_error_text();
            return r;
        }
    }
    if (o.certfile.empty() != o.keyfile.empty()) {
        r.error = "a client certificate needs both certfile and keyfile";
        return r;
    }
    if (!o.certfile.empty()) {
        if (SSL_CTX_use_certificate_chain_file(ctx, o.certfile.c_str()) != 1) {
            r.error = fmt::format("certfile {}: {}", o.certfile, openssl_error_text());
            return r;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, o.keyfile.c_str(), SSL_FILETYPE_PEM) != 1) {
            r.error = fmt::format("keyfile {}: {}", o.keyfile, openssl_error_text());
            return r;
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
            r.error = fmt::format("keyfile {} does not match certfile {}: {}", o.keyfile,
                                  o.certfile, openssl_error_text());
            return r;
        }
    }
    if (!o.alpn.empty()) {
        std::vector<unsigned char> wire;
        for (const auto& p : o.alpn) {
            if (p.empty() || p.size() > 255) {
                r.error = fmt::format("ALPN protocol '{}': 1 to 255 bytes", p);
                return r;
            }
            wire.push_back(static_cast<unsigned char>(p.size()));
            wire.insert(wire.end(), p.begin(), p.end());
        }
        // SSL_CTX_set_alpn_protos returns 0 on success (unlike most of OpenSSL).
        if (SSL_CTX_set_alpn_protos(ctx, wire.data(), static_cast<unsigned>(wire.size())) != 0) {
            r.error = "ALPN list rejected by OpenSSL: " + openssl_error_text();
            return r;
        }
    }
    r.context = std::move(self);
    return r;
}

tls_client_context::~tls_client_context() {
    if (ctx_ != nullptr) {
        SSL_CTX_free(ctx_);
    }
}

ssl_st* tls_client_context::new_session() const {
    return SSL_new(ctx_);
}

tls_client_transport::tls_client_transport(asio::ip::tcp::socket socket,
                                           std::shared_ptr<const tls_client_context> context,
                                           tls_client_target target)
    : tls_stream(std::move(socket), "server"), context_(std::move(context)) {
    peer_.server_name = target.server_name;
    ERR_clear_error();
    if (!adopt(context_ ? context_->new_session() : nullptr)) {
        return;
    }
    SSL_set_connect_state(ssl_);
    if (!target.server_name.empty() &&
        SSL_set_tlsext_host_name(ssl_, target.server_name.c_str()) != 1) {
        error_ =
            fmt::format("TLS: cannot send SNI '{}': {}", target.server_name, openssl_error_text());
        return;
    }
    if (!context_->options().insecure && !target.verify_name.empty()) {
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
        const bool ok =
            is_ip_literal(target.verify_name)
                ? X509_VERIFY_PARAM_set1_ip_asc(param, target.verify_name.c_str()) == 1
                : X509_VERIFY_PARAM_set1_host(param, target.verify_name.c_str(), 0) == 1;
        if (!ok) {
            error_ = fmt::format("TLS: cannot verify the name '{}': {}", target.verify_name,
                                 openssl_error_text());
            return;
        }
        // Host names: no partial wildcards ("f*.example.com"), as browsers do.
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    }
}

handshake_status tls_client_transport::handshake(boost::system::error_code& ec) {
    ec.clear();
    if (ssl_ == nullptr || closed_ || (!error_.empty() && !handshake_done_)) {
        ec = boost::system::errc::make_error_code(boost::system::errc::protocol_error);
        if (error_.empty()) {
            error_ = "TLS: closed";
        }
        return handshake_status::failed;
    }
    if (handshake_done_) {
        return handshake_status::done;
    }
    ERR_clear_error();
    const int rc = SSL_do_handshake(ssl_);
    if (rc == 1) {
        note_handshake();
        return handshake_status::done;
    }
    want direction = want::read;
    classify(SSL_get_error(ssl_, rc), direction, ec);
    if (is_would_block(ec)) {
        read_wants_ = direction;
        write_wants_ = direction;
        return direction == want::read ? handshake_status::want_read : handshake_status::want_write;
    }
    if (error_.empty()) {
        error_ = fmt::format("TLS handshake failed: {}", ec.message());
    }
    return handshake_status::failed;
}

} // namespace tern::net
