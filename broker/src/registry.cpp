#include "registry.hpp"

#include <tern/protocol/topic.hpp>

#include <algorithm>

namespace tern::broker {

bool registry::subscribe(const connection_ref& who, std::string_view filter,
                         const protocol::subscribe_options& options) {
    std::lock_guard lock(mutex_);
    auto& entry = subscribers_[who.key];
    entry.ref = who;
    const auto it = entry.filters.find(filter);
    if (it != entry.filters.end()) {
        it->second = options; // [MQTT-3.8.4-3]: a repeated filter replaces the subscription
        return false;
    }
    entry.filters.emplace(std::string(filter), options);
    return true;
}

bool registry::unsubscribe(std::uint64_t key, std::string_view filter) {
    std::lock_guard lock(mutex_);
    const auto sub = subscribers_.find(key);
    if (sub == subscribers_.end()) {
        return false;
    }
    const auto it = sub->second.filters.find(filter);
    if (it == sub->second.filters.end()) {
        return false;
    }
    sub->second.filters.erase(it);
    if (sub->second.filters.empty()) {
        subscribers_.erase(sub);
    }
    return true;
}

void registry::remove_subscriber(std::uint64_t key) {
    std::lock_guard lock(mutex_);
    subscribers_.erase(key);
}

std::vector<delivery_target> registry::match(std::string_view topic,
                                             std::uint64_t publisher) const {
    std::vector<delivery_target> targets;
    std::lock_guard lock(mutex_);
    for (const auto& [key, sub] : subscribers_) {
        bool matched = false;
        delivery_target target{sub.ref, protocol::qos::at_most_once, false};
        for (const auto& [filter, options] : sub.filters) {
            if ((options.no_local && key == publisher) || !protocol::topic_matches(filter, topic)) {
                continue;
            }
            // Overlapping subscriptions: one delivery at the highest granted QoS.
            target.qos = matched ? std::max(target.qos, options.qos) : options.qos;
            target.retain_as_published = target.retain_as_published || options.retain_as_published;
            matched = true;
        }
        if (matched) {
            targets.push_back(std::move(target));
        }
    }
    return targets;
}

void registry::retain(const message_ptr& m) {
    std::lock_guard lock(mutex_);
    if (m->publish.payload.empty()) {
        retained_.erase(std::string(m->publish.topic));
    } else {
        retained_.insert_or_assign(std::string(m->publish.topic), m);
    }
}

std::vector<message_ptr> registry::retained_matching(std::string_view filter) const {
    std::vector<message_ptr> found;
    std::lock_guard lock(mutex_);
    for (const auto& [topic, m] : retained_) {
        if (protocol::topic_matches(filter, topic)) {
            found.push_back(m);
        }
    }
    return found;
}

std::optional<connection_ref> registry::claim_client_id(const std::string& client_id,
                                                        const connection_ref& owner) {
    std::lock_guard lock(mutex_);
    auto [it, inserted] = client_ids_.try_emplace(client_id, owner);
    if (inserted) {
        return std::nullopt;
    }
    auto previous = std::move(it->second);
    it->second = owner;
    return previous;
}

void registry::release_client_id(const std::string& client_id, std::uint64_t key) {
    std::lock_guard lock(mutex_);
    const auto it = client_ids_.find(client_id);
    if (it != client_ids_.end() && it->second.key == key) {
        client_ids_.erase(it);
    }
}

} // namespace tern::broker
