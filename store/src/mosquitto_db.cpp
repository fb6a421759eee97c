#include <tern/store/mosquitto_db.hpp>

#include <tern/protocol/decoder.hpp>
#include <tern/protocol/topic.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <span>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace tern::store {

namespace mqtt = tern::protocol;

namespace {

constexpr std::array<unsigned char, 15> db_magic = {0x00, 0xB5, 0x00, 'm', 'o', 's', 'q', 'u',
                                                    'i',  't',  't',  'o', ' ', 'd', 'b'};
/// Magic, the CRC field (always 0, never checked by Mosquitto either) and the version.
constexpr std::size_t file_header_size = 15 + 4 + 4;
constexpr std::size_t chunk_header_size = 8;

enum chunk_type : std::uint32_t {
    chunk_cfg = 1,
    chunk_msg_store = 2,
    chunk_client_msg = 3,
    chunk_retain = 4,
    chunk_sub = 5,
    chunk_client = 6,
};

// The fixed part of each chunk: sizeof() of Mosquitto's PF_* struct on the 64-bit ABIs,
// padding included, since Mosquitto fwrite()s the struct whole.
constexpr std::size_t cfg_fixed = 10; // PF_cfg is 16 with padding; only 10 bytes mean anything
constexpr std::size_t client_fixed_v6 = 24;
constexpr std::size_t client_fixed_v5 = 16;
constexpr std::size_t client_msg_fixed = 16;
constexpr std::size_t msg_store_fixed = 32;
constexpr std::size_t retain_fixed = 8;
constexpr std::size_t sub_fixed = 12;

// Mosquitto's enum mosquitto_msg_state (lib/mosquitto_internal.h).
enum msg_state : std::uint8_t {
    ms_publish_qos0 = 1,
    ms_publish_qos1 = 2,
    ms_wait_for_puback = 3,
    ms_publish_qos2 = 4,
    ms_wait_for_pubrec = 5,
    ms_resend_pubrel = 6,
    ms_wait_for_pubrel = 7,
    ms_resend_pubcomp = 8,
    ms_wait_for_pubcomp = 9,
    ms_send_pubrec = 10,
    ms_queued = 11,
};
constexpr std::uint8_t direction_in = 0;
constexpr std::uint8_t direction_out = 1;
constexpr std::uint8_t option_no_local = 0x04;
constexpr std::uint8_t option_retain_as_published = 0x08;
constexpr std::uint32_t expiry_never = 0xFFFFFFFFU;

std::uint16_t be16(std::string_view b, std::size_t at) {
    return static_cast<std::uint16_t>(static_cast<std::uint8_t>(b[at]) << 8U |
                                      static_cast<std::uint8_t>(b[at + 1]));
}

std::uint32_t be32(std::string_view b, std::size_t at) {
    return static_cast<std::uint32_t>(be16(b, at)) << 16U | be16(b, at + 2);
}

std::uint64_t le64(std::string_view b, std::size_t at) {
    std::uint64_t v = 0;
    for (std::size_t i = 8; i > 0; --i) {
        v = v << 8U | static_cast<std::uint8_t>(b[at + i - 1]);
    }
    return v;
}

std::uint8_t u8(std::string_view b, std::size_t at) {
    return static_cast<std::uint8_t>(b[at]);
}

const char* chunk_name(std::uint32_t type) {
    switch (type) {
    case chunk_cfg:
        return "configuration chunk";
    case chunk_msg_store:
        return "message chunk";
    case chunk_client_msg:
        return "client message chunk";
    case chunk_retain:
        return "retained message chunk";
    case chunk_sub:
        return "subscription chunk";
    case chunk_client:
        return "client chunk";
    default:
        return "chunk";
    }
}

void put_varint(std::vector<std::uint8_t>& out, std::uint32_t v) {
    do {
        auto b = static_cast<std::uint8_t>(v & 0x7FU);
        v >>= 7U;
        if (v != 0) {
            b |= 0x80U;
        }
        out.push_back(b);
    } while (v != 0);
}

/// True when `block` is exactly one MQTT 5 property block: a Variable Byte Integer length
/// (at most 4 bytes [MQTT-1.5.5]) and that many bytes. Checked before the block goes into a
/// PUBLISH frame, where a wrong length would move the start of the payload.
bool whole_property_block(std::string_view block) {
    std::uint64_t len = 0;
    for (std::size_t i = 0; i < 4 && i < block.size(); ++i) {
        const auto b = static_cast<std::uint8_t>(block[i]);
        len |= static_cast<std::uint64_t>(b & 0x7FU) << (7 * i);
        if ((b & 0x80U) == 0) {
            return len == block.size() - i - 1;
        }
    }
    return false;
}

/// The parts of a PUBLISH as Mosquitto stored them, put into a v5 frame and decoded by Tern's
/// codec, so the message gets every check a PUBLISH from a client gets and owns its bytes the
/// same way. `props` is a whole property block or empty. Role client: a Subscription
/// Identifier (kept per delivery) is allowed.
std::optional<mqtt::received_packet> decode_as_publish(std::string_view topic,
                                                       std::string_view payload, std::uint8_t qos,
                                                       bool retain, std::string_view props,
                                                       std::string& why) {
    const std::uint64_t remaining =
        2 + topic.size() + (qos > 0 ? 2 : 0) + (props.empty() ? 1 : props.size()) + payload.size();
    if (remaining > mqtt::max_variable_byte_integer) {
        why = fmt::format("the message is too large for MQTT ({} bytes)", remaining);
        return std::nullopt;
    }
    std::vector<std::uint8_t> frame;
    frame.reserve(static_cast<std::size_t>(remaining) + 5);
    frame.push_back(
        static_cast<std::uint8_t>(0x30U | (static_cast<unsigned>(qos) << 1U) | (retain ? 1U : 0U)));
    put_varint(frame, static_cast<std::uint32_t>(remaining));
    frame.push_back(static_cast<std::uint8_t>(topic.size() >> 8U));
    frame.push_back(static_cast<std::uint8_t>(topic.size() & 0xFFU));
    frame.insert(frame.end(), topic.begin(), topic.end());
    if (qos > 0) {
        frame.push_back(0); // a packet id is required at QoS 1/2; the message has none
        frame.push_back(1);
    }
    if (props.empty()) {
        frame.push_back(0);
    } else {
        frame.insert(frame.end(), props.begin(), props.end());
    }
    frame.insert(frame.end(), payload.begin(), payload.end());
    auto decoded =
        mqtt::decode(std::span<const std::uint8_t>(frame.data(), frame.size()),
                     mqtt::decode_options{mqtt::protocol_version::v5, mqtt::max_packet_size,
                                          mqtt::receiver_role::client});
    if (!decoded) {
        why = fmt::format("not a valid PUBLISH: {}", decoded.error().message());
        return std::nullopt;
    }
    if (decoded->consumed != frame.size() ||
        !std::holds_alternative<mqtt::publish>(decoded->packet.packet)) {
        why = "not a valid PUBLISH";
        return std::nullopt;
    }
    return std::move(decoded->packet);
}

// What the chunks say, as views into the file, before anything is built (pass 1).
struct raw_message {
    std::size_t offset = 0;
    std::uint64_t id = 0;
    std::int64_t expiry_time = 0;
    std::string_view topic;
    std::string_view payload;
    std::string_view props;
    std::uint8_t qos = 0;
    bool retain = false;
};

struct raw_client {
    std::string_view id;
    std::int64_t expiry_time = 0;
    std::uint32_t expiry_interval = 0;
    std::uint16_t last_mid = 0;
    std::uint16_t listener_port = 0;
    std::string_view username;
};

struct raw_client_msg {
    std::uint64_t store_id = 0;
    std::uint16_t mid = 0;
    std::string_view client;
    std::uint8_t qos = 0;
    std::uint8_t state = 0;
    bool retain = false;
    std::uint8_t direction = 0;
    std::vector<std::uint32_t> subscription_ids;
};

struct raw_sub {
    std::string_view client;
    std::string_view filter;
    std::uint32_t identifier = 0;
    std::uint8_t qos = 0;
    std::uint8_t options = 0;
};

/// An inbound QoS 2 message to deliver at the parse (see mosquitto_db_contents).
struct pending_inbound {
    std::size_t publisher = 0;
    broker::message_ptr msg;
};

class db_parser {
public:
    db_parser(std::string_view bytes, std::chrono::system_clock::time_point wall_now,
              std::chrono::steady_clock::time_point now, std::string& error)
        : bytes_(bytes), now_(now),
          // Not before 1970, so that expiry_time - wall_seconds_ never overflows.
          wall_seconds_(std::max<std::int64_t>(
              0, std::chrono::duration_cast<std::chrono::seconds>(wall_now.time_since_epoch())
                     .count())),
          error_(error) {}

