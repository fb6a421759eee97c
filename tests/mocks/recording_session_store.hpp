#pragma once
// A session_store that records every call as a line of text, for tests that check what the
// broker reports to its store (and in which order).

#include <tern/broker/session_store.hpp>

#include <fmt/format.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tern::test {

/// Thread-safe (the broker calls its store from every worker).
class recording_session_store final : public broker::session_store {
public:
    void session_opened(std::string_view client_id, std::uint32_t expiry) override {
        add(fmt::format("open {} {}", client_id, expiry));
    }
    void session_removed(std::string_view client_id) override {
        add(fmt::format("remove {}", client_id));
    }
    void subscription_added(std::string_view client_id, std::string_view filter,
                            const broker::subscription& sub) override {
        add(fmt::format("sub {} {} q{}", client_id, filter, static_cast<int>(sub.options.qos)));
    }
    void subscription_removed(std::string_view client_id, std::string_view filter) override {
        add(fmt::format("unsub {} {}", client_id, filter));
    }
    void message_added(std::string_view client_id, std::uint64_t seq, const broker::message& msg,
                       protocol::qos qos) override {
        add(fmt::format("msg+ {} {} {} q{}", client_id, seq, msg.publish.topic,
                        static_cast<int>(qos)));
    }
    void message_removed(std::string_view client_id, std::uint64_t seq) override {
        add(fmt::format("msg- {} {}", client_id, seq));
    }
    void retained_set(const broker::message& msg) override {
        add(fmt::format("retain {} {}", msg.publish.topic, msg.publish.payload));
    }
    void retained_cleared(std::string_view topic) override {
        add(fmt::format("unretain {}", topic));
    }

    /// Everything recorded so far, and forgets it.
    std::vector<std::string> take() {
        std::lock_guard lock(mutex_);
        return std::exchange(calls_, {});
    }

private:
    void add(std::string line) {
        std::lock_guard lock(mutex_);
        calls_.push_back(std::move(line));
    }

    std::mutex mutex_;
    std::vector<std::string> calls_;
};

} // namespace tern::test
