#pragma once
// Broker-wide state shared by all workers: subscriptions, retained messages, client ids.

#include "message.hpp"

#include <tern/protocol/packets.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tern::broker {

class connection;

/// Where a connection lives: its broker-unique key, its worker and a handle that only that
/// worker may lock and use.
struct connection_ref {
    std::uint64_t key = 0;
    std::size_t worker = 0;
    std::weak_ptr<connection> conn;
};

/// One receiver of one message: already deduplicated across overlapping subscriptions.
struct delivery_target {
    connection_ref to;
    protocol::qos qos = protocol::qos::at_most_once; ///< highest granted QoS of matching filters
    bool retain_as_published = false;
};

/// Subscriptions, retained messages and the client-id table behind one mutex.
///
/// This is the deliberately simple version: publish scans every subscriber's filters under the
/// lock (O(subscribers x filters)). The broker-core issue replaces it with the topic trie read
/// without a global lock (STYLE.md §4).
///
/// Thread contract: thread-safe (every member locks mutex_). Returned messages are shared and
/// immutable; returned connection handles may only be locked on their own worker.
class registry {
public:
    /// Adds or replaces `filter` (a valid, non-shared filter) for `who`. Returns true when
    /// the filter is new for it (Retain Handling 1 needs this).
    bool subscribe(const connection_ref& who, std::string_view filter,
                   const protocol::subscribe_options& options);
    /// Removes `filter` for the subscriber with `key`; false when it had no such subscription.
    bool unsubscribe(std::uint64_t key, std::string_view filter);
    /// Removes every subscription of `key`.
    void remove_subscriber(std::uint64_t key);

    /// Every subscriber with a filter matching `topic`, once each, at the highest granted QoS
    /// [MQTT-3.3.4-2 option]. Subscriptions with No Local are skipped for `publisher`.
    std::vector<delivery_target> match(std::string_view topic, std::uint64_t publisher) const;

    /// Stores `m` as the retained message of its topic, or deletes the topic's retained message
    /// when the payload is empty [MQTT-3.3.1-10, 3.3.1-11].
    void retain(const message_ptr& m);
    /// Retained messages whose topic matches `filter`.
    std::vector<message_ptr> retained_matching(std::string_view filter) const;

    /// Records `owner` as the connection of `client_id` and returns the previous owner, which
    /// must be disconnected [MQTT-3.1.4-2].
    std::optional<connection_ref> claim_client_id(const std::string& client_id,
                                                  const connection_ref& owner);
    /// Forgets `client_id` if the connection `key` still owns it (a taken-over connection
    /// must not remove its successor).
    void release_client_id(const std::string& client_id, std::uint64_t key);

private:
    struct subscriber {
        connection_ref ref;
        std::map<std::string, protocol::subscribe_options, std::less<>> filters;
    };

    mutable std::mutex mutex_;
    std::unordered_map<std::uint64_t, subscriber> subscribers_;  // guarded by mutex_
    std::map<std::string, message_ptr, std::less<>> retained_;   // guarded by mutex_
    std::unordered_map<std::string, connection_ref> client_ids_; // guarded by mutex_
};

} // namespace tern::broker
