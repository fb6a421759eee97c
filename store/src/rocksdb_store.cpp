#include <tern/store/rocksdb_store.hpp>

#include <tern/store/records.hpp>

#include <tern/core/log.hpp>

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

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
    cf_count
};
constexpr const char* cf_names[cf_count] = {"default", "sessions", "subscriptions", "deliveries",
                                            "inbound", "bodies",   "retained"};

std::chrono::system_clock::time_point wall_of(std::chrono::steady_clock::time_point t) {
    // Messages carry the steady time they arrived; the store keeps the wall time, which still
    // means something after a restart.
    const auto age = std::chrono::steady_clock::now() - t;
    return std::chrono::system_clock::now() -
           std::chrono::duration_cast<std::chrono::system_clock::duration>(
               std::max(age, std::chrono::steady_clock::duration::zero()));
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
    std::atomic<std::uint64_t> current{1};
    std::atomic<bool> failing{false};
    std::atomic<bool> sealed{false};
    std::atomic<std::uint64_t> next_body{1};
    std::atomic<std::uint64_t> rounds{0}, syncs{0}, batches{0}, failures{0};
    std::thread writer;

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

    std::uint64_t submit(rocksdb::WriteBatch&& b, std::uint32_t worker) {
        std::lock_guard lock(mutex);
        if (sealed.load()) {
            return durable.load();
        }
        pending.push_back(std::move(b));
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
        if (notify) {
            wake.notify_one();
        }
    }

    void release_body(std::uint64_t id) {
        add_direct([&](rocksdb::WriteBatch& b) { (void)b.Delete(cf(bodies), body_key(id)); },
                   false);
    }

    /// Writes `batches` in order (the last one synced when the policy says so); retries a
    /// failure until it succeeds or the store stops.
    void write_round(std::vector<rocksdb::WriteBatch>& round) {
        static auto last_sync = std::chrono::steady_clock::now();
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
            wake.wait(lock, [&] { return stopping || !pending.empty() || direct.Count() > 0; });
            if (pending.empty() && direct.Count() == 0) {
                break; // stopping, and nothing left to write
            }
            std::vector<rocksdb::WriteBatch> round;
            round.swap(pending);
            if (direct.Count() > 0) {
                round.push_back(std::move(direct));
                direct = rocksdb::WriteBatch();
            }
            const auto ticket = collecting++;
            current.store(collecting);
            std::vector<bool> workers;
            workers.swap(waiting_workers);
            writing = true;
            lock.unlock();

            write_round(round);
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
            writing = false;
            drained.notify_all();
        }
        writing = false;
        drained.notify_all();
    }
};

namespace {

/// A message body the store knows by id: its destruction (the last holder let go) deletes
/// the record.
struct rocks_body final : broker::stored_body {
    rocks_body(std::uint64_t body_id, std::shared_ptr<rocksdb_store::impl> s)
        : stored_body(body_id), store(std::move(s)) {}
    ~rocks_body() override { store->release_body(id); }
    std::shared_ptr<rocksdb_store::impl> store;
};

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
        for (auto c : {subscriptions, deliveries, inbound}) {
            (void)batch_.DeleteRange(store_->cf(c), from, to);
        }
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
        dirty_ = true;
    }
    void delivery_removed(std::uint64_t key, const broker::message& m) override {
        if (!m.stored) {
            return;
        }
        (void)batch_.Delete(store_->cf(deliveries), delivery_key(key, m.stored->id));
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
        const auto ticket = store_->submit(std::move(batch_), worker_);
        batch_ = rocksdb::WriteBatch();
        dirty_ = false;
        for (const auto& b : written_bodies_) {
            b->submitted.store(true, std::memory_order_release);
        }
        written_bodies_.clear();
        return ticket;
    }