    std::optional<mosquitto_db_contents> run() {
        if (!read_chunks() || !build()) {
            return std::nullopt;
        }
        return std::move(out_);
    }

private:
    bool fail(std::size_t offset, const std::string& what) {
        error_ = fmt::format("offset {}: {}", offset, what);
        return false;
    }

    /// Pass 1: the header, then every chunk, each bounded by its own length.
    bool read_chunks() {
        if (bytes_.empty()) {
            error_ = "the file is empty (a Mosquitto database starts with a 23-byte header)";
            return false;
        }
        const auto head = std::min(bytes_.size(), db_magic.size());
        if (std::memcmp(bytes_.data(), db_magic.data(), head) != 0) {
            error_ = "not a Mosquitto database (no \"mosquitto db\" magic at offset 0)";
            return false;
        }
        if (bytes_.size() < file_header_size) {
            return fail(0, fmt::format("truncated file header ({} of {} bytes)", bytes_.size(),
                                       file_header_size));
        }
        out_.version = be32(bytes_, 19);
        if (out_.version < mosquitto_db_oldest_version ||
            out_.version > mosquitto_db_newest_version) {
            return fail(19, fmt::format("format version {} is not supported: Tern reads versions "
                                        "5 (Mosquitto 1.6) and 6 (Mosquitto 2.0); Mosquitto 2.0 "
                                        "reads an older file and writes version 6 when it stops",
                                        out_.version));
        }
        std::size_t pos = file_header_size;
        bool saw_cfg = false;
        while (pos < bytes_.size()) {
            const auto left = bytes_.size() - pos;
            if (left < chunk_header_size) {
                return fail(pos, fmt::format("truncated chunk header ({} of {} bytes)", left,
                                             chunk_header_size));
            }
            const auto type = be32(bytes_, pos);
            const auto length = be32(bytes_, pos + 4);
            if (length > left - chunk_header_size) {
                return fail(pos,
                            fmt::format("{} (type {}) of {} bytes, but {} are left",
                                        chunk_name(type), type, length, left - chunk_header_size));
            }
            const auto body = bytes_.substr(pos + chunk_header_size, length);
            bool ok = true;
            switch (type) {
            case chunk_cfg:
                ok = read_cfg(pos, body);
                saw_cfg = saw_cfg || ok;
                break;
            case chunk_msg_store:
                ok = read_msg_store(pos, body);
                break;
            case chunk_client_msg:
                ok = read_client_msg(pos, body);
                break;
            case chunk_retain:
                ok = read_retain(pos, body);
                break;
            case chunk_sub:
                ok = read_sub(pos, body);
                break;
            case chunk_client:
                ok = read_client(pos, body);
                break;
            default:
                ++out_.skipped.unknown_chunks; // skipped by its length, as Mosquitto does
                break;
            }
            if (!ok) {
                return false;
            }
            pos += chunk_header_size + length;
        }
        if (!saw_cfg) {
            return fail(file_header_size, "no configuration chunk (Mosquitto writes one first)");
        }
        return true;
    }

