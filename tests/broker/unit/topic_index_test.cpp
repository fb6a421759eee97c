// topic_index: matching against a naive reference over random filters and topics, overlapping
// subscriptions, No Local, shared groups and their strategies, and a concurrency stress test
// (run under TSan by the tsan preset).

#include "index/topic_index.hpp"

#include <tern/protocol/topic.hpp>

#include <catch2/catch.hpp>

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <latch>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace tern::broker;
using tern::protocol::qos;

subscriber_ptr make_subscriber(std::uint64_t key, bool online = true) {
    auto s = std::make_shared<subscriber_handle>(key, "client-" + std::to_string(key));
    s->online.store(online);
    return s;
}

subscription opts(qos q = qos::at_most_once, std::uint32_t id = 0, bool no_local = false,
                  bool rap = false, std::uint32_t weight = 1) {
    subscription s;
    s.options.qos = q;
    s.options.no_local = no_local;
    s.options.retain_as_published = rap;
    s.identifier = id;
    s.weight = weight;
    return s;
}

std::vector<delivery> match(const topic_index& idx, std::string_view topic,
                            std::uint64_t publisher = 0, std::string_view client = {}) {
    std::vector<delivery> out;
    idx.match(publish_context{topic, publisher, client}, out);
    return out;
}

std::set<std::uint64_t> keys_of(const std::vector<delivery>& ds) {
    std::set<std::uint64_t> keys;
    for (const auto& d : ds) {
        keys.insert(d.to->key);
    }
    return keys;
}

std::vector<std::string_view> split(std::string_view s) {
    std::vector<std::string_view> levels;
    std::size_t pos = 0;
    for (;;) {
        const std::size_t slash = s.find('/', pos);
        if (slash == std::string_view::npos) {
            levels.push_back(s.substr(pos));
            return levels;
        }
        levels.push_back(s.substr(pos, slash - pos));
        pos = slash + 1;
    }
}

/// The naive reference: the rules of [MQTT-4.7] applied level by level, written independently
/// of both the trie and protocol::topic_matches.
bool reference_matches(std::string_view filter, std::string_view topic) {
    const auto f = split(filter);
    const auto t = split(topic);
    if (topic.starts_with('$') && (f[0] == "+" || f[0] == "#")) {
        return false; // [MQTT-4.7.2-1]
    }
    for (std::size_t i = 0; i < f.size(); ++i) {
        if (f[i] == "#") {
            return true; // also the parent level: "a/#" matches "a"
        }
        if (i >= t.size()) {
            return false;
        }
        if (f[i] != "+" && f[i] != t[i]) {
            return false;
        }
    }
    return f.size() == t.size();
}

const std::vector<std::string> level_pool = {"a", "b", "c", "", "dev", "$SYS", "$x", "42"};

std::string random_topic(std::mt19937& rng) {
    std::uniform_int_distribution<std::size_t> depth(1, 5);
    std::uniform_int_distribution<std::size_t> pick(0, level_pool.size() - 1);
    std::string t;
    const std::size_t n = depth(rng);
    for (std::size_t i = 0; i < n; ++i) {
        if (i != 0) {
            t += '/';
        }
        t += level_pool[pick(rng)];
    }
    return t.empty() ? random_topic(rng) : t; // an empty topic is invalid [MQTT-4.7.3-1]
}

std::string random_filter(std::mt19937& rng) {
    std::uniform_int_distribution<std::size_t> depth(1, 5);
    std::uniform_int_distribution<std::size_t> pick(0, level_pool.size() + 2);
    std::string f;
    const std::size_t n = depth(rng);
    for (std::size_t i = 0; i < n; ++i) {
        if (i != 0) {
            f += '/';
        }
        const std::size_t p = pick(rng);
        if (p == level_pool.size() + 2 && i + 1 == n) {
            f += '#';
        } else if (p >= level_pool.size()) {
            f += '+';
        } else {
            f += level_pool[p];
        }
    }
    return f.empty() ? random_filter(rng) : f; // an empty filter is invalid [MQTT-4.7.3-1]
}

} // namespace

TEST_CASE("reference matcher agrees with protocol::topic_matches", "[topic_index]") {
    std::mt19937 rng(7);
    for (int i = 0; i < 20000; ++i) {
        const auto f = random_filter(rng);
        const auto t = random_topic(rng);
        INFO(f << " vs " << t);
        REQUIRE(reference_matches(f, t) == tern::protocol::topic_matches(f, t));
    }
}