private:
    std::shared_ptr<rocksdb_store::impl> store_;
    const std::uint32_t worker_;
    rocksdb::WriteBatch batch_;
    bool dirty_ = false;
    std::vector<std::shared_ptr<broker::stored_body>> written_bodies_;
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
    db_options.create_missing_column_families = true;
    db_options.paranoid_checks = true;
    db_options.keep_log_file_num = 2;
    db_options.max_log_file_size = 1 << 20;
    db_options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
    db_options.max_background_jobs = 2;
    // The WAL is the store's durability; its files are recycled rather than recreated.
    db_options.recycle_log_file_num = 2;
    db_options.max_total_wal_size = 64 << 20;
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (std::size_t i = 0; i < cf_count; ++i) {
        rocksdb::ColumnFamilyOptions o;
        o.write_buffer_size = 8 << 20;
        o.max_write_buffer_number = 2;
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
    if (got.IsNotFound()) {
        rocksdb::WriteOptions wo;
        wo.sync = true;
        const auto put = s->db->Put(wo, s->cf(meta), "format", encode_u64(store_format));
        if (!put.ok()) {
            error = fmt::format("cannot write to the session store {}: {}", options.path,
                                put.ToString());
            return nullptr;
        }
    } else if (!got.ok()) {
        error = fmt::format("cannot read the session store {}: {}", options.path, got.ToString());
        return nullptr;
    } else {
        const auto v = decode_u64(format);
        if (!v) {
            error = fmt::format("{} is not a Tern session store (its format record is corrupt)",
                                options.path);
            return nullptr;
        }
        if (*v > store_format) {
            error = fmt::format("the session store {} was written by a newer Tern (format {}; "
                                "this one reads up to {}): refusing to touch it",
                                options.path, *v, store_format);
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
    m.stored = std::make_shared<rocks_body>(impl_->next_body.fetch_add(1), impl_);
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
    return impl_->current.load();
}

void rocksdb_store::on_durable(std::function<void(std::uint32_t)> listener) {
    impl_->listener = std::move(listener);
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
            impl_->failures.load()};
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
    struct pending_delivery {
        broker::recovered_session* session;
        std::uint64_t message;
        broker::stored_delivery d;
        std::string key;
    };
    std::vector<pending_delivery> refs;
    std::set<std::uint64_t> referenced;
    scan(deliveries, [&](const rocksdb::Slice& k, const rocksdb::Slice& v) {
        auto* rs = owner(k, deliveries);
        if (rs == nullptr) {
            return;
        }
        const auto id = delivery_key_message(k.ToStringView());
        const auto d = decode_delivery(v.ToStringView());
        if (!id || !d) {
            ++corrupt;
            (void)cleanup.Delete(s.cf(deliveries), k);
            return;
        }
        referenced.insert(*id);
        refs.push_back({rs, *id, *d, k.ToString()});
    });
    std::unordered_map<std::uint64_t, broker::message_ptr> messages;
    std::uint64_t max_body = 0;
    scan(bodies, [&](const rocksdb::Slice& k, const rocksdb::Slice& v) {
        const auto id = body_key_message(k.ToStringView());
        if (id) {
            max_body = std::max(max_body, *id);
        }
        if (!id || !referenced.contains(*id)) {
            (void)cleanup.Delete(s.cf(bodies), k); // every session is done with it
            return;
        }
        auto m = decode_message(v.ToStringView(), wall_now, now);
        if (!m) {
            ++corrupt;
            (void)cleanup.Delete(s.cf(bodies), k);
            return;
        }
        auto msg = std::const_pointer_cast<broker::message>(*m);
        auto body = std::make_shared<rocks_body>(*id, impl_);
        body->submitted.store(true);
        msg->stored = std::move(body);
        messages.emplace(*id, std::move(msg));
    });
    s.next_body.store(max_body + 1);
    std::size_t queued = 0;
    for (auto& r : refs) {
        const auto m = messages.find(r.message);
        if (m == messages.end()) {
            (void)cleanup.Delete(s.cf(deliveries), r.key); // its body was released already
            continue;
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
