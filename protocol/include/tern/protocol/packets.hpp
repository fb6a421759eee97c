#pragma once
/// One struct per MQTT control packet, modelling the MQTT 5 superset; MQTT 3.1/3.1.1 packets
/// leave the v5-only fields at their defaults. A packet is a std::variant of these.
///
/// Thread contract: plain values. Lifetime: string views point into the received frame kept
/// alive by received_packet::storage, or into caller memory for packets built to be encoded.

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <variant>
#include <vector>

#include <tern/protocol/properties.hpp>
#include <tern/protocol/reason_code.hpp>
#include <tern/protocol/types.hpp>

namespace tern::protocol {

/// The Will Message of a CONNECT [MQTT-3.1.3.2..4].
struct will_message {
    std::string_view topic;
    std::string_view payload;
    protocol::qos qos = qos::at_most_once;
    bool retain = false;
    properties props; ///< Will Properties (v5)
    friend bool operator==(const will_message&, const will_message&) = default;
};

struct connect {
    protocol_version version = protocol_version::v5;
    bool clean_start = true; ///< "Clean Session" in 3.1.1
    std::uint16_t keep_alive = 60;
    std::string_view client_id;
    std::optional<will_message> will;
    std::optional<std::string_view> username;
    std::optional<std::string_view> password; ///< binary data
    properties props;
    /// The protocol level had its top bit set (0x83, 0x84): a Mosquitto bridge with
    /// `try_private true`, which expects No Local and Retain As Published on its 3.1/3.1.1
    /// subscriptions. Never for MQTT 5 (a v5 bridge sends those options itself).
    bool bridge = false;
    friend bool operator==(const connect&, const connect&) = default;
};

/// In 3.1.1 the return code travels as the equivalent reason code
/// (see to_v3_connack_return_code / from_v3_connack_return_code).
struct connack {
    bool session_present = false;
    reason_code reason = reason_code::success;
    properties props;
    friend bool operator==(const connack&, const connack&) = default;
};

struct publish {
    std::string_view topic;
    std::string_view payload;
    protocol::qos qos = qos::at_most_once;
    bool retain = false;
    bool dup = false;
    std::uint16_t packet_id = 0; ///< 0 at QoS 0, non-zero otherwise [MQTT-2.2.1-2]
    properties props;
    friend bool operator==(const publish&, const publish&) = default;
};

/// PUBACK, PUBREC, PUBREL and PUBCOMP share one layout; the tag keeps them distinct types.
template <packet_type Type> struct basic_ack {
    static constexpr packet_type type = Type;
    std::uint16_t packet_id = 0;
    reason_code reason = reason_code::success; ///< v5 only; always Success in 3.1.1
    properties props;
    friend bool operator==(const basic_ack&, const basic_ack&) = default;
};
using puback = basic_ack<packet_type::puback>;
using pubrec = basic_ack<packet_type::pubrec>;
using pubrel = basic_ack<packet_type::pubrel>;
using pubcomp = basic_ack<packet_type::pubcomp>;

/// Retain Handling subscription option [MQTT-3.8.3.1].
enum class retain_handling : std::uint8_t {
    send_on_subscribe = 0,
    send_if_new_subscription = 1,
    do_not_send = 2,
};

struct subscribe_options {
    protocol::qos qos = qos::at_most_once;
    bool no_local = false;
    bool retain_as_published = false;
    protocol::retain_handling retain_handling = retain_handling::send_on_subscribe;
    friend bool operator==(const subscribe_options&, const subscribe_options&) = default;
};

struct subscription {
    std::string_view filter; ///< as sent, including any "$share/{group}/" prefix
    subscribe_options options;
    friend bool operator==(const subscription&, const subscription&) = default;
};

struct subscribe {
    std::uint16_t packet_id = 0;
    std::vector<subscription> subscriptions;
    properties props;
    friend bool operator==(const subscribe&, const subscribe&) = default;
};

/// In 3.1.1 each return code travels as a reason code: granted_qos_0..2 or unspecified_error.
struct suback {
    std::uint16_t packet_id = 0;
    std::vector<reason_code> reasons;
    properties props;
    friend bool operator==(const suback&, const suback&) = default;
};

struct unsubscribe {
    std::uint16_t packet_id = 0;
    std::vector<std::string_view> filters;
    properties props;
    friend bool operator==(const unsubscribe&, const unsubscribe&) = default;
};

/// 3.1.1 UNSUBACK has no payload: `reasons` is empty there.
struct unsuback {
    std::uint16_t packet_id = 0;
    std::vector<reason_code> reasons;
    properties props;
    friend bool operator==(const unsuback&, const unsuback&) = default;
};

struct pingreq {
    friend bool operator==(const pingreq&, const pingreq&) = default;
};
struct pingresp {
    friend bool operator==(const pingresp&, const pingresp&) = default;
};

struct disconnect {
    reason_code reason = reason_code::normal_disconnection; ///< v5 only
    properties props;
    friend bool operator==(const disconnect&, const disconnect&) = default;
};

/// MQTT 5 only.
struct auth {
    reason_code reason = reason_code::success;
    properties props;
    friend bool operator==(const auth&, const auth&) = default;
};

/// Any control packet. The alternative index + 1 equals the packet type number.
using packet = std::variant<connect, connack, publish, puback, pubrec, pubrel, pubcomp, subscribe,
                            suback, unsubscribe, unsuback, pingreq, pingresp, disconnect, auth>;

/// The packet type of whichever alternative `p` holds.
inline packet_type type_of(const packet& p) noexcept {
    return static_cast<packet_type>(p.index() + 1);
}

/// A decoded packet together with the frame its string views point into. Moving or copying
/// it keeps the views valid; they live as long as any copy of `storage`.
struct received_packet {
    protocol::packet packet;
    std::shared_ptr<const std::uint8_t[]> storage;
};

} // namespace tern::protocol
