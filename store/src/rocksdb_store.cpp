#include <tern/store/rocksdb_store.hpp>

#include <tern/store/records.hpp>

#include <tern/core/log.hpp>

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

namespace tern::store {

using core::log;
using core::log_level;

namespace {

/// The column families, in the order they are opened (docs/store.md has what each holds).
enum cf : std::size_t {
    meta,
    sessions,
    subscriptions,
    deliveries,
    inbound,
    bodies,
    retained,
    refs,
    cf_count
};
constexpr const char* cf_names[cf_count] = {"default", "sessions", "subscriptions", "deliveries",
                                            "inbound", "bodies",   "retained",      "refs"};

std::chrono::system_clock::time_point wall_of(std::chrono::steady_clock::time_point t) {
    // Messages carry the steady time they arrived; the store keeps the wall time, which still
    // means something after a restart.
    const auto age = std::chrono::steady_clock::now() - t;
    return std::chrono::system_clock::now() -
           std::chrono::duration_cast<std::chrono::system_clock::duration>(
               std::max(age, std::chrono::steady_clock::duration::zero()));
}

constexpr std::size_t memtable_budget = 64 << 20;
constexpr std::size_t block_cache_budget = 32 << 20;

/// The session key of a delivery key, for the memtable's insert hints. Only full delivery
/// keys are in its domain: the 8-byte bounds of a session's range delete are not, because
/// RocksDB 7.8 keeps one hint per prefix for the point and the range-delete tables alike and
/// a point insert's hint used for a range tombstone corrupts the skip list (seen as an
/// assertion in Debian's build, which keeps assertions on).
class delivery_session final : public rocksdb::SliceTransform {
public:
    const char* Name() const override { return "tern.delivery_session"; }
    rocksdb::Slice Transform(const rocksdb::Slice& key) const override { return {key.data(), 8}; }
    bool InDomain(const rocksdb::Slice& key) const override { return key.size() == 16; }
};

/// Reads an existing store without writing to it: false (with `error` naming the path) when it
/// was written by a newer Tern, lacks one of the column families every format has, or cannot
/// be read at all.
bool check_existing(const std::string& path, std::string& error) {
    std::vector<std::string> names;
    const auto listed = rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names);
    if (!listed.ok()) {
        error = fmt::format("cannot open the session store {}: {}", path, listed.ToString());
        return false;
    }
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (const auto& n : names) {
        descriptors.emplace_back(n, rocksdb::ColumnFamilyOptions());
    }
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    const auto opened =
        rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), path, descriptors, &handles, &raw);
    if (!opened.ok()) {
        error = fmt::format("cannot open the session store {}: {}", path, opened.ToString());
        return false;
    }
    std::unique_ptr<rocksdb::DB> db(raw);
    std::string format;
    const auto got = db->Get(rocksdb::ReadOptions(), db->DefaultColumnFamily(), "format", &format);
    for (auto* h : handles) {
        (void)db->DestroyColumnFamilyHandle(h);
    }
    const auto v = got.ok() ? decode_u64(format) : std::nullopt;
    if (v && *v > store_format) {
        error = fmt::format("the session store {} was written by a newer Tern (format {}; this "
                            "one reads up to {}): refusing to touch it",
                            path, *v, store_format);
        return false;
    }
    std::string missing;
    for (const auto* name : cf_names) {
        if (std::find(names.begin(), names.end(), name) == names.end()) {
            missing += missing.empty() ? name : fmt::format(", {}", name);
        }
    }
    if (got.ok() && !missing.empty()) {
        error = fmt::format("the session store {} is damaged: its column families {} are "
                            "missing (a truncated MANIFEST?); move it aside to start empty",
                            path, missing);
        return false;
    }
    return true; // a garbage or missing format record is reported by open()
}

std::string end_of_prefix(std::uint64_t key) {
    return session_prefix(key + 1);
}

} // namespace

/// Shared by the store object and every stored_body it made (a message may outlive the
/// store's owner by a little while the broker is torn down; see release_body()).
struct rocksdb_store::impl {
    store_options options;
    std::unique_ptr<rocksdb::DB> db;
    std::vector<rocksdb::ColumnFamilyHandle*> cfs;

    std::mutex mutex;
    std::condition_variable wake;
    std::condition_variable drained;
    std::vector<rocksdb::WriteBatch> pending;    // guarded by mutex
    rocksdb::WriteBatch direct;                  // guarded by mutex
    std::vector<bool> waiting_workers;           // guarded by mutex
    std::uint64_t collecting = 1;                // guarded by mutex
    bool writing = false;                        // guarded by mutex
    bool stopping = false;                       // guarded by mutex
    std::function<void(std::uint32_t)> listener; // set before the workers run
    std::atomic<std::uint64_t> durable{0};
    // The highest ticket given to a write so far (a batch or a direct write): the writer is
    // certain to reach it, since that write is pending or written. (The ticket the next
    // submit would get is not: no round comes for it if nothing more is submitted.)
    std::atomic<std::uint64_t> given{0};
    std::atomic<bool> failing{false};
    std::atomic<bool> sealed{false};
    std::atomic<std::uint64_t> next_body{1};
    std::atomic<std::uint64_t> rounds{0}, syncs{0}, batches{0}, failures{0};
    std::thread writer;

