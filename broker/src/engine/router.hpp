#pragma once
// Moving messages from publishers to sessions across workers.

#include "engine/shared_state.hpp"

#include <cstddef>
#include <vector>

namespace tern::broker {

/// Matches `m` against the subscription index and adds one routed entry per receiving worker
/// to `w.outbox`; returns the number of receivers. Nothing is sent until flush_outbox(w), so
/// the PUBLISHes of one read are handed to each other worker as one batch.
/// Thread contract: `w`'s thread only.
std::size_t route(worker& w, const message_ptr& m, const publish_context& ctx);

/// Adds one delivery of `m` to `w.outbox` for the worker currently holding `d.to`.
/// Thread contract: `w`'s thread only.
void route_to(worker& w, const message_ptr& m, delivery d);

/// Hands everything in `w.outbox` over: deliveries to sessions on `w` itself in place, one
/// push_routed() per other worker. Thread contract: `w`'s thread only.
void flush_outbox(worker& w);

/// Delivers routed messages to the sessions of `w`; forwards those whose session moved on,
/// keeps those whose session is still on its way here, and gives shared-subscription messages
/// of sessions that no longer exist back to their group. Thread contract: `w`'s thread only.
void deliver_routed(worker& w, std::vector<routed_message>& batch);

/// Publishes a message that comes from the broker itself or from a gone connection (a will,
/// $SYS): stores it if retained, routes and flushes. Thread contract: `w`'s thread only.
void publish_internal(worker& w, const message_ptr& m, std::uint64_t publisher_key,
                      std::string_view publisher_client_id);

} // namespace tern::broker
