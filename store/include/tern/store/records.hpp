#pragma once
/// The on-disk layout of the durable session store: keys and values of each column family
/// (docs/store.md), as pure functions from records to bytes and back. No RocksDB here, so the
/// formats are table-tested and fuzzed on their own.
///
/// Every value starts with a format byte (record_format); a value with a newer one is refused
/// (the whole store is, at open, when its meta "format" is newer than store_format).
///
/// Thread contract: pure functions; thread-safe.

#include <tern/broker/message.hpp>
#include <tern/broker/session_store.hpp>
#include <tern/broker/subscription.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tern::store {

/// The store's format version, kept under meta key "format". Bumped when a record changes
/// in a way an older Tern cannot read; an older store is upgraded at open.
///   1: a ref (message id, session) for every delivery.
///   2: a ref only for a delivery on disk only (an offline queue); recovery adds the refs a
///      crash left missing. A Tern of format 1 would collect bodies that format 2 still needs.
inline constexpr std::uint32_t store_format = 2;
/// The first byte of every value.
inline constexpr std::uint8_t record_format = 1;

/// Big-endian so that RocksDB's bytewise order is numeric order (prefix scans per session).
std::string session_prefix(std::uint64_t session_key);
std::string subscription_key(std::uint64_t session_key, std::string_view filter);
std::string delivery_key(std::uint64_t session_key, std::uint64_t message_id);
std::string inbound_key(std::uint64_t session_key, std::uint16_t packet_id);
std::string body_key(std::uint64_t message_id);
/// The reverse of a delivery key: message id first, so the store finds whether any session
/// still refers to a message body (on disk, where offline queues live) with one seek.
std::string ref_key(std::uint64_t message_id, std::uint64_t session_key);
/// The session key a subscription/delivery/inbound key starts with; nullopt when too short.
std::optional<std::uint64_t> key_session(std::string_view key);
/// The second part of a delivery key (message id) / inbound key (packet id) / subscription
/// key (filter).
std::optional<std::uint64_t> delivery_key_message(std::string_view key);
std::optional<std::uint16_t> inbound_key_packet(std::string_view key);
std::string_view subscription_key_filter(std::string_view key);
std::optional<std::uint64_t> body_key_message(std::string_view key);
/// The message id / session key of a ref key; nullopt when it is not 16 bytes.
std::optional<std::uint64_t> ref_key_message(std::string_view key);
std::optional<std::uint64_t> ref_key_session(std::string_view key);

/// A message as the store keeps it: the PUBLISH (v5 encoding, so every property survives) and
/// when it was received, on the system clock (Message Expiry counts across a restart).
std::string encode_message(const broker::message& m,
                           std::chrono::system_clock::time_point received);
/// The message decoded from `value`, its views pointing into its own storage, received_at set
/// to `now` minus the time since it was received (never in the future). nullopt when `value`
/// is not a message record of a known format.
std::optional<broker::message_ptr> decode_message(std::string_view value,
                                                  std::chrono::system_clock::time_point wall_now,
                                                  std::chrono::steady_clock::time_point now);

/// A session record (the value under its client id).
struct session_record {
    std::uint64_t key = 0;
    std::uint32_t expiry_interval = 0;
    protocol::protocol_version version = protocol::protocol_version::v3_1_1;
    /// The epoch while the client was connected.
    std::chrono::system_clock::time_point offline_since{};
    std::uint32_t will_delay = 0;
    /// The will's message record (encode_message), empty when none.
    std::string will;
};
std::string encode_session(const broker::stored_session& s,
                           std::chrono::system_clock::time_point wall_now);
std::optional<session_record> decode_session(std::string_view value);

std::string encode_subscription(const broker::subscription& s);
std::optional<broker::subscription> decode_subscription(std::string_view value);

std::string encode_delivery(const broker::stored_delivery& d);
std::optional<broker::stored_delivery> decode_delivery(std::string_view value);

/// The meta values: the store format and the last "alive" mark (system clock).
std::string encode_u64(std::uint64_t v);
std::optional<std::uint64_t> decode_u64(std::string_view value);

} // namespace tern::store