    /// `n` bytes at `at` of `body`, or false when fewer are left (the caller names the field).
    static bool take(std::string_view body, std::size_t& at, std::size_t n, std::string_view& out) {
        if (n > body.size() - at) {
            return false;
        }
        out = body.substr(at, n);
        at += n;
        return true;
    }

    bool too_short(std::size_t offset, std::uint32_t type, std::string_view body,
                   std::size_t fixed) {
        return fail(offset, fmt::format("truncated {} ({} bytes, its fixed part is {})",
                                        chunk_name(type), body.size(), fixed));
    }

    bool field_overflows(std::size_t offset, std::uint32_t type, const char* field, std::size_t n) {
        return fail(offset, fmt::format("{}: the {} ({} bytes) runs past the end of the chunk",
                                        chunk_name(type), field, n));
    }

    bool read_cfg(std::size_t offset, std::string_view body) {
        if (body.size() < cfg_fixed) {
            return too_short(offset, chunk_cfg, body, cfg_fixed);
        }
        const auto id_size = u8(body, 9);
        if (id_size != sizeof(std::uint64_t)) {
            return fail(offset,
                        fmt::format("message ids of {} bytes (Mosquitto 2.0 writes 8)", id_size));
        }
        out_.last_db_id = le64(body, 0);
        out_.shutdown = u8(body, 8) != 0;
        return true;
    }

