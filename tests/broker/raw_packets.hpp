#pragma once
// Hand-written MQTT bytes for the raw-socket tests: built here, independently of
// tern::protocol, so the broker's codec is checked against bytes it did not produce.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tern::test {

inline void put_varint(std::vector<std::uint8_t>& out, std::size_t v) {
    do {
        auto b = static_cast<std::uint8_t>(v % 128);
        v /= 128;
        if (v > 0) {
            b |= 0x80;
        }
        out.push_back(b);
    } while (v > 0);
}

inline void put_string(std::vector<std::uint8_t>& out, std::string_view s) {
    out.push_back(static_cast<std::uint8_t>(s.size() >> 8));
    out.push_back(static_cast<std::uint8_t>(s.size() & 0xFF));
    for (const char c : s) {
        out.push_back(static_cast<std::uint8_t>(c));
    }
}

inline std::vector<std::uint8_t> frame(std::uint8_t first, const std::vector<std::uint8_t>& body) {
    std::vector<std::uint8_t> out{first};
    put_varint(out, body.size());
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

/// CONNECT without will or credentials. `level` 4 = 3.1.1, 5 = MQTT 5 (empty properties).
inline std::vector<std::uint8_t> connect_packet(std::uint8_t level, std::string_view client_id,
                                                bool clean = true, std::uint16_t keep_alive = 30) {
    std::vector<std::uint8_t> body;
    body.reserve(16 + client_id.size());
    put_string(body, (level & 0x7F) == 3 ? "MQIsdp" : "MQTT"); // level 3 is MQTT 3.1
    body.push_back(level);
    body.push_back(clean ? 0x02 : 0x00);
    body.push_back(static_cast<std::uint8_t>(keep_alive >> 8));
    body.push_back(static_cast<std::uint8_t>(keep_alive & 0xFF));
    if (level == 5) {
        body.push_back(0x00); // property length
    }
    put_string(body, client_id);
    return frame(0x10, body);
}

/// A decoded CONNACK: flags, reason/return code and (v5) raw property values by identifier.
struct connack_view {
    std::uint8_t flags = 0;
    std::uint8_t reason = 0xFF;
    std::map<std::uint8_t, std::vector<std::uint8_t>> props;
};

/// Wire width of a v5 property value, by identifier [MQTT-2.2.2.2]: 1, 2 or 4 bytes; 0 for the
/// Variable Byte Integer of Subscription Identifier (0x0B); -1 for a length-prefixed string or
/// binary (a User Property, 0x26, is two of them). Test-side, independent of the codec.
inline int property_width(std::uint8_t id) {
    switch (id) {
    case 0x01:
    case 0x17:
    case 0x19:
    case 0x24:
    case 0x25:
    case 0x28:
    case 0x29:
    case 0x2A:
        return 1;
    case 0x13:
    case 0x21:
    case 0x22:
    case 0x23:
        return 2;
    case 0x02:
    case 0x11:
    case 0x18:
    case 0x27:
        return 4;
    case 0x0B:
        return 0;
    default:
        return -1;
    }
}

/// Parses a CONNACK (type 0x20) of either version; nullopt when malformed.
inline std::optional<connack_view> parse_connack(const std::vector<std::uint8_t>& p, bool v5) {
    if (p.size() < 4 || p[0] != 0x20) {
        return std::nullopt;
    }
    std::size_t i = 1;
    while (p[i] & 0x80) {
        ++i;
    }
    ++i;
    connack_view c;
    c.flags = p[i++];
    c.reason = p[i++];
    if (!v5 || i >= p.size()) {
        return c;
    }
    std::size_t len = 0;
    for (int shift = 0; i < p.size(); shift += 7) {
        len |= static_cast<std::size_t>(p[i] & 0x7F) << shift;
        if ((p[i++] & 0x80) == 0) {
            break;
        }
    }
    const std::size_t end = i + len;
    if (end > p.size()) {
        return std::nullopt;
    }
    while (i < end) {
        const std::uint8_t id = p[i++];
        std::size_t n = 0;
        const int width = property_width(id);
        if (width > 0) {
            n = static_cast<std::size_t>(width);
        } else if (width < 0 && id != 0x26) {
            if (i + 2 > end) {
                return std::nullopt;
            }
            n = 2 + (static_cast<std::size_t>(p[i]) << 8 | p[i + 1]);
        } else {
            return std::nullopt; // user properties etc. are not expected from tern
        }
        if (i + n > end) {
            return std::nullopt;
        }
        c.props[id].assign(p.begin() + static_cast<std::ptrdiff_t>(i),
                           p.begin() + static_cast<std::ptrdiff_t>(i + n));
        i += n;
    }
    return c;
}

/// The reason code of a v5 DISCONNECT (0 when the packet omits it); nullopt if not DISCONNECT.
inline std::optional<std::uint8_t> disconnect_reason(const std::vector<std::uint8_t>& p) {
    if (p.size() < 2 || p[0] != 0xE0) {
        return std::nullopt;
    }
    return p.size() > 2 ? p[2] : 0x00;
}

} // namespace tern::test
