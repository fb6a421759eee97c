// The subscription index: 65 topic tries (shards by the first two levels of a filter), each
// behind a big-reader lock, and shared-subscription groups with pluggable pick strategies.
// Design, concurrency argument and measurements: docs/topic-index.md.

#include "index/topic_index.hpp"

#include <tern/protocol/topic.hpp>

#include <boost/container/small_vector.hpp>
#include <boost/unordered/unordered_flat_map.hpp>

#include <pthread.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <utility>

// Clang thread-safety annotations; no-ops for g++ (STYLE.md §4).
#if defined(__clang__)
#define TERN_TSA(x) __attribute__((x))
#else
#define TERN_TSA(x)
#endif

namespace tern::broker {

namespace {

[[noreturn]] void lock_failure(const char* what, int rc) noexcept {
    // A failing rwlock call means a corrupted lock or a bug (EDEADLK, EAGAIN past 2^30
    // readers): unsafe to continue (STYLE.md §7).
    std::fprintf(stderr, "tern: topic_index: %s failed: %d\n", what, rc);
    std::abort();
}

/// A reader/writer lock that prefers writers, for the members of a shared group (a big-reader
/// lock costs a kilobyte; there may be many groups). Picks read-lock it from every worker;
/// glibc's default (reader-preferring) rwlock would let a steady stream of overlapping picks
/// starve a SUBSCRIBE. Not recursive.
class TERN_TSA(capability("mutex")) rw_lock {
public:
    rw_lock() noexcept {
        pthread_rwlockattr_t attr;
        pthread_rwlockattr_init(&attr);
#if defined(__GLIBC__)
        pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
        if (int rc = pthread_rwlock_init(&lock_, &attr); rc != 0) {
            lock_failure("pthread_rwlock_init", rc);
        }
        pthread_rwlockattr_destroy(&attr);
    }
    ~rw_lock() {
        pthread_rwlock_destroy(&lock_);
    }
    rw_lock(const rw_lock&) = delete;
    rw_lock& operator=(const rw_lock&) = delete;

    void lock() TERN_TSA(acquire_capability()) {
        if (int rc = pthread_rwlock_wrlock(&lock_); rc != 0) {
            lock_failure("pthread_rwlock_wrlock", rc);
        }
    }
    void unlock() TERN_TSA(release_capability()) {
        pthread_rwlock_unlock(&lock_);
    }
    void lock_shared() TERN_TSA(acquire_shared_capability()) {
        if (int rc = pthread_rwlock_rdlock(&lock_); rc != 0) {
            lock_failure("pthread_rwlock_rdlock", rc);
        }
    }
    void unlock_shared() TERN_TSA(release_shared_capability()) {
        pthread_rwlock_unlock(&lock_);
    }

private:
    pthread_rwlock_t lock_;
};

/// A "big reader" lock for the shards: a reader increments a counter on a cache line of its
/// own (one of `slots` per lock, chosen per thread) and reads a flag no reader writes, so
/// concurrent publishes on different workers never write a shared cache line. A writer (a
/// SUBSCRIBE or UNSUBSCRIBE, rare next to publishes) raises the flag, which turns new readers
/// away, then waits until every slot is zero. Writers prefer themselves: a reader that finds
/// the flag raised backs off and sleeps on it.
///
/// Correctness is Dekker's: a reader's increment-then-load and a writer's store-then-scan are
/// sequentially consistent, so either the reader sees the flag or the writer sees the reader.
/// The reader's decrement (release) and the writer's scan (acquire), and the writer's lowering
/// of the flag (release) and the reader's check (acquire), order the data accesses.
class TERN_TSA(capability("mutex")) br_lock {
public:
    void lock_shared() noexcept TERN_TSA(acquire_shared_capability()) {
        std::atomic<std::uint32_t>& readers = slots_[my_slot()].readers;
        for (;;) {
            readers.fetch_add(1, std::memory_order_seq_cst);
            if (writer_.load(std::memory_order_seq_cst) == 0) {
                return;
            }
            readers.fetch_sub(1, std::memory_order_release);
            writer_.wait(1, std::memory_order_acquire);
        }
    }
    void unlock_shared() noexcept TERN_TSA(release_shared_capability()) {
        slots_[my_slot()].readers.fetch_sub(1, std::memory_order_release);
    }
    void lock() TERN_TSA(acquire_capability()) {
        writers_.lock(); // one writer at a time
        writer_.store(1, std::memory_order_seq_cst);
        for (const slot& s : slots_) {
            // Readers hold the lock for one trie walk (microseconds): yielding beats sleeping.
            while (s.readers.load(std::memory_order_seq_cst) != 0) {
                std::this_thread::yield();
            }
        }
    }
    void unlock() noexcept TERN_TSA(release_capability()) {
        writer_.store(0, std::memory_order_seq_cst);
        writer_.notify_all();
        writers_.unlock();
    }

private:
    static constexpr std::size_t slots = 16;
    struct alignas(64) slot {
        std::atomic<std::uint32_t> readers{0};
    };
    /// Threads spread over the slots in order of first use; several may share one (it is a
    /// counter, so that is only slower, never wrong).
    static std::size_t my_slot() noexcept {
        static std::atomic<std::size_t> next{0};
        thread_local const std::size_t mine = next.fetch_add(1, std::memory_order_relaxed) % slots;
        return mine;
    }