TEST_CASE("match spec table [MQTT-4.7.1-2] [MQTT-4.7.1-3] [MQTT-4.7.2-1]", "[topic_index]") {
    struct row {
        const char* filter;
        const char* topic;
        bool matches;
    };
    const row rows[] = {
        {"#", "a", true},
        {"#", "/", true},
        {"#", "$SYS/x", false},
        {"+/x", "$SYS/x", false},
        {"+", "$SYS", false},
        {"$SYS/#", "$SYS/x", true},
        {"$SYS/#", "$SYS", true},
        {"$SYS/+", "$SYS/x", true},
        {"a/#", "a", true},
        {"a/#", "a/", true},
        {"a/#", "a/b/c", true},
        {"a/+", "a", false},
        {"a/+", "a/", true},
        {"+/+", "/", true},
        {"+", "/", false},
        {"a//b", "a//b", true},
        {"a/+/b", "a//b", true},
        {"a/b", "a//b", false},
        {"/a", "/a", true},
        {"+/a", "/a", true},
        {"a/", "a", false},
        {"a", "a/", false},
        {"+/#", "a", true},
        {"+/+/#", "a", false},
        {"dev/+/t", "dev/42/t", true},
        {"dev/42/#", "dev/42", true},
        {"dev/#", "dev", true},
    };
    for (const row& r : rows) {
        topic_index idx;
        idx.subscribe(make_subscriber(1), r.filter, opts());
        INFO(r.filter << " vs " << r.topic);
        CHECK(match(idx, r.topic).size() == (r.matches ? 1U : 0U));
        CHECK(reference_matches(r.filter, r.topic) == r.matches);
    }
}

TEST_CASE("random filters and topics match like the reference", "[topic_index]") {
    std::mt19937 rng(12345);
    topic_index idx;
    // 600 filters over 50 subscribers: overlap within one subscriber is common.
    struct entry {
        std::string filter;
        std::uint64_t key;
        subscription sub;
    };
    std::vector<entry> subs;
    std::map<std::pair<std::uint64_t, std::string>, std::size_t> live; // (key, filter) → subs index
    std::vector<subscriber_ptr> handles;
    for (std::uint64_t k = 1; k <= 50; ++k) {
        handles.push_back(make_subscriber(k));
    }
    std::uniform_int_distribution<int> q(0, 2);
    for (std::uint32_t i = 0; i < 600; ++i) {
        const std::uint64_t key = 1 + i % 50;
        entry e{random_filter(rng), key, opts(static_cast<qos>(q(rng)), i % 3 == 0 ? 0 : i)};
        const bool fresh = live.find({key, e.filter}) == live.end();
        INFO("filter " << e.filter << " key " << key);
        REQUIRE(idx.subscribe(handles[key - 1], e.filter, e.sub) == fresh);
        if (fresh) {
            live[{key, e.filter}] = subs.size();
            subs.push_back(e);
        } else {
            subs[live[{key, e.filter}]].sub = e.sub; // replaced
        }
    }
    REQUIRE(idx.subscription_count() == live.size());

    const auto check_all = [&] {
        std::mt19937 trng(99);
        for (int i = 0; i < 400; ++i) {
            const std::string topic = random_topic(trng);
            // Expected: per subscriber, max QoS and the identifiers of all matching filters.
            std::map<std::uint64_t, std::pair<qos, std::multiset<std::uint32_t>>> expected;
            for (const auto& [kf, pos] : live) {
                const entry& e = subs[pos];
                if (!reference_matches(e.filter, topic)) {
                    continue;
                }
                auto [it, fresh] =
                    expected.try_emplace(e.key, e.sub.options.qos, std::multiset<std::uint32_t>{});
                it->second.first = std::max(it->second.first, e.sub.options.qos);
                if (e.sub.identifier != 0) {
                    it->second.second.insert(e.sub.identifier);
                }
            }
            const auto got = match(idx, topic);
            INFO("topic " << topic);
            REQUIRE(got.size() == expected.size());
            for (const auto& d : got) {
                auto it = expected.find(d.to->key);
                REQUIRE(it != expected.end());
                CHECK(d.qos == it->second.first);
                CHECK(std::multiset<std::uint32_t>(d.subscription_ids.begin(),
                                                   d.subscription_ids.end()) == it->second.second);
                CHECK_FALSE(d.group);
            }
        }
    };
    check_all();

    // Unsubscribe about half, then everything: the results follow, the count returns to 0.
    std::vector<std::pair<std::uint64_t, std::string>> keys;
    for (const auto& [kf, pos] : live) {
        keys.push_back(kf);
    }
    std::shuffle(keys.begin(), keys.end(), rng);
    for (std::size_t i = 0; i < keys.size() / 2; ++i) {
        REQUIRE(idx.unsubscribe(keys[i].first, keys[i].second));
        REQUIRE_FALSE(idx.unsubscribe(keys[i].first, keys[i].second));
        live.erase(keys[i]);
    }
    REQUIRE(idx.subscription_count() == live.size());
    check_all();
    for (const auto& [kf, pos] : std::map(live)) {
        REQUIRE(idx.unsubscribe(kf.first, kf.second));
        live.erase(kf);
    }
    REQUIRE(idx.subscription_count() == 0);
    check_all();
}