    // Message bodies live on disk while any message in memory holds them (live: the count of
    // stored_body objects per id) or a delivery on disk only refers to them (refs: message
    // id then session key, written only when a session leaves a message on disk). A delivery
    // recorded while its message is in memory needs no ref: the message holds the body until
    // the session removes the delivery, and that removal is submitted before the message can
    // go (the batch holds it). So a body no session ever left on disk is deleted as soon as
    // the last message in memory goes (dead); one that was is a candidate, checked against
    // refs after the round that carried the change.
    struct live_body {
        std::uint32_t count = 0;
        bool on_disk = false; // some session left it on disk: refs may name it
    };
    std::mutex live_mutex;
    std::unordered_map<std::uint64_t, live_body> live;             // guarded by live_mutex
    std::vector<std::uint64_t> candidates;                         // guarded by mutex
    std::vector<std::uint64_t> dead;                               // guarded by mutex
    std::vector<std::pair<std::uint32_t, std::uint64_t>> watchers; // guarded by mutex
    std::atomic<std::uint64_t> bodies_collected{0};
    std::chrono::steady_clock::time_point last_sync{}; // writer thread only
    bool unsynced = false;                             // writer thread only

    ~impl() {
        for (auto* h : cfs) {
            if (h != nullptr && db) {
                (void)db->DestroyColumnFamilyHandle(h);
            }
        }
        cfs.clear();
        if (db) {
            (void)db->Close();
        }
    }

    rocksdb::ColumnFamilyHandle* cf(std::size_t i) const { return cfs[i]; }

    std::uint64_t submit(rocksdb::WriteBatch&& b, std::uint32_t worker,
                         std::vector<std::uint64_t>& released) {
        std::lock_guard lock(mutex);
        if (sealed.load()) {
            released.clear();
            return durable.load();
        }
        pending.push_back(std::move(b));
        given.store(collecting);
        candidates.insert(candidates.end(), released.begin(), released.end());
        released.clear();
        if (worker >= waiting_workers.size()) {
            waiting_workers.resize(worker + 1, false);
        }
        waiting_workers[worker] = true;
        wake.notify_one();
        return collecting;
    }

    void add_direct(const std::function<void(rocksdb::WriteBatch&)>& f, bool notify) {
        if (sealed.load()) {
            return;
        }
        std::lock_guard lock(mutex);
        f(direct);
        given.store(collecting);
        if (notify) {
            wake.notify_one();
        }
    }

    void body_born(std::uint64_t id) {
        std::lock_guard lock(live_mutex);
        ++live[id].count;
    }

    /// `on_disk`: the dying object was left on disk by a session, or read from the disk.
    void body_died(std::uint64_t id, bool on_disk) {
        bool refs_may_name_it = false;
        {
            std::lock_guard lock(live_mutex);
            const auto it = live.find(id);
            if (it == live.end()) {
                return;
            }
            it->second.on_disk = it->second.on_disk || on_disk;
            if (--it->second.count != 0) {
                return;
            }
            refs_may_name_it = it->second.on_disk;
            live.erase(it);
        }
        if (sealed.load()) {
            return; // the broker is torn down: its messages' end is not a change of state
        }
        std::lock_guard lock(mutex);
        (refs_may_name_it ? candidates : dead).push_back(id);
    }

