// Subscription index and retained store micro-benchmarks (Google Benchmark): match latency over
// a device-fleet subscription set of 1k / 100k / 1M subscriptions, fan-out to 100 subscribers
// of one filter, subscribe + unsubscribe, a shared-group pick per strategy, and retained
// matches over 100k topics. Informational only, never a pass/fail gate (STYLE.md §8).
// Results and the machine: docs/topic-index.md.

#include <benchmark/benchmark.h>

#include "index/retained_store.hpp"
#include "index/topic_index.hpp"

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

/// The in-memory session store: retained changes are reported to it and cost nothing.
tern::broker::memory_session_store no_store;

using namespace tern::broker;
using tern::protocol::qos;

/// Resident set size of this process, in bytes.
std::size_t rss_bytes() {
    std::FILE* f = std::fopen("/proc/self/statm", "r");
    if (f == nullptr) {
        return 0;
    }
    unsigned long pages_total = 0;
    unsigned long pages_resident = 0;
    const int n = std::fscanf(f, "%lu %lu", &pages_total, &pages_resident);
    std::fclose(f);
    if (n != 2) {
        return 0;
    }
    return pages_resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

subscription opts(qos q = qos::at_least_once, std::uint32_t weight = 1) {
    subscription s;
    s.options.qos = q;
    s.weight = weight;
    return s;
}

/// A device fleet: `n` subscriptions over n/2 devices. Device d subscribes to `cmd/{d}`; a
/// per-device consumer subscribes to `dev/{d}/telemetry` (every tenth one to `dev/{d}/#`).
/// On top, a few fleet-wide wildcards: the ingest service (`dev/+/telemetry`), an audit log
/// (`cmd/#`) and an alarm watcher (`+/+/alarm`).
struct fleet {
    explicit fleet(std::size_t n) : devices(n / 2) {
        handles.reserve(devices + 3);
        for (std::size_t d = 0; d < devices + 3; ++d) {
            handles.push_back(std::make_shared<subscriber_handle>(d + 1, "c" + std::to_string(d)));
        }
        const std::size_t before = rss_bytes();
        for (std::size_t d = 0; d < devices; ++d) {
            const std::string id = std::to_string(d);
            idx.subscribe(handles[d], "cmd/" + id, opts());
            idx.subscribe(handles[d], d % 10 == 0 ? "dev/" + id + "/#" : "dev/" + id + "/telemetry",
                          opts());
        }
        idx.subscribe(handles[devices], "dev/+/telemetry", opts());
        idx.subscribe(handles[devices + 1], "cmd/#", opts());
        idx.subscribe(handles[devices + 2], "+/+/alarm", opts());
        bytes_per_subscription = static_cast<double>(rss_bytes() - before) /
                                 static_cast<double>(idx.subscription_count());
    }

    std::size_t devices;
    std::vector<subscriber_ptr> handles;
    topic_index idx;
    double bytes_per_subscription = 0;
};

/// Built once per size and shared by the benchmarks (and threads) that use it.
fleet& fleet_of(std::size_t n) {
    static std::mutex m;
    static std::map<std::size_t, std::unique_ptr<fleet>> fleets;
    std::lock_guard lock(m);
    auto& f = fleets[n];
    if (!f) {
        f = std::make_unique<fleet>(n);
    }
    return *f;
}

/// Topics of random devices, precomputed so the loop measures match() only.
std::vector<std::string> fleet_topics(std::size_t devices, unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<std::string> topics;
    for (int i = 0; i < 4096; ++i) {
        const std::string id = std::to_string(rng() % devices);
        topics.push_back(i % 2 == 0 ? "dev/" + id + "/telemetry" : "cmd/" + id);
    }
    return topics;
}

/// One publish: dev/{d}/telemetry reaches 2 receivers (the device's consumer and ingest),
/// cmd/{d} reaches 2 (the device and the audit log).
void match_fleet(benchmark::State& state) {
    fleet& f = fleet_of(static_cast<std::size_t>(state.range(0)));
    const auto topics = fleet_topics(f.devices, static_cast<unsigned>(state.thread_index()));
    std::vector<delivery> out;
    std::size_t i = 0;
    std::size_t receivers = 0;
    for (auto _ : state) {
        out.clear();
        f.idx.match(publish_context{topics[i++ & 4095], 7, "publisher"}, out);
        receivers += out.size();
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    // Per thread, averaged: the threaded run reports the same quantities as the single one.
    state.counters["receivers/op"] =
        benchmark::Counter(static_cast<double>(receivers) / static_cast<double>(state.iterations()),
                           benchmark::Counter::kAvgThreads);
    state.counters["bytes/sub"] =
        benchmark::Counter(f.bytes_per_subscription, benchmark::Counter::kAvgThreads);
}
BENCHMARK(match_fleet)->Arg(1000)->Arg(100000)->Arg(1000000)->Unit(benchmark::kNanosecond);
BENCHMARK(match_fleet)->Arg(100000)->Threads(2)->UseRealTime();

/// A topic with no subscriber at all (a miss still walks the shards it could be in).
void match_miss(benchmark::State& state) {
    fleet& f = fleet_of(100000);
    std::vector<delivery> out;
    for (auto _ : state) {
        out.clear();
        f.idx.match(publish_context{"other/1/x", 0, {}}, out);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(match_miss);

/// 100 subscribers on one filter: the cost per receiver of building the delivery list.
void match_fanout_100(benchmark::State& state) {
    topic_index idx;
    std::vector<subscriber_ptr> handles;
    for (std::uint64_t k = 1; k <= 100; ++k) {
        handles.push_back(std::make_shared<subscriber_handle>(k, "c" + std::to_string(k)));
        idx.subscribe(handles.back(), "fan/out", opts());
    }
    std::vector<delivery> out;
    for (auto _ : state) {
        out.clear();
        idx.match(publish_context{"fan/out", 0, {}}, out);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 100);
}
BENCHMARK(match_fanout_100);

/// 100 subscribers each with three overlapping filters: dedup through the per-thread table.
void match_overlap_100x3(benchmark::State& state) {
    topic_index idx;
    std::vector<subscriber_ptr> handles;
    for (std::uint64_t k = 1; k <= 100; ++k) {
        handles.push_back(std::make_shared<subscriber_handle>(k, "c" + std::to_string(k)));
        idx.subscribe(handles.back(), "fan/out", opts(qos::at_most_once));
        idx.subscribe(handles.back(), "fan/+", opts(qos::at_least_once));
        idx.subscribe(handles.back(), "#", opts(qos::at_most_once));
    }
    std::vector<delivery> out;
    for (auto _ : state) {
        out.clear();
        idx.match(publish_context{"fan/out", 0, {}}, out);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 100);
}
BENCHMARK(match_overlap_100x3);

/// A new device subscribing and unsubscribing in a fleet of 100k subscriptions.
void subscribe_unsubscribe(benchmark::State& state) {
    fleet& f = fleet_of(100000);
    auto who = std::make_shared<subscriber_handle>(1'000'000'000, "newcomer");
    std::vector<std::string> filters;
    for (int i = 0; i < 1024; ++i) {
        filters.push_back("dev/new-" + std::to_string(i) + "/telemetry");
    }
    std::size_t i = 0;
    for (auto _ : state) {
        const std::string& filter = filters[i++ & 1023];
        f.idx.subscribe(who, filter, opts());
        f.idx.unsubscribe(who->key, filter);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(subscribe_unsubscribe);

/// Subscribing to an existing filter shared by many (the node is there; only the set grows).
void subscribe_unsubscribe_crowded(benchmark::State& state) {
    topic_index idx;
    std::vector<subscriber_ptr> handles;
    for (std::uint64_t k = 1; k <= 10000; ++k) {
        handles.push_back(std::make_shared<subscriber_handle>(k, "c" + std::to_string(k)));
        idx.subscribe(handles.back(), "crowded/filter", opts());
    }
    auto who = std::make_shared<subscriber_handle>(99999, "newcomer");
    for (auto _ : state) {
        idx.subscribe(who, "crowded/filter", opts());
        idx.unsubscribe(who->key, "crowded/filter");
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(subscribe_unsubscribe_crowded);

/// One message to a 4-member shared group, per strategy (weights 1, 1, 2, 4).
void shared_pick_4(benchmark::State& state) {
    const auto strategy = static_cast<share_strategy>(state.range(0));
    topic_index idx(strategy);
    std::vector<subscriber_ptr> handles;
    const std::uint32_t weights[] = {1, 1, 2, 4};
    for (std::uint64_t k = 1; k <= 4; ++k) {
        handles.push_back(std::make_shared<subscriber_handle>(k, "c" + std::to_string(k)));
        handles.back()->online = true;
        idx.subscribe(handles.back(), "$share/workers/jobs/+",
                      opts(qos::at_least_once, weights[k - 1]));
    }
    std::vector<delivery> out;
    idx.match(publish_context{"jobs/1", 0, {}}, out);
    const shared_group_ptr g = out.at(0).group;
    const publish_context ctx{"jobs/1", 0, "publisher"};
    delivery d;
    for (auto _ : state) {
        g->pick(ctx, 0, d);
        benchmark::DoNotOptimize(d.to.get());
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    const char* names[] = {"round_robin", "random", "client_hash", "topic_hash", "least_inflight"};
    state.SetLabel(names[state.range(0)]);
}
BENCHMARK(shared_pick_4)->DenseRange(0, 4);

/// The same through match(): trie walk + pick + delivery.
void match_shared_4(benchmark::State& state) {
    topic_index idx;
    std::vector<subscriber_ptr> handles;
    for (std::uint64_t k = 1; k <= 4; ++k) {
        handles.push_back(std::make_shared<subscriber_handle>(k, "c" + std::to_string(k)));
        handles.back()->online = true;
        idx.subscribe(handles.back(), "$share/workers/jobs/+", opts());
    }
    std::vector<delivery> out;
    for (auto _ : state) {
        out.clear();
        idx.match(publish_context{"jobs/1", 0, {}}, out);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(match_shared_4);

// ---------------------------------------------------------------------------------------------
// Retained store

message_ptr make_message(const std::string& topic) {
    auto bytes = std::make_shared<std::uint8_t[]>(topic.size() + 2);
    std::copy(topic.begin(), topic.end(), bytes.get());
    bytes.get()[topic.size()] = 'o';
    bytes.get()[topic.size() + 1] = 'n';
    auto m = std::make_shared<message>();
    const char* base = reinterpret_cast<const char*>(bytes.get());
    m->publish.topic = std::string_view(base, topic.size());
    m->publish.payload = std::string_view(base + topic.size(), 2);
    m->publish.retain = true;
    m->storage = std::move(bytes);
    return m;
}

/// 100k retained topics: dev/{d}/status for 50k devices, dev/{d}/config for 50k.
struct retained_fleet {
    retained_fleet() {
        for (int d = 0; d < 50000; ++d) {
            messages.push_back(make_message("dev/" + std::to_string(d) + "/status"));
            messages.push_back(make_message("dev/" + std::to_string(d) + "/config"));
        }
        const std::size_t before = rss_bytes();
        for (const auto& m : messages) {
            store.set(m, no_store);
        }
        bytes_per_topic =
            static_cast<double>(rss_bytes() - before) / static_cast<double>(store.size());
    }
    std::vector<message_ptr> messages;
    retained_store store;
    double bytes_per_topic = 0;
};

retained_fleet& retained_of() {
    static retained_fleet f;
    return f;
}

void retained_match(benchmark::State& state, const char* filter) {
    retained_fleet& f = retained_of();
    std::vector<message_ptr> out;
    for (auto _ : state) {
        out.clear();
        f.store.match(filter, out);
        benchmark::DoNotOptimize(out.data());
    }
    state.counters["messages/op"] = static_cast<double>(out.size());
    state.counters["bytes/topic"] = f.bytes_per_topic;
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(out.size()));
}
BENCHMARK_CAPTURE(retained_match, hash, "#")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(retained_match, plus_status, "dev/+/status")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(retained_match, one_device, "dev/4711/#");
BENCHMARK_CAPTURE(retained_match, exact, "dev/4711/status");

/// A retained publish replacing the message of an existing topic (the common case).
void retained_set(benchmark::State& state) {
    retained_fleet& f = retained_of();
    std::size_t i = 0;
    for (auto _ : state) {
        f.store.set(f.messages[(i++ * 7919) % f.messages.size()], no_store);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(retained_set);

} // namespace

BENCHMARK_MAIN();
