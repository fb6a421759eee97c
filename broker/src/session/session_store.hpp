#pragma once
// The session-store interface: where session state goes so that it can outlive the process.

#include "index/topic_index.hpp"
#include "session/message.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace tern::broker {

/// Receives every change to persistent session state, in the order it happens for one
/// session. Sessions themselves live in memory on their workers (that is the fast path and the
/// source of truth while the process runs); a store records the changes so that a durable
/// implementation (the persistence issue) can rebuild them at start-up, without the protocol
/// logic knowing which store is plugged in. Only sessions that outlive their connection
/// (expiry > 0) are reported.
///
/// Thread contract: implementations are thread-safe; calls for one client id come from one
/// worker at a time, in order.
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
};

/// The in-memory store: session state lives in the workers' memory only and ends with the
/// process, so there is nothing to record.
class memory_session_store final : public session_store {
public:
    void session_opened(std::string_view, std::uint32_t) override {}
    void session_removed(std::string_view) override {}
    void subscription_added(std::string_view, std::string_view, const subscription&) override {}
    void subscription_removed(std::string_view, std::string_view) override {}
    void message_added(std::string_view, std::uint64_t, const message&, protocol::qos) override {}
    void message_removed(std::string_view, std::uint64_t) override {}
};

} // namespace tern::broker