TEST_CASE("overlapping subscriptions: one delivery, highest QoS, every identifier "
          "[MQTT-3.3.4-2] [MQTT-3.3.4-3]",
          "[topic_index]") {
    topic_index idx;
    auto a = make_subscriber(1);
    auto b = make_subscriber(2);
    idx.subscribe(a, "s/t", opts(qos::at_least_once, 5));
    idx.subscribe(a, "s/+", opts(qos::exactly_once, 0));
    idx.subscribe(a, "#", opts(qos::at_most_once, 7, false, true));
    idx.subscribe(b, "s/#", opts(qos::at_most_once, 9));
    auto got = match(idx, "s/t");
    REQUIRE(got.size() == 2);
    std::sort(got.begin(), got.end(), [](auto& x, auto& y) { return x.to->key < y.to->key; });
    CHECK(got[0].to == a);
    CHECK(got[0].qos == qos::exactly_once);
    CHECK(got[0].retain_as_published);
    CHECK(std::multiset<std::uint32_t>(got[0].subscription_ids.begin(),
                                       got[0].subscription_ids.end()) ==
          std::multiset<std::uint32_t>{5, 7});
    CHECK(got[1].to == b);
    CHECK(got[1].qos == qos::at_most_once);
    CHECK_FALSE(got[1].retain_as_published);
    CHECK(got[1].subscription_ids.size() == 1);

    SECTION("many overlapping subscribers (the dedup table path)") {
        std::vector<subscriber_ptr> many;
        for (std::uint64_t k = 100; k < 400; ++k) {
            many.push_back(make_subscriber(k));
            idx.subscribe(many.back(), "s/t", opts(qos::at_most_once));
            idx.subscribe(many.back(), "s/+",
                          opts(qos::at_least_once, static_cast<std::uint32_t>(k)));
            idx.subscribe(many.back(), "+/t", opts(qos::at_most_once));
        }
        const auto all = match(idx, "s/t");
        REQUIRE(all.size() == 302);
        REQUIRE(keys_of(all).size() == 302);
        for (const auto& d : all) {
            if (d.to->key >= 100) {
                CHECK(d.qos == qos::at_least_once);
                REQUIRE(d.subscription_ids.size() == 1);
                CHECK(d.subscription_ids[0] == d.to->key);
            }
        }
    }
}

TEST_CASE("match appends to out and keeps what was there", "[topic_index]") {
    topic_index idx;
    idx.subscribe(make_subscriber(1), "a", opts());
    std::vector<delivery> out(3);
    idx.match(publish_context{"a", 0, {}}, out);
    REQUIRE(out.size() == 4);
    CHECK(out[3].to->key == 1);
}

TEST_CASE("No Local skips the publisher's own subscriptions [MQTT-3.8.3-3]", "[topic_index]") {
    topic_index idx;
    auto a = make_subscriber(1);
    idx.subscribe(a, "n/x", opts(qos::exactly_once, 1, true));
    idx.subscribe(make_subscriber(2), "n/x", opts(qos::at_most_once, 0, true));
    CHECK(keys_of(match(idx, "n/x", 1)) == std::set<std::uint64_t>{2});
    CHECK(keys_of(match(idx, "n/x", 2)) == std::set<std::uint64_t>{1});
    CHECK(keys_of(match(idx, "n/x", 3)) == std::set<std::uint64_t>{1, 2});

    // An overlapping subscription without No Local still delivers, with only its own QoS and id.
    idx.subscribe(a, "n/+", opts(qos::at_least_once, 2));
    auto got = match(idx, "n/x", 1);
    REQUIRE(got.size() == 2);
    std::sort(got.begin(), got.end(), [](auto& x, auto& y) { return x.to->key < y.to->key; });
    CHECK(got[0].to == a);
    CHECK(got[0].qos == qos::at_least_once);
    REQUIRE(got[0].subscription_ids.size() == 1);
    CHECK(got[0].subscription_ids[0] == 2);
}

TEST_CASE("subscribe replaces and reports new ones; unsubscribe reports removal", "[topic_index]") {
    topic_index idx;
    auto a = make_subscriber(1);
    CHECK(idx.subscribe(a, "r/s", opts(qos::at_most_once, 1)));
    CHECK_FALSE(idx.subscribe(a, "r/s", opts(qos::exactly_once, 2)));
    CHECK(idx.subscription_count() == 1);
    auto got = match(idx, "r/s");
    REQUIRE(got.size() == 1);
    CHECK(got[0].qos == qos::exactly_once);
    REQUIRE(got[0].subscription_ids.size() == 1);
    CHECK(got[0].subscription_ids[0] == 2);

    CHECK_FALSE(idx.unsubscribe(2, "r/s"));
    CHECK_FALSE(idx.unsubscribe(1, "r/+"));
    CHECK_FALSE(idx.unsubscribe(1, "r/s/t"));
    CHECK_FALSE(idx.unsubscribe(1, "r"));
    CHECK(idx.unsubscribe(1, "r/s"));
    CHECK_FALSE(idx.unsubscribe(1, "r/s"));
    CHECK(idx.subscription_count() == 0);
    CHECK(match(idx, "r/s").empty());
    // An invalid filter is refused, not stored.
    CHECK_FALSE(idx.subscribe(a, "r/#/s", opts()));
    CHECK(idx.subscription_count() == 0);
}

TEST_CASE("a filter with many subscribers: O(1) add and remove, all delivered", "[topic_index]") {
    topic_index idx;
    std::vector<subscriber_ptr> subs;
    for (std::uint64_t k = 1; k <= 1000; ++k) {
        subs.push_back(make_subscriber(k));
        REQUIRE(idx.subscribe(subs.back(), "big/one", opts()));
    }
    CHECK(match(idx, "big/one").size() == 1000);
    for (std::uint64_t k = 1; k <= 1000; k += 2) {
        REQUIRE(idx.unsubscribe(k, "big/one"));
    }
    const auto got = keys_of(match(idx, "big/one"));
    REQUIRE(got.size() == 500);
    CHECK(std::all_of(got.begin(), got.end(), [](std::uint64_t k) { return k % 2 == 0; }));
    for (std::uint64_t k = 2; k <= 1000; k += 2) {
        REQUIRE(idx.unsubscribe(k, "big/one"));
    }
    CHECK(idx.subscription_count() == 0);
}

