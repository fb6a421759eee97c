#pragma once
// A hand-written MQTT client over raw_socket for the flows libmosquitto hides: it never
// acknowledges on its own (PUBACK / PUBREC / PUBREL / PUBCOMP only when the test says so), it
// shows DUP and packet identifiers, and it keeps v5 properties in wire order. Bytes are built
// and parsed here, independently of tern::protocol.
//
// Thread contract: test thread only.

#include "raw_packets.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tern::test {

// Packet types (high nibble of the first byte).
inline constexpr std::uint8_t pkt_connack = 2;
inline constexpr std::uint8_t pkt_publish = 3;
inline constexpr std::uint8_t pkt_puback = 4;
inline constexpr std::uint8_t pkt_pubrec = 5;
inline constexpr std::uint8_t pkt_pubrel = 6;
inline constexpr std::uint8_t pkt_pubcomp = 7;
inline constexpr std::uint8_t pkt_suback = 9;
inline constexpr std::uint8_t pkt_unsuback = 11;
inline constexpr std::uint8_t pkt_pingresp = 13;
inline constexpr std::uint8_t pkt_disconnect = 14;
inline constexpr std::uint8_t pkt_auth = 15;

inline std::uint8_t packet_type(const std::vector<std::uint8_t>& p) {
    return p.empty() ? 0 : static_cast<std::uint8_t>(p[0] >> 4);
}

/// Builds a v5 property block: identifiers and values in the order added. bytes() is the
/// block without its length prefix (what connect_options and the packet builders take).
class property_writer {
public:
    property_writer& byte(std::uint8_t id, std::uint8_t v) {
        out_.push_back(id);
        out_.push_back(v);
        return *this;
    }
    property_writer& u16(std::uint8_t id, std::uint16_t v) {
        out_.push_back(id);
        out_.push_back(static_cast<std::uint8_t>(v >> 8));
        out_.push_back(static_cast<std::uint8_t>(v & 0xFF));
        return *this;
    }
    property_writer& u32(std::uint8_t id, std::uint32_t v) {
        out_.push_back(id);
        for (int shift = 24; shift >= 0; shift -= 8) {
            out_.push_back(static_cast<std::uint8_t>((v >> shift) & 0xFF));
        }
        return *this;
    }
    property_writer& varint(std::uint8_t id, std::uint32_t v) {
        out_.push_back(id);
        put_varint(out_, v);
        return *this;
    }
    property_writer& string(std::uint8_t id, std::string_view v) {
        out_.push_back(id);
        put_string(out_, v);
        return *this;
    }
    property_writer& user(std::string_view name, std::string_view value) {
        out_.push_back(0x26);
        put_string(out_, name);
        put_string(out_, value);
        return *this;
    }
    const std::vector<std::uint8_t>& bytes() const noexcept { return out_; }

private:
    std::vector<std::uint8_t> out_;
};

/// Appends a property block (length prefix + bytes).
inline void put_properties(std::vector<std::uint8_t>& out, const std::vector<std::uint8_t>& props) {
    put_varint(out, props.size());
    out.insert(out.end(), props.begin(), props.end());
}

/// One v5 property as received: identifier and the value's wire bytes (a string keeps its
/// length prefix; a User Property is both strings).
struct wire_property {
    std::uint8_t id = 0;
    std::vector<std::uint8_t> value;
};

/// A bounds-checked reader over one packet.
struct byte_reader {
    const std::vector<std::uint8_t>& b;
    std::size_t i = 0;
    bool good = true;

