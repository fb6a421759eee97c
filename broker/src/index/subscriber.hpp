#pragma once
// The identity and current location of a session, shared by the topic index and the sessions.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace tern::broker {

/// A session as seen from outside its worker. The topic index stores these; a publisher reads
/// `worker` to know where to post a delivery. Sessions move between workers when a client
/// reconnects through a connection pinned to another worker; the session's owner updates
/// `worker` before handing the session over, and a worker that receives a delivery for a
/// session it no longer holds forwards it.
///
/// Thread contract: `key` and `client_id` are immutable; the atomics are written by the
/// session's current owner worker only and read by anyone (relaxed: they are hints, every
/// decision made on them is re-checked on the owner worker).
struct subscriber_handle {
    subscriber_handle(std::uint64_t k, std::string id) : key(k), client_id(std::move(id)) {}

    /// Unique per session for the life of the broker (never reused).
    const std::uint64_t key;
    const std::string client_id;
    /// Index of the worker currently holding the session.
    std::atomic<std::uint32_t> worker{0};
    /// A connection is attached (shared groups prefer online members).
    std::atomic<bool> online{false};
    /// Outgoing QoS 1/2 messages awaiting acknowledgement (the least-inflight strategy).
    std::atomic<std::uint32_t> inflight{0};
    /// The session outlives its connection (expiry > 0): with a durable store, whoever routes
    /// a QoS 1/2 message to it records the delivery (delivery::stored).
    std::atomic<bool> persistent{false};
};
using subscriber_ptr = std::shared_ptr<subscriber_handle>;

} // namespace tern::broker