TEST_CASE("unsubscribe gives the memory of emptied nodes back", "[topic_index]") {
    topic_index idx;
    auto a = make_subscriber(1);
    // Warm up the per-thread match scratch and the shard tables first.
    idx.subscribe(a, "warm/up", opts());
    (void)match(idx, "warm/up");
    idx.unsubscribe(1, "warm/up");
    const auto in_use = [] {
        const auto mi = mallinfo2();
        return mi.uordblks + mi.hblkhd;
    };
    {
        // A sanitizer's allocator bypasses glibc's accounting: then there is nothing to check.
        const auto probe_before = in_use();
        std::vector<std::unique_ptr<char[]>> probe;
        for (int i = 0; i < 256; ++i) {
            probe.push_back(std::make_unique<char[]>(1024));
        }
        if (in_use() < probe_before + 256 * 1024) {
            SUCCEED("malloc accounting unavailable (sanitizer allocator)");
            return;
        }
    }
    const auto before = in_use();
    for (int i = 0; i < 20000; ++i) {
        const std::string f =
            "dev/" + std::to_string(i) + "/telemetry/+/long-level-name-" + std::to_string(i);
        idx.subscribe(a, f, opts());
    }
    CHECK(in_use() > before + 20000 * 100);
    for (int i = 0; i < 20000; ++i) {
        const std::string f =
            "dev/" + std::to_string(i) + "/telemetry/+/long-level-name-" + std::to_string(i);
        REQUIRE(idx.unsubscribe(1, f));
    }
    CHECK(idx.subscription_count() == 0);
    // Within glibc's per-thread cache (tcache chunks count as in use): 64 KiB against the
    // megabytes the subscriptions took.
    CHECK(in_use() <= before + 64 * 1024);
}

TEST_CASE("deep filters and topics do not exhaust the stack", "[topic_index]") {
    topic_index idx;
    std::string deep_filter;
    std::string deep_topic;
    for (int i = 0; i < 30000; ++i) {
        deep_filter += i == 0 ? "+" : "/+";
        deep_topic += i == 0 ? "x" : "/x";
    }
    idx.subscribe(make_subscriber(1), deep_filter, opts());
    idx.subscribe(make_subscriber(2), deep_topic, opts());
    CHECK(match(idx, deep_topic).size() == 2);
    // The index (and its 60 000 nodes) is destroyed at scope exit without recursion.
}

// ---------------------------------------------------------------------------------------------
// Shared subscriptions

namespace {

std::map<std::uint64_t, int> tally(const topic_index& idx, std::string_view topic, int n,
                                   std::string_view client = "pub") {
    std::map<std::uint64_t, int> counts;
    for (int i = 0; i < n; ++i) {
        const auto got = match(idx, topic, 0, client);
        REQUIRE(got.size() == 1);
        REQUIRE(got[0].group);
        ++counts[got[0].to->key];
    }
    return counts;
}

} // namespace

TEST_CASE("shared group: one delivery per group, with the group [MQTT-4.8.2]",
          "[topic_index][shared]") {
    topic_index idx;
    auto a = make_subscriber(1);
    auto b = make_subscriber(2);
    CHECK(idx.subscribe(a, "$share/g/s/+", opts(qos::at_least_once, 4, false, true)));
    CHECK(idx.subscribe(b, "$share/g/s/+", opts(qos::exactly_once)));
    CHECK(idx.subscription_count() == 2);
    auto got = match(idx, "s/x");
    REQUIRE(got.size() == 1);
    REQUIRE(got[0].group);
    CHECK(got[0].group->name() == "g");
    CHECK(got[0].group->filter() == "s/+");
    CHECK(got[0].group->member_count() == 2);
    if (got[0].to == a) {
        CHECK(got[0].qos == qos::at_least_once);
        CHECK(got[0].retain_as_published);
        CHECK(got[0].subscription_ids.size() == 1);
    } else {
        CHECK(got[0].qos == qos::exactly_once);
        CHECK(got[0].subscription_ids.empty());
    }
    CHECK(match(idx, "s").empty());
    CHECK(match(idx, "t/x").empty());

    SECTION("two groups on one filter, and a member's own subscription: all deliver") {
        idx.subscribe(a, "$share/h/s/+", opts());
        idx.subscribe(a, "s/#", opts(qos::at_most_once, 0, true)); // No Local: not for shared
        got = match(idx, "s/x", 1);
        // g and h deliver once each; a's own No Local subscription is skipped for itself.
        REQUIRE(got.size() == 2);
        CHECK(got[0].group);
        CHECK(got[1].group);
        CHECK(got[0].group != got[1].group);
        got = match(idx, "s/x", 2);
        REQUIRE(got.size() == 3);
        CHECK(std::count_if(got.begin(), got.end(), [](auto& d) { return !d.group; }) == 1);
    }
    SECTION("same group name on another filter is another group") {
        idx.subscribe(a, "$share/g/s/x", opts());
        got = match(idx, "s/x");
        REQUIRE(got.size() == 2);
        CHECK(got[0].group != got[1].group);
        CHECK(idx.subscription_count() == 3);
    }
    SECTION("$ topics and first-level wildcards in shared filters [MQTT-4.7.2-1]") {
        idx.subscribe(a, "$share/g/#", opts());
        idx.subscribe(a, "$share/g/$SYS/#", opts());
        CHECK(match(idx, "$SYS/x").size() == 1);
        CHECK(match(idx, "q").size() == 1);
    }
}

