// OCSP client for client-certificate revocation checks (see ocsp.hpp for the contract).
#include <tern/net/ocsp.hpp>

#include <tern/core/clock.hpp>
#include <tern/core/thread_annotations.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <fmt/format.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <charconv>
#include <ctime>
#include <filesystem>
#include <list>
#include <optional>
#include <unordered_map>
#include <vector>

namespace tern::net {

namespace asio = boost::asio;
namespace http = boost::beast::http;

namespace {

/// The body cap: real responses are 1–4 KiB (one SingleResponse plus the responder's
/// certificate); anything near this is garbage or hostile.
constexpr std::size_t max_body_bytes = 64 * 1024;
constexpr std::size_t max_header_bytes = 8 * 1024;
/// Bytes read from the socket in total (body, head and chunk framing), so that a responder
/// cannot keep us reading framing overhead that neither Beast limit counts.
constexpr std::size_t max_read_bytes = max_body_bytes + max_header_bytes + 8 * 1024;
/// Clock skew allowed between us and the responder (thisUpdate in the future, nextUpdate in the
/// past), as `openssl ocsp -validity_period` defaults to.
constexpr long validity_skew_seconds = 300;

struct ocsp_request_free {
    void operator()(OCSP_REQUEST* p) const noexcept { OCSP_REQUEST_free(p); }
};
struct ocsp_response_free {
    void operator()(OCSP_RESPONSE* p) const noexcept { OCSP_RESPONSE_free(p); }
};
struct ocsp_basicresp_free {
    void operator()(OCSP_BASICRESP* p) const noexcept { OCSP_BASICRESP_free(p); }
};
struct ocsp_certid_free {
    void operator()(OCSP_CERTID* p) const noexcept { OCSP_CERTID_free(p); }
};
struct x509_store_free {
    void operator()(X509_STORE* p) const noexcept { X509_STORE_free(p); }
};
struct x509_stack_free {
    void operator()(STACK_OF(X509) * p) const noexcept { sk_X509_pop_free(p, X509_free); }
};
struct bio_free {
    void operator()(BIO* p) const noexcept { BIO_free(p); }
};

using request_ptr = std::unique_ptr<OCSP_REQUEST, ocsp_request_free>;
using response_ptr = std::unique_ptr<OCSP_RESPONSE, ocsp_response_free>;
using basicresp_ptr = std::unique_ptr<OCSP_BASICRESP, ocsp_basicresp_free>;
using certid_ptr = std::unique_ptr<OCSP_CERTID, ocsp_certid_free>;
using store_ptr = std::unique_ptr<X509_STORE, x509_store_free>;
using x509_stack_ptr = std::unique_ptr<STACK_OF(X509), x509_stack_free>;
using bio_ptr = std::unique_ptr<BIO, bio_free>;

/// This thread's OpenSSL error queue as one line (reason and the data OpenSSL attached, such as
/// "Verify error:unable to get local issuer certificate"), emptied.
std::string openssl_errors() {
    std::string out;
    for (;;) {
        const char* data = nullptr;
        int flags = 0;
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
        const unsigned long code = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags);
#else
        const unsigned long code = ERR_get_error_line_data(nullptr, nullptr, &data, &flags);
#endif
        if (code == 0) {
            break;
        }
        if (!out.empty()) {
            out += "; ";
        }
        if (const char* reason = ERR_reason_error_string(code)) {
            out += reason;
        } else {
            out += fmt::format("error {:#x}", code);
        }
        if (data != nullptr && (flags & ERR_TXT_STRING) != 0 && *data != '\0') {
            out += fmt::format(" ({})", data);
        }
    }
    return out.empty() ? std::string("no OpenSSL error reported") : out;
}

/// "2026-12-02T17:17:15Z"; "?" when OpenSSL cannot read the time.
std::string iso_time(const ASN1_GENERALIZEDTIME* t) {
    std::tm tm{};
    if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
        return "?";
    }
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

/// A peer-supplied string fit for a log line: printable ASCII, at most 80 characters.
std::string printable(std::string_view s) {
    std::string out;
    for (const char c : s.substr(0, 80)) {
        out += (c >= 0x20 && c < 0x7f) ? c : '?';
    }
    return out;
}

/// "Connection refused" → "connection refused" (details read as one sentence).
std::string lower_first(std::string s) {
    if (!s.empty()) {
        s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
    }
    return s;
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() &&
           std::equal(prefix.begin(), prefix.end(), s.begin(), [](char a, char b) {
               return std::tolower(static_cast<unsigned char>(a)) ==
                      std::tolower(static_cast<unsigned char>(b));
           });
}

struct responder_url {
    std::string host;        ///< name or address, without IPv6 brackets
    std::uint16_t port = 80; ///<
    std::string path = "/";  ///< request target
    std::string authority;   ///< Host header and log text: "host[:port]" as written
    std::optional<asio::ip::address> address; ///< when host is an address literal
};

/// Parses "http://HOST[:PORT][/PATH]"; the error says what is wrong, without the URL.
std::string parse_url(std::string_view url, responder_url& out) {
    if (starts_with_nocase(url, "https://")) {
        return "https is not supported (OCSP responses are signed; use http://)";
    }
    if (!starts_with_nocase(url, "http://")) {
        return "expected http://HOST[:PORT][/PATH]";
    }
    const std::string_view rest = url.substr(7);
    if (std::any_of(rest.begin(), rest.end(), [](char c) {
            const auto u = static_cast<unsigned char>(c);
            return u <= 0x20 || u >= 0x7f;
        })) {
        return "spaces, control or non-ASCII characters are not allowed";
    }
    if (rest.find('#') != std::string_view::npos) {
        return "a fragment (#) is not allowed";
    }
    const auto end = rest.find_first_of("/?");
    const std::string_view authority = rest.substr(0, end);
    if (end != std::string_view::npos) {
        out.path =
            rest[end] == '/' ? std::string(rest.substr(end)) : "/" + std::string(rest.substr(end));
    }
    if (authority.find('@') != std::string_view::npos) {
        return "user information (user@host) is not supported";
    }
    std::string_view host = authority;
    std::string_view port;
    bool has_port = false;
    if (!authority.empty() && authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) {
            return "unterminated [IPv6] address";
        }
        host = authority.substr(1, close - 1);
        const std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                return "unexpected characters after the [IPv6] address";
            }
            port = after.substr(1);
            has_port = true;
        }
        boost::system::error_code ec;
        const auto address = asio::ip::make_address_v6(std::string(host), ec);
        if (ec) {
            return "not an IPv6 address between the brackets";
        }
        out.address = address;
    } else {
        const auto colon = authority.find(':');
        if (colon != std::string_view::npos) {
            host = authority.substr(0, colon);
            port = authority.substr(colon + 1);
            has_port = true;
        }
        if (std::any_of(host.begin(), host.end(), [](char c) {
                return !(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ||
                         c == '_');
            })) {
            return "the host has characters a host name cannot have (IPv6 needs [brackets])";
        }
        boost::system::error_code ec;
        const auto address = asio::ip::make_address_v4(std::string(host), ec);
        if (!ec) {
            out.address = address;
        }
    }
    if (host.empty()) {
        return "no host";
    }
    if (has_port) {
        unsigned value = 0;
        const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
        if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || value == 0 ||
            value > 65535) {
            return fmt::format("bad port \"{}\"", port);
        }
        out.port = static_cast<std::uint16_t>(value);
    }
    out.host = std::string(host);
    out.authority = std::string(authority);
    return {};
}

} // namespace

