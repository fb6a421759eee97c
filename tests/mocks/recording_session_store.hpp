#pragma once
// A durable-looking session_store that records every write as a line of text, for tests that
// check what the broker reports to its store (and in which order). Every submitted batch is
// "durable" at once. Deliveries are also kept (with their messages), so a session whose
// offline queue went to "disk" pages it back in.

#include <tern/broker/session_store.hpp>

#include <fmt/format.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tern::test {

/// Thread-safe (the broker calls its store from every worker).
class recording_session_store final : public broker::session_store {
public:
    bool durable() const noexcept override { return true; }
    std::unique_ptr<broker::store_batch> make_batch(std::uint32_t worker) override {
        return std::make_unique<batch>(*this, worker);
    }
    broker::recovered_state recover(std::chrono::steady_clock::time_point) override { return {}; }
    void name_message(broker::message& m) override {
        m.stored = std::make_shared<broker::stored_body>(next_id_++);
    }
    void retained_set(const broker::message& msg) override {
        add(fmt::format("retain {} {}", msg.publish.topic, msg.publish.payload));
    }
    void retained_cleared(std::string_view topic) override {
        add(fmt::format("unretain {}", topic));
    }
    std::uint64_t durable_ticket() const noexcept override { return ticket_.load(); }
    std::uint64_t current_ticket() const noexcept override { return ticket_.load(); }
    void on_durable(std::function<void(std::uint32_t)> listener) override {
        listener_ = std::move(listener);
    }
    broker::delivery_page page_in(std::uint64_t key, std::uint64_t from, std::uint64_t until,
                                  std::size_t limit,
                                  std::chrono::steady_clock::time_point) override {
        std::lock_guard lock(mutex_);
        broker::delivery_page page;
        page.next_from = from;
        auto it = deliveries_.lower_bound({key, from});
        for (; it != deliveries_.end() && it->first.first == key && it->first.second < until;
             ++it) {
            if (page.items.size() == limit) {
                page.end = false;
                return page;
            }
            page.next_from = it->first.second + 1;
            if (it->second.delivery.packet_id == 0) {
                page.items.push_back(it->second);
            }
        }
        return page;
    }
    bool wake_when_durable(std::uint32_t, std::uint64_t) override { return false; }
    bool failing() const noexcept override { return false; }
    void alive() override {}
    void seal() override {}

    /// Everything recorded so far, and forgets it.
    std::vector<std::string> take() {
        std::lock_guard lock(mutex_);
        return std::exchange(calls_, {});
    }

private:
    class batch final : public broker::store_batch {
    public:
        batch(recording_session_store& s, std::uint32_t w) : store_(s), worker_(w) {}
        void session_saved(const broker::stored_session& s) override {
            store_.name(s.key, s.client_id);
            write(fmt::format("{} {} {}",
                              s.offline_since.time_since_epoch().count() == 0 ? "open" : "offline",
                              s.client_id, s.expiry_interval));
        }
        void session_removed(std::string_view client_id, std::uint64_t key) override {
            store_.drop_deliveries(key);
            write(fmt::format("remove {}", client_id));
        }
        void deliveries_cleared(std::uint64_t key) override {
            store_.drop_deliveries(key);
            write(fmt::format("clear {}", store_.name(key)));
        }
        void subscription_added(std::uint64_t key, std::string_view filter,
                                const broker::subscription& sub) override {
            write(fmt::format("sub {} {} q{}", store_.name(key), filter,
                              static_cast<int>(sub.options.qos)));
        }
        void subscription_removed(std::uint64_t key, std::string_view filter) override {
            write(fmt::format("unsub {} {}", store_.name(key), filter));
        }
        void delivery_saved(std::uint64_t key, const broker::message& m,
                            const broker::stored_delivery& d) override {
            store_.keep(key, m, d);
            write(fmt::format("msg {} {} q{} p{}{}", store_.name(key), m.publish.topic,
                              static_cast<int>(d.qos), d.packet_id, d.released ? " rel" : ""));
        }
        void delivery_removed(std::uint64_t key, const broker::message& m) override {
            store_.unkeep(key, m);
            write(fmt::format("msg- {} {}", store_.name(key), m.publish.topic));
        }
        void delivery_left_on_disk(std::uint64_t key, const broker::message& m) override {
            write(fmt::format("disk {} {}", store_.name(key), m.publish.topic));
        }
        void inbound_qos2_added(std::uint64_t key, std::uint16_t id) override {
            write(fmt::format("in+ {} {}", store_.name(key), id));
        }
        void inbound_qos2_removed(std::uint64_t key, std::uint16_t id) override {
            write(fmt::format("in- {} {}", store_.name(key), id));
        }
        bool dirty() const noexcept override { return !lines_.empty(); }
        std::uint64_t submit() override {
            const auto t = store_.commit(lines_);
            lines_.clear();
            if (store_.listener_) {
                store_.listener_(worker_);
            }
            return t;
        }

    private:
        void write(std::string line) { lines_.push_back(std::move(line)); }
        recording_session_store& store_;
        std::uint32_t worker_;
        std::vector<std::string> lines_;
    };

    std::string name(std::uint64_t key, std::string_view client_id = {}) {
        std::lock_guard lock(mutex_);
        if (!client_id.empty()) {
            names_[key] = std::string(client_id);
        }
        return names_[key];
    }
    std::uint64_t commit(std::vector<std::string>& lines) {
        std::lock_guard lock(mutex_);
        for (auto& l : lines) {
            calls_.push_back(std::move(l));
        }
        return ++ticket_;
    }
    void keep(std::uint64_t key, const broker::message& m, const broker::stored_delivery& d) {
        if (!m.stored) {
            return;
        }
        std::lock_guard lock(mutex_);
        // A copy (a reference is all delivery_saved gets); its topic may view its own string.
        auto copy = std::make_shared<broker::message>(m);
        if (!copy->topic_storage.empty()) {
            copy->publish.topic = copy->topic_storage;
        }
        deliveries_[{key, m.stored->id}] = broker::paged_delivery{std::move(copy), d};
    }
    void unkeep(std::uint64_t key, const broker::message& m) {
        if (m.stored) {
            std::lock_guard lock(mutex_);
            deliveries_.erase({key, m.stored->id});
        }
    }
    void drop_deliveries(std::uint64_t key) {
        std::lock_guard lock(mutex_);
        deliveries_.erase(deliveries_.lower_bound({key, 0}), deliveries_.lower_bound({key + 1, 0}));
    }
    void add(std::string line) {
        std::lock_guard lock(mutex_);
        calls_.push_back(std::move(line));
    }

    std::mutex mutex_;
    std::vector<std::string> calls_;
    std::map<std::uint64_t, std::string> names_;
    std::map<std::pair<std::uint64_t, std::uint64_t>, broker::paged_delivery> deliveries_;
    std::atomic<std::uint64_t> ticket_{0};
    std::atomic<std::uint64_t> next_id_{1};
    std::function<void(std::uint32_t)> listener_;
};

} // namespace tern::test