TEST_CASE("round robin gives exact weighted shares", "[topic_index][shared]") {
    topic_index idx;
    auto a = make_subscriber(1);
    auto b = make_subscriber(2);
    idx.subscribe(a, "$share/w/rr", opts(qos::at_most_once, 0, false, false, 3));
    idx.subscribe(b, "$share/w/rr", opts(qos::at_most_once, 0, false, false, 1));
    // Every window of sum(weights) = 4 consecutive messages: 3 to a, 1 to b.
    std::vector<std::uint64_t> seq;
    for (int i = 0; i < 4000; ++i) {
        seq.push_back(match(idx, "rr").at(0).to->key);
    }
    for (std::size_t start = 0; start + 4 <= seq.size(); ++start) {
        REQUIRE(std::count(seq.begin() + static_cast<std::ptrdiff_t>(start),
                           seq.begin() + static_cast<std::ptrdiff_t>(start + 4), 1) == 3);
    }

    SECTION("re-subscribing replaces the weight (not a new member)") {
        CHECK_FALSE(idx.subscribe(b, "$share/w/rr", opts(qos::at_most_once, 0, false, false, 3)));
        CHECK(idx.subscription_count() == 2);
        const auto counts = tally(idx, "rr", 600);
        CHECK(counts.at(1) == 300);
        CHECK(counts.at(2) == 300);
    }
    SECTION("weight 0 counts as 1") {
        idx.subscribe(a, "$share/w/rr", opts(qos::at_most_once, 0, false, false, 0));
        const auto counts = tally(idx, "rr", 600);
        CHECK(counts.at(1) == 300);
        CHECK(counts.at(2) == 300);
    }
}

TEST_CASE("round robin: membership changes keep shares exact for the new membership",
          "[topic_index][shared]") {
    topic_index idx;
    std::vector<subscriber_ptr> m;
    for (std::uint64_t k = 1; k <= 20; ++k) {
        m.push_back(make_subscriber(k));
        idx.subscribe(
            m.back(), "$share/g/x",
            opts(qos::at_most_once, 0, false, false, static_cast<std::uint32_t>(k % 4 + 1)));
    }
    // Remove members from the middle (the last one moves into the hole, weights follow).
    for (std::uint64_t k : {3U, 7U, 8U, 20U, 1U}) {
        REQUIRE(idx.unsubscribe(k, "$share/g/x"));
    }
    std::uint32_t total = 0;
    for (std::uint64_t k = 1; k <= 20; ++k) {
        if (k != 3 && k != 7 && k != 8 && k != 20 && k != 1) {
            total += static_cast<std::uint32_t>(k % 4 + 1);
        }
    }
    const auto counts = tally(idx, "x", static_cast<int>(total * 10));
    REQUIRE(counts.size() == 15);
    for (const auto& [key, n] : counts) {
        CHECK(n == static_cast<int>((key % 4 + 1) * 10));
    }
}

TEST_CASE("concurrent round-robin picks never take the same slot", "[topic_index][shared]") {
    topic_index idx;
    idx.subscribe(make_subscriber(1), "$share/g/c", opts(qos::at_most_once, 0, false, false, 1));
    idx.subscribe(make_subscriber(2), "$share/g/c", opts(qos::at_most_once, 0, false, false, 2));
    constexpr int threads = 4;
    constexpr int per_thread = 3000; // 12 000 picks in all: a multiple of the total weight 3
    std::array<std::array<int, 3>, threads> counts{};
    std::latch start(threads);
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
        ts.emplace_back([&, t] {
            start.arrive_and_wait();
            std::vector<delivery> out;
            for (int i = 0; i < per_thread; ++i) {
                out.clear();
                idx.match(publish_context{"c", 0, {}}, out);
                ++counts[static_cast<std::size_t>(t)][out.at(0).to->key];
            }
        });
    }
    for (auto& t : ts) {
        t.join();
    }
    int one = 0;
    int two = 0;
    for (const auto& c : counts) {
        one += c[1];
        two += c[2];
    }
    CHECK(one == 4000);
    CHECK(two == 8000);
}

TEST_CASE("random strategy follows the weights", "[topic_index][shared]") {
    topic_index idx(share_strategy::random);
    idx.subscribe(make_subscriber(1), "$share/g/r", opts(qos::at_most_once, 0, false, false, 3));
    idx.subscribe(make_subscriber(2), "$share/g/r", opts(qos::at_most_once, 0, false, false, 1));
    const auto counts = tally(idx, "r", 40000);
    // Expected 30 000 / 10 000; sigma = sqrt(40000 * 0.75 * 0.25) ≈ 87: allow 7 sigma.
    CHECK(std::abs(counts.at(1) - 30000) < 600);
    CHECK(std::abs(counts.at(2) - 10000) < 600);
}

