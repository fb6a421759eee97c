#pragma once
/// The session-store seam: where the state that must outlive the process goes. The broker
/// reports every change to it; a durable implementation (the `store/` module) records them so
/// the next start rebuilds sessions, their messages and the retained messages. Pass one in
/// broker_services.
///
/// The contract a durable store gives the broker (docs/store.md): everything written to a
/// worker's store_batch before its submit() is on disk once durable_ticket() reaches the
/// ticket submit() returned. The broker holds back every packet that reveals such a change (a
/// PUBACK, PUBREC or PUBCOMP, a QoS 2 PUBLISH or PUBREL, SUBACK, UNSUBACK, CONNACK) until
/// then, so a client never learns of state that a crash could still take back.

#include <tern/broker/message.hpp>
#include <tern/broker/subscription.hpp>
#include <tern/protocol/packets.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tern::broker {

/// One message of a session, queued or in flight, as the store keeps it (the message itself
/// is stored once, however many sessions it was routed to).
struct stored_delivery {
    protocol::qos qos = protocol::qos::at_least_once; ///< as it goes to the client
    bool retain = false;                              ///< the RETAIN flag to send
    /// The packet id it was sent under; 0 while it waits in the queue.
    std::uint16_t packet_id = 0;
    /// QoS 2: PUBREC received, so PUBREL (not the message) is what a resume resends.
    bool released = false;
    std::vector<std::uint32_t> subscription_ids;
};

/// A persistent session as the store keeps it, apart from its subscriptions and messages.
struct stored_session {
    std::string_view client_id;
    /// The session's subscriber key: names its subscriptions, messages and QoS 2 state.
    std::uint64_t key = 0;
    std::uint32_t expiry_interval = 0; ///< seconds; 0xFFFFFFFF: never expires
    protocol::protocol_version version = protocol::protocol_version::v3_1_1;
    /// The will that goes out if the connection ends abnormally (or, delayed, when its delay
    /// has passed): also the one a crash of the broker sends after restart. Null: none.
    const message* will = nullptr;
    std::uint32_t will_delay = 0; ///< seconds
    /// When the client went away (system clock); the epoch while it is connected.
    std::chrono::system_clock::time_point offline_since{};
};

/// Everything a durable store hands back at start-up. Messages are rebuilt with their
/// received_at moved back by the time they had already lived, counting the downtime, so
/// Message Expiry counts across a restart.
struct recovered_session {
    std::string client_id;
    std::uint64_t key = 0;
    std::uint32_t expiry_interval = 0;
    protocol::protocol_version version = protocol::protocol_version::v3_1_1;
    message_ptr will;
    std::uint32_t will_delay = 0;
    /// How long ago (at recovery) the client went away: since it disconnected, or since the
    /// broker last wrote that it was alive when the client was connected at the crash.
    std::chrono::seconds offline_for{0};
    std::vector<std::pair<std::string, subscription>> subscriptions;
    /// In the order they reached the session.
    std::vector<std::pair<message_ptr, stored_delivery>> messages;
    std::vector<std::uint16_t> inbound_qos2;
    /// Queued messages left on disk, paged in when the client is back (session_store::
    /// page_in): how many, and the lowest message id among them.
    std::uint64_t on_disk = 0;
    std::uint64_t on_disk_from = 0;
};

struct recovered_state {
    std::vector<recovered_session> sessions;
    std::vector<message_ptr> retained;
    /// Above every session key in the store: new sessions are numbered from here.
    std::uint64_t next_key = 1;
};

/// A queued message read back from the store (session_store::page_in).
struct paged_delivery {
    message_ptr msg; ///< with its stored_body
    stored_delivery delivery;
};

/// One page of a session's queue on disk.
struct delivery_page {
    /// In message id order (the order they reached the session, but for messages published
    /// on different workers within the same instant).
    std::vector<paged_delivery> items;
    /// Where the next page starts (above every id this page looked at).
    std::uint64_t next_from = 0;
    /// True when nothing is left on disk from next_from on.
    bool end = true;
};

