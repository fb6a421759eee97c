#pragma once
// Retained messages by topic, matched against subscription filters.

#include <tern/broker/message.hpp>
#include <tern/broker/session_store.hpp>

#include <cstddef>
#include <memory>
#include <string_view>
#include <vector>

namespace tern::broker {

/// The retained message of every topic that has one.
///
/// Thread contract: thread-safe; set() may run concurrently with match() from any worker.
class retained_store {
public:
    retained_store();
    ~retained_store();
    retained_store(const retained_store&) = delete;
    retained_store& operator=(const retained_store&) = delete;

    /// Stores `m` as the retained message of its topic, replacing the previous one; an empty
    /// payload deletes the topic's retained message instead [MQTT-3.3.1-10, 3.3.1-11]. The
    /// change is reported to `log` (retained_set / retained_cleared) under the topic's lock,
    /// so the store sees changes of one topic in the order they were applied.
    void set(const message_ptr& m, session_store& log);

    /// Appends the retained messages whose topic matches `filter` (a valid non-shared filter;
    /// wildcards at the first level skip `$` topics [MQTT-4.7.2-1]).
    void match(std::string_view filter, std::vector<message_ptr>& out) const;

    /// Number of retained messages.
    std::size_t size() const noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace tern::broker