    bool need(std::size_t n) {
        good = good && i + n <= b.size();
        return good;
    }
    std::uint8_t u8() { return need(1) ? b[i++] : 0; }
    std::uint16_t u16() {
        if (!need(2)) {
            return 0;
        }
        const auto v = static_cast<std::uint16_t>(b[i] << 8 | b[i + 1]);
        i += 2;
        return v;
    }
    std::uint32_t varint() {
        std::uint32_t v = 0;
        for (int shift = 0; shift < 28 && need(1); shift += 7) {
            const std::uint8_t byte = b[i++];
            v |= static_cast<std::uint32_t>(byte & 0x7F) << shift;
            if ((byte & 0x80) == 0) {
                break;
            }
        }
        return v;
    }
    std::string str() {
        const std::size_t n = u16();
        if (!need(n)) {
            return {};
        }
        std::string s(b.begin() + static_cast<std::ptrdiff_t>(i),
                      b.begin() + static_cast<std::ptrdiff_t>(i + n));
        i += n;
        return s;
    }
    /// Skips the fixed header.
    void skip_fixed_header() {
        i = 1;
        while (i < b.size() && (b[i] & 0x80) != 0) {
            ++i;
        }
        ++i;
    }
    /// A property block, in wire order; sets good = false when it does not parse.
    std::vector<wire_property> properties() {
        std::vector<wire_property> out;
        const std::size_t len = varint();
        const std::size_t end = i + len;
        if (!need(len)) {
            return out;
        }
        while (good && i < end) {
            wire_property p;
            p.id = u8();
            const std::size_t start = i;
            const int width = property_width(p.id);
            if (width > 0) {
                need(static_cast<std::size_t>(width));
                i += static_cast<std::size_t>(width);
            } else if (width == 0) {
                varint();
            } else {
                const std::size_t n = u16();
                need(n);
                i += n;
                if (p.id == 0x26) {
                    const std::size_t m = u16();
                    need(m);
                    i += m;
                }
            }
            if (!good || i > end) {
                good = false;
                break;
            }
            p.value.assign(b.begin() + static_cast<std::ptrdiff_t>(start),
                           b.begin() + static_cast<std::ptrdiff_t>(i));
            out.push_back(std::move(p));
        }
        return out;
    }
};

/// Property accessors over a wire-order list.
struct property_view {
    std::vector<wire_property> list;

    bool has(std::uint8_t id) const {
        for (const auto& p : list) {
            if (p.id == id) {
                return true;
            }
        }
        return false;
    }
    /// A byte / two-byte / four-byte / variable-byte integer property.
    std::optional<std::uint32_t> integer(std::uint8_t id) const {
        for (const auto& p : list) {
            if (p.id != id) {
                continue;
            }
            if (property_width(id) == 0) {
                byte_reader r{p.value};
                return r.varint();
            }
            std::uint32_t v = 0;
            for (const auto b : p.value) {
                v = v << 8 | b;
            }
            return v;
        }
        return std::nullopt;
    }
    /// A string or binary property, without its length prefix.
    std::optional<std::string> text(std::uint8_t id) const {
        for (const auto& p : list) {
            if (p.id == id) {
                byte_reader r{p.value};
                return r.str();
            }
        }
        return std::nullopt;
    }
    std::vector<std::pair<std::string, std::string>> user_properties() const {
        std::vector<std::pair<std::string, std::string>> out;
        for (const auto& p : list) {
            if (p.id == 0x26) {
                byte_reader r{p.value};
                auto name = r.str();
                auto value = r.str();
                out.emplace_back(std::move(name), std::move(value));
            }
        }
        return out;
    }
    /// Every Subscription Identifier, in wire order.
    std::vector<std::uint32_t> subscription_ids() const {
        std::vector<std::uint32_t> out;
        for (const auto& p : list) {
            if (p.id == 0x0B) {
                byte_reader r{p.value};
                out.push_back(r.varint());
            }
        }
        return out;
    }
};

/// A decoded PUBLISH.
struct raw_publish {
    std::string topic;
    std::string payload;
    int qos = 0;
    bool dup = false;
    bool retain = false;
    std::uint16_t packet_id = 0;
    property_view props;
};

/// Parses a PUBLISH of protocol `level`; nullopt when it is not one or does not parse.
inline std::optional<raw_publish> parse_publish(const std::vector<std::uint8_t>& p,
                                                std::uint8_t level) {
    if (packet_type(p) != pkt_publish) {
        return std::nullopt;
    }
    raw_publish m;
    m.dup = (p[0] & 0x08) != 0;
    m.qos = (p[0] >> 1) & 0x03;
    m.retain = (p[0] & 0x01) != 0;
    byte_reader r{p};
    r.skip_fixed_header();
    m.topic = r.str();
    if (m.qos > 0) {
        m.packet_id = r.u16();
    }
    if (level == 5) {
        m.props.list = r.properties();
    }
    if (!r.good || r.i > p.size()) {
        return std::nullopt;
    }
    m.payload.assign(p.begin() + static_cast<std::ptrdiff_t>(r.i), p.end());
    return m;
}

