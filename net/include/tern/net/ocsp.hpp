#pragma once
/// OCSP (RFC 6960) checks of TLS client certificates: a listener with `ocsp_responder URL` asks
/// the responder, at CONNECT time, whether the certificate the client presented is still good,
/// and accepts the CONNECT only on the answer.
///
/// One check is one HTTP/1.1 POST (`Content-Type: application/ocsp-request`, `Connection:
/// close`) of a request for one CertID with a random nonce, over non-blocking Asio I/O on the
/// caller's executor, bounded by a deadline timer. The answer counts only when it is a
/// successful OCSP response whose signature verifies — signed by the issuing CA itself or by a
/// responder certificate that CA delegated (extendedKeyUsage id-kp-OCSPSigning), chained to the
/// configured CAs — that names the CertID asked about, carries the nonce sent (or none: many
/// responders omit it), and is current (thisUpdate/nextUpdate within 5 minutes of skew).
/// Everything else is `unreachable`, which the caller treats by its own policy (fail open or
/// closed); unreachable answers are never cached.
///
/// good/revoked answers are cached until min(nextUpdate, now + cache_max_age), unknown answers
/// for unknown_max_age (also capped by nextUpdate); the cache holds at most cache_entries
/// CertIDs and evicts the least recently used. Concurrent checks of one certificate are not
/// coalesced: each sends its own request until one answer is cached.
///
/// Thread contract: create() is pure apart from reading the CA files; a checker is thread-safe
/// (every worker calls async_check concurrently, each with its own executor). ocsp_cert_id_der
/// is thread-safe.

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

struct x509_st;

namespace tern::core {
class clock;
} // namespace tern::core

namespace tern::net {

/// How one listener reaches its OCSP responder (Tern's `ocsp_responder` and the listener's CAs).
struct ocsp_options {
    /// "http://HOST[:PORT][/PATH]" (plain HTTP only; OCSP responses are signed). HOST is a name,
    /// an IPv4 address or a bracketed IPv6 address; the port defaults to 80, the path to "/".
    std::string responder_url;
    /// The whole exchange: resolve + connect + request + response.
    std::chrono::milliseconds timeout{2000};
    /// Bounded cache; the least recently used CertID is evicted. 0 disables caching.
    std::size_t cache_entries = 10000;
    /// A good/revoked answer is reused until min(nextUpdate, now + cache_max_age); without
    /// nextUpdate, for cache_max_age.
    std::chrono::seconds cache_max_age{3600};
    /// An "unknown" answer is cached this long (and never past its nextUpdate).
    std::chrono::seconds unknown_max_age{60};
    /// PEM CA(s) trusted to sign responses (the listener's CAs): a response signed by the
    /// issuing CA itself, or by a responder certificate that CA delegated (id-kp-OCSPSigning),
    /// must chain to these. The certificates of this file are also searched for the signer when
    /// the response carries no certificate.
    std::string cafile;
    /// CA directory (openssl rehash layout). cafile, capath or both; at least one is required.
    std::string capath;
    /// Injected time for the cache (tern/core/clock.hpp); nullptr = core::default_clock().
    /// Must outlive the checker.
    const core::clock* clock = nullptr;
};

/// What the responder said about a certificate.
enum class ocsp_status : std::uint8_t {
    good,       ///< not revoked
    revoked,    ///< revoked (ocsp_result::detail has the time and reason)
    unknown,    ///< the responder does not know the certificate
    unreachable ///< no valid, verified answer (see ocsp_result::detail for why)
};

/// The outcome of one check.
struct ocsp_result {
    ocsp_status status = ocsp_status::unreachable;
    /// For log lines: "revoked at 2026-12-02T17:17:15Z (reason keyCompromise)", "timed out after
    /// 2000 ms", "cannot connect to 127.0.0.1:8080: connection refused", "HTTP 500 Internal
    /// Server Error", "response signature does not verify: ...", "nonce mismatch", ...; may be
    /// empty for good answers.
    std::string detail;
    /// The answer came from the cache, without asking the responder.
    bool from_cache = false;
};

/// "good", "revoked", "unknown", "unreachable". The view is static.
std::string_view to_string(ocsp_status status) noexcept;

/// DER of the OCSP CertID (SHA-1 hashes of the issuer's name and key and the serial, as RFC 6960
/// clients send) of `cert` issued by `issuer`; empty when either is null or OpenSSL fails.
/// Thread-safe.
std::string ocsp_cert_id_der(x509_st* cert, x509_st* issuer);

/// Checks certificates against one OCSP responder, with a cache.
///
/// Thread contract: thread-safe. The object may be destroyed while checks are in flight: each
/// pending check keeps the shared state (CAs, cache, counters) alive until its handler ran.
class ocsp_checker {
public:
    /// Parses the URL and loads the CAs. Errors (bad URL, https, unreadable cafile/capath, no CA
    /// at all) are returned as {nullptr, message}, the message starting "ocsp_responder: " and
    /// naming the offending value.
    static std::pair<std::shared_ptr<ocsp_checker>, std::string> create(ocsp_options options);

    /// Checks the certificate whose CertID DER is `cert_id_der` (peer_certificate::ocsp_cert_id)
    /// and calls `handler(result)` exactly once, always via post on `executor` (never inline).
    /// A fresh cached answer is posted at once with from_cache set; otherwise one HTTP POST is
    /// sent with non-blocking I/O on `executor` (a strand of it) and the handler runs within
    /// about `timeout` (a deadline timer cancels the exchange). An empty or malformed CertID is
    /// answered `unreachable` without a request. Never throws; never blocks the calling thread
    /// on the network. If `executor`'s context is stopped or destroyed first, the handler is
    /// destroyed without being called (as any Asio handler).
    void async_check(boost::asio::any_io_executor executor, std::string cert_id_der,
                     std::function<void(ocsp_result)> handler);

    /// Counters for metrics. `requests`: exchanges started with the responder (cache misses
    /// with a well-formed CertID, whether or not they reached it); `cache_hits`: checks answered
    /// from the cache; the rest: results delivered, by status, cache hits included.
    struct counters {
        std::uint64_t requests, cache_hits, good, revoked, unknown, unreachable;
    };
    /// A snapshot; each counter is read atomically, the set is not one consistent instant.
    counters stats() const;

    /// Number of CertIDs cached now (expired entries included until they are looked up or
    /// evicted). For tests.
    std::size_t cache_size_for_test() const;

    /// The shared state (CAs, URL, cache, counters); defined in ocsp.cpp.
    struct state;
    /// Use create(); public only for std::make_shared.
    explicit ocsp_checker(std::shared_ptr<state> state) noexcept;

private:
    std::shared_ptr<state> state_;
};

} // namespace tern::net
