#pragma once
/// The durable session store: RocksDB under `persistence_location` (docs/store.md).
///
/// Writes arrive as per-worker batches; one writer thread takes every batch submitted since
/// its last round, writes them in submission order and syncs the write-ahead log once for all
/// of them (group commit), then advances the durable ticket and tells the workers whose
/// packets were waiting. A round that fails (disk full, I/O error) is retried until it
/// succeeds; meanwhile nothing it holds is acknowledged and the store reports failing().
///
/// Thread contract: thread-safe as session_store says; open() and the destructor on one
/// thread, with no broker using the store.

#include <tern/broker/session_store.hpp>

#include <chrono>
#include <memory>
#include <string>

namespace tern::store {

/// When the write-ahead log is synced to the disk (persistence_sync).
enum class sync_policy {
    /// Every round, before any packet waiting for it goes out: nothing acknowledged is lost
    /// even to a power failure. The default.
    every_batch,
    /// At most every `sync_interval`: acknowledged once written to the OS (survives kill -9
    /// of Tern, not a power failure of the host within the interval).
    interval,
    /// Never explicitly (the OS writes back): survives kill -9, not a host crash.
    never,
};

struct store_options {
    /// The store's directory (created when missing).
    std::string path;
    sync_policy sync = sync_policy::every_batch;
    std::chrono::milliseconds sync_interval{100};
    /// How often a failed round is retried.
    std::chrono::milliseconds retry_interval{500};
};

class rocksdb_store final : public broker::session_store {
public:
    /// Opens (or creates) the store at options.path. Returns null with a message naming the
    /// path when it cannot: not writable, locked by another process, a newer format, corrupt.
    static std::unique_ptr<rocksdb_store> open(const store_options& options, std::string& error);
    ~rocksdb_store() override;
    rocksdb_store(const rocksdb_store&) = delete;
    rocksdb_store& operator=(const rocksdb_store&) = delete;

    bool durable() const noexcept override { return true; }
    std::unique_ptr<broker::store_batch> make_batch(std::uint32_t worker) override;
    broker::recovered_state recover(std::chrono::steady_clock::time_point now) override;
    void name_message(broker::message& m) override;
    void retained_set(const broker::message& msg) override;
    void retained_cleared(std::string_view topic) override;
    std::uint64_t durable_ticket() const noexcept override;
    std::uint64_t current_ticket() const noexcept override;
    void on_durable(std::function<void(std::uint32_t)> listener) override;
    broker::delivery_page page_in(std::uint64_t key, std::uint64_t from, std::uint64_t until,
                                  std::size_t limit,
                                  std::chrono::steady_clock::time_point now) override;
    bool wake_when_durable(std::uint32_t worker, std::uint64_t ticket) override;
    bool failing() const noexcept override;
    void alive() override;
    void seal() override;

    /// Counters for tests and metrics: rounds written, WAL syncs, batches merged.
    struct counters {
        std::uint64_t rounds = 0;
        std::uint64_t syncs = 0;
        std::uint64_t batches = 0;
        std::uint64_t failures = 0;
        /// Message bodies deleted once no queue or message in memory held them.
        std::uint64_t bodies_collected = 0;
    };
    counters stats() const;

    struct impl;

private:
    explicit rocksdb_store(std::shared_ptr<impl> i);
    std::shared_ptr<impl> impl_;
};

} // namespace tern::store