/// Immutable configuration plus the cache and counters, shared by the checker and every
/// exchange in flight.
struct ocsp_checker::state {
    responder_url url;
    std::chrono::milliseconds timeout{};
    std::size_t cache_entries = 0;
    std::chrono::seconds cache_max_age{};
    std::chrono::seconds unknown_max_age{};
    const core::clock* clock = nullptr;
    /// Read-only after create(): X509_STORE verification from several threads at once is safe
    /// (as SSL_CTX's store is for concurrent handshakes).
    store_ptr store;
    /// The certificates of cafile, also offered to OCSP_basic_verify as candidate signers for
    /// responses that do not include their certificate. They are still chain-verified.
    x509_stack_ptr ca_certs;

    struct cache_entry {
        std::string key; ///< CertID DER
        ocsp_status status = ocsp_status::unreachable;
        std::string detail;
        core::clock::time_point expires;
    };
    mutable core::mutex mutex;
    /// Most recently used first. The index's keys view the entries' `key`s (list nodes do not
    /// move), so each CertID is stored once.
    std::list<cache_entry> lru TERN_GUARDED_BY(mutex);
    std::unordered_map<std::string_view, std::list<cache_entry>::iterator>
        index TERN_GUARDED_BY(mutex);

    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> cache_hits{0};
    std::array<std::atomic<std::uint64_t>, 4> by_status{};

