#pragma once
// An MQTT session: the state that outlives a network connection [MQTT-4.1].

#include "index/subscriber.hpp"
#include "index/topic_index.hpp"
#include <tern/broker/message.hpp>
#include <tern/broker/session_store.hpp>

#include <tern/protocol/packets.hpp>

#include <boost/container/devector.hpp>
#include <boost/container/small_vector.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

namespace tern::broker {

class session_sink;
struct worker;

/// One message on its way to this session's client.
struct outbound_message {
    message_ptr msg;
    protocol::qos qos = protocol::qos::at_most_once; ///< min(published, granted)
    bool retain = false;                             ///< the RETAIN flag to send
    boost::container::small_vector<std::uint32_t, 2> subscription_ids;
    /// Set for a shared-subscription delivery: the group to give it back to if this session
    /// goes away before the client acknowledges it.
    shared_group_ptr group;
    std::uint8_t hops = 0; ///< see delivery::hops
    /// Order of arrival.
    std::uint64_t seq = 0;
    /// The durable store holds this delivery under the session's key.
    bool stored = false;
};

/// A QoS 1/2 message sent and not yet fully acknowledged.
struct inflight_message {
    outbound_message out;
    bool released = false; ///< QoS 2: PUBREC received, PUBREL sent
};

/// Session state: subscriptions, messages in flight and queued, QoS 2 receive state, will.
/// While a client is connected `sink` points at its connection (a session_sink) on the same
/// worker.
///
/// Thread contract: owner worker only (the worker in handle->worker). Sessions move between
/// workers as a whole (a unique_ptr posted from one worker to another), never shared.
class session {
public:
    session(worker& owner, subscriber_ptr h);
    ~session();
    session(const session&) = delete;
    session& operator=(const session&) = delete;

    const std::string& client_id() const noexcept { return handle->client_id; }
    bool online() const noexcept { return sink != nullptr; }
    /// Offline for its whole Session Expiry Interval (the sweep ends such sessions; one
    /// restored at start-up may be found by a client before the first sweep).
    bool expired(std::chrono::steady_clock::time_point now) const noexcept {
        return !online() && expiry_interval != 0xFFFFFFFFU &&
               now - offline_since >= std::chrono::seconds(expiry_interval);
    }

    /// Gives `m` to the session for delivery per `d`: sent at once when the client is
    /// connected and the inflight window allows, else queued (QoS 1/2, or QoS 0 while the
    /// socket is backed up) within max_queued_messages / max_queued_bytes; beyond that the
    /// message is dropped, counted and logged. `retain` is the RETAIN flag to send.
    void deliver(const message_ptr& m, const delivery& d, bool retain);

    /// The client acknowledged `packet_id` (PUBACK, or PUBCOMP after PUBREL): frees the slot
    /// and sends what is queued. False when the id is not in flight at that stage.
    bool complete(std::uint16_t packet_id, protocol::qos stage);
    /// PUBREC for `packet_id`: true when it was an unreleased QoS 2 message (now released).
    bool release(std::uint16_t packet_id);
    /// PUBREC with a failure reason: the client refused the message; drop it.
    void refuse(std::uint16_t packet_id);

    /// Sends queued messages while the inflight window has room, paging the queue in from
    /// the store when it is on disk.
    void send_queued();
    /// The store has made durable what a page-in waited for (worker::release_durable).
    void page_in_ready();
    /// A connection attached: resend everything in flight (DUP set, PUBREL for released QoS 2
    /// messages) in the original order [MQTT-4.4.0-1], then queued messages.
    void resume();
    /// The connection went away: the session stays (if its expiry allows) and messages from
    /// shared subscriptions go back to their groups for another member.
    void go_offline();
    /// Removes everything: subscriptions from the index, queued and inflight messages (shared
    /// ones handed back to their groups), also from the store. The handle stays valid.
    void clear();