    std::array<slot, slots> slots_;
    alignas(64) std::atomic<std::uint32_t> writer_{0};
    std::mutex writers_;
};

/// A value reachable only through a lock handle (STYLE.md §4): read() gives shared const
/// access, write() exclusive access, each for the handle's lifetime.
template <class T, class Lock = rw_lock> class rw_guarded {
public:
    class reader {
    public:
        explicit reader(const rw_guarded& g) : lock_(g.lock_), value_(g.value_) {}
        const T& operator*() const noexcept { return value_; }
        const T* operator->() const noexcept { return &value_; }

    private:
        std::shared_lock<Lock> lock_;
        const T& value_;
    };
    class writer {
    public:
        explicit writer(rw_guarded& g) : lock_(g.lock_), value_(g.value_) {}
        T& operator*() const noexcept { return value_; }
        T* operator->() const noexcept { return &value_; }

    private:
        std::unique_lock<Lock> lock_;
        T& value_;
    };

    template <class... Args>
    explicit rw_guarded(Args&&... args) : value_(std::forward<Args>(args)...) {}

    reader read() const { return reader(*this); }
    writer write() { return writer(*this); }

private:
    mutable Lock lock_;
    T value_ TERN_TSA(guarded_by(lock_));
};

struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
        return std::hash<std::string_view>{}(s);
    }
};

// ---------------------------------------------------------------------------------------------
// Subscriber sets

/// One subscriber's subscription to one filter. The key is copied out of the handle so the
/// dedup and No Local checks of match() do not touch the handle's cache line.
struct sub_entry {
    std::uint64_t key = 0;
    subscriber_ptr who;
    subscription sub;
};

/// The subscriptions of one filter (or the members of one shared group), keyed by subscriber.
/// A dense vector, so match() iterates contiguous memory; a key → position index only once
/// the set is large, so a filter with one subscriber (the common case) costs one small vector.
/// Removal swaps the last entry into the hole: add, replace and remove are O(1) amortized.
class subscriber_set {
public:
    struct upsert_result {
        std::size_t pos;
        bool inserted;
        std::uint32_t old_weight;      ///< of the replaced entry (inserted == false)
        bool old_skips_parent = false; ///< ditto
    };

    upsert_result upsert(const subscriber_ptr& who, const subscription& sub) {
        if (auto pos = find(who->key)) {
            sub_entry& e = entries_[*pos];
            const std::uint32_t old = e.sub.weight;
            const bool old_skips = e.sub.hash_skips_parent;
            e.who = who;
            e.sub = sub;
            return {*pos, false, old, old_skips};
        }
        entries_.push_back(sub_entry{who->key, who, sub});
        const std::size_t pos = entries_.size() - 1;
        if (index_) {
            index_->emplace(who->key, static_cast<std::uint32_t>(pos));
        } else if (entries_.size() > index_threshold) {
            build_index();
        }
        return {pos, true, 0, false};
    }

    struct erase_result {
        std::size_t pos;      ///< where the removed entry was
        std::uint32_t weight; ///< its weight
        bool skips_parent;    ///< it was subscribed under `profile aws-iot`
    };
    /// Removes `key`; the former last entry (if any) now lives at `pos`.
    std::optional<erase_result> erase(std::uint64_t key) {
        const auto pos = find(key);
        if (!pos) {
            return std::nullopt;
        }
        const erase_result r{*pos, entries_[*pos].sub.weight, entries_[*pos].sub.hash_skips_parent};
        const std::size_t last = entries_.size() - 1;
        if (index_) {
            index_->erase(key);
        }
        if (*pos != last) {
            entries_[*pos] = std::move(entries_[last]);
            if (index_) {
                (*index_)[entries_[*pos].key] = static_cast<std::uint32_t>(*pos);
            }
        }
        entries_.pop_back();
        if (index_ && entries_.size() <= index_threshold / 2) {
            index_.reset(); // hysteresis: no rebuild/drop churn at the threshold
        }
        if (entries_.empty()) {
            std::vector<sub_entry>().swap(entries_); // give the memory back
        }
        return r;
    }

    const std::vector<sub_entry>& entries() const noexcept { return entries_; }
    bool empty() const noexcept { return entries_.empty(); }
    std::size_t size() const noexcept { return entries_.size(); }

private:
    static constexpr std::size_t index_threshold = 8;

    std::optional<std::size_t> find(std::uint64_t key) const {
        if (index_) {
            auto it = index_->find(key);
            return it == index_->end() ? std::nullopt : std::optional<std::size_t>(it->second);
        }
        for (std::size_t i = 0; i < entries_.size(); ++i) {
            if (entries_[i].key == key) {
                return i;
            }
        }
        return std::nullopt;
    }

    void build_index() {
        index_ = std::make_unique<boost::unordered_flat_map<std::uint64_t, std::uint32_t>>();
        index_->reserve(entries_.size() * 2);
        for (std::size_t i = 0; i < entries_.size(); ++i) {
            index_->emplace(entries_[i].key, static_cast<std::uint32_t>(i));
        }
    }

    std::vector<sub_entry> entries_;
    std::unique_ptr<boost::unordered_flat_map<std::uint64_t, std::uint32_t>> index_;
};

/// Prefix sums of member weights (a Fenwick tree), so a weighted pick maps a slot in
/// [0, total) to its member in O(log n) and a membership change costs O(log n), not O(n).
class weight_tree {
public:
    std::uint64_t total() const noexcept { return total_; }

