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

/// As in tls_transport.cpp: small frames are coalesced into one record's worth of plaintext,
/// in a buffer per thread (OpenSSL has encrypted it by the time SSL_write returns).
constexpr std::size_t record_size = 16 * 1024;

std::vector<std::uint8_t>& coalesce_buffer() {
    thread_local std::vector<std::uint8_t> buffer(record_size);
    return buffer;
}

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
    : socket_(std::move(socket)), context_(std::move(context)) {
    boost::system::error_code ec;
    socket_.set_option(asio::ip::tcp::no_delay(true), ec);
    socket_.non_blocking(true, ec);
    const auto remote = socket_.remote_endpoint(ec);
    peer_.address = ec ? std::string("?") : endpoint_string(remote);
    peer_.transport = "tls";
    peer_.tls = true;
    peer_.server_name = target.server_name;
    ERR_clear_error();
    ssl_ = context_ ? context_->new_session() : nullptr;
    if (ssl_ == nullptr || SSL_set_fd(ssl_, socket_.native_handle()) != 1) {
        error_ = "TLS session could not be created: " + openssl_error_text();
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

tls_client_transport::~tls_client_transport() {
    if (ssl_ != nullptr) {
        SSL_free(ssl_);
    }
}

void tls_client_transport::classify(int ssl_error, want& direction, boost::system::error_code& ec) {
    switch (ssl_error) {
    case SSL_ERROR_WANT_READ:
        direction = want::read;
        ec = asio::error::would_block;
        return;
    case SSL_ERROR_WANT_WRITE:
        direction = want::write;
        ec = asio::error::would_block;
        return;
    case SSL_ERROR_ZERO_RETURN:
        ec = asio::error::eof;
        ERR_clear_error();
        return;
    case SSL_ERROR_SYSCALL: {
        const int e = errno;
        const auto reason = openssl_error_text("");
        if (e == 0 && reason.empty()) {
            ec = asio::error::eof;
            if (!handshake_done_) {
                error_ = "TLS handshake failed: connection closed by the server";
            }
        } else {
            ec = boost::system::error_code(e != 0 ? e : EPROTO, boost::system::system_category());
            if (!handshake_done_) {
                error_ = fmt::format("TLS handshake failed: {}",
                                     reason.empty() ? std::strerror(e) : reason);
            }
        }
        return;
    }
    default: {
        auto reason = openssl_error_text("protocol error");
        const long verify = SSL_get_verify_result(ssl_);
        if (verify != X509_V_OK) {
            reason +=
                fmt::format(" (server certificate: {})", X509_verify_cert_error_string(verify));
        }
        error_ = fmt::format("TLS {}: {}", handshake_done_ ? "error" : "handshake failed", reason);
        ec = boost::system::errc::make_error_code(boost::system::errc::protocol_error);
        return;
    }
    }
}

void tls_client_transport::on_handshake_done() {
    handshake_done_ = true;
    peer_.tls_version = SSL_get_version(ssl_);
    if (const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl_)) {
        peer_.cipher = SSL_CIPHER_get_name(cipher);
    }
    const unsigned char* alpn = nullptr;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(ssl_, &alpn, &alpn_len);
    if (alpn != nullptr) {
        peer_.alpn.assign(reinterpret_cast<const char*>(alpn), alpn_len);
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
        on_handshake_done();
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

std::size_t tls_client_transport::try_read(std::span<std::uint8_t> buffer,
                                           boost::system::error_code& ec) {
    ec.clear();
    if (ssl_ == nullptr || closed_) {
        ec = asio::error::bad_descriptor;
        return 0;
    }
    std::size_t total = 0;
    // Drain what OpenSSL can give now (several records), so the caller decodes one big span.
    while (total < buffer.size()) {
        std::size_t n = 0;
        ERR_clear_error();
        const int rc = SSL_read_ex(ssl_, buffer.data() + total, buffer.size() - total, &n);
        if (!handshake_done_ && SSL_is_init_finished(ssl_)) {
            on_handshake_done();
        }
        if (rc == 1) {
            total += n;
            continue;
        }
        boost::system::error_code e;
        classify(SSL_get_error(ssl_, rc), read_wants_, e);
        if (total > 0) {
            break; // deliver the bytes; a wait or the error comes on the next call
        }
        ec = e;
        return 0;
    }
    read_wants_ = want::read;
    return total;
}

std::size_t tls_client_transport::try_write(std::span<const asio::const_buffer> buffers,
                                            boost::system::error_code& ec) {
    ec.clear();
    if (ssl_ == nullptr || closed_) {
        ec = asio::error::bad_descriptor;
        return 0;
    }
    std::size_t taken = 0;
    std::size_t index = 0;
    std::size_t offset = 0; // into buffers[index]
    auto& scratch = coalesce_buffer();
    while (index < buffers.size()) {
        // One SSL_write per record: a large buffer goes as it is, small ones are coalesced. A
        // retry after WANT_WRITE coalesces the same bytes again (the caller passes the untaken
        // rest unchanged), which OpenSSL requires.
        const auto* data = static_cast<const std::uint8_t*>(buffers[index].data()) + offset;
        std::size_t len = buffers[index].size() - offset;
        if (len == 0) {
            ++index;
            offset = 0;
            continue;
        }
        if (len < record_size) {
            std::size_t fill = 0;
            std::size_t i = index;
            std::size_t off = offset;
            while (i < buffers.size() && fill < record_size) {
                const auto* p = static_cast<const std::uint8_t*>(buffers[i].data()) + off;
                const std::size_t n = std::min(buffers[i].size() - off, record_size - fill);
                std::memcpy(scratch.data() + fill, p, n);
                fill += n;
                off += n;
                if (off == buffers[i].size()) {
                    ++i;
                    off = 0;
                }
            }
            data = scratch.data();
            len = fill;
        } else {
            len = std::min(len, record_size * 4);
        }
        std::size_t written = 0;
        ERR_clear_error();
        const int rc = SSL_write_ex(ssl_, data, len, &written);
        if (rc != 1) {
            boost::system::error_code e;
            classify(SSL_get_error(ssl_, rc), write_wants_, e);
            if (taken == 0) {
                ec = e;
            }
            return taken;
        }
        taken += written;
        std::size_t left = written;
        while (left > 0 && index < buffers.size()) {
            const std::size_t avail = buffers[index].size() - offset;
            if (left >= avail) {
                left -= avail;
                ++index;
                offset = 0;
            } else {
                offset += left;
                left = 0;
            }
        }
    }
    write_wants_ = want::write;
    return taken;
}

void tls_client_transport::wait_readable(wait_handler handler) {
    if (ssl_ != nullptr && !closed_ && handshake_done_ &&
        (SSL_pending(ssl_) > 0 || SSL_has_pending(ssl_) == 1)) {
        // Decrypted (or buffered, unprocessed) bytes the socket will not signal again.
        asio::post(socket_.get_executor(),
                   [h = std::move(handler)]() mutable { h(boost::system::error_code()); });
        return;
    }
    socket_.async_wait(read_wants_ == want::write ? asio::socket_base::wait_write
                                                  : asio::socket_base::wait_read,
                       std::move(handler));
}

void tls_client_transport::wait_writable(wait_handler handler) {
    socket_.async_wait(write_wants_ == want::read ? asio::socket_base::wait_read
                                                  : asio::socket_base::wait_write,
                       std::move(handler));
}

void tls_client_transport::close() noexcept {
    if (closed_) {
        return;
    }
    closed_ = true;
    if (ssl_ != nullptr && handshake_done_) {
        // One non-blocking attempt at close_notify; never wait for the server's.
        ERR_clear_error();
        SSL_shutdown(ssl_);
        ERR_clear_error();
    }
    boost::system::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
}

} // namespace tern::net