    void count(ocsp_status s) noexcept {
        by_status[static_cast<std::size_t>(s)].fetch_add(1, std::memory_order_relaxed);
    }

    /// A fresh cached answer for `key` (marked most recently used), or nothing; an expired
    /// entry is dropped on the way.
    std::optional<ocsp_result> lookup(const std::string& key) TERN_EXCLUDES(mutex) {
        const auto now = clock->now();
        core::lock lock(mutex);
        const auto it = index.find(key);
        if (it == index.end()) {
            return std::nullopt;
        }
        if (it->second->expires <= now) {
            const auto entry = it->second;
            index.erase(it);
            lru.erase(entry);
            return std::nullopt;
        }
        lru.splice(lru.begin(), lru, it->second);
        return ocsp_result{it->second->status, it->second->detail, true};
    }

    void store_answer(const std::string& key, const ocsp_result& r, core::clock::duration age)
        TERN_EXCLUDES(mutex) {
        if (cache_entries == 0 || age <= core::clock::duration::zero()) {
            return;
        }
        const auto expires = clock->now() + age;
        core::lock lock(mutex);
        if (const auto it = index.find(key); it != index.end()) {
            it->second->status = r.status;
            it->second->detail = r.detail;
            it->second->expires = expires;
            lru.splice(lru.begin(), lru, it->second);
            return;
        }
        lru.push_front(cache_entry{key, r.status, r.detail, expires});
        index.emplace(lru.front().key, lru.begin());
        while (lru.size() > cache_entries) {
            index.erase(lru.back().key);
            lru.pop_back();
        }
    }
};

namespace {

/// One check that went to the network: resolve, connect, write the POST, read and parse the
/// answer, verify it. Every member is touched only on `strand_` (after construction), so the
/// timer, the socket's completions and finish() never race even when the caller's executor is
/// run by several threads. Handlers hold a shared_ptr, which keeps the exchange (and the
/// checker's state) alive until the last completion.
class exchange : public std::enable_shared_from_this<exchange> {
public:
    exchange(std::shared_ptr<ocsp_checker::state> state, asio::any_io_executor executor,
             std::string cert_id_der, certid_ptr cert_id,
             std::function<void(ocsp_result)>&& handler)
        : state_(std::move(state)), user_executor_(executor), strand_(asio::make_strand(executor)),
          resolver_(strand_), socket_(strand_), timer_(strand_), key_(std::move(cert_id_der)),
          cert_id_(std::move(cert_id)), handler_(std::move(handler)) {
        parser_.header_limit(static_cast<std::uint32_t>(max_header_bytes));
        parser_.body_limit(max_body_bytes);
        parser_.eager(true);
    }