    bool read_msg_store(std::size_t offset, std::string_view body) {
        if (body.size() < msg_store_fixed) {
            return too_short(offset, chunk_msg_store, body, msg_store_fixed);
        }
        raw_message m;
        m.offset = offset;
        m.id = le64(body, 0);
        m.expiry_time = static_cast<std::int64_t>(le64(body, 8));
        const std::size_t payload_len = be32(body, 16);
        const std::size_t source_id_len = be16(body, 22);
        const std::size_t source_username_len = be16(body, 24);
        const std::size_t topic_len = be16(body, 26);
        m.qos = u8(body, 30);
        m.retain = u8(body, 31) != 0;
        std::size_t at = msg_store_fixed;
        std::string_view skipped;
        if (!take(body, at, source_id_len, skipped)) {
            return field_overflows(offset, chunk_msg_store, "source client id", source_id_len);
        }
        if (!take(body, at, source_username_len, skipped)) {
            return field_overflows(offset, chunk_msg_store, "source username", source_username_len);
        }
        if (!take(body, at, topic_len, m.topic)) {
            return field_overflows(offset, chunk_msg_store, "topic", topic_len);
        }
        if (!take(body, at, payload_len, m.payload)) {
            return field_overflows(offset, chunk_msg_store, "payload", payload_len);
        }
        m.props = body.substr(at);
        if (m.qos > 2) {
            return fail(offset, fmt::format("message chunk: QoS {}", m.qos));
        }
        if (m.topic.empty()) {
            return fail(offset, "message chunk: empty topic");
        }
        if (!m.props.empty() && !whole_property_block(m.props)) {
            return fail(offset, "message chunk: the properties are not one property block");
        }
        if (!message_index_.emplace(m.id, messages_.size()).second) {
            return fail(offset, fmt::format("message chunk: message id {} appears twice", m.id));
        }
        messages_.push_back(m);
        return true;
    }

    bool read_client(std::size_t offset, std::string_view body) {
        const auto fixed = out_.version == 6 ? client_fixed_v6 : client_fixed_v5;
        if (body.size() < fixed) {
            return too_short(offset, chunk_client, body, fixed);
        }
        raw_client c;
        c.expiry_time = static_cast<std::int64_t>(le64(body, 0));
        c.expiry_interval = be32(body, 8);
        c.last_mid = be16(body, 12);
        const std::size_t id_len = be16(body, 14);
        std::size_t username_len = 0;
        if (out_.version == 6) {
            c.listener_port = be16(body, 16);
            username_len = be16(body, 18);
        }
        std::size_t at = fixed;
        if (!take(body, at, id_len, c.id)) {
            return field_overflows(offset, chunk_client, "client id", id_len);
        }
        if (!take(body, at, username_len, c.username)) {
            return field_overflows(offset, chunk_client, "username", username_len);
        }
        if (c.id.empty()) {
            ++out_.skipped.empty_client_ids;
            return true;
        }
        clients_.push_back(c);
        return true;
    }