TEST_CASE("hash strategies are sticky and spread", "[topic_index][shared]") {
    for (auto strategy : {share_strategy::client_hash, share_strategy::topic_hash}) {
        topic_index idx(strategy);
        for (std::uint64_t k = 1; k <= 4; ++k) {
            idx.subscribe(make_subscriber(k), "$share/g/h/+", opts());
        }
        std::set<std::uint64_t> used;
        for (int c = 0; c < 200; ++c) {
            const std::string id = "publisher-" + std::to_string(c);
            const std::string topic = "h/" + std::to_string(c);
            const auto first = match(idx, topic, 0, id).at(0).to->key;
            used.insert(first);
            for (int i = 0; i < 10; ++i) {
                REQUIRE(match(idx, topic, 0, id).at(0).to->key == first);
            }
            if (strategy == share_strategy::client_hash) {
                // Sticky per publisher whatever the topic.
                REQUIRE(match(idx, "h/other", 0, id).at(0).to->key == first);
            } else {
                // Sticky per topic whatever the publisher.
                REQUIRE(match(idx, topic, 0, "someone-else").at(0).to->key == first);
            }
        }
        CHECK(used.size() == 4);
    }
}

TEST_CASE("hash strategies follow the weights", "[topic_index][shared]") {
    topic_index idx(share_strategy::topic_hash);
    idx.subscribe(make_subscriber(1), "$share/g/h/+", opts(qos::at_most_once, 0, false, false, 3));
    idx.subscribe(make_subscriber(2), "$share/g/h/+", opts(qos::at_most_once, 0, false, false, 1));
    std::map<std::uint64_t, int> counts;
    for (int c = 0; c < 8000; ++c) {
        ++counts[match(idx, "h/" + std::to_string(c)).at(0).to->key];
    }
    CHECK(std::abs(counts.at(1) - 6000) < 400);
}

TEST_CASE("least_inflight picks the least loaded, ties in turn", "[topic_index][shared]") {
    topic_index idx(share_strategy::least_inflight);
    std::vector<subscriber_ptr> m;
    for (std::uint64_t k = 1; k <= 4; ++k) {
        m.push_back(make_subscriber(k));
        idx.subscribe(m.back(), "$share/g/l", opts());
    }
    m[0]->inflight = 5;
    m[1]->inflight = 2;
    m[2]->inflight = 7;
    m[3]->inflight = 3;
    for (int i = 0; i < 10; ++i) {
        CHECK(match(idx, "l").at(0).to == m[1]);
    }
    m[3]->inflight = 2;
    const auto counts = tally(idx, "l", 100);
    CHECK(counts.size() == 2);
    CHECK(counts.at(2) == 50);
    CHECK(counts.at(4) == 50);
    SECTION("weighted: inflight per unit of weight") {
        idx.subscribe(m[2], "$share/g/l", opts(qos::at_most_once, 0, false, false, 8)); // 7/8
        CHECK(match(idx, "l").at(0).to == m[2]);
    }
}

TEST_CASE("online members first, offline ones only when none is online", "[topic_index][shared]") {
    for (auto strategy :
         {share_strategy::round_robin, share_strategy::random, share_strategy::client_hash,
          share_strategy::topic_hash, share_strategy::least_inflight}) {
        INFO("strategy " << static_cast<int>(strategy));
        topic_index idx(strategy);
        auto a = make_subscriber(1, false);
        auto b = make_subscriber(2, true);
        auto c = make_subscriber(3, true);
        for (const auto& s : {a, b, c}) {
            idx.subscribe(s, "$share/g/o", opts());
        }
        a->inflight = 0;
        b->inflight = 10;
        c->inflight = 10;
        std::map<std::uint64_t, int> counts;
        for (int i = 0; i < 300; ++i) {
            const std::string client = "c" + std::to_string(i);
            ++counts[match(idx, "o", 0, client).at(0).to->key];
        }
        CHECK(counts.count(1) == 0);
        if (strategy == share_strategy::round_robin) {
            // The offline member's turn goes to the next draw, so the online ones share evenly.
            CHECK(counts.at(2) == 150);
            CHECK(counts.at(3) == 150);
        }
        b->online = false;
        c->online = false;
        CHECK(match(idx, "o").size() == 1); // all offline: one of them (persistent sessions)
        a->online = true;
        for (int i = 0; i < 20; ++i) {
            CHECK(match(idx, "o", 0, "c" + std::to_string(i)).at(0).to == a);
        }
    }
}