    /// After a round: deletes the bodies of `dead` and those of `ids` that nothing refers to
    /// any more, on disk or in memory. Every batch submitted before an id became a candidate
    /// has been written, so the refs seen here are the ones that count (a body in memory is
    /// live, and a batch holding a new reference keeps its body in memory until it is
    /// submitted).
    void collect(std::vector<std::uint64_t>& ids, const std::vector<std::uint64_t>& dead_ids) {
        if (ids.empty() && dead_ids.empty()) {
            return;
        }
        rocksdb::WriteBatch gone;
        for (const auto id : dead_ids) {
            (void)gone.Delete(cf(bodies), body_key(id));
        }
        std::sort(ids.begin(), ids.end());
        ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
        for (const auto id : ids) {
            {
                std::lock_guard lock(live_mutex);
                if (live.contains(id)) {
                    continue;
                }
            }
            const auto prefix = body_key(id);
            // Bounded to this id: without a bound the seek walks over the tombstones of every
            // later ref deleted in the same round, and a round costs the square of its size
            // (measured by bench/durable.sh: 64 % of the writer's time).
            const auto bound_key = body_key(id + 1);
            const rocksdb::Slice bound(bound_key);
            rocksdb::ReadOptions ro;
            ro.iterate_upper_bound = &bound;
            std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, cf(refs)));
            it->Seek(prefix);
            if (it->Valid() && it->key().starts_with(prefix)) {
                continue; // a queue on disk still holds it
            }
            (void)gone.Delete(cf(bodies), prefix);
        }
        if (gone.Count() > 0) {
            // Not synced: a body left behind by a crash is collected at the next start.
            if (db->Write(rocksdb::WriteOptions(), &gone).ok()) {
                bodies_collected.fetch_add(gone.Count(), std::memory_order_relaxed);
            }
        }
    }

    /// Tells the workers watching for a ticket that has become durable.
    void wake_watchers(std::unique_lock<std::mutex>& lock) {
        const auto done = durable.load();
        std::vector<std::uint32_t> wake_now;
        std::erase_if(watchers, [&](const auto& w) {
            if (w.second > done) {
                return false;
            }
            if (std::find(wake_now.begin(), wake_now.end(), w.first) == wake_now.end()) {
                wake_now.push_back(w.first); // one wake per worker
            }
            return true;
        });
        if (!wake_now.empty() && listener) {
            lock.unlock();
            for (const auto w : wake_now) {
                listener(w);
            }
            lock.lock();
        }
    }

    /// Writes `batches` in order (the last one synced when the policy says so); retries a
    /// failure until it succeeds or the store stops.
    void write_round(std::vector<rocksdb::WriteBatch>& round) {
        std::size_t next = 0;
        while (next < round.size()) {
            rocksdb::WriteOptions wo;
            const bool last = next + 1 == round.size();
            if (last) {
                const auto now = std::chrono::steady_clock::now();
                wo.sync = options.sync == sync_policy::every_batch ||
                          (options.sync == sync_policy::interval &&
                           now - last_sync >= options.sync_interval);
                if (wo.sync) {
                    last_sync = now;
                }
            }
            const auto st = db->Write(wo, &round[next]);
            if (st.ok()) {
                if (wo.sync) {
                    syncs.fetch_add(1, std::memory_order_relaxed);
                    unsynced = false;
                } else {
                    unsynced = true;
                }
                ++next;
                if (failing.exchange(false)) {
                    log(log_level::info, "session store {}: writing again", options.path);
                }
                continue;
            }
            failures.fetch_add(1, std::memory_order_relaxed);
            if (!failing.exchange(true)) {
                log(log_level::error,
                    "session store {}: cannot write: {}; QoS 1/2 messages are refused and "
                    "nothing waiting for the store is acknowledged until it can",
                    options.path, st.ToString());
            }
            std::unique_lock lock(mutex);
            if (stopping) {
                log(log_level::error,
                    "session store {}: stopping with {} unwritten batches (none of them "
                    "acknowledged to a client)",
                    options.path, round.size() - next);
                return;
            }
            wake.wait_for(lock, options.retry_interval, [&] { return stopping; });
            lock.unlock();
            (void)db->Resume(); // clears a background error once the disk has room again
        }
    }

    void run() {
        std::unique_lock lock(mutex);
        for (;;) {
            const auto work = [&] {
                return stopping || !pending.empty() || direct.Count() > 0 || !candidates.empty() ||
                       !dead.empty();
            };
            if (options.sync == sync_policy::interval && unsynced) {
                // persistence_sync interval: what was written is synced at most one interval
                // later, also when no further round comes to carry the sync.
                if (!wake.wait_for(lock, options.sync_interval, work)) {
                    lock.unlock();
                    if (db->SyncWAL().ok()) {
                        syncs.fetch_add(1, std::memory_order_relaxed);
                        unsynced = false;
                        last_sync = std::chrono::steady_clock::now();
                    }
                    lock.lock();
                    continue;
                }
            } else {
                wake.wait(lock, work);
            }
            if (pending.empty() && direct.Count() == 0 && candidates.empty() && dead.empty()) {
                break; // stopping, and nothing left to write
            }
            std::vector<rocksdb::WriteBatch> round;
            round.swap(pending);
            if (direct.Count() > 0) {
                round.push_back(std::move(direct));
                direct = rocksdb::WriteBatch();
            }
            const auto ticket = collecting++;
            std::vector<bool> workers;
            workers.swap(waiting_workers);
            std::vector<std::uint64_t> released;
            released.swap(candidates);
            std::vector<std::uint64_t> gone;
            gone.swap(dead);
            writing = true;
            lock.unlock();

            write_round(round);
            collect(released, gone);
            rounds.fetch_add(1, std::memory_order_relaxed);
            batches.fetch_add(round.size(), std::memory_order_relaxed);
            durable.store(ticket);
            if (listener) {
                for (std::uint32_t w = 0; w < workers.size(); ++w) {
                    if (workers[w]) {
                        listener(w);
                    }
                }
            }
            lock.lock();
            wake_watchers(lock);
            writing = false;
            drained.notify_all();
        }
        writing = false;
        drained.notify_all();
    }
};

namespace {

/// A message body the store knows by id: its destruction (the last holder let go) deletes
/// the record, unless a delivery on disk only still names it.
struct rocks_body final : broker::stored_body {
    /// `from_disk`: read back from the store (recovery, a page-in), where refs may name it.
    rocks_body(std::uint64_t body_id, std::shared_ptr<rocksdb_store::impl> s, bool from_disk)
        : stored_body(body_id), store(std::move(s)), on_disk(from_disk) {
        store->body_born(id);
    }
    ~rocks_body() override { store->body_died(id, on_disk.load(std::memory_order_relaxed)); }
    std::shared_ptr<rocksdb_store::impl> store;
    /// A session left this object's message on disk (it wrote a ref), or it was read from the
    /// disk. A session that removes its delivery through an object without it never wrote a
    /// ref for it: each session reaches a message it left on disk again only by a page-in.
    /// Set and read by any worker; the destructor reads it after the last holder let go.
    std::atomic<bool> on_disk;
};

rocks_body& body_of(const broker::message& m) {
    // Every stored_body this store's batches see was made by this store.
    return static_cast<rocks_body&>(*m.stored);
}

class rocks_batch final : public broker::store_batch {
public:
    rocks_batch(std::shared_ptr<rocksdb_store::impl> s, std::uint32_t worker)
        : store_(std::move(s)), worker_(worker) {}

