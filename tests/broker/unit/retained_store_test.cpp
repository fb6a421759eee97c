// retained_store: set/replace/clear, matching against a naive reference over random topics and
// filters ($ topics, empty levels, '#', '+'), and concurrent set/match (run under TSan).

#include "index/retained_store.hpp"
#include "recording_session_store.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <latch>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace tern::broker;

/// A message owning its topic and payload bytes, as a received frame would.
message_ptr make_message(std::string_view topic, std::string_view payload) {
    auto bytes = std::make_shared<std::uint8_t[]>(topic.size() + payload.size() + 1);
    std::copy(topic.begin(), topic.end(), bytes.get());
    std::copy(payload.begin(), payload.end(), bytes.get() + topic.size());
    auto m = std::make_shared<message>();
    const char* base = reinterpret_cast<const char*>(bytes.get());
    m->publish.topic = std::string_view(base, topic.size());
    m->publish.payload = std::string_view(base + topic.size(), payload.size());
    m->publish.retain = true;
    m->storage = std::move(bytes);
    return m;
}

std::set<std::string> topics_of(const std::vector<message_ptr>& ms) {
    std::set<std::string> out;
    for (const auto& m : ms) {
        out.emplace(m->publish.topic);
    }
    return out;
}

std::set<std::string> match(const retained_store& s, std::string_view filter) {
    std::vector<message_ptr> out;
    s.match(filter, out);
    const auto topics = topics_of(out);
    REQUIRE(topics.size() == out.size()); // each topic once
    return topics;
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

/// The naive reference [MQTT-4.7], independent of the store's trie walk.
bool reference_matches(std::string_view filter, std::string_view topic) {
    const auto f = split(filter);
    const auto t = split(topic);
    if (topic.starts_with('$') && (f[0] == "+" || f[0] == "#")) {
        return false; // [MQTT-4.7.2-1]
    }
    for (std::size_t i = 0; i < f.size(); ++i) {
        if (f[i] == "#") {
            return true;
        }
        if (i >= t.size() || (f[i] != "+" && f[i] != t[i])) {
            return false;
        }
    }
    return f.size() == t.size();
}

const std::vector<std::string> level_pool = {"a", "b", "", "dev", "$SYS", "$x", "7"};

std::string random_name(std::mt19937& rng, bool wildcards) {
    std::uniform_int_distribution<std::size_t> depth(1, 4);
    std::uniform_int_distribution<std::size_t> pick(0, level_pool.size() + (wildcards ? 2 : 0) - 1);
    std::string s;
    const std::size_t n = depth(rng);
    for (std::size_t i = 0; i < n; ++i) {
        if (i != 0) {
            s += '/';
        }
        const std::size_t p = pick(rng);
        if (p == level_pool.size() + 1 && i + 1 == n) {
            s += '#';
        } else if (p >= level_pool.size()) {
            s += '+';
        } else {
            s += level_pool[p];
        }
    }
    return s.empty() ? random_name(rng, wildcards) : s; // empty is invalid [MQTT-4.7.3-1]
}

} // namespace

TEST_CASE("retained: set, replace, clear [MQTT-3.3.1-10] [MQTT-3.3.1-11]", "[retained]") {
    retained_store s;
    tern::test::recording_session_store log;
    CHECK(s.size() == 0);
    s.set(make_message("a/b", "1"), log);
    s.set(make_message("a", "2"), log);
    CHECK(s.size() == 2);
    s.set(make_message("a/b", "3"), log); // replaces
    CHECK(s.size() == 2);
    std::vector<message_ptr> out;
    s.match("a/b", out);
    REQUIRE(out.size() == 1);
    CHECK(out[0]->publish.payload == "3");

    s.set(make_message("a/b", ""), log); // clears
    CHECK(s.size() == 1);
    CHECK(match(s, "a/b").empty());
    CHECK(match(s, "#") == std::set<std::string>{"a"});
    s.set(make_message("a/b", ""), log);   // clearing nothing: no-op
    s.set(make_message("x/y/z", ""), log); // unknown path: no-op
    CHECK(s.size() == 1);
    s.set(make_message("a", ""), log);
    CHECK(s.size() == 0);
    CHECK(match(s, "#").empty());
    // The store hears each change once, in order; clearing nothing reports nothing.
    CHECK(log.take() == std::vector<std::string>{"retain a/b 1", "retain a 2", "retain a/b 3",
                                                 "unretain a/b", "unretain a"});
}

TEST_CASE("retained: wildcard rules", "[retained]") {
    retained_store s;
    tern::test::recording_session_store log;
    for (const char* t : {"a", "a/b", "a/b/c", "a/", "/", "/a", "a//b", "$SYS/x", "$SYS", "dev/1/t",
                          "dev/2/t", "dev/2/s"}) {
        s.set(make_message(t, "p"), log);
    }
    using set = std::set<std::string>;
    CHECK(match(s, "#") ==
          set{"a", "a/b", "a/b/c", "a/", "/", "/a", "a//b", "dev/1/t", "dev/2/t", "dev/2/s"});
    CHECK(match(s, "$SYS/#") == set{"$SYS", "$SYS/x"}); // [MQTT-4.7.2-1]
    CHECK(match(s, "+") == set{"a"});
    CHECK(match(s, "+/+") == set{"a/b", "a/", "/", "/a"});
    CHECK(match(s, "a/#") == set{"a", "a/b", "a/b/c", "a/", "a//b"});
    CHECK(match(s, "a/+") == set{"a/b", "a/"});
    CHECK(match(s, "a/+/b") == set{"a//b"});
    CHECK(match(s, "+/x").empty());
    CHECK(match(s, "$SYS/+") == set{"$SYS/x"});
    CHECK(match(s, "dev/+/t") == set{"dev/1/t", "dev/2/t"});
    CHECK(match(s, "dev/2/#") == set{"dev/2/t", "dev/2/s"});
    CHECK(match(s, "dev/2/t") == set{"dev/2/t"});
    CHECK(match(s, "dev") == set{});
    CHECK(match(s, "$share/g/dev/1/t") == set{"dev/1/t"});
}

