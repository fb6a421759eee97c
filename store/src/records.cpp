#include <tern/store/records.hpp>

#include <tern/protocol/decoder.hpp>
#include <tern/protocol/encoder.hpp>

#include <algorithm>
#include <cstring>
#include <span>

namespace tern::store {

namespace mqtt = tern::protocol;

namespace {

void put_be(std::string& out, std::uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) {
        out.push_back(static_cast<char>((v >> (8 * i)) & 0xFFU));
    }
}

/// Reads fixed-width big-endian fields from a value; every read checks the length, so a
/// truncated or corrupt value fails instead of reading past its end.
class reader {
public:
    explicit reader(std::string_view v) noexcept : rest_(v) {}
    bool u(std::uint64_t& v, int bytes) noexcept {
        if (rest_.size() < static_cast<std::size_t>(bytes)) {
            return false;
        }
        v = 0;
        for (int i = 0; i < bytes; ++i) {
            v = (v << 8) | static_cast<std::uint8_t>(rest_[static_cast<std::size_t>(i)]);
        }
        rest_.remove_prefix(static_cast<std::size_t>(bytes));
        return true;
    }
    template <class T> bool get(T& out, int bytes) noexcept {
        std::uint64_t v = 0;
        if (!u(v, bytes)) {
            return false;
        }
        out = static_cast<T>(v);
        return true;
    }
    bool bytes(std::string_view& out, std::size_t n) noexcept {
        if (rest_.size() < n) {
            return false;
        }
        out = rest_.substr(0, n);
        rest_.remove_prefix(n);
        return true;
    }
    std::string_view rest() const noexcept { return rest_; }
    bool done() const noexcept { return rest_.empty(); }

private:
    std::string_view rest_;
};

std::int64_t to_ms(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

/// nullopt when `ms` (as written by to_ms, read back from a record) is not a time the system
/// clock can hold: a corrupt record, whose conversion would overflow.
std::optional<std::chrono::system_clock::time_point> from_ms(std::uint64_t ms) {
    constexpr auto max_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::duration::max())
                                .count();
    if (ms > static_cast<std::uint64_t>(max_ms)) {
        return std::nullopt;
    }
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::milliseconds(static_cast<std::int64_t>(ms))));
}

bool valid_qos(std::uint8_t q) noexcept {
    return q <= 2;
}

} // namespace

std::string session_prefix(std::uint64_t session_key) {
    std::string k;
    put_be(k, session_key, 8);
    return k;
}

std::string subscription_key(std::uint64_t session_key, std::string_view filter) {
    auto k = session_prefix(session_key);
    k.append(filter);
    return k;
}

std::string delivery_key(std::uint64_t session_key, std::uint64_t message_id) {
    auto k = session_prefix(session_key);
    put_be(k, message_id, 8);
    return k;
}

std::string inbound_key(std::uint64_t session_key, std::uint16_t packet_id) {
    auto k = session_prefix(session_key);
    put_be(k, packet_id, 2);
    return k;
}

std::string body_key(std::uint64_t message_id) {
    return session_prefix(message_id);
}

std::string ref_key(std::uint64_t message_id, std::uint64_t session_key) {
    auto k = body_key(message_id);
    put_be(k, session_key, 8);
    return k;
}

std::optional<std::uint64_t> key_session(std::string_view key) {
    reader r(key);
    std::uint64_t v = 0;
    if (!r.u(v, 8)) {
        return std::nullopt;
    }
    return v;
}

std::optional<std::uint64_t> delivery_key_message(std::string_view key) {
    if (key.size() != 16) {
        return std::nullopt;
    }
    return key_session(key.substr(8));
}

std::optional<std::uint16_t> inbound_key_packet(std::string_view key) {
    reader r(key);
    std::uint64_t s = 0;
    std::uint16_t id = 0;
    if (key.size() != 10 || !r.u(s, 8) || !r.get(id, 2)) {
        return std::nullopt;
    }
    return id;
}

std::string_view subscription_key_filter(std::string_view key) {
    return key.size() < 8 ? std::string_view{} : key.substr(8);
}

std::optional<std::uint64_t> body_key_message(std::string_view key) {
    if (key.size() != 8) {
        return std::nullopt;
    }
    return key_session(key);
}

