#pragma once
/// Mosquitto's `mosquitto.db`, read so that replacing Mosquitto with Tern keeps every device's
/// persistent session (docs/mosquitto-db-import.md).
///
/// parse_mosquitto_db() is a pure function from the file's bytes to what Tern keeps of it: no
/// I/O, no clock (the caller passes the time), no RocksDB, so it is table-tested and fuzzed on
/// its own. import_mosquitto_db() reads a file and writes its contents into a session store
/// through the broker's public seam (session_store.hpp), as the broker itself would have.
///
/// The format (Mosquitto's src/persist.h, persist_read*.c, persist_write*.c): a 15-byte magic,
/// a 4-byte CRC field Mosquitto never fills, the format version (big-endian), then chunks of
/// {type, length} (both big-endian) and a body. Bodies are C structs written as they are in
/// memory: 16- and 32-bit fields are converted to big-endian first, but 64-bit fields (message
/// ids, expiry times) and the struct padding are not, so the ids and times are read as
/// little-endian, the byte order of every host Debian ships Mosquitto for but s390x.
/// Versions 5 (Mosquitto 1.6) and 6 (Mosquitto 2.0) are read; they differ only in the client
/// chunk (v6 added the username and listener port).
///
/// Thread contract: parse_mosquitto_db() is pure and thread-safe; import_mosquitto_db() is a
/// start-up call (see its comment).

#include <tern/broker/message.hpp>
#include <tern/broker/session_store.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tern::store {

/// The oldest and newest Mosquitto database format versions parse_mosquitto_db() reads.
inline constexpr std::uint32_t mosquitto_db_oldest_version = 5;
inline constexpr std::uint32_t mosquitto_db_newest_version = 6;

/// What Mosquitto kept about a session that Tern's session record has no field for.
struct mosquitto_session_details {
    std::string username; ///< empty in format 5, or when the client gave none
    std::uint16_t listener_port = 0;
    /// Mosquitto's last packet identifier for the session.
    std::uint16_t last_mid = 0;
    /// When Mosquitto would have expired the session (Unix seconds), set when the client
    /// went away; stale or 0 for a client that was connected when Mosquitto stopped, which
    /// is why the import counts the session's expiry from the import instead.
    std::int64_t session_expiry_time = 0;
    /// The db does not record the protocol version: true when something in it (an expiry
    /// interval other than "never", a subscription identifier, No Local, Retain As Published)
    /// shows the session is MQTT 5; otherwise the session is taken for 3.1.1. The CONNECT
    /// that resumes the session decides anyway.
    bool known_v5 = false;
};

/// What the parse left out, and why (for the import's log line).
struct mosquitto_db_skipped {
    /// Messages whose Message Expiry had passed at `wall_now` (with every delivery of them).
    std::size_t expired_messages = 0;
    /// QoS 0 deliveries (Mosquitto's queue_qos0_messages): Tern stores QoS 1 and 2 only.
    std::size_t qos0_deliveries = 0;
    /// Sessions with expiry interval 0 (MQTT 5, Clean Start 0): they ended with the
    /// connection that Mosquitto's shutdown closed.
    std::size_t ended_sessions = 0;
    /// Client records with an empty client id (Mosquitto skips them too).
    std::size_t empty_client_ids = 0;
    /// Subscriptions and messages of a client id that has no client record.
    std::size_t orphans = 0;
    /// References to a message id that is not in the file (Mosquitto: "probably expired").
    std::size_t missing_messages = 0;
    /// Inbound messages other than QoS 2 awaiting PUBREL (nothing to keep).
    std::size_t other_inbound = 0;
    /// Chunks of a type this parser does not know, skipped by their length as Mosquitto does.
    std::size_t unknown_chunks = 0;
};