TEST_CASE("retained: random topics and filters match like the reference", "[retained]") {
    std::mt19937 rng(4242);
    retained_store s;
    tern::test::recording_session_store log;
    std::map<std::string, std::string> expected; // topic → payload
    for (int i = 0; i < 800; ++i) {
        const std::string t = random_name(rng, false);
        const std::string payload = (i % 5 == 0) ? "" : std::to_string(i);
        s.set(make_message(t, payload), log);
        if (payload.empty()) {
            expected.erase(t);
        } else {
            expected[t] = payload;
        }
    }
    REQUIRE(s.size() == expected.size());
    for (int i = 0; i < 500; ++i) {
        const std::string f = random_name(rng, true);
        std::set<std::string> want;
        for (const auto& [t, p] : expected) {
            if (reference_matches(f, t)) {
                want.insert(t);
            }
        }
        INFO("filter " << f);
        std::vector<message_ptr> out;
        s.match(f, out);
        REQUIRE(topics_of(out) == want);
        REQUIRE(out.size() == want.size());
        for (const auto& m : out) {
            CHECK(m->publish.payload == expected.at(std::string(m->publish.topic)));
        }
    }
    for (const auto& [t, p] : expected) {
        s.set(make_message(t, ""), log);
    }
    CHECK(s.size() == 0);
    CHECK(match(s, "#").empty());
}

TEST_CASE("retained: many topics under one level", "[retained]") {
    retained_store s;
    tern::test::recording_session_store log;
    for (int i = 0; i < 5000; ++i) {
        s.set(make_message("dev/" + std::to_string(i) + "/status", "on"), log);
    }
    CHECK(s.size() == 5000);
    CHECK(match(s, "dev/+/status").size() == 5000);
    CHECK(match(s, "dev/4711/status") == std::set<std::string>{"dev/4711/status"});
    CHECK(match(s, "dev/4711/#") == std::set<std::string>{"dev/4711/status"});
    for (int i = 0; i < 5000; i += 2) {
        s.set(make_message("dev/" + std::to_string(i) + "/status", ""), log);
    }
    CHECK(s.size() == 2500);
    CHECK(match(s, "#").size() == 2500);
}

TEST_CASE("retained: deep topics do not exhaust the stack", "[retained]") {
    retained_store s;
    tern::test::recording_session_store log;
    std::string deep;
    for (int i = 0; i < 30000; ++i) {
        deep += i == 0 ? "x" : "/x";
    }
    s.set(make_message(deep, "p"), log);
    CHECK(match(s, "#").size() == 1);
    CHECK(match(s, deep).size() == 1);
}

TEST_CASE("retained: concurrent set and match", "[retained][concurrency]") {
    retained_store s;
    tern::test::recording_session_store log;
    // Stable topics are never cleared: every match must find them.
    for (int i = 0; i < 20; ++i) {
        s.set(make_message("stable/" + std::to_string(i), "s"), log);
    }
    constexpr int iterations = 20000;
    std::atomic<bool> failed{false};
    std::latch start(5); // all threads begin together, so they overlap
    std::vector<std::thread> ts;
    for (int w = 0; w < 2; ++w) {
        ts.emplace_back([&, w] {
            start.arrive_and_wait();
            std::mt19937 rng(static_cast<unsigned>(w));
            for (int i = 0; i < iterations; ++i) {
                const std::string t = "churn/" + std::to_string(rng() % 50) + "/x";
                s.set(make_message(t, rng() % 2 == 0 ? "" : "v"), log);
            }
        });
    }
    for (int r = 0; r < 3; ++r) {
        ts.emplace_back([&, r] {
            start.arrive_and_wait();
            const char* filters[] = {"#", "stable/+", "+/+/x", "churn/#"};
            for (int i = 0; i < iterations; ++i) {
                std::vector<message_ptr> out;
                const char* f = filters[static_cast<std::size_t>(i + r) % std::size(filters)];
                s.match(f, out);
                std::size_t stable = 0;
                for (const auto& m : out) {
                    if (!m || m->publish.payload.empty()) {
                        failed = true;
                        continue;
                    }
                    stable += m->publish.topic.starts_with("stable/") ? 1U : 0U;
                }
                const bool wants_stable = f[0] == '#' || f[0] == 's';
                if (stable != (wants_stable ? 20U : 0U)) {
                    failed = true;
                }
            }
        });
    }
    for (auto& t : ts) {
        t.join();
    }
    CHECK_FALSE(failed);
    for (int i = 0; i < 50; ++i) {
        s.set(make_message("churn/" + std::to_string(i) + "/x", ""), log);
    }
    CHECK(s.size() == 20);
}