TEST_CASE("pick never returns the excluded member", "[topic_index][shared]") {
    topic_index idx;
    auto a = make_subscriber(1, false);
    auto b = make_subscriber(2, true);
    idx.subscribe(a, "$share/g/e", opts());
    idx.subscribe(b, "$share/g/e", opts());
    const auto g = match(idx, "e").at(0).group;
    REQUIRE(g);
    const publish_context ctx{"e", 0, {}};
    for (int i = 0; i < 20; ++i) {
        delivery d;
        REQUIRE(g->pick(ctx, 2, d));
        CHECK(d.to == a); // offline, but the only one left
        CHECK(d.group == g);
    }
    idx.unsubscribe(1, "$share/g/e");
    delivery d;
    d.qos = qos::exactly_once;
    CHECK_FALSE(g->pick(ctx, 2, d));
    CHECK_FALSE(d.to); // untouched
    CHECK(d.qos == qos::exactly_once);
    CHECK(g->pick(ctx, 0, d));
    CHECK(d.to == b);
}

TEST_CASE("a group disappears with its last member; held pointers stay safe",
          "[topic_index][shared]") {
    topic_index idx;
    auto a = make_subscriber(1);
    auto b = make_subscriber(2);
    idx.subscribe(a, "$share/g/z/+", opts());
    idx.subscribe(b, "$share/g/z/+", opts());
    const shared_group_ptr held = match(idx, "z/1").at(0).group;
    CHECK(idx.unsubscribe(1, "$share/g/z/+"));
    CHECK_FALSE(idx.unsubscribe(1, "$share/g/z/+"));
    CHECK_FALSE(idx.unsubscribe(2, "$share/other/z/+"));
    CHECK(held->member_count() == 1);
    CHECK(idx.unsubscribe(2, "$share/g/z/+"));
    CHECK(held->member_count() == 0);
    CHECK(idx.subscription_count() == 0);
    CHECK(match(idx, "z/1").empty());
    delivery d;
    CHECK_FALSE(held->pick(publish_context{"z/1", 0, {}}, 0, d));
    // A later subscription makes a new group; the old pointer stays empty.
    idx.subscribe(a, "$share/g/z/+", opts());
    const auto now = match(idx, "z/1").at(0).group;
    CHECK(now != held);
    CHECK_FALSE(held->pick(publish_context{"z/1", 0, {}}, 0, d));
}

TEST_CASE("per-group strategy overrides apply to existing and future groups",
          "[topic_index][shared]") {
    topic_index idx; // default round robin
    std::vector<subscriber_ptr> m;
    for (std::uint64_t k = 1; k <= 3; ++k) {
        m.push_back(make_subscriber(k));
        idx.subscribe(m.back(), "$share/lf/p", opts());
        idx.subscribe(m.back(), "$share/rr/p", opts());
    }
    m[0]->inflight = 9;
    m[1]->inflight = 1;
    m[2]->inflight = 9;
    idx.set_group_strategy("lf", share_strategy::least_inflight);
    for (int i = 0; i < 30; ++i) {
        for (const auto& d : match(idx, "p")) {
            if (d.group->name() == "lf") {
                CHECK(d.to == m[1]);
            }
        }
    }
    // The other group stays round robin.
    std::map<std::uint64_t, int> rr;
    for (int i = 0; i < 30; ++i) {
        for (const auto& d : match(idx, "p")) {
            if (d.group->name() == "rr") {
                ++rr[d.to->key];
            }
        }
    }
    CHECK(rr.size() == 3);
    // A future group with that name, and one created after all "lf" groups are gone.
    idx.subscribe(m[0], "$share/lf/q", opts());
    idx.subscribe(m[1], "$share/lf/q", opts());
    CHECK(match(idx, "q").at(0).to == m[1]);
    for (std::uint64_t k = 1; k <= 3; ++k) {
        idx.unsubscribe(k, "$share/lf/p");
    }
    idx.unsubscribe(1, "$share/lf/q");
    idx.unsubscribe(2, "$share/lf/q");
    idx.subscribe(m[2], "$share/lf/q", opts());
    idx.subscribe(m[1], "$share/lf/q", opts());
    CHECK(match(idx, "q").at(0).to == m[1]);
    // Overriding back.
    idx.set_group_strategy("lf", share_strategy::round_robin);
    CHECK(tally(idx, "q", 10).size() == 2);
}

// ---------------------------------------------------------------------------------------------
// Concurrency