    /// Called once, on any thread: everything else happens on the strand.
    void start() {
        asio::post(strand_, [self = shared_from_this()] { self->begin(); });
    }

private:
    void begin() {
        timer_.expires_after(state_->timeout);
        timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
            if (!ec) {
                self->finish_unreachable(
                    fmt::format("timed out after {} ms", self->state_->timeout.count()));
            }
        });
        if (std::string error = build_request(); !error.empty()) {
            finish_unreachable(std::move(error));
            return;
        }
        const auto& url = state_->url;
        if (url.address) {
            socket_.async_connect(asio::ip::tcp::endpoint(*url.address, url.port),
                                  [self = shared_from_this()](boost::system::error_code ec) {
                                      self->on_connect(ec);
                                  });
            return;
        }
        resolver_.async_resolve(
            url.host, std::to_string(url.port),
            [self = shared_from_this()](boost::system::error_code ec,
                                        const asio::ip::tcp::resolver::results_type& results) {
                if (self->finished_) {
                    return;
                }
                if (ec) {
                    self->finish_unreachable(fmt::format("cannot resolve {}: {}",
                                                         self->state_->url.host,
                                                         lower_first(ec.message())));
                    return;
                }
                asio::async_connect(
                    self->socket_, results,
                    [self](boost::system::error_code cec, const asio::ip::tcp::endpoint&) {
                        self->on_connect(cec);
                    });
            });
    }

    /// The DER request (one CertID, a fresh random nonce) and the HTTP head around it.
    std::string build_request() {
        ERR_clear_error();
        request_.reset(OCSP_REQUEST_new());
        certid_ptr id(OCSP_CERTID_dup(cert_id_.get()));
        if (!request_ || !id || OCSP_request_add0_id(request_.get(), id.get()) == nullptr) {
            return "cannot build the OCSP request: " + openssl_errors();
        }
        id.release(); // the request owns it now (add0)
        if (OCSP_request_add1_nonce(request_.get(), nullptr, -1) != 1) {
            return "cannot add a nonce to the OCSP request: " + openssl_errors();
        }
        const int n = i2d_OCSP_REQUEST(request_.get(), nullptr);
        if (n <= 0) {
            return "cannot encode the OCSP request: " + openssl_errors();
        }
        std::string der(static_cast<std::size_t>(n), '\0');
        auto* p = reinterpret_cast<unsigned char*>(der.data());
        i2d_OCSP_REQUEST(request_.get(), &p);
        const auto& url = state_->url;
        out_ =
            fmt::format("POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/ocsp-request\r\n"
                        "Accept: application/ocsp-response\r\nContent-Length: {}\r\n"
                        "Connection: close\r\n\r\n",
                        url.path, url.authority, der.size());
        out_ += der;
        return {};
    }

    void on_connect(boost::system::error_code ec) {
        if (finished_) {
            return;
        }
        if (ec) {
            finish_unreachable(fmt::format("cannot connect to {}: {}", state_->url.authority,
                                           lower_first(ec.message())));
            return;
        }
        asio::async_write(socket_, asio::buffer(out_),
                          [self = shared_from_this()](boost::system::error_code wec, std::size_t) {
                              if (self->finished_) {
                                  return;
                              }
                              if (wec) {
                                  self->finish_unreachable(fmt::format(
                                      "cannot send the request to {}: {}",
                                      self->state_->url.authority, lower_first(wec.message())));
                                  return;
                              }
                              self->read();
                          });
    }

    void read() {
        socket_.async_read_some(
            asio::buffer(buffer_),
            [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                self->on_read(ec, n);
            });
    }

    void on_read(boost::system::error_code ec, std::size_t n) {
        if (finished_) {
            return;
        }
        total_read_ += n;
        if (total_read_ > max_read_bytes) {
            finish_unreachable(fmt::format("response larger than {} KiB", max_read_bytes / 1024));
            return;
        }
        pending_.append(buffer_.data(), n);
        if (!feed()) {
            return;
        }
        if (ec == asio::error::eof) {
            if (!parser_.got_some()) {
                // (put_eof's precondition: Beast asserts that it has seen a byte.)
                finish_unreachable("connection closed without an HTTP response");
                return;
            }
            // HTTP/1.0 without Content-Length: the body ends with the connection.
            boost::system::error_code pec;
            parser_.put_eof(pec);
            if (pec || !parser_.is_done()) {
                finish_unreachable("connection closed before the HTTP response was complete");
                return;
            }
            on_message();
            return;
        }
        if (ec) {
            finish_unreachable(fmt::format("reading the response from {}: {}",
                                           state_->url.authority, lower_first(ec.message())));
            return;
        }
        read();
    }

    /// Feeds pending_ to the parser. False when the exchange has finished (a parse error, a
    /// status other than 200, or a complete message handled); true to read on.
    bool feed() {
        while (!pending_.empty() && !parser_.is_done()) {
            boost::system::error_code ec;
            const std::size_t used = parser_.put(asio::buffer(pending_), ec);
            pending_.erase(0, used);
            if (ec == http::error::need_more) {
                break;
            }
            if (ec) {
                finish_unreachable(fmt::format("malformed HTTP response ({})", ec.message()));
                return false;
            }
            if (used == 0) {
                break;
            }
        }
        if (parser_.is_header_done() && parser_.get().result_int() != 200) {
            const auto& res = parser_.get();
            finish_unreachable(
                fmt::format("HTTP {} {}", res.result_int(),
                            printable(std::string_view(res.reason().data(), res.reason().size()))));
            return false;
        }
        if (parser_.is_done()) {
            on_message();
            return false;
        }
        return true;
    }

    void on_message() {
        ocsp_result r;
        core::clock::duration age{};
        r.detail = evaluate(parser_.get().body(), r.status, age);
        if (r.status != ocsp_status::unreachable) {
            state_->store_answer(key_, r, age);
        }
        finish(std::move(r));
    }

    /// Decodes and verifies the response body; sets `status` and how long the answer may be
    /// cached (`age`), and returns the detail text.
    std::string evaluate(const std::string& body, ocsp_status& status, core::clock::duration& age) {
        status = ocsp_status::unreachable;
        ERR_clear_error();
        const auto* p = reinterpret_cast<const unsigned char*>(body.data());
        response_ptr response(d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(body.size())));
        if (!response) {
            ERR_clear_error();
            return "malformed OCSP response (not DER)";
        }
        if (p != reinterpret_cast<const unsigned char*>(body.data()) + body.size()) {
            return "malformed OCSP response (bytes after the DER)";
        }
        const int response_status = OCSP_response_status(response.get());
        if (response_status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
            return fmt::format("OCSP responseStatus {} ({})",
                               OCSP_response_status_str(response_status), response_status);
        }
        basicresp_ptr basic(OCSP_response_get1_basic(response.get()));
        if (!basic) {
            return "OCSP response without a basic response: " + openssl_errors();
        }
        // Flags 0: the signer must chain to the store (purpose OCSP helper) and be the CertID's
        // issuer or a certificate it issued with id-kp-OCSPSigning (OpenSSL's
        // ocsp_check_issuer / ocsp_check_delegated, for every SingleResponse).
        if (OCSP_basic_verify(basic.get(), state_->ca_certs.get(), state_->store.get(), 0) <= 0) {
            return "response signature does not verify: " + openssl_errors();
        }
        // 1: equal nonces; 2: neither has one; -1: the response omitted it (many responders
        // do; the signature and the validity window still bound a replay); 0: different.
        if (OCSP_check_nonce(request_.get(), basic.get()) == 0) {
            ERR_clear_error();
            return "nonce mismatch";
        }
        int cert_status = -1;
        int reason = -1;
        ASN1_GENERALIZEDTIME* revoked_at = nullptr;
        ASN1_GENERALIZEDTIME* this_update = nullptr;
        ASN1_GENERALIZEDTIME* next_update = nullptr;
        if (OCSP_resp_find_status(basic.get(), cert_id_.get(), &cert_status, &reason, &revoked_at,
                                  &this_update, &next_update) != 1) {
            return "the response does not cover the certificate asked about";
        }
        if (OCSP_check_validity(this_update, next_update, validity_skew_seconds, -1) != 1) {
            return fmt::format("response is not current (thisUpdate {}, nextUpdate {}): {}",
                               iso_time(this_update), next_update ? iso_time(next_update) : "none",
                               openssl_errors());
        }
        std::string detail;
        switch (cert_status) {
        case V_OCSP_CERTSTATUS_GOOD:
            status = ocsp_status::good;
            age = state_->cache_max_age;
            break;
        case V_OCSP_CERTSTATUS_REVOKED:
            status = ocsp_status::revoked;
            age = state_->cache_max_age;
            detail = "revoked at " + iso_time(revoked_at);
            if (reason >= 0) {
                detail += fmt::format(" (reason {})", OCSP_crl_reason_str(reason));
            }
            break;
        case V_OCSP_CERTSTATUS_UNKNOWN:
            status = ocsp_status::unknown;
            age = state_->unknown_max_age;
            detail = "the responder does not know the certificate";
            break;
        default:
            return fmt::format("unexpected certificate status {}", cert_status);
        }
        if (next_update != nullptr) {
            int days = 0;
            int seconds = 0;
            // From now (nullptr) to nextUpdate, in wall-clock time; the cache's clock is
            // monotonic, so the remaining span is what carries over.
            if (ASN1_TIME_diff(&days, &seconds, nullptr, next_update) == 1) {
                age = std::min(age, core::clock::duration(std::chrono::seconds(
                                        static_cast<long long>(days) * 86400 + seconds)));
            } else {
                age = core::clock::duration::zero();
            }
        }
        ERR_clear_error();
        return detail;
    }

    void finish_unreachable(std::string detail) {
        finish(ocsp_result{ocsp_status::unreachable, std::move(detail), false});
    }

    /// The one exit: stops the I/O (its completions see finished_ and return), counts, and
    /// posts the handler to the caller's executor.
    void finish(ocsp_result r) {
        if (finished_) {
            return;
        }
        finished_ = true;
        timer_.cancel();
        resolver_.cancel();
        boost::system::error_code ignored;
        socket_.close(ignored);
        state_->count(r.status);
        asio::post(user_executor_, [handler = std::move(handler_), r = std::move(r)]() mutable {
            handler(std::move(r));
        });
    }

    std::shared_ptr<ocsp_checker::state> state_;
    asio::any_io_executor user_executor_;
    asio::strand<asio::any_io_executor> strand_;
    asio::ip::tcp::resolver resolver_;
    asio::ip::tcp::socket socket_;
    asio::steady_timer timer_;
    std::string key_;
    certid_ptr cert_id_;
    std::function<void(ocsp_result)> handler_;
    request_ptr request_;
    std::string out_;
    std::array<char, 4096> buffer_{};
    std::string pending_; ///< read but not yet consumed by the parser
    std::size_t total_read_ = 0;
    http::response_parser<http::string_body> parser_;
    bool finished_ = false;
};