/// Packet identifier and (v5) reason code of a PUBACK / PUBREC / PUBREL / PUBCOMP.
struct ack_view {
    std::uint8_t type = 0;
    std::uint16_t packet_id = 0;
    std::uint8_t reason = 0;
};

inline std::optional<ack_view> parse_ack(const std::vector<std::uint8_t>& p) {
    if (p.size() < 4) {
        return std::nullopt;
    }
    ack_view a;
    a.type = packet_type(p);
    a.packet_id = static_cast<std::uint16_t>(p[2] << 8 | p[3]);
    a.reason = p.size() > 4 ? p[4] : 0;
    return a;
}

/// What a CONNECT says.
struct connect_options {
    std::string client_id;
    bool clean = true;
    std::uint16_t keep_alive = 30;
    std::vector<std::uint8_t> properties; ///< v5 CONNECT properties (property_writer::bytes())
    std::optional<std::string> will_topic;
    std::string will_payload;
    int will_qos = 0;
    bool will_retain = false;
    std::vector<std::uint8_t> will_properties; ///< v5
    std::optional<std::string> username;
    std::optional<std::string> password;
};

inline std::vector<std::uint8_t> connect_packet(std::uint8_t level, const connect_options& o) {
    std::vector<std::uint8_t> body;
    put_string(body, "MQTT");
    body.push_back(level);
    std::uint8_t flags = o.clean ? 0x02 : 0x00;
    if (o.will_topic) {
        flags = static_cast<std::uint8_t>(flags | 0x04 | (o.will_qos << 3) |
                                          (o.will_retain ? 0x20 : 0x00));
    }
    if (o.password) {
        flags |= 0x40;
    }
    if (o.username) {
        flags |= 0x80;
    }
    body.push_back(flags);
    body.push_back(static_cast<std::uint8_t>(o.keep_alive >> 8));
    body.push_back(static_cast<std::uint8_t>(o.keep_alive & 0xFF));
    if (level == 5) {
        put_properties(body, o.properties);
    }
    put_string(body, o.client_id);
    if (o.will_topic) {
        if (level == 5) {
            put_properties(body, o.will_properties);
        }
        put_string(body, *o.will_topic);
        put_string(body, o.will_payload);
    }
    if (o.username) {
        put_string(body, *o.username);
    }
    if (o.password) {
        put_string(body, *o.password);
    }
    return frame(0x10, body);
}

/// PUBLISH bytes. `packet_id` is used for QoS 1/2.
inline std::vector<std::uint8_t> publish_packet(std::uint8_t level, std::string_view topic,
                                                std::string_view payload, int qos,
                                                bool retain = false, std::uint16_t packet_id = 0,
                                                bool dup = false,
                                                const std::vector<std::uint8_t>& props = {}) {
    std::vector<std::uint8_t> body;
    put_string(body, topic);
    if (qos > 0) {
        body.push_back(static_cast<std::uint8_t>(packet_id >> 8));
        body.push_back(static_cast<std::uint8_t>(packet_id & 0xFF));
    }
    if (level == 5) {
        put_properties(body, props);
    }
    body.insert(body.end(), payload.begin(), payload.end());
    const auto first =
        static_cast<std::uint8_t>(0x30 | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 0x01 : 0));
    return frame(first, body);
}

/// SUBSCRIBE bytes: one filter with its options byte (QoS in bits 0-1; v5 No Local 0x04,
/// Retain As Published 0x08, Retain Handling << 4).
inline std::vector<std::uint8_t> subscribe_packet(std::uint8_t level, std::uint16_t packet_id,
                                                  std::string_view filter, std::uint8_t options,
                                                  const std::vector<std::uint8_t>& props = {}) {
    std::vector<std::uint8_t> body{static_cast<std::uint8_t>(packet_id >> 8),
                                   static_cast<std::uint8_t>(packet_id & 0xFF)};
    if (level == 5) {
        put_properties(body, props);
    }
    put_string(body, filter);
    body.push_back(options);
    return frame(0x82, body);
}