    bool read_client_msg(std::size_t offset, std::string_view body) {
        if (body.size() < client_msg_fixed) {
            return too_short(offset, chunk_client_msg, body, client_msg_fixed);
        }
        raw_client_msg c;
        c.store_id = le64(body, 0);
        c.mid = be16(body, 8);
        const std::size_t id_len = be16(body, 10);
        c.qos = u8(body, 12);
        c.state = u8(body, 13);
        // retain in the high nibble, dup in the low one (persist__client_messages_save).
        c.retain = (u8(body, 14) & 0xF0U) != 0;
        c.direction = u8(body, 15);
        std::size_t at = client_msg_fixed;
        if (!take(body, at, id_len, c.client)) {
            return field_overflows(offset, chunk_client_msg, "client id", id_len);
        }
        if (c.qos > 2 || c.direction > direction_out || c.state < ms_publish_qos0 ||
            c.state > ms_queued) {
            return fail(offset, fmt::format("client message chunk: QoS {}, direction {}, state {}",
                                            c.qos, c.direction, c.state));
        }
        const auto props = body.substr(at);
        if (!props.empty()) {
            // The delivery's own properties: the Subscription Identifiers it goes out with.
            std::string why;
            if (!whole_property_block(props)) {
                return fail(offset,
                            "client message chunk: the properties are not one property block");
            }
            auto p = decode_as_publish("x", {}, 0, false, props, why);
            if (!p) {
                return fail(offset, "client message chunk: properties: " + why);
            }
            c.subscription_ids = std::get<mqtt::publish>(p->packet).props.subscription_identifiers;
        }
        client_msgs_.push_back(std::move(c));
        return true;
    }

    bool read_retain(std::size_t offset, std::string_view body) {
        if (body.size() < retain_fixed) {
            return too_short(offset, chunk_retain, body, retain_fixed);
        }
        retains_.push_back(le64(body, 0));
        return true;
    }

    bool read_sub(std::size_t offset, std::string_view body) {
        if (body.size() < sub_fixed) {
            return too_short(offset, chunk_sub, body, sub_fixed);
        }
        raw_sub s;
        s.identifier = be32(body, 0);
        const std::size_t id_len = be16(body, 4);
        const std::size_t filter_len = be16(body, 6);
        s.qos = u8(body, 8);
        s.options = u8(body, 9);
        std::size_t at = sub_fixed;
        if (!take(body, at, id_len, s.client)) {
            return field_overflows(offset, chunk_sub, "client id", id_len);
        }
        if (!take(body, at, filter_len, s.filter)) {
            return field_overflows(offset, chunk_sub, "topic filter", filter_len);
        }
        if (s.qos > 2) {
            return fail(offset, fmt::format("subscription chunk: QoS {}", s.qos));
        }
        if (s.identifier > mqtt::max_variable_byte_integer) {
            return fail(offset, fmt::format("subscription chunk: subscription identifier {}",
                                            s.identifier));
        }
        if (!mqtt::parse_topic_filter(s.filter)) {
            return fail(offset, "subscription chunk: not a valid topic filter");
        }
        subs_.push_back(s);
        return true;
    }

