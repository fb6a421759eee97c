#pragma once
/// The PROXY protocol (HAProxy's spec, versions 1 and 2) as a pure parser: devices behind a load
/// balancer keep their real address in the broker's logs, limits and (later) access control.
/// A listener with `proxy_protocol true` reads the header before anything else — before TLS,
/// since the balancer passes TCP through — and refuses connections without one.
///
/// Thread contract: pure functions.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace tern::net {

/// What a PROXY header says.
struct proxy_header {
    /// Bytes the header occupies at the start of the stream.
    std::size_t size = 0;
    /// 1 or 2.
    int version = 0;
    /// False for v1 "UNKNOWN" and v2 LOCAL (health checks from the balancer itself): the
    /// connection's own address stands.
    bool has_address = false;
    /// The client's address and port as "1.2.3.4:5" / "[::1]:5".
    std::string source;
    std::string destination;
};

enum class proxy_parse_status : std::uint8_t {
    complete,  ///< `header` is filled in
    need_more, ///< a valid prefix: read more and parse again
    invalid,   ///< not a PROXY header, or a malformed one (`error` says why)
};

struct proxy_parse_result {
    proxy_parse_status status = proxy_parse_status::need_more;
    proxy_header header;
    std::string error;
};

/// The largest header accepted: v1's maximum (107 bytes) and, for v2, 16 bytes plus at most this
/// many bytes of addresses and TLVs. A v2 length field beyond it is refused at once rather
/// than waited for.
inline constexpr std::size_t proxy_v2_max_payload = 1024;

/// Parses the start of a stream. Never reads past `bytes`; `need_more` only while `bytes` is a
/// prefix of some valid header.
proxy_parse_result parse_proxy_header(std::span<const std::uint8_t> bytes);

} // namespace tern::net