/// An acknowledgement (`type` PUBACK/PUBREC/PUBREL/PUBCOMP); the reason code is omitted when 0.
inline std::vector<std::uint8_t> ack_packet(std::uint8_t type, std::uint16_t packet_id,
                                            std::uint8_t reason = 0) {
    std::vector<std::uint8_t> body{static_cast<std::uint8_t>(packet_id >> 8),
                                   static_cast<std::uint8_t>(packet_id & 0xFF)};
    if (reason != 0) {
        body.push_back(reason);
    }
    const auto flags = static_cast<std::uint8_t>(type == pkt_pubrel ? 0x02 : 0x00);
    return frame(static_cast<std::uint8_t>(type << 4 | flags), body);
}

/// An MQTT client made of hand-written bytes. Packets read while waiting for another type are
/// kept, in order, for the next read.
class raw_client {
public:
    raw_client(int port, std::uint8_t level) : sock_(port), level_(level) {}

    std::uint8_t level() const noexcept { return level_; }
    raw_socket& socket() noexcept { return sock_; }

    /// Sends CONNECT and reads the CONNACK; nullopt when none arrives.
    std::optional<connack_view> connect(const connect_options& o) {
        if (!sock_.send(connect_packet(level_, o))) {
            return std::nullopt;
        }
        const auto p = expect(pkt_connack);
        return p ? parse_connack(*p, level_ == 5) : std::nullopt;
    }
    std::optional<connack_view> connect(std::string id, bool clean = true,
                                        std::uint16_t keep_alive = 30,
                                        std::vector<std::uint8_t> props = {}) {
        connect_options o;
        o.client_id = std::move(id);
        o.clean = clean;
        o.keep_alive = keep_alive;
        o.properties = std::move(props);
        return connect(o);
    }

    /// SUBSCRIBE with one filter; returns the SUBACK's reason codes (empty: no SUBACK).
    std::vector<std::uint8_t> subscribe(std::string_view filter, std::uint8_t options,
                                        const std::vector<std::uint8_t>& props = {}) {
        const std::uint16_t id = next_id_++;
        if (!sock_.send(subscribe_packet(level_, id, filter, options, props))) {
            return {};
        }
        const auto p = expect(pkt_suback);
        if (!p) {
            return {};
        }
        byte_reader r{*p};
        r.skip_fixed_header();
        r.u16();
        if (level_ == 5) {
            r.properties();
        }
        return {p->begin() + static_cast<std::ptrdiff_t>(r.i), p->end()};
    }

    bool publish(std::string_view topic, std::string_view payload, int qos, bool retain = false,
                 std::uint16_t packet_id = 0, bool dup = false,
                 const std::vector<std::uint8_t>& props = {}) {
        return sock_.send(
            publish_packet(level_, topic, payload, qos, retain, packet_id, dup, props));
    }
    bool send_ack(std::uint8_t type, std::uint16_t packet_id, std::uint8_t reason = 0) {
        return sock_.send(ack_packet(type, packet_id, reason));
    }
    bool puback(std::uint16_t id) { return send_ack(pkt_puback, id); }
    bool pubrec(std::uint16_t id) { return send_ack(pkt_pubrec, id); }
    bool pubrel(std::uint16_t id) { return send_ack(pkt_pubrel, id); }
    bool pubcomp(std::uint16_t id) { return send_ack(pkt_pubcomp, id); }
    /// DISCONNECT (v5 with `reason` when non-zero).
    bool disconnect(std::uint8_t reason = 0) {
        if (level_ == 5 && reason != 0) {
            return sock_.send({0xE0, 0x01, reason});
        }
        return sock_.send({0xE0, 0x00});
    }

