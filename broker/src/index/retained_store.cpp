// Retained messages in sharded topic tries: set() (every retained PUBLISH, from any worker)
// write-locks one shard; match() (a SUBSCRIBE) walks only the branches its filter can reach.
// See docs/topic-index.md.

#include "index/retained_store.hpp"

#include <tern/protocol/topic.hpp>

#include <boost/container/small_vector.hpp>
#include <boost/unordered/unordered_flat_map.hpp>

#include <array>
#include <atomic>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <utility>

namespace tern::broker {

namespace {

/// A value reachable only through a lock handle (STYLE.md §4). std::shared_mutex suffices
/// here: writers (retained publishes) dominate and readers (subscribes) are rare, so glibc's
/// reader preference cannot starve a writer.
template <class T> class guarded {
public:
    class reader {
    public:
        explicit reader(const guarded& g) : lock_(g.mutex_), value_(g.value_) {}
        const T& operator*() const noexcept { return value_; }
        const T* operator->() const noexcept { return &value_; }

    private:
        std::shared_lock<std::shared_mutex> lock_;
        const T& value_;
    };
    class writer {
    public:
        explicit writer(guarded& g) : lock_(g.mutex_), value_(g.value_) {}
        T& operator*() const noexcept { return value_; }
        T* operator->() const noexcept { return &value_; }

    private:
        std::unique_lock<std::shared_mutex> lock_;
        T& value_;
    };

    template <class... Args>
    explicit guarded(Args&&... args) : value_(std::forward<Args>(args)...) {}

    reader read() const { return reader(*this); }
    writer write() { return writer(*this); }

private:
    mutable std::shared_mutex mutex_;
    T value_; // guarded by mutex_
};

struct node;

/// The children of a topic level: a short vector while small (most levels of a device fleet
/// have one child), a hash table keyed by the child's own level string once large.
class child_map {
public:
    node* find(std::string_view level) const noexcept;
    node& find_or_create(std::string_view level);
    void erase(std::string_view level);
    bool empty() const noexcept { return small_.empty() && !big_; }
    template <class F> void for_each(F&& f) const;
    void take_all(std::vector<std::unique_ptr<node>>& to);

private:
    static constexpr std::size_t small_max = 8;
    // Keys view the child's `level`, which is immutable and heap-stable.
    using big_map = boost::unordered_flat_map<std::string_view, std::unique_ptr<node>>;

    std::vector<std::unique_ptr<node>> small_;
    std::unique_ptr<big_map> big_;
};

/// One topic level; `msg` is the retained message of the topic ending here, if any.
struct node {
    explicit node(std::string_view l) : level(l) {}
    ~node();
    node(const node&) = delete;
    node& operator=(const node&) = delete;

    bool empty() const noexcept { return !msg && children.empty(); }