    void session_saved(const broker::stored_session& s) override {
        (void)batch_.Put(store_->cf(sessions),
                         rocksdb::Slice(s.client_id.data(), s.client_id.size()),
                         encode_session(s, std::chrono::system_clock::now()));
        dirty_ = true;
    }
    void session_removed(std::string_view client_id, std::uint64_t key) override {
        (void)batch_.Delete(store_->cf(sessions),
                            rocksdb::Slice(client_id.data(), client_id.size()));
        const auto from = session_prefix(key);
        const auto to = end_of_prefix(key);
        drop_refs(key);
        for (auto c : {subscriptions, deliveries, inbound}) {
            (void)batch_.DeleteRange(store_->cf(c), from, to);
        }
        dirty_ = true;
    }
    void deliveries_cleared(std::uint64_t key) override {
        drop_refs(key);
        (void)batch_.DeleteRange(store_->cf(deliveries), session_prefix(key), end_of_prefix(key));
        dirty_ = true;
    }
    void subscription_added(std::uint64_t key, std::string_view filter,
                            const broker::subscription& sub) override {
        (void)batch_.Put(store_->cf(subscriptions), subscription_key(key, filter),
                         encode_subscription(sub));
        dirty_ = true;
    }
    void subscription_removed(std::uint64_t key, std::string_view filter) override {
        (void)batch_.Delete(store_->cf(subscriptions), subscription_key(key, filter));
        dirty_ = true;
    }
    void delivery_saved(std::uint64_t key, const broker::message& m,
                        const broker::stored_delivery& d) override {
        if (!m.stored) {
            return;
        }
        if (!m.stored->submitted.load(std::memory_order_acquire)) {
            // Written once per message, by the first batch that refers to it; another worker
            // racing us writes it too (the same bytes), so a reference never precedes its body.
            (void)batch_.Put(store_->cf(bodies), body_key(m.stored->id),
                             encode_message(m, wall_of(m.received_at)));
            written_bodies_.push_back(m.stored);
        }
        (void)batch_.Put(store_->cf(deliveries), delivery_key(key, m.stored->id),
                         encode_delivery(d));
        // Until this batch is submitted the body must not be collected: holding it keeps it
        // live even if the message leaves memory before then.
        held_.push_back(m.stored);
        dirty_ = true;
    }
    void delivery_removed(std::uint64_t key, const broker::message& m) override {
        if (!m.stored) {
            return;
        }
        (void)batch_.Delete(store_->cf(deliveries), delivery_key(key, m.stored->id));
        if (body_of(m).on_disk.load(std::memory_order_relaxed)) {
            (void)batch_.Delete(store_->cf(refs), ref_key(m.stored->id, key));
            released_.push_back(m.stored->id);
        }
        // The removal is written before the body can be deleted as dead (a crash between the
        // two would leave a delivery without its body).
        held_.push_back(m.stored);
        dirty_ = true;
    }
    void delivery_left_on_disk(std::uint64_t key, const broker::message& m) override {
        if (!m.stored) {
            return;
        }
        (void)batch_.Put(store_->cf(refs), ref_key(m.stored->id, key), rocksdb::Slice());
        body_of(m).on_disk.store(true, std::memory_order_relaxed);
        held_.push_back(m.stored); // the ref is written before the body can be a candidate
        dirty_ = true;
    }
    void inbound_qos2_added(std::uint64_t key, std::uint16_t packet_id) override {
        (void)batch_.Put(store_->cf(inbound), inbound_key(key, packet_id), rocksdb::Slice());
        dirty_ = true;
    }
    void inbound_qos2_removed(std::uint64_t key, std::uint16_t packet_id) override {
        (void)batch_.Delete(store_->cf(inbound), inbound_key(key, packet_id));
        dirty_ = true;
    }
    bool dirty() const noexcept override { return dirty_; }
    std::uint64_t submit() override {
        if (!dirty_) {
            return 0;
        }
        const auto ticket = store_->submit(std::move(batch_), worker_, released_);
        batch_ = rocksdb::WriteBatch();
        dirty_ = false;
        for (const auto& b : written_bodies_) {
            b->submitted.store(true, std::memory_order_release);
        }
        written_bodies_.clear();
        held_.clear(); // after submit(): a body released here becomes a candidate behind it
        return ticket;
    }

private:
    /// The refs of the session's deliveries on disk go with them (read from what is written;
    /// a record still in a batch not yet written leaves a ref, which only keeps a body until
    /// the next start collects it).
    void drop_refs(std::uint64_t key) {
        const auto from = session_prefix(key);
        std::unique_ptr<rocksdb::Iterator> it(
            store_->db->NewIterator(rocksdb::ReadOptions(), store_->cf(deliveries)));
        for (it->Seek(from); it->Valid() && it->key().starts_with(from); it->Next()) {
            if (const auto id = delivery_key_message(it->key().ToStringView())) {
                (void)batch_.Delete(store_->cf(refs), ref_key(*id, key));
                released_.push_back(*id);
            }
        }
    }

    std::shared_ptr<rocksdb_store::impl> store_;
    const std::uint32_t worker_;
    rocksdb::WriteBatch batch_;
    bool dirty_ = false;
    std::vector<std::shared_ptr<broker::stored_body>> written_bodies_;
    std::vector<std::shared_ptr<broker::stored_body>> held_;
    std::vector<std::uint64_t> released_;
};

} // namespace

rocksdb_store::rocksdb_store(std::shared_ptr<impl> i) : impl_(std::move(i)) {}

