#include <tern/net/tcp_transport.hpp>
#include <tern/net/tls_context.hpp>
#include <tern/net/tls_stream.hpp>

#include <boost/asio/post.hpp>
#include <fmt/format.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace tern::net {

namespace asio = boost::asio;

namespace {

/// One TLS record's worth of plaintext: small frames are coalesced up to this size so each
/// SSL_write makes one full record instead of one record (and 29 bytes of overhead) per frame.
constexpr std::size_t record_size = 16 * 1024;

/// The coalescing buffer, one per worker thread: OpenSSL has encrypted what it was given by the
/// time SSL_write returns (even with WANT_WRITE), so the next connection may reuse it.
std::vector<std::uint8_t>& coalesce_buffer() {
    thread_local std::vector<std::uint8_t> buffer(record_size);
    return buffer;
}

} // namespace

tls_stream::tls_stream(asio::ip::tcp::socket socket, std::string_view peer_side)
    : socket_(std::move(socket)), peer_side_(peer_side) {
    boost::system::error_code ec;
    socket_.set_option(asio::ip::tcp::no_delay(true), ec);
    socket_.non_blocking(true, ec);
    const auto remote = socket_.remote_endpoint(ec);
    peer_.address = ec ? std::string("?") : endpoint_string(remote);
    peer_.transport = "tls";
    peer_.tls = true;
}

tls_stream::~tls_stream() {
    if (ssl_ != nullptr) {
        SSL_free(ssl_);
    }
}

bool tls_stream::adopt(ssl_st* ssl) {
    ssl_ = ssl;
    if (ssl_ == nullptr || SSL_set_fd(ssl_, socket_.native_handle()) != 1) {
        error_ = "TLS session could not be created: " + openssl_error_text();
        return false;
    }
    return true;
}

void tls_stream::note_handshake() {
    if (handshake_done_ || ssl_ == nullptr || !SSL_is_init_finished(ssl_)) {
        return;
    }
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
    on_handshake_done();
}

void tls_stream::classify(int ssl_error, want& direction, boost::system::error_code& ec) {
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
            if (!handshake_done_ && peer_side_ == "server") {
                // We are the client: a server that hangs up mid-handshake is worth saying.
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
            reason += fmt::format(" ({} certificate: {})", peer_side_,
                                  X509_verify_cert_error_string(verify));
        }
        error_ = fmt::format("TLS {}: {}", handshake_done_ ? "error" : "handshake failed", reason);
        ec = boost::system::errc::make_error_code(boost::system::errc::protocol_error);
        return;
    }
    }
}

std::size_t tls_stream::try_read(std::span<std::uint8_t> buffer, boost::system::error_code& ec) {
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
        note_handshake();
        if (rc == 1) {
            total += n;
            continue;
        }
        boost::system::error_code e;
        classify(SSL_get_error(ssl_, rc), read_wants_, e);
        if (total > 0 && is_would_block(e)) {
            break; // what we have is delivered; the wait comes next time
        }
        if (total > 0) {
            break; // deliver the bytes; the error repeats on the next call
        }
        ec = e;
        return 0;
    }
    read_wants_ = want::read;
    return total;
}

std::size_t tls_stream::try_write(std::span<const asio::const_buffer> buffers,
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
        // One SSL_write per record: a large buffer goes as it is, small ones are coalesced.
        // The same bytes are coalesced again on a retry after WANT_WRITE (the caller passes
        // the untaken rest unchanged), which OpenSSL requires.
        const auto* data = static_cast<const std::uint8_t*>(buffers[index].data()) + offset;
        std::size_t len = buffers[index].size() - offset;
        if (len == 0) {
            ++index;
            offset = 0;
            continue;
        }
        std::size_t used_index = index;
        std::size_t used_offset = offset;
        if (len < record_size) {
            std::size_t fill = 0;
            while (used_index < buffers.size() && fill < record_size) {
                const auto* p =
                    static_cast<const std::uint8_t*>(buffers[used_index].data()) + used_offset;
                const std::size_t avail = buffers[used_index].size() - used_offset;
                const std::size_t n = std::min(avail, record_size - fill);
                std::memcpy(scratch.data() + fill, p, n);
                fill += n;
                used_offset += n;
                if (used_offset == buffers[used_index].size()) {
                    ++used_index;
                    used_offset = 0;
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
        note_handshake();
        if (rc != 1) {
            boost::system::error_code e;
            classify(SSL_get_error(ssl_, rc), write_wants_, e);
            if (taken == 0) {
                ec = e;
            }
            return taken;
        }
        taken += written;
        // Advance over `written` bytes of the caller's buffers.
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

void tls_stream::wait_readable(wait_handler handler) {
    if (ssl_ != nullptr && !closed_ && (SSL_pending(ssl_) > 0 || SSL_has_pending(ssl_) == 1)) {
        // Decrypted (or buffered, unprocessed) bytes the socket will not signal again.
        asio::post(socket_.get_executor(),
                   [h = std::move(handler)]() mutable { h(boost::system::error_code()); });
        return;
    }
    socket_.async_wait(read_wants_ == want::write ? asio::socket_base::wait_write
                                                  : asio::socket_base::wait_read,
                       std::move(handler));
}

void tls_stream::wait_writable(wait_handler handler) {
    socket_.async_wait(write_wants_ == want::read ? asio::socket_base::wait_read
                                                  : asio::socket_base::wait_write,
                       std::move(handler));
}

void tls_stream::close() noexcept {
    if (closed_) {
        return;
    }
    closed_ = true;
    if (ssl_ != nullptr && handshake_done_) {
        // One non-blocking attempt at close_notify; never wait for the peer's.
        ERR_clear_error();
        SSL_shutdown(ssl_);
        ERR_clear_error();
    }
    boost::system::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
}

} // namespace tern::net