    /// Pass 2: messages, then sessions and what refers to them.
    bool build() {
        built_.resize(messages_.size());
        for (std::size_t i = 0; i < messages_.size(); ++i) {
            const auto& r = messages_[i];
            std::optional<std::uint32_t> expiry;
            if (r.expiry_time > 0) {
                const auto left = r.expiry_time - wall_seconds_;
                if (left <= 0) {
                    ++out_.skipped.expired_messages;
                    continue; // left null: every reference to it is dropped
                }
                expiry = static_cast<std::uint32_t>(
                    std::min<std::int64_t>(left, std::numeric_limits<std::uint32_t>::max()));
            }
            auto m = make_message(r, r.retain, expiry);
            if (!m) {
                return false;
            }
            built_[i] = {std::move(*m), expiry};
        }

        std::unordered_set<std::string_view> ended;
        for (const auto& c : clients_) {
            if (c.expiry_interval == 0) {
                ended.insert(c.id);
                continue;
            }
            auto [it, fresh] = session_index_.try_emplace(c.id, out_.state.sessions.size());
            if (fresh) {
                out_.state.sessions.emplace_back();
                out_.details.emplace_back();
                out_.state.sessions.back().client_id = std::string(c.id);
            }
            auto& s = out_.state.sessions[it->second];
            auto& d = out_.details[it->second];
            s.expiry_interval = c.expiry_interval;
            d.username = std::string(c.username);
            d.listener_port = c.listener_port;
            d.last_mid = c.last_mid;
            d.session_expiry_time = c.expiry_time;
        }
        for (const auto& id : ended) {
            if (session_index_.contains(id)) {
                continue; // a later record of the same client keeps it
            }
            ++out_.skipped.ended_sessions;
        }
        const auto owner = [&](std::string_view client) -> std::optional<std::size_t> {
            if (const auto it = session_index_.find(client); it != session_index_.end()) {
                return it->second;
            }
            if (!ended.contains(client)) {
                ++out_.skipped.orphans;
            }
            return std::nullopt;
        };

        std::vector<pending_inbound> inbound;
        std::unordered_map<const broker::message*, std::uint64_t> stored_ids;
        for (auto& c : client_msgs_) {
            const auto session = owner(c.client);
            if (!session) {
                continue;
            }
            auto& s = out_.state.sessions[*session];
            const auto found = message_index_.find(c.store_id);
            const broker::message_ptr* msg = nullptr;
            if (found == message_index_.end()) {
                ++out_.skipped.missing_messages;
            } else if (built_[found->second].msg) {
                msg = &built_[found->second].msg;
            }
            if (c.direction == direction_in) {
                if (c.qos != 2 || c.mid == 0) {
                    ++out_.skipped.other_inbound;
                    continue;
                }
                // PUBREC went to the client: its PUBREL (or a resent PUBLISH) must be answered
                // without delivering the message twice, expired or not.
                if (std::find(s.inbound_qos2.begin(), s.inbound_qos2.end(), c.mid) ==
                    s.inbound_qos2.end()) {
                    s.inbound_qos2.push_back(c.mid);
                    if (msg != nullptr) {
                        inbound.push_back({*session, *msg});
                    }
                }
                continue;
            }
            if (msg == nullptr) {
                continue;
            }
            const auto qos = std::min((*msg)->publish.qos, static_cast<mqtt::qos>(c.qos));
            if (qos == mqtt::qos::at_most_once) {
                ++out_.skipped.qos0_deliveries;
                continue;
            }
            broker::stored_delivery d;
            d.qos = qos;
            d.retain = c.retain;
            d.subscription_ids = std::move(c.subscription_ids);
            // Sent and not yet acknowledged: the resume resends it (DUP) under its packet id,
            // or, once PUBREC came, sends PUBREL. The others (queued, or in Mosquitto's
            // in-flight list but never sent) wait in the queue for a packet id.
            const bool sent = c.state == ms_wait_for_puback || c.state == ms_wait_for_pubrec ||
                              c.state == ms_resend_pubrel || c.state == ms_wait_for_pubcomp;
            if (sent && c.mid != 0) {
                d.packet_id = c.mid;
                d.released = qos == mqtt::qos::exactly_once &&
                             (c.state == ms_resend_pubrel || c.state == ms_wait_for_pubcomp);
            }
            if (!d.subscription_ids.empty()) {
                out_.details[*session].known_v5 = true;
            }
            stored_ids.emplace(msg->get(), c.store_id);
            s.messages.emplace_back(*msg, std::move(d));
        }

        for (const auto& r : subs_) {
            const auto session = owner(r.client);
            if (!session) {
                continue;
            }
            broker::subscription sub;
            sub.options.qos = static_cast<mqtt::qos>(r.qos);
            sub.options.no_local = (r.options & option_no_local) != 0;
            sub.options.retain_as_published = (r.options & option_retain_as_published) != 0;
            sub.identifier = r.identifier;
            if (sub.identifier != 0 || sub.options.no_local || sub.options.retain_as_published) {
                out_.details[*session].known_v5 = true;
            }
            auto& list = out_.state.sessions[*session].subscriptions;
            // A filter once per session (the last record wins), found by a map: a session
            // may have thousands of subscriptions.
            const auto [it, fresh] =
                sub_index_.try_emplace(sub_key{*session, r.filter}, list.size());
            if (fresh) {
                list.emplace_back(std::string(r.filter), sub);
            } else {
                list[it->second].second = sub;
            }
        }

        for (const auto id : retains_) {
            const auto found = message_index_.find(id);
            if (found == message_index_.end()) {
                ++out_.skipped.missing_messages;
                continue;
            }
            const auto& b = built_[found->second];
            if (!b.msg) {
                continue; // expired
            }
            auto msg = b.msg;
            if (!msg->publish.retain) {
                // Mosquitto clears the flag on a stored $SYS message, and keeps none retained.
                auto copy = make_message(messages_[found->second], true, b.expiry);
                if (!copy) {
                    return false;
                }
                msg = std::move(*copy);
            }
            set_retained(std::move(msg));
        }

        for (std::size_t i = 0; i < out_.state.sessions.size(); ++i) {
            auto& s = out_.state.sessions[i];
            if (s.expiry_interval != expiry_never) {
                out_.details[i].known_v5 = true; // 3.1.1 has no other expiry than "never"
            }
            s.key = i + 1;
            s.version = out_.details[i].known_v5 ? mqtt::protocol_version::v5
                                                 : mqtt::protocol_version::v3_1_1;
        }
        out_.state.next_key = out_.state.sessions.size() + 1;

        // The naming order: Mosquitto's store order (ids grow with arrival), then what is
        // delivered here, which goes to the end of each queue.
        std::vector<std::pair<std::uint64_t, broker::message_ptr>> ordered;
        std::unordered_set<const broker::message*> seen;
        for (const auto& s : out_.state.sessions) {
            for (const auto& [m, d] : s.messages) {
                if (seen.insert(m.get()).second) {
                    ordered.emplace_back(stored_ids[m.get()], m);
                }
            }
        }
        std::stable_sort(ordered.begin(), ordered.end(),
                         [](const auto& a, const auto& b) { return a.first < b.first; });
        for (auto& [id, m] : ordered) {
            out_.messages.push_back(std::move(m));
        }
        for (const auto& p : inbound) {
            if (deliver(p) && seen.insert(p.msg.get()).second) {
                out_.messages.push_back(p.msg);
            }
        }
        for (auto& m : retained_slots_) {
            if (m) {
                out_.state.retained.push_back(std::move(m));
            }
        }
        return true;
    }