std::unique_ptr<rocksdb_store> rocksdb_store::open(const store_options& options,
                                                   std::string& error) {
    auto s = std::make_shared<impl>();
    s->options = options;
    std::error_code ec;
    std::filesystem::create_directories(options.path, ec);
    if (ec) {
        error = fmt::format("cannot create the session store directory {}: {}", options.path,
                            ec.message());
        return nullptr;
    }
    rocksdb::DBOptions db_options;
    db_options.create_if_missing = true;
    // An existing store is checked before it is opened for writing: a newer format is left
    // untouched, and a store missing column families (a damaged MANIFEST) is refused rather
    // than completed with empty ones, which would drop what they held.
    const bool exists = std::filesystem::exists(std::filesystem::path(options.path) / "CURRENT");
    if (exists && !check_existing(options.path, error)) {
        return nullptr;
    }
    db_options.create_missing_column_families = !exists;
    db_options.paranoid_checks = true;
    db_options.keep_log_file_num = 2;
    db_options.max_log_file_size = 1 << 20;
    db_options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
    db_options.max_background_jobs = 2;
    // One writer thread: memtable inserts are never concurrent, and only the serial path uses
    // insert hints (below).
    db_options.allow_concurrent_memtable_write = false;
    // The WAL is the store's durability; its files are recycled rather than recreated.
    db_options.recycle_log_file_num = 2;
    db_options.max_total_wal_size = 64 << 20;
    // The store's memory is bounded whatever the queues hold (docs/store.md): memtables of
    // every column family together, and one block cache for reads (page-ins, recovery).
    db_options.write_buffer_manager =
        std::make_shared<rocksdb::WriteBufferManager>(memtable_budget);
    rocksdb::BlockBasedTableOptions table;
    table.block_cache = rocksdb::NewLRUCache(block_cache_budget);
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (std::size_t i = 0; i < cf_count; ++i) {
        rocksdb::ColumnFamilyOptions o;
        o.write_buffer_size = 8 << 20;
        o.max_write_buffer_number = 2;
        o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
        // Inserts near the previous one with the same prefix start from where that one went
        // instead of searching the memtable from the top: bodies arrive in id order, and each
        // session's deliveries in id order. Measured: the skip-list search was the writer's
        // largest cost (bench/durable.sh; docs/performance.md).
        if (i == bodies) {
            o.memtable_insert_with_hint_prefix_extractor.reset(
                rocksdb::NewFixedPrefixTransform(5)); // ids within 2^24 of each other
        } else if (i == deliveries) {
            o.memtable_insert_with_hint_prefix_extractor = std::make_shared<delivery_session>();
        }
        descriptors.emplace_back(i == meta ? rocksdb::kDefaultColumnFamilyName : cf_names[i], o);
    }
    rocksdb::DB* raw = nullptr;
    const auto st = rocksdb::DB::Open(db_options, options.path, descriptors, &s->cfs, &raw);
    if (!st.ok()) {
        error = fmt::format("cannot open the session store {}: {}", options.path, st.ToString());
        return nullptr;
    }
    s->db.reset(raw);
    std::string format;
    const auto got = s->db->Get(rocksdb::ReadOptions(), s->cf(meta), "format", &format);
    bool write_format = got.IsNotFound(); // a new store
    if (!got.ok() && !write_format) {
        error = fmt::format("cannot read the session store {}: {}", options.path, got.ToString());
        return nullptr;
    }
    if (got.ok()) {
        const auto v = decode_u64(format);
        if (!v) {
            error = fmt::format("{} is not a Tern session store (its format record is corrupt)",
                                options.path);
            return nullptr;
        }
        if (*v > store_format) { // check_existing() refused it already; never write to one
            error = fmt::format("the session store {} was written by a newer Tern (format {}; "
                                "this one reads up to {}): refusing to touch it",
                                options.path, *v, store_format);
            return nullptr;
        }
        if (*v < store_format) {
            // Format 1 has a ref for every delivery, a superset of what format 2 needs; from
            // now on an older Tern must not open it (it would collect bodies still needed).
            write_format = true;
            log(log_level::info, "session store {}: upgraded from format {} to {}", options.path,
                *v, store_format);
        }
    }
    if (write_format) {
        rocksdb::WriteOptions wo;
        wo.sync = true;
        const auto put = s->db->Put(wo, s->cf(meta), "format", encode_u64(store_format));
        if (!put.ok()) {
            error = fmt::format("cannot write to the session store {}: {}", options.path,
                                put.ToString());
            return nullptr;
        }
    }
    s->writer = std::thread([raw_impl = s.get()] { raw_impl->run(); });
    return std::unique_ptr<rocksdb_store>(new rocksdb_store(std::move(s)));
}

rocksdb_store::~rocksdb_store() {
    {
        std::lock_guard lock(impl_->mutex);
        impl_->stopping = true;
        impl_->wake.notify_all();
    }
    if (impl_->writer.joinable()) {
        impl_->writer.join();
    }
    impl_->sealed.store(true);
    if (impl_->options.sync != sync_policy::every_batch) {
        (void)impl_->db->SyncWAL();
    }
}

std::unique_ptr<broker::store_batch> rocksdb_store::make_batch(std::uint32_t worker) {
    return std::make_unique<rocks_batch>(impl_, worker);
}

void rocksdb_store::name_message(broker::message& m) {
    m.stored = std::make_shared<rocks_body>(impl_->next_body.fetch_add(1), impl_, false);
}