std::optional<std::uint64_t> ref_key_message(std::string_view key) {
    if (key.size() != 16) {
        return std::nullopt;
    }
    return key_session(key);
}

std::optional<std::uint64_t> ref_key_session(std::string_view key) {
    return delivery_key_message(key);
}

std::string encode_message(const broker::message& m,
                           std::chrono::system_clock::time_point received) {
    mqtt::publish p;
    p.topic = m.publish.topic;
    p.payload = m.publish.payload;
    p.qos = m.publish.qos;
    p.retain = m.publish.retain;
    p.packet_id = p.qos == mqtt::qos::at_most_once ? 0 : 1; // meaningless, but encodable
    p.props = m.publish.props;
    p.props.topic_alias.reset();
    p.props.subscription_identifiers.clear();
    std::string out;
    out.push_back(static_cast<char>(record_format));
    put_be(out, static_cast<std::uint64_t>(to_ms(received)), 8);
    auto bytes = mqtt::encode_to_vector(mqtt::packet{p}, mqtt::protocol_version::v5);
    if (bytes) {
        out.append(reinterpret_cast<const char*>(bytes->data()), bytes->size());
    }
    return out;
}

std::optional<broker::message_ptr> decode_message(std::string_view value,
                                                  std::chrono::system_clock::time_point wall_now,
                                                  std::chrono::steady_clock::time_point now) {
    reader r(value);
    std::uint8_t format = 0;
    std::uint64_t received_ms = 0;
    if (!r.get(format, 1) || format != record_format || !r.u(received_ms, 8)) {
        return std::nullopt;
    }
    const auto rest = r.rest();
    const std::span<const std::uint8_t> frame(reinterpret_cast<const std::uint8_t*>(rest.data()),
                                              rest.size());
    auto decoded =
        mqtt::decode(frame, mqtt::decode_options{mqtt::protocol_version::v5, mqtt::max_packet_size,
                                                 mqtt::receiver_role::server});
    if (!decoded || decoded->consumed != frame.size()) {
        return std::nullopt;
    }
    auto* p = std::get_if<mqtt::publish>(&decoded->packet.packet);
    // encode_message writes a topic (an alias is resolved before a message is kept) and no
    // Topic Alias or Subscription Identifier: a record with one is not ours.
    if (p == nullptr || p->topic.empty() || p->props.topic_alias ||
        !p->props.subscription_identifiers.empty()) {
        return std::nullopt;
    }
    auto m = std::make_shared<broker::message>();
    m->publish = *p;
    m->publish.packet_id = 0;
    m->publish.dup = false;
    m->storage = std::move(decoded->packet.storage);
    const auto received = from_ms(received_ms);
    if (!received) {
        return std::nullopt;
    }
    const auto age = std::max(wall_now - *received, std::chrono::system_clock::duration::zero());
    m->received_at = now - std::chrono::duration_cast<std::chrono::steady_clock::duration>(age);
    return broker::message_ptr(std::move(m));
}

std::string encode_session(const broker::stored_session& s,
                           std::chrono::system_clock::time_point wall_now) {
    std::string out;
    out.push_back(static_cast<char>(record_format));
    put_be(out, s.key, 8);
    put_be(out, s.expiry_interval, 4);
    out.push_back(static_cast<char>(s.version));
    const auto offline =
        s.offline_since.time_since_epoch().count() == 0 ? 0 : to_ms(s.offline_since);
    put_be(out, static_cast<std::uint64_t>(offline), 8);
    put_be(out, s.will_delay, 4);
    if (s.will != nullptr) {
        // A will's Message Expiry counts from its publication [MQTT-3.1.3-15], not its CONNECT.
        out.append(encode_message(*s.will, wall_now));
    }
    return out;
}

std::optional<session_record> decode_session(std::string_view value) {
    reader r(value);
    session_record s;
    std::uint8_t format = 0;
    std::uint8_t version = 0;
    std::uint64_t offline = 0;
    if (!r.get(format, 1) || format != record_format || !r.u(s.key, 8) ||
        !r.get(s.expiry_interval, 4) || !r.get(version, 1) || !r.u(offline, 8) ||
        !r.get(s.will_delay, 4)) {
        return std::nullopt;
    }
    if (version < 3 || version > 5) {
        return std::nullopt;
    }
    s.version = static_cast<mqtt::protocol_version>(version);
    if (offline != 0) {
        const auto since = from_ms(offline);
        if (!since) {
            return std::nullopt;
        }
        s.offline_since = *since;
    }
    s.will = std::string(r.rest());
    return s;
}