    std::optional<broker::message_ptr> make_message(const raw_message& r, bool retain,
                                                    std::optional<std::uint32_t> expiry) {
        std::string why;
        auto p = decode_as_publish(r.topic, r.payload, r.qos, retain, r.props, why);
        if (!p) {
            fail(r.offset, "message chunk: " + why);
            return std::nullopt;
        }
        const auto& decoded = std::get<mqtt::publish>(p->packet);
        auto m = std::make_shared<broker::message>();
        m->publish = decoded;
        m->publish.packet_id = 0;
        m->publish.dup = false;
        // What a server forwards [MQTT-3.3.2-4 ff.]; Mosquitto keeps the Message Expiry apart,
        // as the time the message expires.
        m->publish.props = broker::forwardable_properties(decoded.props);
        if (expiry) {
            m->publish.props.message_expiry_interval = *expiry;
        }
        m->storage = std::move(p->storage);
        m->received_at = now_;
        return broker::message_ptr(std::move(m));
    }

    /// One retained message per topic, the last one set; an empty one clears the topic
    /// [MQTT-3.3.1-6]. The list is made from the slots at the end, in first-seen order.
    void set_retained(broker::message_ptr msg) {
        const auto [it, fresh] =
            retained_index_.try_emplace(std::string(msg->publish.topic), retained_slots_.size());
        if (fresh) {
            retained_slots_.emplace_back();
        }
        auto& slot = retained_slots_[it->second];
        slot = msg->publish.payload.empty() ? nullptr : std::move(msg);
    }

