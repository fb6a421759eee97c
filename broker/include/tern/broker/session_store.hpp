#pragma once
/// The session-store seam: where the state that must outlive the process goes. The broker
/// reports every change to it; a durable implementation (the `store/` module) records them so
/// the next start can rebuild sessions and retained messages. Pass one in broker_services.

#include <tern/broker/message.hpp>
#include <tern/broker/subscription.hpp>
#include <tern/protocol/packets.hpp>

#include <cstdint>
#include <string_view>

namespace tern::broker {

/// Receives every change to persistent state, in the order it happens for one session (and,
/// for retained messages, for one topic). Sessions themselves live in memory on their workers
/// (the fast path and the source of truth while the process runs); the store records changes
/// without the protocol logic knowing which store is plugged in. Only sessions that outlive
/// their connection (expiry > 0) are reported.
///
/// Views passed in (client ids, filters, topics, messages) are valid for the call only; keep a
/// message by copying its message_ptr's contents.
///
/// Thread contract: implementations are thread-safe. Calls for one client id come from one
/// worker at a time, in order; calls for one retained topic may come from any worker, in the
/// order the broker applied them. Calls are on the publish path: an implementation queues and
/// returns, it does not wait for a disk.
class session_store {
public:
    virtual ~session_store() = default;

    /// A session was created or resumed with this expiry (seconds; 0xFFFFFFFF = never).
    virtual void session_opened(std::string_view client_id, std::uint32_t expiry_interval) = 0;
    /// The session ended (clean start, expiry, clean disconnect): forget everything about it.
    virtual void session_removed(std::string_view client_id) = 0;
    virtual void subscription_added(std::string_view client_id, std::string_view filter,
                                    const subscription& sub) = 0;
    virtual void subscription_removed(std::string_view client_id, std::string_view filter) = 0;
    /// A QoS 1/2 message was queued or put in flight for the session; `seq` names it until
    /// message_removed().
    virtual void message_added(std::string_view client_id, std::uint64_t seq, const message& msg,
                               protocol::qos qos) = 0;
    /// The message `seq` was acknowledged, expired or dropped.
    virtual void message_removed(std::string_view client_id, std::uint64_t seq) = 0;
    /// `msg` is now the retained message of its topic (replacing any earlier one).
    virtual void retained_set(const message& msg) = 0;
    /// The topic's retained message was removed (an empty retained PUBLISH, or it expired).
    virtual void retained_cleared(std::string_view topic) = 0;
};

/// The in-memory store: session state lives in the workers' memory only and ends with the
/// process (mosquitto's `persistence false`), so there is nothing to record.
class memory_session_store final : public session_store {
public:
    void session_opened(std::string_view, std::uint32_t) override {}
    void session_removed(std::string_view) override {}
    void subscription_added(std::string_view, std::string_view, const subscription&) override {}
    void subscription_removed(std::string_view, std::string_view) override {}
    void message_added(std::string_view, std::uint64_t, const message&, protocol::qos) override {}
    void message_removed(std::string_view, std::uint64_t) override {}
    void retained_set(const message&) override {}
    void retained_cleared(std::string_view) override {}
};

} // namespace tern::broker