/// Loads every certificate of a PEM file into `store` and `certs`; the error names the file.
std::string load_cafile(const std::string& path, X509_STORE* store, STACK_OF(X509) * certs) {
    ERR_clear_error();
    bio_ptr bio(BIO_new_file(path.c_str(), "r"));
    if (!bio) {
        return fmt::format("ocsp_responder: cannot read CA file \"{}\": {}", path,
                           openssl_errors());
    }
    int loaded = 0;
    while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
        if (X509_STORE_add_cert(store, cert) != 1 || sk_X509_push(certs, cert) == 0) {
            X509_free(cert);
            return fmt::format("ocsp_responder: cannot use CA file \"{}\": {}", path,
                               openssl_errors());
        }
        ++loaded;
    }
    // The loop ends on "no start line" at the end of the file: expected, not an error.
    ERR_clear_error();
    if (loaded == 0) {
        return fmt::format("ocsp_responder: no PEM certificate in CA file \"{}\"", path);
    }
    return {};
}

} // namespace

std::string_view to_string(ocsp_status status) noexcept {
    switch (status) {
    case ocsp_status::good:
        return "good";
    case ocsp_status::revoked:
        return "revoked";
    case ocsp_status::unknown:
        return "unknown";
    case ocsp_status::unreachable:
        return "unreachable";
    }
    return "unreachable";
}