    /// Delivers an inbound QoS 2 message as Tern's router would have when it arrived: to each
    /// session with a matching subscription, once, at the highest QoS granted by any of them,
    /// with the identifiers of all of them. Mosquitto does not persist shared subscriptions,
    /// so none is here. Returns true when some session took it.
    bool deliver(const pending_inbound& p) {
        const auto& pub = p.msg->publish;
        bool taken = false;
        for (std::size_t i = 0; i < out_.state.sessions.size(); ++i) {
            auto& s = out_.state.sessions[i];
            std::optional<broker::stored_delivery> d;
            for (const auto& [filter, sub] : s.subscriptions) {
                const auto parsed = mqtt::parse_topic_filter(filter);
                if (!parsed || parsed->is_shared() || !mqtt::topic_matches(filter, pub.topic)) {
                    continue;
                }
                if (sub.options.no_local && i == p.publisher) {
                    continue; // [MQTT-3.8.3-3]
                }
                if (!d) {
                    d.emplace();
                    d->qos = mqtt::qos::at_most_once;
                }
                d->qos = std::max(d->qos, std::min(pub.qos, sub.options.qos));
                d->retain = d->retain || (sub.options.retain_as_published && pub.retain);
                if (sub.identifier != 0) {
                    d->subscription_ids.push_back(sub.identifier);
                }
            }
            if (!d) {
                continue;
            }
            if (d->qos == mqtt::qos::at_most_once) {
                ++out_.skipped.qos0_deliveries;
                continue;
            }
            s.messages.emplace_back(p.msg, std::move(*d));
            taken = true;
        }
        if (pub.retain) {
            set_retained(p.msg);
        }
        return taken;
    }

    struct sub_key {
        std::size_t session = 0;
        std::string_view filter;
        bool operator==(const sub_key&) const = default;
    };
    struct sub_key_hash {
        std::size_t operator()(const sub_key& k) const noexcept {
            return std::hash<std::string_view>{}(k.filter) ^ (k.session * 0x9E3779B97F4A7C15ULL);
        }
    };

    struct built_message {
        broker::message_ptr msg; ///< null: expired
        std::optional<std::uint32_t> expiry;
    };

    std::string_view bytes_;
    std::chrono::steady_clock::time_point now_;
    std::int64_t wall_seconds_;
    std::string& error_;
    mosquitto_db_contents out_;

    std::vector<raw_message> messages_;
    std::unordered_map<std::uint64_t, std::size_t> message_index_;
    std::vector<built_message> built_;
    std::vector<raw_client> clients_;
    std::vector<raw_client_msg> client_msgs_;
    std::vector<raw_sub> subs_;
    std::vector<std::uint64_t> retains_;
    std::unordered_map<std::string_view, std::size_t> session_index_;
    std::unordered_map<sub_key, std::size_t, sub_key_hash> sub_index_;
    std::unordered_map<std::string, std::size_t> retained_index_;
    std::vector<broker::message_ptr> retained_slots_;
};

} // namespace

std::optional<mosquitto_db_contents>
parse_mosquitto_db(std::string_view bytes, std::chrono::system_clock::time_point wall_now,
                   std::chrono::steady_clock::time_point now, std::string& error) {
    return db_parser(bytes, wall_now, now, error).run();
}

} // namespace tern::store