    /// With a durable store: records the session (created, resumed, changed, gone offline)
    /// and from then on its subscriptions, deliveries and QoS 2 state. `offline_since` is the
    /// epoch while a client is connected.
    void save(const message* will, std::uint32_t will_delay,
              std::chrono::system_clock::time_point offline_since);
    /// Forgets the session in the store (when it has been saved).
    void remove_from_store();
    /// The store holds this session (save() was called and it has not been removed since).
    bool in_store() const noexcept { return in_store_; }
    /// Records `out` (queued: packet_id 0) for this session when the session is in the store.
    void record(outbound_message& out, std::uint16_t packet_id, bool released);
    /// Removes the record of `out` if it has one.
    void forget(outbound_message& out);
    /// Start-up: rebuilds the session from what the durable store recovered (it is in the
    /// store already). `now` is the broker clock's present.
    void restore(recovered_session&& rec, std::chrono::steady_clock::time_point now);

    /// The worker holding the session; changes when the session moves.
    worker* owner;
    const subscriber_ptr handle;
    session_sink* sink = nullptr;

    /// Filter as subscribed (with any $share prefix) → options.
    std::unordered_map<std::string, subscription> subscriptions;
    std::unordered_map<std::uint16_t, inflight_message> inflight;
    /// Waiting for the inflight window or the socket. A devector, not std::deque: libstdc++'s
    /// deque allocates ~600 bytes even when empty, per session.
    boost::container::devector<outbound_message> queued;
    std::size_t queued_bytes = 0;
    /// QoS 2 packet ids received (PUBREC sent), PUBREL not yet received [MQTT-4.3.3-10].
    std::unordered_set<std::uint16_t> inbound_qos2;

    protocol::protocol_version version = protocol::protocol_version::v3_1_1;
    /// Seconds the session outlives its connection; 0xFFFFFFFF: never expires.
    std::uint32_t expiry_interval = 0;
    std::chrono::steady_clock::time_point offline_since{};
    /// A will waiting for its Will Delay Interval [MQTT-3.1.3-9].
    message_ptr pending_will;
    std::chrono::steady_clock::time_point will_due{};

    std::uint64_t dropped = 0;

    /// Queued messages that are on disk only (offline queues live in the store, not here):
    /// how many. The first page comes back into `queued` when the client does.
    std::uint64_t on_disk() const noexcept { return on_disk_; }

private:
    /// The client's inflight window: min(max_inflight_messages, Receive Maximum).
    std::size_t window() const noexcept;
    bool enqueue(outbound_message&& out);
    void send_new(outbound_message&& out);
    std::uint16_t allocate_packet_id();
    void note_drop(const outbound_message& out, const char* why);
    /// Gives a shared-subscription message to another member of its group (only an online
    /// one when `online_only`); false if there is none.
    bool hand_back(outbound_message& out, bool online_only);
    /// Whether `out` (recorded in the store) stays on disk only instead of in `queued`.
    bool stays_on_disk(const outbound_message& out) const noexcept;
    void leave_on_disk(outbound_message&& out);
    /// Counts `out` (recorded in the store) as part of the queue on disk and tells the store
    /// that only the disk holds it now.
    void count_on_disk(const outbound_message& out);
    /// Reads the next page of the queue from the store into `queued`. False when there is
    /// nothing (more) to read now: the queue on disk is empty, or the store has not yet made
    /// durable the records the page would read (it wakes this worker when it has).
    bool page_in();
    /// Appends a page read from the store to `queued` (but what is in flight).
    void take_page(delivery_page&& page);
    /// Every message on disk into `queued` (the session stops being persistent, so its
    /// records are about to go).
    void page_in_all();

    std::uint16_t next_packet_id_ = 1;
    std::uint64_t next_seq_ = 1;
    bool in_store_ = false;

    // The queue on disk: everything recorded for this session with a message id from
    // on_disk_from_ on that is not in `inflight` (`queued` holds only lower ids, which came
    // late from another worker). on_disk_ and on_disk_bytes_ count it.
    std::uint64_t on_disk_ = 0;
    std::uint64_t on_disk_bytes_ = 0;
    std::uint64_t on_disk_from_ = 0;
    /// The store ticket that covers the records (a page-in reads only after it is durable).
    std::uint64_t on_disk_ticket_ = 0;
    /// The worker whose awaiting_page_in lists this session (null: none).
    const worker* paging_wait_on_ = nullptr;
};

/// Seconds of Message Expiry Interval left for `m` at `now`; nullopt when it has none; 0
/// when it has expired [MQTT-3.3.2-5].
std::optional<std::uint32_t> expiry_left(const message& m,
                                         std::chrono::steady_clock::time_point now) noexcept;

} // namespace tern::broker