void rocksdb_store::retained_set(const broker::message& msg) {
    if (msg.publish.topic.starts_with("$SYS/")) {
        return; // the broker's own figures, published afresh after a restart
    }
    auto value = encode_message(msg, wall_of(msg.received_at));
    impl_->add_direct(
        [&](rocksdb::WriteBatch& b) {
            (void)b.Put(impl_->cf(retained),
                        rocksdb::Slice(msg.publish.topic.data(), msg.publish.topic.size()), value);
        },
        true);
}

void rocksdb_store::retained_cleared(std::string_view topic) {
    impl_->add_direct(
        [&](rocksdb::WriteBatch& b) {
            (void)b.Delete(impl_->cf(retained), rocksdb::Slice(topic.data(), topic.size()));
        },
        true);
}

std::uint64_t rocksdb_store::durable_ticket() const noexcept {
    return impl_->durable.load();
}

std::uint64_t rocksdb_store::current_ticket() const noexcept {
    return impl_->given.load();
}

void rocksdb_store::on_durable(std::function<void(std::uint32_t)> listener) {
    impl_->listener = std::move(listener);
}

bool rocksdb_store::wake_when_durable(std::uint32_t worker, std::uint64_t ticket) {
    std::lock_guard lock(impl_->mutex);
    // Checked under the lock the writer takes to wake watchers after it advances durable, so
    // a ticket that becomes durable now is either seen here or wakes this watcher.
    if (impl_->durable.load() >= ticket || impl_->sealed.load()) {
        return false;
    }
    // Once per (worker, ticket): many frames and sessions of a worker wait for the same one.
    const std::pair w{worker, ticket};
    if (std::find(impl_->watchers.begin(), impl_->watchers.end(), w) == impl_->watchers.end()) {
        impl_->watchers.push_back(w);
    }
    return true;
}

broker::delivery_page rocksdb_store::page_in(std::uint64_t key, std::uint64_t from,
                                             std::uint64_t until, std::size_t limit,
                                             std::chrono::steady_clock::time_point now) {
    auto& s = *impl_;
    broker::delivery_page page;
    page.next_from = from;
    const auto prefix = session_prefix(key);
    const auto wall_now = std::chrono::system_clock::now();
    // Bounded to the range (and the session): the scan never walks over the tombstones of
    // the records after it.
    const auto bound_key = until == UINT64_MAX ? end_of_prefix(key) : delivery_key(key, until);
    const rocksdb::Slice bound(bound_key);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &bound;
    std::unique_ptr<rocksdb::Iterator> it(s.db->NewIterator(ro, s.cf(deliveries)));
    std::vector<std::pair<std::string, std::string>> broken; // delivery key, ref key
    for (it->Seek(delivery_key(key, from)); it->Valid() && it->key().starts_with(prefix);
         it->Next()) {
        if (page.items.size() == limit) {
            page.end = false;
            break;
        }
        const auto id = delivery_key_message(it->key().ToStringView());
        const auto d = decode_delivery(it->value().ToStringView());
        if (!id) {
            continue;
        }
        page.next_from = *id + 1;
        if (d && d->packet_id != 0) {
            continue; // in flight: the session has it in memory
        }
        std::string body;
        std::optional<broker::message_ptr> m;
        if (d && s.db->Get(rocksdb::ReadOptions(), s.cf(bodies), body_key(*id), &body).ok()) {
            m = decode_message(body, wall_now, now);
        }
        if (!m) {
            log(log_level::warn,
                "session store {}: a queued message of session {} is unreadable; skipped",
                s.options.path, key);
            broken.emplace_back(it->key().ToString(), ref_key(*id, key));
            continue;
        }
        auto msg = std::const_pointer_cast<broker::message>(*m);
        auto stored = std::make_shared<rocks_body>(*id, impl_, true);
        stored->submitted.store(true);
        msg->stored = std::move(stored);
        page.items.push_back({std::move(msg), std::move(*d)});
    }
    if (!it->status().ok()) {
        log(log_level::error, "session store {}: cannot read a queue: {}", s.options.path,
            it->status().ToString());
        page.end = false; // tried again on the next page-in
    }
    if (!broken.empty()) {
        s.add_direct(
            [&](rocksdb::WriteBatch& b) {
                for (const auto& [delivery, ref] : broken) {
                    (void)b.Delete(s.cf(deliveries), delivery);
                    (void)b.Delete(s.cf(refs), ref);
                }
            },
            true);
    }
    return page;
}

bool rocksdb_store::failing() const noexcept {
    return impl_->failing.load();
}

void rocksdb_store::alive() {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
    impl_->add_direct(
        [&](rocksdb::WriteBatch& b) {
            (void)b.Put(impl_->cf(meta), "alive", encode_u64(static_cast<std::uint64_t>(ms)));
        },
        true);
}

void rocksdb_store::seal() {
    std::unique_lock lock(impl_->mutex);
    impl_->wake.notify_all();
    // Everything submitted so far is written (bounded: a failing disk gives up at stop).
    impl_->drained.wait_for(lock, std::chrono::seconds(10), [&] {
        return impl_->pending.empty() && impl_->direct.Count() == 0 && !impl_->writing;
    });
    impl_->sealed.store(true);
}

rocksdb_store::counters rocksdb_store::stats() const {
    return {impl_->rounds.load(), impl_->syncs.load(), impl_->batches.load(),
            impl_->failures.load(), impl_->bodies_collected.load()};
}