/// Everything parse_mosquitto_db() read.
struct mosquitto_db_contents {
    std::uint32_t version = 0;    ///< the format version: 5 or 6
    std::uint64_t last_db_id = 0; ///< Mosquitto's last message id
    bool shutdown = false;        ///< written at Mosquitto's shutdown (not an autosave)
    /// The sessions in file order, keyed 1..N (next_key N + 1), each with:
    /// - expiry_interval as Mosquitto had it (0xFFFFFFFF: 3.1.1 Clean Session 0, never);
    /// - version: v5 when mosquitto_session_details::known_v5, else v3.1.1;
    /// - offline_for 0 and no will (Mosquitto does not persist wills);
    /// - subscriptions with QoS, No Local, Retain As Published and the subscription
    ///   identifier (Mosquitto keeps no Retain Handling: it only matters when subscribing);
    /// - messages in the session's order, in flight first: QoS 1/2 only, packet_id set for a
    ///   message Mosquitto had sent (0 for one it had not), released for a QoS 2 message whose
    ///   PUBREC had come, subscription identifiers from the delivery;
    /// - inbound_qos2: packet ids of QoS 2 PUBLISHes from the client that Mosquitto had
    ///   PUBREC'd but not yet released. Mosquitto delivers such a message only on PUBREL,
    ///   Tern on PUBLISH, so the parse delivers it: it is appended to every session whose
    ///   subscriptions match it (as Tern's router would) and becomes the retained message of
    ///   its topic when it has RETAIN.
    /// And the retained messages (RETAIN set), one per topic. Every message owns its bytes;
    /// each is the PUBLISH Mosquitto stored, with the properties it keeps (Payload Format,
    /// Content Type, Response Topic, Correlation Data, User Properties), received_at = `now`
    /// and, when it has a Message Expiry, the interval that was left at `wall_now`.
    broker::recovered_state state;
    /// Per session, same index as state.sessions.
    std::vector<mosquitto_session_details> details;
    /// Every distinct message the sessions hold, once, in the order Mosquitto stored them
    /// (then those delivered at the parse): the order for session_store::name_message, so
    /// that each queue's order is the order of the names.
    std::vector<broker::message_ptr> messages;
    mosquitto_db_skipped skipped;
};

/// Parses a whole `mosquitto.db`. `wall_now` is the time Message Expiry is measured against
/// (Mosquitto stores when a message expires, in Unix seconds); `now` becomes each message's
/// received_at.
///
/// Errors (nullopt, `error` set; nothing is half-returned): a wrong magic ("not a Mosquitto
/// database"), an unsupported format version (naming it and the versions read), and a
/// truncated or corrupt file: the message names the byte offset of the chunk and what is
/// wrong with it. Every length field is checked against the bytes that remain before
/// anything is allocated for it, so no input makes the parse allocate more than a small
/// multiple of its size. A file cut exactly between two chunks cannot be told from a shorter
/// whole one (the format has no count or end marker); it parses as that.
///
/// Thread contract: pure; thread-safe. The returned messages own their bytes (no view into
/// `bytes` survives the call).
std::optional<mosquitto_db_contents>
parse_mosquitto_db(std::string_view bytes, std::chrono::system_clock::time_point wall_now,
                   std::chrono::steady_clock::time_point now, std::string& error);

/// What import_mosquitto_db() wrote, for the log line.
struct mosquitto_import_counts {
    std::size_t sessions = 0;
    std::size_t subscriptions = 0;
    std::size_t messages = 0; ///< deliveries: a message queued for two sessions counts twice
    std::size_t retained = 0;
    std::size_t inbound_qos2 = 0;
    mosquitto_db_skipped skipped;
    std::uint32_t version = 0; ///< the file's format version
};

/// Reads the Mosquitto database at `path` and writes it into `store`, which must be open and
/// hold no sessions (the sessions get keys 1..N), through the public seam only: one batch
/// (make_batch(0)) with session_saved (offline since now, so each session's expiry counts
/// from the import), subscription_added, name_message + delivery_saved for every message of
/// every session, inbound_qos2_added; retained_set for the retained messages; then it waits
/// (up to 30 s) until durable_ticket() covers all of it.
///
/// Returns nullopt with `error` (naming `path`) when the file cannot be read or parsed, or
/// when the store did not make the writes durable in time; the store may then hold part of
/// the file (callers import into a store they can throw away; see broker/src/main.cpp).
///
/// Thread contract: start-up only, on one thread, before a broker uses `store` (it takes
/// worker 0's batch).
std::optional<mosquitto_import_counts>
import_mosquitto_db(const std::string& path, broker::session_store& store, std::string& error);

} // namespace tern::store