/// The name of a message in a durable store (set on message::stored when the message is made,
/// before it is shared). Its destructor — the last holder of the message let go — tells the
/// store the message body is no longer referenced.
///
/// Thread contract: `id` is immutable; `submitted` is an atomic any worker may set.
struct stored_body {
    explicit stored_body(std::uint64_t i) noexcept : id(i) {}
    virtual ~stored_body() = default;
    stored_body(const stored_body&) = delete;
    stored_body& operator=(const stored_body&) = delete;

    const std::uint64_t id;
    /// A batch holding the body's record has been submitted (writes after it may refer to
    /// it). Until then a batch that refers to the message writes the record itself.
    std::atomic<bool> submitted{false};
};

/// One worker's pending writes: the changes that worker makes, in its order.
///
/// Thread contract: owner worker only (one batch per worker, made by make_batch()). Calls
/// queue and return; nothing waits for a disk before submit()'s ticket is durable.
class store_batch {
public:
    virtual ~store_batch() = default;

    /// The session was created, resumed, or changed (expiry, will, went offline).
    virtual void session_saved(const stored_session& s) = 0;
    /// The session ended (clean start, expiry, clean disconnect of a session with expiry 0):
    /// forget it with its subscriptions, messages and QoS 2 state.
    virtual void session_removed(std::string_view client_id, std::uint64_t key) = 0;
    virtual void subscription_added(std::uint64_t key, std::string_view filter,
                                    const subscription& sub) = 0;
    virtual void subscription_removed(std::uint64_t key, std::string_view filter) = 0;
    /// `m` (which has a stored_body) is queued for, in flight to, or released by the session
    /// `key`; writes the message's record first when no submitted batch has it.
    virtual void delivery_saved(std::uint64_t key, const message& m, const stored_delivery& d) = 0;
    /// The session is done with `m` (acknowledged, refused, expired, dropped, handed on).
    virtual void delivery_removed(std::uint64_t key, const message& m) = 0;
    /// The session `key` keeps its recorded delivery of `m` on disk only: the message leaves
    /// its memory (an offline queue) until it is paged back in. A store keeps the body while
    /// such a delivery refers to it, after every message in memory has let go.
    virtual void delivery_left_on_disk(std::uint64_t key, const message& m) = 0;
    /// QoS 2 from the client: PUBREC sent for `packet_id` / PUBREL received for it.
    virtual void inbound_qos2_added(std::uint64_t key, std::uint16_t packet_id) = 0;
    virtual void inbound_qos2_removed(std::uint64_t key, std::uint16_t packet_id) = 0;
    /// Every message of the session `key` is gone (its queue on disk included); the session
    /// record and its subscriptions stay.
    virtual void deliveries_cleared(std::uint64_t key) = 0;
    /// True when something was written since the last submit().
    virtual bool dirty() const noexcept = 0;
    /// Hands everything written since the last call to the store, behind every batch
    /// submitted before (by any worker). Returns the ticket to wait for with
    /// durable_ticket(), or 0 when nothing was written.
    virtual std::uint64_t submit() = 0;
};

/// The store the broker reports to. The default keeps nothing (memory_session_store).
///
/// Thread contract: thread-safe, except recover() (start-up, before the workers run).
class session_store {
public:
    virtual ~session_store() = default;