std::string encode_subscription(const broker::subscription& s) {
    std::string out;
    out.push_back(static_cast<char>(record_format));
    out.push_back(static_cast<char>(s.options.qos));
    const unsigned flags =
        (s.options.no_local ? 1U : 0U) | (s.options.retain_as_published ? 2U : 0U) |
        (static_cast<unsigned>(s.options.retain_handling) << 2U) | (s.hash_skips_parent ? 16U : 0U);
    out.push_back(static_cast<char>(flags));
    put_be(out, s.identifier, 4);
    put_be(out, s.weight, 4);
    return out;
}

std::optional<broker::subscription> decode_subscription(std::string_view value) {
    reader r(value);
    std::uint8_t format = 0;
    std::uint8_t qos = 0;
    std::uint8_t flags = 0;
    broker::subscription s;
    if (!r.get(format, 1) || format != record_format || !r.get(qos, 1) || !r.get(flags, 1) ||
        !r.get(s.identifier, 4) || !r.get(s.weight, 4) || !r.done() || !valid_qos(qos) ||
        ((flags >> 2U) & 3U) > 2 || (flags & ~0x1FU) != 0 || s.weight == 0) {
        return std::nullopt;
    }
    s.options.qos = static_cast<mqtt::qos>(qos);
    s.options.no_local = (flags & 1U) != 0;
    s.options.retain_as_published = (flags & 2U) != 0;
    s.options.retain_handling = static_cast<mqtt::retain_handling>((flags >> 2U) & 3U);
    // Bit 4 came to format 2 after its first release (profile aws-iot); a Tern built before it
    // takes such a subscription for corrupt: downgrades are not supported.
    s.hash_skips_parent = (flags & 16U) != 0;
    return s;
}

std::string encode_delivery(const broker::stored_delivery& d) {
    std::string out;
    out.push_back(static_cast<char>(record_format));
    out.push_back(static_cast<char>(d.qos));
    out.push_back(static_cast<char>((d.retain ? 1U : 0U) | (d.released ? 2U : 0U)));
    put_be(out, d.packet_id, 2);
    const auto n = std::min<std::size_t>(d.subscription_ids.size(), 255);
    out.push_back(static_cast<char>(n));
    for (std::size_t i = 0; i < n; ++i) {
        put_be(out, d.subscription_ids[i], 4);
    }
    return out;
}

std::optional<broker::stored_delivery> decode_delivery(std::string_view value) {
    reader r(value);
    std::uint8_t format = 0;
    std::uint8_t qos = 0;
    std::uint8_t flags = 0;
    std::uint8_t n = 0;
    broker::stored_delivery d;
    if (!r.get(format, 1) || format != record_format || !r.get(qos, 1) || !r.get(flags, 1) ||
        !r.get(d.packet_id, 2) || !r.get(n, 1) || qos == 0 || !valid_qos(qos)) {
        return std::nullopt;
    }
    for (std::uint8_t i = 0; i < n; ++i) {
        std::uint32_t id = 0;
        if (!r.get(id, 4)) {
            return std::nullopt;
        }
        d.subscription_ids.push_back(id);
    }
    if (!r.done()) {
        return std::nullopt;
    }
    d.qos = static_cast<mqtt::qos>(qos);
    d.retain = (flags & 1U) != 0;
    d.released = (flags & 2U) != 0;
    if (d.released && (d.qos != mqtt::qos::exactly_once || d.packet_id == 0)) {
        return std::nullopt;
    }
    return d;
}

std::string encode_u64(std::uint64_t v) {
    std::string out;
    put_be(out, v, 8);
    return out;
}

std::optional<std::uint64_t> decode_u64(std::string_view value) {
    if (value.size() != 8) {
        return std::nullopt;
    }
    return key_session(value);
}

} // namespace tern::store