    /// The next packet of any type.
    std::optional<std::vector<std::uint8_t>> next_packet(clock::duration timeout = wait_timeout) {
        if (!pending_.empty()) {
            auto p = std::move(pending_.front());
            pending_.pop_front();
            return p;
        }
        return sock_.read_packet(timeout);
    }
    /// The next packet of `type`; others read meanwhile are kept.
    std::optional<std::vector<std::uint8_t>> expect(std::uint8_t type,
                                                    clock::duration timeout = wait_timeout) {
        for (auto it = pending_.begin(); it != pending_.end(); ++it) {
            if (packet_type(*it) == type) {
                auto p = std::move(*it);
                pending_.erase(it);
                return p;
            }
        }
        const auto deadline = clock::now() + timeout;
        for (;;) {
            const auto left = deadline - clock::now();
            if (left <= clock::duration::zero()) {
                return std::nullopt;
            }
            auto p = sock_.read_packet(left);
            if (!p) {
                return std::nullopt;
            }
            if (packet_type(*p) == type) {
                return p;
            }
            pending_.push_back(std::move(*p));
        }
    }
    /// The next PUBLISH (not acknowledged: that is up to the test).
    std::optional<raw_publish> next_publish(clock::duration timeout = wait_timeout) {
        const auto p = expect(pkt_publish, timeout);
        return p ? parse_publish(*p, level_) : std::nullopt;
    }
    /// True when no PUBLISH arrives within `window`.
    bool no_publish_within(clock::duration window) {
        const auto p = expect(pkt_publish, window);
        if (p) {
            pending_.push_front(*p);
        }
        return !p;
    }
    bool wait_closed(clock::duration timeout = wait_timeout) { return sock_.wait_closed(timeout); }
    /// Reads until a DISCONNECT (returning its reason), the close or the timeout (nullopt).
    std::optional<std::uint8_t> await_disconnect(clock::duration timeout = wait_timeout) {
        const auto p = expect(pkt_disconnect, timeout);
        return p ? ::tern::test::disconnect_reason(*p) : std::nullopt;
    }
    void close() { sock_.close(); }

private:
    raw_socket sock_;
    std::uint8_t level_;
    std::uint16_t next_id_ = 1;
    std::deque<std::vector<std::uint8_t>> pending_;
};

/// Checks that the broker closes `c` after an error, and how. MQTT 5 section 4.13 says a server
/// SHOULD send a DISCONNECT with the reason code before closing (a CONNACK for an error in
/// CONNECT, read by the caller). tern always does, so against tern a v5 connection must get a
/// DISCONNECT with one of `v5_reasons` (empty: any, or none). Mosquitto 2.0.11 often just
/// closes, which the check allows; a DISCONNECT it does send must carry one of `v5_reasons`,
/// unless `mosquitto_deviation` documents that it uses another code. A 3.1.1 connection just
/// closes (3.1.1 has no server DISCONNECT).
inline void check_closed_with(raw_client& c, const std::vector<std::uint8_t>& v5_reasons,
                              const char* mosquitto_deviation = nullptr,
                              clock::duration timeout = wait_timeout) {
    const auto deadline = clock::now() + timeout;
    std::optional<std::uint8_t> reason;
    bool other_packet_after_disconnect = false;
    while (auto p = c.next_packet(deadline - clock::now())) {
        if (packet_type(*p) == pkt_disconnect) {
            reason = disconnect_reason(*p);
        } else if (reason) {
            other_packet_after_disconnect = true;
        }
    }
    CHECK(c.wait_closed(std::max<clock::duration>(deadline - clock::now(), 100ms)));
    CHECK_FALSE(other_packet_after_disconnect);
    if (c.level() != 5) {
        CHECK_FALSE(reason.has_value());
        return;
    }
    if (v5_reasons.empty()) {
        return;
    }
    const auto allowed = [&](std::uint8_t r) {
        return std::find(v5_reasons.begin(), v5_reasons.end(), r) != v5_reasons.end();
    };
    if (against_mosquitto()) {
        if (mosquitto_deviation != nullptr) {
            INFO("documented mosquitto deviation: " << mosquitto_deviation);
            SUCCEED("reason code not checked against mosquitto");
        } else if (reason) {
            CAPTURE(int{*reason});
            CHECK(allowed(*reason));
        }
        return;
    }
    REQUIRE(reason.has_value());
    CAPTURE(int{*reason});
    CHECK(allowed(*reason));
}

} // namespace tern::test