std::string ocsp_cert_id_der(X509* cert, X509* issuer) {
    if (cert == nullptr || issuer == nullptr) {
        return {};
    }
    certid_ptr id(OCSP_cert_to_id(EVP_sha1(), cert, issuer));
    if (!id) {
        ERR_clear_error();
        return {};
    }
    const int n = i2d_OCSP_CERTID(id.get(), nullptr);
    if (n <= 0) {
        ERR_clear_error();
        return {};
    }
    std::string der(static_cast<std::size_t>(n), '\0');
    auto* p = reinterpret_cast<unsigned char*>(der.data());
    if (i2d_OCSP_CERTID(id.get(), &p) != n) {
        ERR_clear_error();
        return {};
    }
    return der;
}

ocsp_checker::ocsp_checker(std::shared_ptr<state> s) noexcept : state_(std::move(s)) {}

std::pair<std::shared_ptr<ocsp_checker>, std::string> ocsp_checker::create(ocsp_options options) {
    auto s = std::make_shared<state>();
    if (std::string error = parse_url(options.responder_url, s->url); !error.empty()) {
        return {nullptr,
                fmt::format("ocsp_responder: bad URL \"{}\": {}", options.responder_url, error)};
    }
    if (options.cafile.empty() && options.capath.empty()) {
        return {nullptr, fmt::format("ocsp_responder \"{}\": no CA file or CA path to verify "
                                     "responses with (set the listener's cafile or capath)",
                                     options.responder_url)};
    }
    s->store.reset(X509_STORE_new());
    s->ca_certs.reset(sk_X509_new_null());
    if (!s->store || !s->ca_certs) {
        return {nullptr, "ocsp_responder: out of memory: " + openssl_errors()};
    }
    if (!options.cafile.empty()) {
        if (std::string error = load_cafile(options.cafile, s->store.get(), s->ca_certs.get());
            !error.empty()) {
            return {nullptr, std::move(error)};
        }
    }
    if (!options.capath.empty()) {
        std::error_code ec;
        if (!std::filesystem::is_directory(options.capath, ec)) {
            return {nullptr, fmt::format("ocsp_responder: CA path \"{}\" is not a directory",
                                         options.capath)};
        }
        ERR_clear_error();
        if (X509_STORE_load_locations(s->store.get(), nullptr, options.capath.c_str()) != 1) {
            return {nullptr, fmt::format("ocsp_responder: cannot use CA path \"{}\": {}",
                                         options.capath, openssl_errors())};
        }
    }
    s->timeout = options.timeout;
    s->cache_entries = options.cache_entries;
    s->cache_max_age = options.cache_max_age;
    s->unknown_max_age = options.unknown_max_age;
    s->clock = options.clock != nullptr ? options.clock : &core::default_clock();
    return {std::make_shared<ocsp_checker>(std::move(s)), {}};
}