    void push_back(std::uint32_t w) {
        // tree_[i] (1-based) holds the sum of (i - lowbit(i), i]: the new node's range is its
        // own weight plus the elements (i - lowbit(i), i - 1], known from two prefix sums.
        const std::size_t i = tree_.size() + 1;
        const std::size_t low = i & (~i + 1);
        tree_.push_back(w + prefix(i - 1) - prefix(i - low));
        total_ += w;
    }
    /// Element `pos` changes weight from `old_w` to `new_w` (modular arithmetic: every sum
    /// ends non-negative).
    void replace(std::size_t pos, std::uint32_t old_w, std::uint32_t new_w) {
        for (std::size_t i = pos + 1; i <= tree_.size(); i += i & (~i + 1)) {
            tree_[i - 1] = tree_[i - 1] + new_w - old_w;
        }
        total_ = total_ + new_w - old_w;
    }
    /// Drops the last element, whose weight is `w`. No other node covers the last index.
    void pop_back(std::uint32_t w) {
        tree_.pop_back();
        total_ -= w;
    }
    /// The member owning `slot` (< total()): the smallest i with prefix(i + 1) > slot.
    std::size_t find(std::uint64_t slot) const noexcept {
        std::size_t pos = 0;
        for (std::size_t step = std::bit_floor(tree_.size()); step != 0; step >>= 1) {
            if (pos + step <= tree_.size() && tree_[pos + step - 1] <= slot) {
                pos += step;
                slot -= tree_[pos - 1];
            }
        }
        return pos;
    }

private:
    std::uint64_t prefix(std::size_t n) const noexcept {
        std::uint64_t s = 0;
        for (; n != 0; n -= n & (~n + 1)) {
            s += tree_[n - 1];
        }
        return s;
    }

    std::vector<std::uint64_t> tree_;
    std::uint64_t total_ = 0;
};

std::uint32_t effective_weight(const subscription& s) noexcept {
    return s.weight == 0 ? 1 : s.weight;
}

/// A per-thread generator for the random strategy: no shared state between workers.
std::uint64_t thread_random() noexcept {
    thread_local std::uint64_t state = [] {
        std::random_device rd;
        return (std::uint64_t{rd()} << 32) ^ rd() ^ 0x9E3779B97F4A7C15ULL;
    }();
    // splitmix64
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

std::uint64_t stable_hash(std::string_view s) noexcept {
    // FNV-1a: stable across runs and builds, so a publisher keeps its member after a restart
    // as long as the membership order is the same.
    std::uint64_t h = 0xCBF29CE484222325ULL;
    for (char c : s) {
        h = (h ^ static_cast<unsigned char>(c)) * 0x100000001B3ULL;
    }
    return h ^ (h >> 29);
}

} // namespace

// ---------------------------------------------------------------------------------------------
// Shared groups

namespace {

/// The strategy of every group with one name: set_group_strategy changes it for the existing
/// groups and the future ones at once. Groups keep it alive after the index forgets the name.
struct strategy_cell {
    explicit strategy_cell(share_strategy s) : strategy(s) {}
    std::atomic<share_strategy> strategy;
};

struct membership {
    subscriber_set members;
    weight_tree weights;
    /// Members subscribed on a `profile aws-iot` listener (hash_skips_parent).
    std::size_t aws_members = 0;
};

} // namespace

struct shared_group::impl {
    impl(std::string_view n, std::string_view f, std::shared_ptr<strategy_cell> c)
        : name(n), filter(f), strategy(std::move(c)) {}

    static impl& of(const shared_group& g) noexcept { return *g.impl_; }

    /// Adds or replaces a member. Caller: the index, under the write lock of the group's shard.
    bool upsert(const subscriber_ptr& who, const subscription& sub) {
        subscription s = sub;
        s.weight = effective_weight(sub); // stored weights are >= 1
        auto m = state.write();
        auto r = m->members.upsert(who, s);
        if (r.inserted) {
            m->weights.push_back(s.weight);
            count.store(m->members.size(), std::memory_order_relaxed);
        } else if (r.old_weight != s.weight) {
            m->weights.replace(r.pos, r.old_weight, s.weight);
        }
        if (s.hash_skips_parent && (r.inserted || !r.old_skips_parent)) {
            ++m->aws_members;
        } else if (!s.hash_skips_parent && !r.inserted && r.old_skips_parent) {
            --m->aws_members;
        }
        return r.inserted;
    }

    /// Removes a member; false when `key` is not one. Caller: as upsert.
    bool erase(std::uint64_t key) {
        auto m = state.write();
        const std::size_t last = m->members.size();
        auto r = m->members.erase(key);
        if (!r) {
            return false;
        }
        if (r->skips_parent) {
            --m->aws_members;
        }
        if (r->pos != last - 1) {
            // The former last member moved into the hole: move its weight there too.
            const std::uint32_t moved = m->members.entries()[r->pos].sub.weight;
            m->weights.replace(r->pos, r->weight, moved);
            m->weights.pop_back(moved);
        } else {
            m->weights.pop_back(r->weight);
        }
        count.store(m->members.size(), std::memory_order_relaxed);
        return true;
    }

    /// See shared_group::pick; `out.group` is left to the caller. exclude_key 0 excludes
    /// nobody (key 0 is the broker itself, never a subscriber).
    /// Every member subscribed on a `profile aws-iot` listener: the group's "a/#" does not
    /// match "a" (a group of mixed members keeps MQTT's rule).
    bool skips_parent() const {
        auto m = state.read();
        return aws_only(*m);
    }
    /// Every member subscribed under `profile aws-iot`: the group runs as AWS IoT Core runs
    /// one (parent not matched by `#`, a random member per message).
    static bool aws_only(const membership& m) noexcept {
        return !m.members.empty() && m.aws_members == m.members.size();
    }

