#pragma once
// What every worker and connection of one broker shares.

#include "registry.hpp"

#include <tern/broker/broker.hpp>

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

namespace tern::broker {

class connection;

/// One worker: an io_context run by exactly one thread (concurrency hint 1, STYLE.md §4) and
/// the connections pinned to it.
///
/// Thread contract: `ctx` is thread-safe for post(); everything else is owner worker only.
struct worker {
    explicit worker(std::size_t i) : index(i) {}

    std::size_t index;
    boost::asio::io_context ctx{1};
    /// Live connections of this worker; a connection removes itself when it closes.
    std::unordered_map<std::uint64_t, std::shared_ptr<connection>> connections;
    /// Set when the broker shuts down: no new connections, no wills.
    bool stopping = false;
};

/// Thread contract: `options` and the `workers` vector are immutable while workers run;
/// `subscriptions` and `next_key` are thread-safe.
struct shared_state {
    broker_options options;
    std::vector<std::unique_ptr<worker>> workers;
    registry subscriptions;
    std::atomic<std::uint64_t> next_key{1};
    /// Random per broker run, so assigned client identifiers differ between runs.
    std::uint64_t client_id_salt = 0;
};

} // namespace tern::broker