broker::recovered_state rocksdb_store::recover(std::chrono::steady_clock::time_point now) {
    auto& s = *impl_;
    const auto wall_now = std::chrono::system_clock::now();
    broker::recovered_state out;
    rocksdb::WriteBatch cleanup;
    std::size_t corrupt = 0;
    std::uint64_t max_key = 0;

    std::chrono::system_clock::time_point alive{};
    {
        std::string v;
        if (s.db->Get(rocksdb::ReadOptions(), s.cf(meta), "alive", &v).ok()) {
            if (const auto ms = decode_u64(v)) {
                alive = std::chrono::system_clock::time_point(
                    std::chrono::duration_cast<std::chrono::system_clock::duration>(
                        std::chrono::milliseconds(*ms)));
            }
        }
    }
    const auto since = [&](std::chrono::system_clock::time_point t) {
        if (t.time_since_epoch().count() == 0 || t > wall_now) {
            return std::chrono::seconds(0);
        }
        return std::chrono::duration_cast<std::chrono::seconds>(wall_now - t);
    };

    std::unordered_map<std::uint64_t, std::size_t> by_key;
    {
        std::unique_ptr<rocksdb::Iterator> it(
            s.db->NewIterator(rocksdb::ReadOptions(), s.cf(sessions)));
        for (it->SeekToFirst(); it->Valid(); it->Next()) {
            const auto rec = decode_session(it->value().ToStringView());
            if (!rec || rec->key == 0 || by_key.contains(rec->key)) {
                ++corrupt;
                (void)cleanup.Delete(s.cf(sessions), it->key());
                continue;
            }
            broker::recovered_session rs;
            rs.client_id = it->key().ToString();
            rs.key = rec->key;
            rs.expiry_interval = rec->expiry_interval;
            rs.version = rec->version;
            rs.will_delay = rec->will_delay;
            // Connected when the broker stopped: offline since it was last known alive.
            rs.offline_for = rec->offline_since.time_since_epoch().count() == 0
                                 ? since(alive)
                                 : since(rec->offline_since);
            if (!rec->will.empty()) {
                if (auto w = decode_message(rec->will, wall_now, now)) {
                    rs.will = std::move(*w);
                } else {
                    ++corrupt;
                }
            }
            max_key = std::max(max_key, rec->key);
            by_key.emplace(rec->key, out.sessions.size());
            out.sessions.push_back(std::move(rs));
        }
        if (!it->status().ok()) {
            throw std::runtime_error(fmt::format("cannot read the session store {}: {}",
                                                 s.options.path, it->status().ToString()));
        }
    }
    const auto owner = [&](const rocksdb::Slice& key, std::size_t c) -> broker::recovered_session* {
        const auto k = key_session(key.ToStringView());
        const auto found = k ? by_key.find(*k) : by_key.end();
        if (found == by_key.end()) {
            (void)cleanup.Delete(s.cf(c), key); // left from a session that ended
            return nullptr;
        }
        return &out.sessions[found->second];
    };
    const auto scan = [&](std::size_t c, const auto& each) {
        std::unique_ptr<rocksdb::Iterator> it(s.db->NewIterator(rocksdb::ReadOptions(), s.cf(c)));
        for (it->SeekToFirst(); it->Valid(); it->Next()) {
            each(it->key(), it->value());
        }
        if (!it->status().ok()) {
            throw std::runtime_error(fmt::format("cannot read the session store {}: {}",
                                                 s.options.path, it->status().ToString()));
        }
    };
    scan(subscriptions, [&](const rocksdb::Slice& k, const rocksdb::Slice& v) {
        auto* rs = owner(k, subscriptions);
        if (rs == nullptr) {
            return;
        }
        const auto filter = subscription_key_filter(k.ToStringView());
        const auto sub = decode_subscription(v.ToStringView());
        if (!sub || filter.empty()) {
            ++corrupt;
            (void)cleanup.Delete(s.cf(subscriptions), k);
            return;
        }
        rs->subscriptions.emplace_back(std::string(filter), *sub);
    });
    scan(inbound, [&](const rocksdb::Slice& k, const rocksdb::Slice&) {
        auto* rs = owner(k, inbound);
        if (rs == nullptr) {
            return;
        }
        if (const auto id = inbound_key_packet(k.ToStringView()); id && *id != 0) {
            rs->inbound_qos2.push_back(*id);
        } else {
            ++corrupt;
            (void)cleanup.Delete(s.cf(inbound), k);
        }
    });
    // Deliveries: what is in flight (it has a packet id) is rebuilt in memory; what is
    // queued stays on disk, counted per session, and is paged in when the client is back, so
    // a start with a million queued messages does not read a million bodies.
    struct in_flight_delivery {
        broker::recovered_session* session;
        std::uint64_t message;
        broker::stored_delivery d;
        std::string key;
    };
    std::vector<in_flight_delivery> in_flight;
    std::size_t queued = 0;
    // (message id, session key) of every delivery kept, sorted below: which bodies stay, and
    // which refs are missing (a delivery recorded while its message was in memory has none)
    // or left over. 16 bytes per delivery, for the length of the recovery.
    std::vector<std::pair<std::uint64_t, std::uint64_t>> kept;
    scan(deliveries, [&](const rocksdb::Slice& k, const rocksdb::Slice& v) {
        const auto session_key = key_session(k.ToStringView());
        const auto id = delivery_key_message(k.ToStringView());
        const auto found = session_key ? by_key.find(*session_key) : by_key.end();
        const auto d = decode_delivery(v.ToStringView());
        if (found == by_key.end() || !id || !d) {
            if (found != by_key.end()) {
                ++corrupt;
            }
            (void)cleanup.Delete(s.cf(deliveries), k);
            if (session_key && id) {
                (void)cleanup.Delete(s.cf(refs), ref_key(*id, *session_key));
            }
            return;
        }
        auto& rs = out.sessions[found->second];
        kept.emplace_back(*id, *session_key);
        if (d->packet_id != 0) {
            in_flight.push_back({&rs, *id, *d, k.ToString()});
            return;
        }
        rs.on_disk_from = rs.on_disk == 0 ? *id : std::min(rs.on_disk_from, *id);
        ++rs.on_disk;
        ++queued;
    });
    // Refs: one per kept delivery, none other. After this every delivery is on disk only (or
    // read back, see rocks_body), so each needs its ref; both sides are in (message id,
    // session key) order: one pass over the refs.
    std::sort(kept.begin(), kept.end());
    {
        std::size_t next = 0;
        const auto add_missing = [&](const auto& below) {
            for (; next < kept.size() && below(kept[next]); ++next) {
                (void)cleanup.Put(s.cf(refs), ref_key(kept[next].first, kept[next].second),
                                  rocksdb::Slice());
            }
        };
        scan(refs, [&](const rocksdb::Slice& k, const rocksdb::Slice&) {
            const auto m = ref_key_message(k.ToStringView());
            const auto owner_key = ref_key_session(k.ToStringView());
            if (!m || !owner_key) {
                (void)cleanup.Delete(s.cf(refs), k);
                return;
            }
            const std::pair ref{*m, *owner_key};
            add_missing([&](const auto& d) { return d < ref; });
            if (next < kept.size() && kept[next] == ref) {
                ++next;
            } else {
                (void)cleanup.Delete(s.cf(refs), k); // its delivery or its session has ended
            }
        });
        add_missing([](const auto&) { return true; });
    }
    // Bodies: kept while a kept delivery names them.
    std::uint64_t max_body = 0;
    {
        std::size_t next = 0;
        scan(bodies, [&](const rocksdb::Slice& k, const rocksdb::Slice&) {
            const auto id = body_key_message(k.ToStringView());
            if (id) {
                max_body = std::max(max_body, *id);
                while (next < kept.size() && kept[next].first < *id) {
                    ++next; // a delivery whose body is gone: its page-in skips it
                }
            }
            if (!id || next == kept.size() || kept[next].first != *id) {
                (void)cleanup.Delete(s.cf(bodies), k); // every session is done with it
            }
        });
    }
    kept.clear();
    kept.shrink_to_fit();
    s.next_body.store(max_body + 1);
    std::unordered_map<std::uint64_t, broker::message_ptr> messages;
    for (auto& r : in_flight) {
        auto m = messages.find(r.message);
        if (m == messages.end()) {
            std::string body;
            std::optional<broker::message_ptr> decoded;
            if (s.db->Get(rocksdb::ReadOptions(), s.cf(bodies), body_key(r.message), &body).ok()) {
                decoded = decode_message(body, wall_now, now);
            }
            if (!decoded) {
                ++corrupt;
                (void)cleanup.Delete(s.cf(deliveries), r.key);
                (void)cleanup.Delete(s.cf(refs), ref_key(r.message, r.session->key));
                continue;
            }
            auto msg = std::const_pointer_cast<broker::message>(*decoded);
            auto body_ref = std::make_shared<rocks_body>(r.message, impl_, true);
            body_ref->submitted.store(true);
            msg->stored = std::move(body_ref);
            m = messages.emplace(r.message, std::move(msg)).first;
        }
        r.session->messages.emplace_back(m->second, std::move(r.d));
        ++queued;
    }
    messages.clear();
    scan(retained, [&](const rocksdb::Slice& k, const rocksdb::Slice& v) {
        auto m = decode_message(v.ToStringView(), wall_now, now);
        if (!m || (*m)->publish.topic != k.ToStringView()) {
            ++corrupt;
            (void)cleanup.Delete(s.cf(retained), k);
            return;
        }
        const auto& expiry = (*m)->publish.props.message_expiry_interval;
        if (expiry && now - (*m)->received_at >= std::chrono::seconds(*expiry)) {
            (void)cleanup.Delete(s.cf(retained), k); // expired while the broker was down
            return;
        }
        if ((*m)->publish.qos != protocol::qos::at_most_once) {
            name_message(*std::const_pointer_cast<broker::message>(*m));
        }
        out.retained.push_back(std::move(*m));
    });
    out.next_key = max_key + 1;
    if (cleanup.Count() > 0) {
        rocksdb::WriteOptions wo;
        wo.sync = true;
        const auto st = s.db->Write(wo, &cleanup);
        if (!st.ok()) {
            throw std::runtime_error(fmt::format("cannot write to the session store {}: {}",
                                                 s.options.path, st.ToString()));
        }
    }
    if (corrupt > 0) {
        log(log_level::warn,
            "session store {}: {} corrupt records skipped and removed (the rest is intact)",
            s.options.path, corrupt);
    }
    log(log_level::info,
        "session store {}: recovered {} sessions, {} queued or in-flight messages, {} retained "
        "messages",
        s.options.path, out.sessions.size(), queued, out.retained.size());
    return out;
}

} // namespace tern::store
