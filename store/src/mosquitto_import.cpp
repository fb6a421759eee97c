#include <tern/store/mosquitto_db.hpp>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>
#include <unordered_map>

namespace tern::store {

namespace {

/// Submitted every this many writes, so one batch never holds a whole large file twice over
/// (the store writes batches in the order they were submitted, so splitting changes nothing).
constexpr std::size_t writes_per_batch = 4096;
constexpr auto durable_wait = std::chrono::seconds(30);

std::optional<std::string> read_whole(const std::string& path, std::string& error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        error = fmt::format("{}: cannot open: {}", path, std::strerror(errno));
        return std::nullopt;
    }
    std::ostringstream bytes;
    bytes << in.rdbuf();
    if (in.bad()) {
        error = fmt::format("{}: cannot read: {}", path, std::strerror(errno));
        return std::nullopt;
    }
    return std::move(bytes).str();
}

/// A second name for `m` when a session would otherwise refer to the same name twice, or
/// out of order: the store keeps one delivery per (session, message) and pages a queue in by
/// name. The copy shares the bytes.
broker::message_ptr renamed(const broker::message_ptr& m, broker::session_store& store) {
    auto copy = std::make_shared<broker::message>(*m);
    copy->stored.reset();
    if (!copy->topic_storage.empty()) {
        copy->publish.topic = copy->topic_storage;
    }
    store.name_message(*copy);
    return copy;
}

} // namespace

std::optional<mosquitto_import_counts>
import_mosquitto_db(const std::string& path, broker::session_store& store, std::string& error) {
    if (!store.durable()) {
        // The in-memory store names no message and keeps nothing: there is nothing to import to.
        error = fmt::format("{}: the session store is not durable (persistence false)", path);
        return std::nullopt;
    }
    auto bytes = read_whole(path, error);
    if (!bytes) {
        return std::nullopt;
    }
    const auto wall_now = std::chrono::system_clock::now();
    auto contents = parse_mosquitto_db(*bytes, wall_now, std::chrono::steady_clock::now(), error);
    if (!contents) {
        error = fmt::format("{}: {}", path, error);
        return std::nullopt;
    }
    bytes.reset(); // every message owns its bytes

    mosquitto_import_counts counts;
    counts.version = contents->version;
    counts.skipped = contents->skipped;

    // Names in Mosquitto's store order first, so that each queue's order is its names' order
    // (page_in() reads a queue by name) and a message shared by sessions is stored once.
    std::unordered_map<const broker::message*, std::uint64_t> name_of;
    for (const auto& m : contents->messages) {
        store.name_message(*std::const_pointer_cast<broker::message>(m));
        name_of.emplace(m.get(), m->stored->id);
    }

    auto batch = store.make_batch(0);
    std::uint64_t ticket = 0;
    std::size_t writes = 0;
    const auto wrote = [&] {
        if (++writes % writes_per_batch == 0) {
            ticket = std::max(ticket, batch->submit());
        }
    };
    for (const auto& s : contents->state.sessions) {
        broker::stored_session record;
        record.client_id = s.client_id;
        record.key = s.key;
        record.expiry_interval = s.expiry_interval;
        record.version = s.version;
        // Mosquitto's expiry time is stale for a client that was connected when it stopped;
        // the session's expiry counts from the import instead (Tern's own downtime counts).
        record.offline_since = wall_now;
        batch->session_saved(record);
        wrote();
        for (const auto& [filter, sub] : s.subscriptions) {
            batch->subscription_added(s.key, filter, sub);
            ++counts.subscriptions;
            wrote();
        }
        std::uint64_t last = 0;
        for (const auto& [msg, d] : s.messages) {
            broker::message_ptr m = msg;
            if (const auto it = name_of.find(m.get()); it == name_of.end() || it->second <= last) {
                m = renamed(msg, store);
            }
            last = m->stored->id;
            batch->delivery_saved(s.key, *m, d);
            // The import ends with every message on disk only, until its session is back.
            batch->delivery_left_on_disk(s.key, *m);
            ++counts.messages;
            wrote();
        }
        for (const auto id : s.inbound_qos2) {
            batch->inbound_qos2_added(s.key, id);
            ++counts.inbound_qos2;
            wrote();
        }
        ++counts.sessions;
    }
    for (const auto& m : contents->state.retained) {
        store.retained_set(*m);
        ++counts.retained;
    }
    ticket = std::max(ticket, batch->submit());
    // The retained writes go with the store's next round; current_ticket() names it.
    if (counts.retained > 0) {
        ticket = std::max(ticket, store.current_ticket());
    }

    const auto deadline = std::chrono::steady_clock::now() + durable_wait;
    while (ticket != 0 && store.durable_ticket() < ticket) {
        if (std::chrono::steady_clock::now() >= deadline) {
            error =
                fmt::format("{}: the session store did not write the imported sessions "
                            "within {} s{}",
                            path, durable_wait.count(),
                            store.failing() ? " (it cannot write: disk full or I/O error)" : "");
            return std::nullopt;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return counts;
}

} // namespace tern::store