void ocsp_checker::async_check(asio::any_io_executor executor, std::string cert_id_der,
                               std::function<void(ocsp_result)> handler) {
    if (!handler) {
        return;
    }
    // Only allocation can throw below; the contract is "never throws", so a failure is
    // reported as unreachable when the handler is still ours to call.
    try {
        auto answer = [&](ocsp_result r) {
            state_->count(r.status);
            asio::post(executor,
                       [h = std::move(handler), r = std::move(r)]() mutable { h(std::move(r)); });
        };
        if (cert_id_der.empty()) {
            answer({ocsp_status::unreachable,
                    "no OCSP CertID (the certificate's issuer was not in the verified chain)",
                    false});
            return;
        }
        const auto* p = reinterpret_cast<const unsigned char*>(cert_id_der.data());
        certid_ptr id(d2i_OCSP_CERTID(nullptr, &p, static_cast<long>(cert_id_der.size())));
        if (!id ||
            p != reinterpret_cast<const unsigned char*>(cert_id_der.data()) + cert_id_der.size()) {
            ERR_clear_error();
            answer({ocsp_status::unreachable, "malformed OCSP CertID", false});
            return;
        }
        if (auto cached = state_->lookup(cert_id_der)) {
            state_->cache_hits.fetch_add(1, std::memory_order_relaxed);
            answer(std::move(*cached));
            return;
        }
        state_->requests.fetch_add(1, std::memory_order_relaxed);
        std::make_shared<exchange>(state_, executor, std::move(cert_id_der), std::move(id),
                                   std::move(handler))
            ->start();
    } catch (...) {
        if (handler) {
            try {
                state_->count(ocsp_status::unreachable);
                asio::post(executor, [h = std::move(handler)] {
                    h(ocsp_result{ocsp_status::unreachable, "out of memory", false});
                });
            } catch (...) {
                // Nothing left to report with.
            }
        }
    }
}

ocsp_checker::counters ocsp_checker::stats() const {
    const auto& s = *state_;
    const auto get = [](const std::atomic<std::uint64_t>& a) {
        return a.load(std::memory_order_relaxed);
    };
    return counters{get(s.requests),
                    get(s.cache_hits),
                    get(s.by_status[static_cast<std::size_t>(ocsp_status::good)]),
                    get(s.by_status[static_cast<std::size_t>(ocsp_status::revoked)]),
                    get(s.by_status[static_cast<std::size_t>(ocsp_status::unknown)]),
                    get(s.by_status[static_cast<std::size_t>(ocsp_status::unreachable)])};
}

std::size_t ocsp_checker::cache_size_for_test() const {
    core::lock lock(state_->mutex);
    return state_->lru.size();
}

} // namespace tern::net
