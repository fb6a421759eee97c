#pragma once
// The subscription index: a topic trie for `+`/`#` filters, shared-subscription groups, read
// concurrently by every worker's publish path without a global lock.

#include "index/subscriber.hpp"

#include <tern/broker/config.hpp>
#include <tern/broker/subscription.hpp>
#include <tern/protocol/packets.hpp>

#include <boost/container/small_vector.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tern::broker {

/// Who publishes a message, and on what: the inputs of matching and of share strategies.
struct publish_context {
    std::string_view topic;
    std::uint64_t publisher_key = 0; ///< 0 for the broker itself ($SYS, wills of gone sessions)
    std::string_view publisher_client_id;
};

class shared_group;
using shared_group_ptr = std::shared_ptr<shared_group>;

/// One receiver of one message.
struct delivery {
    subscriber_ptr to;
    /// Non-shared: the highest QoS granted among the subscriber's matching filters
    /// [MQTT-3.3.4-2 option]. Shared: the member's granted QoS.
    protocol::qos qos = protocol::qos::at_most_once;
    /// Retain As Published of the matching subscription (OR over overlapping ones).
    bool retain_as_published = false;
    /// Subscription identifiers of every matching subscription that has one [MQTT-3.3.4-3].
    boost::container::small_vector<std::uint32_t, 2> subscription_ids;
    /// Set when the delivery comes from a shared subscription: the session needs it to hand
    /// the message to another member if it goes away before acknowledging.
    shared_group_ptr group;
    /// How many times the message was handed from one member of `group` to another (a full
    /// queue hands a message on once, never round in circles).
    std::uint8_t hops = 0;
    /// The router recorded this delivery in the durable store (the session's copy exists on
    /// disk under the receiver's key); the session takes it over from there.
    bool stored = false;
    /// Only an `a/#` filter matched, and the topic is its parent `a`: AWS IoT Core would not
    /// deliver it (the readiness report counts these).
    bool via_parent_of_hash = false;
};

/// A shared-subscription group `$share/NAME/FILTER`: its members and its strategy.
///
/// Thread contract: thread-safe. pick() may run on any worker concurrently with membership
/// changes.
class shared_group {
public:
    /// One member for one message: online members first (an offline persistent member is
    /// chosen only when no member is online), never `exclude_key`, following the strategy and
    /// the weights. `exclude_key` 0 excludes nobody (key 0 is the broker itself). On success
    /// `out` is the member's delivery with `out.group` set to this group. Returns false (and
    /// leaves `out` alone) when no eligible member exists.
    bool pick(const publish_context& ctx, std::uint64_t exclude_key, delivery& out) const;

    const std::string& name() const noexcept;   ///< the group name (between $share/ and /)
    const std::string& filter() const noexcept; ///< the filter after the group name
    std::size_t member_count() const noexcept;

    // Implementation-defined members follow (see topic_index.cpp).
    struct impl;
    explicit shared_group(std::unique_ptr<impl> p);
    ~shared_group();

private:
    std::unique_ptr<impl> impl_;
};

/// The subscription index.
///
/// Thread contract: thread-safe. match() is the hot path and takes no global lock (see
/// docs/architecture.md for the scheme); subscribe/unsubscribe may run concurrently with it.
class topic_index {
public:
    explicit topic_index(share_strategy default_strategy = share_strategy::round_robin);
    ~topic_index();
    topic_index(const topic_index&) = delete;
    topic_index& operator=(const topic_index&) = delete;

    /// Sets the strategy of group `name` (existing or future); overrides the default.
    void set_group_strategy(std::string_view name, share_strategy strategy);

    /// Adds or replaces (same subscriber, same filter) a subscription. `filter` is a valid
    /// topic filter, possibly `$share/GROUP/FILTER`. Returns true when the subscriber had no
    /// subscription to this filter before (Retain Handling 1 needs this). An invalid filter or
    /// a null `who` stores nothing and returns false.
    bool subscribe(const subscriber_ptr& who, std::string_view filter, const subscription& sub);

    /// Removes the subscriber's subscription to `filter`; false when there was none.
    bool unsubscribe(std::uint64_t subscriber_key, std::string_view filter);

    /// Appends every receiver of a message on `ctx.topic` to `out`: one delivery per
    /// subscriber over its non-shared subscriptions (No Local ones skipped for the publisher
    /// [MQTT-3.8.3-3]); plus one delivery per matching shared group, picked by its strategy
    /// (No Local does not apply to shared subscriptions [MQTT-3.8.3-4]). Wildcards at the
    /// first level do not match topics starting with `$` [MQTT-4.7.2-1].
    void match(const publish_context& ctx, std::vector<delivery>& out) const;

    /// Number of (subscriber, filter) subscriptions, shared ones included.
    std::size_t subscription_count() const noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace tern::broker