    /// False for the in-memory store: the broker then skips every write and never waits.
    virtual bool durable() const noexcept = 0;
    /// The batch of worker `worker` (called once per worker at start-up).
    virtual std::unique_ptr<store_batch> make_batch(std::uint32_t worker) = 0;
    /// Everything the store holds, for the broker to rebuild. Start-up only.
    virtual recovered_state recover(std::chrono::steady_clock::time_point now) = 0;
    /// Gives `m` (a QoS 1/2 message just made, not yet shared) its stored_body.
    virtual void name_message(message& m) = 0;
    /// `msg` is now the retained message of its topic / the topic has none now. Called under
    /// the retained store's lock for the topic from any worker, so the order is the broker's;
    /// written with the next round of batches.
    virtual void retained_set(const message& msg) = 0;
    virtual void retained_cleared(std::string_view topic) = 0;
    /// Every ticket up to this one is durable.
    virtual std::uint64_t durable_ticket() const noexcept = 0;
    /// The ticket that covers every write submitted so far (batches, retained_set(),
    /// retained_cleared()); durable_ticket() is certain to reach it.
    virtual std::uint64_t current_ticket() const noexcept = 0;
    /// Called (from the store's thread) each time durable_ticket() advances past tickets that
    /// worker `worker` submitted. Set once, before the workers run.
    virtual void on_durable(std::function<void(std::uint32_t worker)> listener) = 0;
    /// Offline queues live on disk: up to `limit` queued messages (packet id 0 in their
    /// record) of the session `key` with message ids in [from, until), read synchronously on
    /// the calling worker. Only what durable_ticket() covers is certain to be seen. A record
    /// whose body is gone (or corrupt) is skipped and removed. `end`: nothing more in range.
    virtual delivery_page page_in(std::uint64_t key, std::uint64_t from, std::uint64_t until,
                                  std::size_t limit, std::chrono::steady_clock::time_point now) = 0;
    /// Calls the on_durable listener for `worker` once durable_ticket() reaches `ticket`.
    /// Returns false (and calls nothing) when it already has.
    virtual bool wake_when_durable(std::uint32_t worker, std::uint64_t ticket) = 0;
    /// The store could not write (disk full, I/O error): new QoS 1/2 messages are refused
    /// until it can again.
    virtual bool failing() const noexcept = 0;
    /// The broker is alive now (a wall-clock mark, about once a second): sessions that were
    /// connected when the broker died count their expiry from the last one.
    virtual void alive() = 0;
    /// The workers have stopped: write what is pending, then ignore everything (the
    /// destruction of sessions and messages that follows is not a change of state).
    virtual void seal() = 0;
};

/// The batch of a store that keeps nothing.
class null_store_batch final : public store_batch {
public:
    void session_saved(const stored_session&) override {}
    void session_removed(std::string_view, std::uint64_t) override {}
    void subscription_added(std::uint64_t, std::string_view, const subscription&) override {}
    void subscription_removed(std::uint64_t, std::string_view) override {}
    void delivery_saved(std::uint64_t, const message&, const stored_delivery&) override {}
    void delivery_removed(std::uint64_t, const message&) override {}
    void delivery_left_on_disk(std::uint64_t, const message&) override {}
    void inbound_qos2_added(std::uint64_t, std::uint16_t) override {}
    void inbound_qos2_removed(std::uint64_t, std::uint16_t) override {}
    void deliveries_cleared(std::uint64_t) override {}
    bool dirty() const noexcept override { return false; }
    std::uint64_t submit() override { return 0; }
};

/// The in-memory store: session state lives in the workers' memory only and ends with the
/// process (mosquitto's `persistence false`), so there is nothing to record.
class memory_session_store final : public session_store {
public:
    bool durable() const noexcept override { return false; }
    std::unique_ptr<store_batch> make_batch(std::uint32_t) override {
        return std::make_unique<null_store_batch>();
    }
    recovered_state recover(std::chrono::steady_clock::time_point) override { return {}; }
    void name_message(message&) override {}
    void retained_set(const message&) override {}
    void retained_cleared(std::string_view) override {}
    std::uint64_t durable_ticket() const noexcept override { return 0; }
    std::uint64_t current_ticket() const noexcept override { return 0; }
    void on_durable(std::function<void(std::uint32_t)>) override {}
    delivery_page page_in(std::uint64_t, std::uint64_t, std::uint64_t, std::size_t,
                          std::chrono::steady_clock::time_point) override {
        return {};
    }
    bool wake_when_durable(std::uint32_t, std::uint64_t) override { return false; }
    bool failing() const noexcept override { return false; }
    void alive() override {}
    void seal() override {}
};

} // namespace tern::broker