    const std::string level;
    child_map children;
    message_ptr msg;
};

node* child_map::find(std::string_view level) const noexcept {
    if (big_) {
        auto it = big_->find(level);
        return it == big_->end() ? nullptr : it->second.get();
    }
    for (const auto& c : small_) {
        if (c->level == level) {
            return c.get();
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
        small_.push_back(std::move(child));
    } else {
        big_ = std::make_unique<big_map>();
        for (auto& c : small_) {
            std::string_view key = c->level;
            big_->emplace(key, std::move(c));
        }
        std::vector<std::unique_ptr<node>>().swap(small_);
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
                small_.push_back(std::move(c));
            }
            big_.reset();
        }
        return;
    }
    for (auto it = small_.begin(); it != small_.end(); ++it) {
        if ((*it)->level == level) {
            *it = std::move(small_.back());
            small_.pop_back();
            break;
        }
    }
    if (small_.empty()) {
        std::vector<std::unique_ptr<node>>().swap(small_);
    }
}

template <class F> void child_map::for_each(F&& f) const {
    if (big_) {
        for (const auto& [k, c] : *big_) {
            f(*c);
        }
        return;
    }
    for (const auto& c : small_) {
        f(*c);
    }
}

void child_map::take_all(std::vector<std::unique_ptr<node>>& to) {
    for (auto& c : small_) {
        to.push_back(std::move(c));
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
    // Iterative teardown: a topic may have 32 768 levels, too deep for recursive destructors.
    std::vector<std::unique_ptr<node>> pending;
    children.take_all(pending);
    while (!pending.empty()) {
        std::unique_ptr<node> n = std::move(pending.back());
        pending.pop_back();
        n->children.take_all(pending);
    }
}

/// Hashed shards by the first two topic levels, so retained publishes from different workers
/// to different devices rarely meet on one lock.
constexpr std::size_t shard_count = 64;

struct alignas(64) shard {
    guarded<node> root{std::string_view{}};
    /// Retained messages in this shard; match() skips the lock of an empty shard.
    std::atomic<std::size_t> messages{0};
};

std::size_t shard_of(std::string_view l1, std::string_view l2, bool has_l2) noexcept {
    const std::size_t h1 = std::hash<std::string_view>{}(l1);
    if (!has_l2) {
        return h1 % shard_count;
    }
    const std::size_t h2 = std::hash<std::string_view>{}(l2);
    return (h1 * 0x9E3779B97F4A7C15ULL ^ h2) % shard_count;
}

std::size_t shard_of_topic(std::string_view topic) noexcept {
    const std::size_t s1 = topic.find('/');
    if (s1 == std::string_view::npos) {
        return shard_of(topic, {}, false);
    }
    const std::string_view rest = topic.substr(s1 + 1);
    return shard_of(topic.substr(0, s1), rest.substr(0, rest.find('/')), true);
}

/// The one shard a filter can match in, or shard_count when it may match in any: a filter
/// whose first two levels are literal (`dev/42/#`), or a one-level literal filter (`status`).
std::size_t shard_of_filter(std::string_view filter) noexcept {
    const std::size_t s1 = filter.find('/');
    const std::string_view l1 = filter.substr(0, s1);
    if (l1 == "+" || l1 == "#") {
        return shard_count;
    }
    if (s1 == std::string_view::npos) {
        return shard_of(l1, {}, false);
    }
    const std::string_view rest = filter.substr(s1 + 1);
    const std::string_view l2 = rest.substr(0, rest.find('/'));
    if (l2 == "+" || l2 == "#") {
        return shard_count; // "a/#" also matches "a" itself, which lives in another shard
    }
    return shard_of(l1, l2, true);
}

/// Appends every retained message under `root` matching `filter`. Iterative, so neither a deep
/// filter nor a deep `#` subtree can exhaust the stack.
void walk(const node& root, std::string_view filter, std::vector<message_ptr>& out) {
    struct frame {
        const node* n;
        std::size_t pos; ///< where the next filter level starts; > filter.size(): none left
        bool subtree;    ///< below a '#': everything matches
    };
    boost::container::small_vector<frame, 32> stack{{&root, 0, false}};
    while (!stack.empty()) {
        const frame f = stack.back();
        stack.pop_back();
        const bool at_root = f.n == &root;
        // Wildcards at the first level do not match '$' topics [MQTT-4.7.2-1].
        const auto wildcard_may_enter = [&](const node& c) {
            return !(at_root && !c.level.empty() && c.level.front() == '$');
        };
        if (f.subtree) {
            if (f.n->msg) {
                out.push_back(f.n->msg);
            }
            f.n->children.for_each([&](const node& c) { stack.push_back({&c, 0, true}); });
            continue;
        }
        if (f.pos > filter.size()) {
            if (f.n->msg) {
                out.push_back(f.n->msg);
            }
            continue;
        }
        std::size_t end = filter.find('/', f.pos);
        if (end == std::string_view::npos) {
            end = filter.size();
        }
        const std::string_view level = filter.substr(f.pos, end - f.pos);
        const std::size_t next = end + 1;
        if (level == "#") {
            // The parent level too ("a/#" matches "a") [MQTT-4.7.1-2]; the root is no topic.
            if (!at_root && f.n->msg) {
                out.push_back(f.n->msg);
            }
            f.n->children.for_each([&](const node& c) {
                if (wildcard_may_enter(c)) {
                    stack.push_back({&c, 0, true});
                }
            });
        } else if (level == "+") {
            f.n->children.for_each([&](const node& c) {
                if (wildcard_may_enter(c)) {
                    stack.push_back({&c, next, false});
                }
            });
        } else if (const node* c = f.n->children.find(level)) {
            stack.push_back({c, next, false});
        }
    }
}

template <class F> void for_each_level(std::string_view s, F&& f) {
    std::size_t pos = 0;
    for (;;) {
        const std::size_t slash = s.find('/', pos);
        if (slash == std::string_view::npos) {
            f(s.substr(pos));
            return;
        }
        if (!f(s.substr(pos, slash - pos))) {
            return;
        }
        pos = slash + 1;
    }
}

} // namespace

struct retained_store::impl {
    std::array<shard, shard_count> shards;
    std::atomic<std::size_t> count{0};
};

retained_store::retained_store() : impl_(std::make_unique<impl>()) {}
retained_store::~retained_store() = default;

void retained_store::set(const message_ptr& m, session_store& log) {
    if (!m) {
        return;
    }
    const std::string_view topic = m->publish.topic;
    shard& sh = impl_->shards[shard_of_topic(topic)];
    auto root = sh.root.write();
    if (!m->publish.payload.empty()) {
        node* n = &*root;
        for_each_level(topic, [&](std::string_view level) {
            n = &n->children.find_or_create(level);
            return true;
        });
        if (!n->msg) {
            sh.messages.fetch_add(1, std::memory_order_relaxed);
            impl_->count.fetch_add(1, std::memory_order_relaxed);
        }
        n->msg = m;
        log.retained_set(*m);
        return;
    }
    // An empty payload removes the topic's retained message [MQTT-3.3.1-10, MQTT-3.3.1-11].
    boost::container::small_vector<node*, 8> path{&*root};
    bool found = true;
    for_each_level(topic, [&](std::string_view level) {
        node* c = path.back()->children.find(level);
        if (c == nullptr) {
            found = false;
            return false;
        }
        path.push_back(c);
        return true;
    });
    if (!found || !path.back()->msg) {
        return;
    }
    path.back()->msg.reset();
    log.retained_cleared(topic);
    sh.messages.fetch_sub(1, std::memory_order_relaxed);
    impl_->count.fetch_sub(1, std::memory_order_relaxed);
    // Prune the levels left empty so memory comes back.
    for (std::size_t i = path.size() - 1; i > 0 && path[i]->empty(); --i) {
        path[i - 1]->children.erase(path[i]->level);
    }
}

void retained_store::match(std::string_view filter, std::vector<message_ptr>& out) const {
    auto parsed = protocol::parse_topic_filter(filter);
    if (!parsed) {
        return;
    }
    const std::string_view f = parsed->filter;
    const std::size_t only = shard_of_filter(f);
    for (std::size_t i = 0; i < shard_count; ++i) {
        if (only != shard_count && i != only) {
            continue;
        }
        const shard& sh = impl_->shards[i];
        if (sh.messages.load(std::memory_order_relaxed) == 0) {
            continue;
        }
        auto root = sh.root.read();
        walk(*root, f, out);
    }
}

std::size_t retained_store::size() const noexcept {
    return impl_->count.load(std::memory_order_relaxed);
}

} // namespace tern::broker
