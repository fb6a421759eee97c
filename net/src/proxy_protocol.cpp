#include <tern/net/proxy_protocol.hpp>

#include <fmt/format.h>

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <string_view>
#include <vector>

namespace tern::net {

namespace {

constexpr std::array<std::uint8_t, 12> v2_signature{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr std::string_view v1_prefix = "PROXY ";
constexpr std::size_t v1_max = 107;

proxy_parse_result invalid(std::string why) {
    proxy_parse_result r;
    r.status = proxy_parse_status::invalid;
    r.error = std::move(why);
    return r;
}

bool valid_port(std::string_view s, std::uint16_t& out) {
    if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) {
        return false;
    }
    unsigned v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size() || v > 65535) {
        return false;
    }
    out = static_cast<std::uint16_t>(v);
    return true;
}

bool valid_address(std::string_view s, int family) {
    if (s.empty() || s.size() >= INET6_ADDRSTRLEN) {
        return false;
    }
    char buf[INET6_ADDRSTRLEN];
    std::memcpy(buf, s.data(), s.size());
    buf[s.size()] = '\0';
    unsigned char out[16];
    return inet_pton(family, buf, out) == 1;
}

std::string join(std::string_view address, std::uint16_t port, bool v6) {
    return v6 ? fmt::format("[{}]:{}", address, port) : fmt::format("{}:{}", address, port);
}

proxy_parse_result parse_v1(std::span<const std::uint8_t> bytes) {
    const std::string_view text(reinterpret_cast<const char*>(bytes.data()),
                                std::min(bytes.size(), v1_max));
    const auto end = text.find("\r\n");
    if (end == std::string_view::npos) {
        if (bytes.size() >= v1_max) {
            return invalid("PROXY v1 header longer than 107 bytes");
        }
        // Anything but printable text before the CRLF cannot become a header.
        for (char c : text) {
            if (c != '\r' && (c < 0x20 || c > 0x7E)) {
                return invalid("PROXY v1 header with a non-printable byte");
            }
        }
        return {};
    }
    std::string_view line = text.substr(0, end);
    // The same rule as for a partial line: printable ASCII only (an address with a NUL inside
    // would otherwise pass inet_pton, which stops at the NUL).
    for (char c : line) {
        if (c < 0x20 || c > 0x7E) {
            return invalid("PROXY v1 header with a non-printable byte");
        }
    }
    std::vector<std::string_view> fields;
    while (!line.empty()) {
        const auto sp = line.find(' ');
        fields.push_back(line.substr(0, sp));
        if (sp == std::string_view::npos) {
            break;
        }
        line.remove_prefix(sp + 1);
    }
    proxy_parse_result r;
    r.status = proxy_parse_status::complete;
    r.header.size = end + 2;
    r.header.version = 1;
    if (fields.size() >= 2 && fields[0] == "PROXY" && fields[1] == "UNKNOWN") {
        return r; // the rest of the line is ignored by the spec
    }
    if (fields.size() != 6 || fields[0] != "PROXY" ||
        (fields[1] != "TCP4" && fields[1] != "TCP6")) {
        return invalid("malformed PROXY v1 header");
    }
    const bool v6 = fields[1] == "TCP6";
    const int family = v6 ? AF_INET6 : AF_INET;
    std::uint16_t sport = 0;
    std::uint16_t dport = 0;
    if (!valid_address(fields[2], family) || !valid_address(fields[3], family) ||
        !valid_port(fields[4], sport) || !valid_port(fields[5], dport)) {
        return invalid("PROXY v1 header with an invalid address or port");
    }
    r.header.has_address = true;
    r.header.source = join(fields[2], sport, v6);
    r.header.destination = join(fields[3], dport, v6);
    return r;
}

proxy_parse_result parse_v2(std::span<const std::uint8_t> bytes) {
    if (bytes.size() < 16) {
        return {};
    }
    const std::uint8_t ver_cmd = bytes[12];
    const std::uint8_t family = bytes[13];
    const std::size_t len = (std::size_t{bytes[14]} << 8) | bytes[15];
    if ((ver_cmd >> 4) != 2) {
        return invalid(fmt::format("PROXY v2 header with version {}", ver_cmd >> 4));
    }
    const int command = ver_cmd & 0x0F;
    if (command > 1) {
        return invalid(fmt::format("PROXY v2 header with command {}", command));
    }
    if (len > proxy_v2_max_payload) {
        return invalid(fmt::format("PROXY v2 header claims {} bytes of addresses (at most {})", len,
                                   proxy_v2_max_payload));
    }
    if (bytes.size() < 16 + len) {
        return {};
    }
    proxy_parse_result r;
    r.status = proxy_parse_status::complete;
    r.header.size = 16 + len;
    r.header.version = 2;
    if (command == 0) {
        return r; // LOCAL: the balancer's own connection
    }
    const auto* a = bytes.data() + 16;
    char src[INET6_ADDRSTRLEN];
    char dst[INET6_ADDRSTRLEN];
    switch (family) {
    case 0x11: // TCP over IPv4
    case 0x12: // UDP over IPv4 (addresses are still valid)
        if (len < 12) {
            return invalid("PROXY v2 IPv4 header shorter than its addresses");
        }
        inet_ntop(AF_INET, a, src, sizeof src);
        inet_ntop(AF_INET, a + 4, dst, sizeof dst);
        r.header.source = join(src, static_cast<std::uint16_t>((a[8] << 8) | a[9]), false);
        r.header.destination = join(dst, static_cast<std::uint16_t>((a[10] << 8) | a[11]), false);
        r.header.has_address = true;
        return r;
    case 0x21:
    case 0x22:
        if (len < 36) {
            return invalid("PROXY v2 IPv6 header shorter than its addresses");
        }
        inet_ntop(AF_INET6, a, src, sizeof src);
        inet_ntop(AF_INET6, a + 16, dst, sizeof dst);
        r.header.source = join(src, static_cast<std::uint16_t>((a[32] << 8) | a[33]), true);
        r.header.destination = join(dst, static_cast<std::uint16_t>((a[34] << 8) | a[35]), true);
        r.header.has_address = true;
        return r;
    case 0x00: // UNSPEC
    default:   // AF_UNIX and unknown families: keep the connection's own address
        return r;
    }
}

} // namespace

proxy_parse_result parse_proxy_header(std::span<const std::uint8_t> bytes) {
    if (bytes.empty()) {
        return {};
    }
    // Decide the version from as many bytes as there are.
    const std::size_t sig = std::min(bytes.size(), v2_signature.size());
    if (std::equal(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(sig),
                   v2_signature.begin())) {
        return sig < v2_signature.size() ? proxy_parse_result{} : parse_v2(bytes);
    }
    const std::size_t pre = std::min(bytes.size(), v1_prefix.size());
    if (std::string_view(reinterpret_cast<const char*>(bytes.data()), pre) ==
        v1_prefix.substr(0, pre)) {
        return pre < v1_prefix.size() ? proxy_parse_result{} : parse_v1(bytes);
    }
    return invalid("no PROXY protocol header");
}

} // namespace tern::net