TEST_CASE("stress: matches run while others subscribe and unsubscribe",
          "[topic_index][concurrency]") {
    topic_index idx;
    // Stable subscriptions, present throughout: every match must see them, exactly once.
    auto stable = make_subscriber(1);
    idx.subscribe(stable, "dev/+/telemetry", opts(qos::at_least_once, 11));
    idx.subscribe(stable, "#", opts(qos::at_most_once, 12));
    auto member = make_subscriber(2);
    idx.subscribe(member, "$share/g/dev/#", opts());

    constexpr int writers = 2;
    constexpr int readers = 3;
    constexpr int iterations = 20000;
    std::atomic<bool> failed{false};
    std::latch start(writers + readers + 1); // all threads begin together, so they overlap
    std::vector<std::thread> ts;
    for (int w = 0; w < writers; ++w) {
        ts.emplace_back([&, w] {
            start.arrive_and_wait();
            std::mt19937 rng(static_cast<unsigned>(w));
            std::vector<subscriber_ptr> mine;
            for (int i = 0; i < 50; ++i) {
                mine.push_back(make_subscriber(1000 + static_cast<std::uint64_t>(w) * 100 +
                                               static_cast<std::uint64_t>(i)));
            }
            const char* filters[] = {"dev/1/telemetry", "dev/+/telemetry", "dev/#", "+/1/+",
                                     "$share/g/dev/#",  "$share/h/+/1/#",  "cmd/1", "dev/2/#"};
            for (int i = 0; i < iterations; ++i) {
                const auto& s = mine[rng() % mine.size()];
                const char* f = filters[rng() % std::size(filters)];
                if (rng() % 2 == 0) {
                    idx.subscribe(s, f,
                                  opts(qos::exactly_once, 3, false, false,
                                       static_cast<std::uint32_t>(1 + rng() % 3)));
                } else {
                    idx.unsubscribe(s->key, f);
                }
            }
            for (const auto& s : mine) {
                for (const char* f : filters) {
                    idx.unsubscribe(s->key, f);
                }
            }
        });
    }
    for (int r = 0; r < readers; ++r) {
        ts.emplace_back([&, r] {
            start.arrive_and_wait();
            std::vector<delivery> out;
            const std::string topics[] = {"dev/1/telemetry", "dev/2/telemetry", "cmd/1"};
            for (int i = 0; i < iterations; ++i) {
                out.clear();
                const std::string& t = topics[static_cast<std::size_t>(i + r) % 3];
                idx.match(publish_context{t, 0, "pub"}, out);
                std::set<std::uint64_t> seen;
                int stable_count = 0;
                int g_count = 0;
                for (const auto& d : out) {
                    if (!d.to) {
                        failed = true;
                        continue;
                    }
                    if (!d.group) {
                        if (!seen.insert(d.to->key).second) {
                            failed = true; // a non-shared receiver twice
                        }
                        if (d.to == stable) {
                            ++stable_count;
                            const bool dev = t.starts_with("dev/");
                            if (d.qos != (dev ? qos::at_least_once : qos::at_most_once) ||
                                d.subscription_ids.size() != (dev ? 2U : 1U)) {
                                failed = true;
                            }
                        }
                    } else if (d.group->name() == "g") {
                        ++g_count;
                    }
                }
                // "#" always matches; group g (always has `member`) delivers once on dev/.
                if (stable_count != 1 || g_count != (t.starts_with("dev/") ? 1 : 0)) {
                    failed = true;
                }
            }
        });
    }
    // A session handing messages back through a held group pointer, concurrently too.
    ts.emplace_back([&] {
        start.arrive_and_wait();
        std::vector<delivery> out;
        idx.match(publish_context{"dev/9/x", 0, {}}, out);
        shared_group_ptr g;
        for (auto& d : out) {
            if (d.group) {
                g = d.group;
            }
        }
        if (!g) {
            failed = true;
            return;
        }
        for (int i = 0; i < iterations; ++i) {
            delivery d;
            if (!g->pick(publish_context{"dev/9/x", 0, {}}, 0, d) || !d.to) {
                failed = true;
            }
        }
    });
    for (auto& t : ts) {
        t.join();
    }
    CHECK_FALSE(failed);
    CHECK(idx.subscription_count() == 3);
    idx.unsubscribe(1, "dev/+/telemetry");
    idx.unsubscribe(1, "#");
    idx.unsubscribe(2, "$share/g/dev/#");
    CHECK(idx.subscription_count() == 0);
    CHECK(match(idx, "dev/1/telemetry").empty());
}

TEST_CASE("a subscription with hash_skips_parent (AWS IoT's rule): 'a/#' matches 'a/' and "
          "below, not 'a'",
          "[topic_index][aws-iot]") {
    topic_index idx;
    auto aws_sub = opts(qos::at_least_once);
    aws_sub.hash_skips_parent = true;
    idx.subscribe(make_subscriber(1), "a/#", aws_sub);
    idx.subscribe(make_subscriber(2), "a/#", opts()); // MQTT's rule [MQTT-4.7.1-2]
    auto aws_root = aws_sub;
    idx.subscribe(make_subscriber(3), "#", aws_root);
    CHECK(keys_of(match(idx, "a")) == std::set<std::uint64_t>{2, 3});
    CHECK(keys_of(match(idx, "a/")) == std::set<std::uint64_t>{1, 2, 3});
    CHECK(keys_of(match(idx, "a/b/c")) == std::set<std::uint64_t>{1, 2, 3});
    CHECK(keys_of(match(idx, "b")) == std::set<std::uint64_t>{3});
}

TEST_CASE("a shared group whose members all have hash_skips_parent: '$share/g/a/#' does not "
          "match 'a'; a mixed group keeps MQTT's rule",
          "[topic_index][shared][aws-iot]") {
    topic_index idx;
    auto aws_sub = opts(qos::at_least_once);
    aws_sub.hash_skips_parent = true;
    idx.subscribe(make_subscriber(1), "$share/aws/a/#", aws_sub);
    idx.subscribe(make_subscriber(2), "$share/aws/a/#", aws_sub);
    idx.subscribe(make_subscriber(3), "$share/mixed/a/#", aws_sub);
    idx.subscribe(make_subscriber(4), "$share/mixed/a/#", opts());
    const auto parent = match(idx, "a");
    REQUIRE(parent.size() == 1);
    CHECK(parent[0].group->name() == "mixed");
    CHECK(match(idx, "a/b").size() == 2);
}