    bool pick(const publish_context& ctx, std::uint64_t exclude_key, delivery& out) const {
        auto m = state.read();
        const auto& members = m->members.entries();
        const std::size_t n = members.size();
        if (n == 0) {
            return false;
        }
        const auto usable = [&](std::size_t i, bool need_online) {
            const sub_entry& e = members[i];
            return (exclude_key == 0 || e.key != exclude_key) &&
                   (!need_online || e.who->online.load(std::memory_order_relaxed));
        };
        // AWS IoT Core picks a member at random (mqtt.html, shared subscriptions).
        const share_strategy s = aws_only(*m) ? share_strategy::random
                                              : strategy->strategy.load(std::memory_order_relaxed);
        std::size_t chosen = n;
        if (s == share_strategy::least_inflight) {
            chosen = least_loaded(members, usable, true);
            if (chosen == n) {
                chosen = least_loaded(members, usable, false);
            }
        } else {
            const std::uint64_t total = m->weights.total();
            std::size_t first = m->weights.find(draw(s, ctx) % total);
            if (!usable(first, true) &&
                (s == share_strategy::round_robin || s == share_strategy::random)) {
                // Draw again rather than take the next member, so the load of an offline or
                // excluded member spreads over the others in proportion to their weights.
                // Bounded: with most members offline, the scan below finishes the job.
                for (int tries = 0; tries < 4 && !usable(first, true); ++tries) {
                    first = m->weights.find(draw(s, ctx) % total);
                }
            }
            chosen = first_usable_from(first, n, usable, true);
            if (chosen == n) {
                chosen = first_usable_from(first, n, usable, false);
            }
        }
        if (chosen == n) {
            return false;
        }
        const sub_entry& e = members[chosen];
        out.to = e.who;
        out.qos = e.sub.options.qos;
        out.retain_as_published = e.sub.options.retain_as_published;
        out.subscription_ids.clear();
        if (e.sub.identifier != 0) {
            out.subscription_ids.push_back(e.sub.identifier);
        }
        return true;
    }

    const std::string name;
    const std::string filter;
    const std::shared_ptr<strategy_cell> strategy;
    /// Set once by the index right after construction, before the group is published.
    std::weak_ptr<shared_group> self;
    /// Round-robin position (and the least_inflight tie-breaker): one atomic increment per
    /// pick, so concurrent picks always get distinct slots.
    mutable std::atomic<std::uint64_t> counter{0};
    /// member_count() without the lock.
    std::atomic<std::size_t> count{0};
    /// Members and weights. Lock order: shard lock, then this.
    rw_guarded<membership> state;

private:
    std::uint64_t draw(share_strategy s, const publish_context& ctx) const noexcept {
        switch (s) {
        case share_strategy::random:
            return thread_random();
        case share_strategy::client_hash:
            return stable_hash(ctx.publisher_client_id);
        case share_strategy::topic_hash:
            return stable_hash(ctx.topic);
        case share_strategy::round_robin:
        case share_strategy::least_inflight:
            break;
        }
        return counter.fetch_add(1, std::memory_order_relaxed);
    }

    template <class Usable>
    static std::size_t first_usable_from(std::size_t first, std::size_t n, const Usable& usable,
                                         bool need_online) {
        for (std::size_t k = 0; k < n; ++k) {
            const std::size_t i = (first + k) % n;
            if (usable(i, need_online)) {
                return i;
            }
        }
        return n;
    }

    /// The usable member with the least inflight/weight; the scan starts at a rotating offset
    /// so ties go round-robin. O(members): in-flight counts change without telling the index.
    template <class Usable>
    std::size_t least_loaded(const std::vector<sub_entry>& members, const Usable& usable,
                             bool need_online) const {
        const std::size_t n = members.size();
        const std::size_t start =
            static_cast<std::size_t>(counter.fetch_add(1, std::memory_order_relaxed) % n);
        std::size_t best = n;
        std::uint64_t best_inflight = 0;
        std::uint64_t best_weight = 1;
        for (std::size_t k = 0; k < n; ++k) {
            const std::size_t i = (start + k) % n;
            if (!usable(i, need_online)) {
                continue;
            }
            const std::uint64_t f = members[i].who->inflight.load(std::memory_order_relaxed);
            const std::uint64_t w = effective_weight(members[i].sub);
            // f / w < best_f / best_w without division (both factors < 2^32).
            if (best == n || f * best_weight < best_inflight * w) {
                best = i;
                best_inflight = f;
                best_weight = w;
            }
        }
        return best;
    }
};

shared_group::shared_group(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
shared_group::~shared_group() = default;

bool shared_group::pick(const publish_context& ctx, std::uint64_t exclude_key,
                        delivery& out) const {
    if (!impl_->pick(ctx, exclude_key, out)) {
        return false;
    }
    out.group = impl_->self.lock();
    return true;
}

const std::string& shared_group::name() const noexcept {
    return impl_->name;
}
const std::string& shared_group::filter() const noexcept {
    return impl_->filter;
}
std::size_t shared_group::member_count() const noexcept {
    return impl_->count.load(std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------------------------
// The trie

namespace {

struct node;

/// What is subscribed at exactly one filter.
struct leaf {
    subscriber_set subs;
    /// One per group name, few per filter: a linear search is the fastest lookup.
    std::vector<shared_group_ptr> groups;
    bool empty() const noexcept { return subs.empty() && groups.empty(); }
};

/// A cheap first comparison of two levels: their length and up to eight of their bytes, which
/// tell levels of up to eight bytes apart exactly. A scan of small children compares these and
/// dereferences a child only on a probable hit. Whole-word loads, no byte-wise assembly: a
/// partial store then a wide load stalls store forwarding on the hot path.
std::uint64_t fingerprint(std::string_view level) noexcept {
    const std::size_t n = level.size();
    const char* p = level.data();
    std::uint64_t w = 0;
    if (n >= 8) {
        std::memcpy(&w, p, 8);
    } else if (n >= 4) {
        std::uint32_t lo = 0;
        std::uint32_t hi = 0;
        std::memcpy(&lo, p, 4);
        std::memcpy(&hi, p + n - 4, 4); // overlaps `lo` when n < 8: still exact for this n
        w = lo | (std::uint64_t{hi} << 32);
    } else if (n != 0) {
        w = std::uint64_t{static_cast<unsigned char>(p[0])} |
            std::uint64_t{static_cast<unsigned char>(p[n / 2])} << 8 |
            std::uint64_t{static_cast<unsigned char>(p[n - 1])} << 16;
    }
    return w ^ (std::uint64_t{n} << 56);
}

/// The literal children of a node: a short vector scanned linearly while small (most nodes
/// have one child), a hash table keyed by the child's own level string once large.
class child_map {
public:
    node* find(std::string_view level) const noexcept;
    node& find_or_create(std::string_view level);
    void erase(std::string_view level);
    bool empty() const noexcept { return small_.empty() && !big_; }
    /// Moves every child out (the iterative teardown in ~node).
    void take_all(std::vector<std::unique_ptr<node>>& to);

private:
    static constexpr std::size_t small_max = 8;
    struct small_child {
        std::uint64_t tag; ///< fingerprint(child->level)
        std::unique_ptr<node> child;
    };
    // Keys view the child's `level`, which is immutable and heap-stable.
    using big_map = boost::unordered_flat_map<std::string_view, std::unique_ptr<node>>;

    std::vector<small_child> small_;
    std::unique_ptr<big_map> big_;
};

/// One level of some filter. Wildcard children live apart from the literal ones so match()
/// never looks "+" or "#" up by string.
struct node {
    explicit node(std::string_view l) : level(l) {}
    ~node();
    node(const node&) = delete;
    node& operator=(const node&) = delete;

    bool empty() const noexcept {
        return children.empty() && !plus && !hash && (!subs || subs->empty());
    }

    const std::string level;
    child_map children;
    std::unique_ptr<node> plus;
    std::unique_ptr<node> hash; ///< a '#' node only ever has `subs`
    std::unique_ptr<leaf> subs;
};

node* child_map::find(std::string_view level) const noexcept {
    if (big_) {
        auto it = big_->find(level);
        return it == big_->end() ? nullptr : it->second.get();
    }
    const std::uint64_t tag = fingerprint(level);
    for (const auto& c : small_) {
        if (c.tag == tag && c.child->level == level) {
            return c.child.get();
        }
    }
    return nullptr;
}

node& child_map::find_or_create(std::string_view level) {
    if (node* n = find(level)) {
        return *n;
    }
    auto child = std::make_unique<node>(level);
    node& ref = *child;
    if (big_) {
        big_->emplace(ref.level, std::move(child));
    } else if (small_.size() < small_max) {
        small_.push_back({fingerprint(level), std::move(child)});
    } else {
        big_ = std::make_unique<big_map>();
        for (auto& c : small_) {
            std::string_view key = c.child->level;
            big_->emplace(key, std::move(c.child));
        }
        std::vector<small_child>().swap(small_);
        big_->emplace(ref.level, std::move(child));
    }
    return ref;
}

void child_map::erase(std::string_view level) {
    if (big_) {
        // Erase by iterator: `level` may view the key of the very node being destroyed.
        if (auto it = big_->find(level); it != big_->end()) {
            big_->erase(it);
        }
        if (big_->size() <= small_max / 2) {
            // Back to the vector: a hash table never shrinks, the memory should come back.
            small_.reserve(big_->size());
            for (auto& [k, c] : *big_) {
                const std::uint64_t tag = fingerprint(c->level);
                small_.push_back({tag, std::move(c)});
            }
            big_.reset();
        }
        return;
    }
    const std::uint64_t tag = fingerprint(level);
    for (auto it = small_.begin(); it != small_.end(); ++it) {
        if (it->tag == tag && it->child->level == level) {
            *it = std::move(small_.back());
            small_.pop_back();
            break;
        }
    }
    if (small_.empty()) {
        std::vector<small_child>().swap(small_);
    }
}

void child_map::take_all(std::vector<std::unique_ptr<node>>& to) {
    for (auto& c : small_) {
        to.push_back(std::move(c.child));
    }
    small_.clear();
    if (big_) {
        for (auto& [k, c] : *big_) {
            to.push_back(std::move(c));
        }
        big_.reset();
    }
}

node::~node() {
    // Iterative teardown: a filter may have 32 768 levels, too deep for recursive destructors.
    std::vector<std::unique_ptr<node>> pending;
    children.take_all(pending);
    if (plus) {
        pending.push_back(std::move(plus));
    }
    if (hash) {
        pending.push_back(std::move(hash));
    }
    while (!pending.empty()) {
        std::unique_ptr<node> n = std::move(pending.back());
        pending.pop_back();
        n->children.take_all(pending);
        if (n->plus) {
            pending.push_back(std::move(n->plus));
        }
        if (n->hash) {
            pending.push_back(std::move(n->hash));
        }
    } // each `n` dies here without children
}

/// Calls f(level, last) for each level of a topic or filter ("a//b" has three levels).
template <class F> void for_each_level(std::string_view s, F&& f) {
    std::size_t pos = 0;
    for (;;) {
        const std::size_t slash = s.find('/', pos);
        if (slash == std::string_view::npos) {
            f(s.substr(pos), true);
            return;
        }
        if (!f(s.substr(pos, slash - pos), false)) {
            return;
        }
        pos = slash + 1;
    }
}

// ---------------------------------------------------------------------------------------------
// Shards

/// Number of hashed shards; one more holds the filters with a wildcard first level.
constexpr std::size_t shard_count = 64;
constexpr std::size_t wildcard_shard = shard_count;

/// One trie and its lock. Cache-line aligned so two shards' locks never share a line.
struct alignas(64) shard {
    rw_guarded<node, br_lock> root{std::string_view{}};
    /// Subscriptions in this shard; match() skips the lock of an empty shard. Written under the
    /// write lock, read without it: a publish racing a first subscribe may miss it, exactly as
    /// if it had come first.
    std::atomic<std::size_t> subscriptions{0};
};

std::size_t level_hash(std::string_view level) noexcept {
    return std::hash<std::string_view>{}(level);
}
std::size_t hash_one(std::size_t h1) noexcept {
    return h1 % shard_count;
}
std::size_t hash_two(std::size_t h1, std::string_view l2) noexcept {
    return (h1 * 0x9E3779B97F4A7C15ULL ^ level_hash(l2)) % shard_count;
}

/// A filter lives in the shard of its first two levels when both are literal (`dev/42/#`), in
/// the shard of its first level when the second is a wildcard or absent (`dev/+/t`, `dev`),
/// and in the wildcard shard when the first level is one (`+/x`, `#`).
std::size_t shard_of_filter(std::string_view filter) noexcept {
    const std::size_t s1 = filter.find('/');
    const std::string_view l1 = filter.substr(0, s1);
    if (l1 == "+" || l1 == "#") {
        return wildcard_shard;
    }
    if (s1 == std::string_view::npos) {
        return hash_one(level_hash(l1));
    }
    const std::string_view rest = filter.substr(s1 + 1);
    const std::string_view l2 = rest.substr(0, rest.find('/'));
    if (l2 == "+" || l2 == "#") {
        return hash_one(level_hash(l1));
    }
    return hash_two(level_hash(l1), l2);
}

/// The shards that can hold a filter matching `topic`, each once: at most three.
std::size_t shards_of_topic(std::string_view topic, std::array<std::size_t, 3>& out) noexcept {
    std::size_t n = 0;
    const auto add = [&](std::size_t s) {
        for (std::size_t i = 0; i < n; ++i) {
            if (out[i] == s) {
                return;
            }
        }
        out[n++] = s;
    };
    // First-level wildcards never match '$' topics [MQTT-4.7.2-1].
    if (topic.empty() || topic.front() != '$') {
        add(wildcard_shard);
    }
    const std::size_t s1 = topic.find('/');
    const std::string_view l1 = topic.substr(0, s1);
    const std::size_t h1 = level_hash(l1);
    add(hash_one(h1));
    if (s1 != std::string_view::npos) {
        const std::string_view rest = topic.substr(s1 + 1);
        add(hash_two(h1, rest.substr(0, rest.find('/'))));
    }
    return n;
}

// ---------------------------------------------------------------------------------------------
// Per-thread match scratch

/// Subscriber key → position in `out`, cleared in O(1) by bumping a generation.
class key_table {
public:
    void clear() noexcept {
        size_ = 0;
        if (++gen_ == 0) {
            for (auto& s : slots_) {
                s.gen = 0;
            }
            gen_ = 1;
        }
    }
    /// The value of `key`, inserting `value` when absent (then returns `value`).
    std::uint32_t find_or_insert(std::uint64_t key, std::uint32_t value) {
        if ((size_ + 1) * 2 > slots_.size()) {
            grow();
        }
        for (std::size_t i = slot_of(key);; i = (i + 1) & mask_) {
            slot& s = slots_[i];
            if (s.gen != gen_) {
                s = slot{key, value, gen_};
                ++size_;
                return value;
            }
            if (s.key == key) {
                return s.value;
            }
        }
    }

private:
    struct slot {
        std::uint64_t key = 0;
        std::uint32_t value = 0;
        std::uint32_t gen = 0;
    };
    std::size_t slot_of(std::uint64_t key) const noexcept {
        return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ULL) >> 32) & mask_;
    }
    void grow() {
        std::vector<slot> old = std::move(slots_);
        const std::uint32_t old_gen = gen_;
        slots_.assign(std::max<std::size_t>(64, old.size() * 2), slot{});
        mask_ = slots_.size() - 1;
        gen_ = 1;
        size_ = 0;
        for (const slot& s : old) {
            if (s.gen == old_gen) {
                find_or_insert(s.key, s.value);
            }
        }
    }

    std::vector<slot> slots_;
    std::size_t mask_ = 0;
    std::size_t size_ = 0;
    std::uint32_t gen_ = 1;
};

/// Reused by every match() on a thread, so the hot path allocates only when `out` grows.
struct match_scratch {
    struct frame {
        const node* n;
        std::size_t pos; ///< where the next topic level starts; > topic.size(): none left
    };
    std::vector<frame> stack;
    /// Keys of the non-shared deliveries appended so far, with their positions in `out`.
    std::vector<std::uint64_t> keys;
    std::vector<std::uint32_t> positions;
    /// Used instead of a linear scan of `keys` once there are more than a few.
    key_table table;
    bool use_table = false;

    static constexpr std::size_t linear_max = 16;

    void reset() {
        keys.clear();
        positions.clear();
        if (use_table) {
            table.clear();
            use_table = false;
        }
    }

    /// Position in `out` of `key`'s delivery; `fresh` when it is new (to be appended there).
    std::uint32_t position_of(std::uint64_t key, std::uint32_t fresh) {
        if (!use_table) {
            for (std::size_t i = 0; i < keys.size(); ++i) {
                if (keys[i] == key) {
                    return positions[i];
                }
            }
            keys.push_back(key);
            positions.push_back(fresh);
            if (keys.size() > linear_max) {
                use_table = true;
                for (std::size_t i = 0; i < keys.size(); ++i) {
                    table.find_or_insert(keys[i], positions[i]);
                }
            }
            return fresh;
        }
        return table.find_or_insert(key, fresh);
    }
};

match_scratch& scratch() {
    thread_local match_scratch s;
    return s;
}

} // namespace

// ---------------------------------------------------------------------------------------------
// topic_index

struct topic_index::impl {
    explicit impl(share_strategy d) : default_strategy(d) {}

    /// The strategy cell of group name `name`, registering one more group under it.
    std::shared_ptr<strategy_cell> acquire_name(std::string_view name) {
        std::lock_guard lock(names_mutex);
        auto it = names.find(name);
        if (it == names.end()) {
            it = names
                     .emplace(std::string(name),
                              name_entry{std::make_shared<strategy_cell>(default_strategy)})
                     .first;
        }
        ++it->second.groups;
        return it->second.cell;
    }
    void release_name(std::string_view name) {
        std::lock_guard lock(names_mutex);
        auto it = names.find(name);
        if (it != names.end() && --it->second.groups == 0 && !it->second.overridden) {
            names.erase(it);
        }
    }

    /// `parent_of_hash`: `l` is a '#' leaf matched by the topic of its parent level ("a"
    /// for "a/#"), which the subscriptions of an AWS IoT profile listener do not match.
    void collect(const leaf& l, const publish_context& ctx, std::vector<delivery>& out,
                 match_scratch& s, bool parent_of_hash = false) const;
    void walk(const node& root, const publish_context& ctx, std::vector<delivery>& out,
              match_scratch& s) const;

    const share_strategy default_strategy;
    std::array<shard, shard_count + 1> shards;
    std::atomic<std::size_t> count{0};

    struct name_entry {
        std::shared_ptr<strategy_cell> cell;
        std::size_t groups = 0;  ///< live groups with this name
        bool overridden = false; ///< set_group_strategy was called: keep the entry
    };
    /// Lock order: a shard's write lock, then this (groups are created under the shard lock).
    std::mutex names_mutex;
    std::unordered_map<std::string, name_entry, string_hash, std::equal_to<>> names; // names_mutex
};

void topic_index::impl::collect(const leaf& l, const publish_context& ctx,
                                std::vector<delivery>& out, match_scratch& s,
                                bool parent_of_hash) const {
    for (const sub_entry& e : l.subs.entries()) {
        if (e.sub.options.no_local && e.key == ctx.publisher_key) {
            continue; // [MQTT-3.8.3-3]
        }
        if (parent_of_hash && e.sub.hash_skips_parent) {
            continue;
        }
        const auto fresh = static_cast<std::uint32_t>(out.size());
        const std::uint32_t pos = s.position_of(e.key, fresh);
        if (pos == fresh) {
            delivery& d = out.emplace_back();
            d.to = e.who;
            d.qos = e.sub.options.qos;
            d.retain_as_published = e.sub.options.retain_as_published;
            d.via_parent_of_hash = parent_of_hash;
            if (e.sub.identifier != 0) {
                d.subscription_ids.push_back(e.sub.identifier);
            }
            continue;
        }
        // Overlapping subscriptions of one client: one delivery at the highest QoS, with every
        // subscription identifier [MQTT-3.3.4-2, MQTT-3.3.4-3].
        delivery& d = out[pos];
        d.qos = std::max(d.qos, e.sub.options.qos);
        d.retain_as_published = d.retain_as_published || e.sub.options.retain_as_published;
        d.via_parent_of_hash = d.via_parent_of_hash && parent_of_hash;
        if (e.sub.identifier != 0) {
            d.subscription_ids.push_back(e.sub.identifier);
        }
    }
    // Shared groups: one delivery each, No Local does not apply [MQTT-3.8.3-4], and they are
    // not merged with the member's own non-shared delivery.
    for (const shared_group_ptr& g : l.groups) {
        if (parent_of_hash && shared_group::impl::of(*g).skips_parent()) {
            continue;
        }
        delivery& d = out.emplace_back();
        if (shared_group::impl::of(*g).pick(ctx, 0, d)) {
            d.group = g;
            d.via_parent_of_hash = parent_of_hash;
        } else {
            out.pop_back();
        }
    }
}

void topic_index::impl::walk(const node& root, const publish_context& ctx,
                             std::vector<delivery>& out, match_scratch& s) const {
    const std::string_view topic = ctx.topic;
    const bool dollar = !topic.empty() && topic.front() == '$';
    // Depth-first without recursion (a filter may have 32 768 levels): follow the literal
    // child in place and keep only the '+' branches for later.
    s.stack.clear();
    const node* n = &root;
    std::size_t pos = 0; // where the next topic level starts; > topic.size(): none left
    for (;;) {
        // Wildcards at the first level do not match '$' topics [MQTT-4.7.2-1].
        const bool wildcards = !(dollar && n == &root);
        // "a/#" matches "a" and everything below it [MQTT-4.7.1-2].
        if (n->hash && wildcards && n->hash->subs) {
            collect(*n->hash->subs, ctx, out, s, pos > topic.size());
        }
        const node* literal = nullptr;
        std::size_t next = 0;
        if (pos > topic.size()) {
            if (n->subs) {
                collect(*n->subs, ctx, out, s);
            }
        } else {
            std::size_t end = topic.find('/', pos);
            if (end == std::string_view::npos) {
                end = topic.size();
            }
            next = end + 1; // past the end after the last level
            if (n->plus && wildcards) {
                s.stack.push_back({n->plus.get(), next});
            }
            literal = n->children.find(topic.substr(pos, end - pos));
        }
        if (literal != nullptr) {
            n = literal;
            pos = next;
        } else if (!s.stack.empty()) {
            n = s.stack.back().n;
            pos = s.stack.back().pos;
            s.stack.pop_back();
        } else {
            return;
        }
    }
}

topic_index::topic_index(share_strategy default_strategy)
    : impl_(std::make_unique<impl>(default_strategy)) {}

topic_index::~topic_index() = default;

void topic_index::set_group_strategy(std::string_view name, share_strategy strategy) {
    std::lock_guard lock(impl_->names_mutex);
    auto it = impl_->names.find(name);
    if (it == impl_->names.end()) {
        it = impl_->names
                 .emplace(std::string(name),
                          impl::name_entry{std::make_shared<strategy_cell>(strategy)})
                 .first;
    }
    it->second.overridden = true;
    it->second.cell->strategy.store(strategy, std::memory_order_relaxed);
}

bool topic_index::subscribe(const subscriber_ptr& who, std::string_view filter,
                            const subscription& sub) {
    auto parsed = protocol::parse_topic_filter(filter);
    if (!parsed || !who) {
        return false; // precondition violated; nothing stored
    }
    const std::string_view f = parsed->filter;
    shard& sh = impl_->shards[shard_of_filter(f)];
    auto root = sh.root.write();
    node* n = &*root;
    for_each_level(f, [&](std::string_view level, bool) {
        if (level == "+") {
            if (!n->plus) {
                n->plus = std::make_unique<node>(level);
            }
            n = n->plus.get();
        } else if (level == "#") {
            if (!n->hash) {
                n->hash = std::make_unique<node>(level);
            }
            n = n->hash.get();
        } else {
            n = &n->children.find_or_create(level);
        }
        return true;
    });
    if (!n->subs) {
        n->subs = std::make_unique<leaf>();
    }
    leaf& l = *n->subs;
    bool inserted = false;
    if (!parsed->is_shared()) {
        inserted = l.subs.upsert(who, sub).inserted;
    } else {
        const std::string_view name = parsed->share_group;
        auto it = std::find_if(l.groups.begin(), l.groups.end(),
                               [&](const shared_group_ptr& g) { return g->name() == name; });
        if (it == l.groups.end()) {
            auto g = std::make_shared<shared_group>(
                std::make_unique<shared_group::impl>(name, f, impl_->acquire_name(name)));
            shared_group::impl::of(*g).self = g;
            l.groups.push_back(std::move(g));
            it = l.groups.end() - 1;
        }
        inserted = shared_group::impl::of(**it).upsert(who, sub);
    }
    if (inserted) {
        sh.subscriptions.fetch_add(1, std::memory_order_relaxed);
        impl_->count.fetch_add(1, std::memory_order_relaxed);
    }
    return inserted;
}

bool topic_index::unsubscribe(std::uint64_t subscriber_key, std::string_view filter) {
    auto parsed = protocol::parse_topic_filter(filter);
    if (!parsed) {
        return false;
    }
    const std::string_view f = parsed->filter;
    shard& sh = impl_->shards[shard_of_filter(f)];
    auto root = sh.root.write();
    boost::container::small_vector<node*, 8> path{&*root};
    bool found = true;
    for_each_level(f, [&](std::string_view level, bool) {
        node* cur = path.back();
        node* next = level == "+"   ? cur->plus.get()
                     : level == "#" ? cur->hash.get()
                                    : cur->children.find(level);
        if (next == nullptr) {
            found = false;
            return false;
        }
        path.push_back(next);
        return true;
    });
    node* target = path.back();
    if (!found || !target->subs) {
        return false;
    }
    leaf& l = *target->subs;
    if (!parsed->is_shared()) {
        if (!l.subs.erase(subscriber_key)) {
            return false;
        }
    } else {
        const std::string_view name = parsed->share_group;
        auto it = std::find_if(l.groups.begin(), l.groups.end(),
                               [&](const shared_group_ptr& g) { return g->name() == name; });
        if (it == l.groups.end() || !shared_group::impl::of(**it).erase(subscriber_key)) {
            return false;
        }
        if ((*it)->member_count() == 0) {
            // The group goes; sessions still holding it see an empty group (pick() == false).
            impl_->release_name(name);
            *it = std::move(l.groups.back());
            l.groups.pop_back();
        }
    }
    sh.subscriptions.fetch_sub(1, std::memory_order_relaxed);
    impl_->count.fetch_sub(1, std::memory_order_relaxed);
    if (l.empty()) {
        target->subs.reset();
    }
    // Prune the nodes left empty, deepest first, so memory comes back after unsubscribe.
    for (std::size_t i = path.size() - 1; i > 0 && path[i]->empty(); --i) {
        node& parent = *path[i - 1];
        if (path[i] == parent.plus.get()) {
            parent.plus.reset();
        } else if (path[i] == parent.hash.get()) {
            parent.hash.reset();
        } else {
            parent.children.erase(path[i]->level);
        }
    }
    return true;
}

void topic_index::match(const publish_context& ctx, std::vector<delivery>& out) const {
    match_scratch& s = scratch();
    s.reset();
    std::array<std::size_t, 3> ids{};
    const std::size_t n = shards_of_topic(ctx.topic, ids);
    for (std::size_t i = 0; i < n; ++i) {
        const shard& sh = impl_->shards[ids[i]];
        if (sh.subscriptions.load(std::memory_order_relaxed) == 0) {
            continue;
        }
        // One shard at a time: the lock is never held while taking another shard's.
        auto root = sh.root.read();
        impl_->walk(*root, ctx, out, s);
    }
}

std::size_t topic_index::subscription_count() const noexcept {
    return impl_->count.load(std::memory_order_relaxed);
}

} // namespace tern::broker
