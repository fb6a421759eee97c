// tern-bench latency histogram: bucket arithmetic and percentiles within 1 % of exact.
#include "histogram.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

using tern::bench::latency_histogram;

namespace {

/// Nearest-rank percentile of sorted samples: the reference the histogram must approximate.
std::uint64_t exact_percentile(const std::vector<std::uint64_t>& sorted, double p) {
    const auto rank = static_cast<std::size_t>(
        std::max(1.0, std::ceil(p / 100.0 * static_cast<double>(sorted.size()))));
    return sorted[rank - 1];
}

double relative_error(std::uint64_t got, std::uint64_t want) {
    return std::abs(static_cast<double>(got) - static_cast<double>(want)) /
           static_cast<double>(want);
}

} // namespace

TEST_CASE("histogram buckets tile the range and are at most 1/128 wide", "[bench][histogram]") {
    const auto n = latency_histogram::bucket_count();
    REQUIRE(n > 256);
    REQUIRE(latency_histogram::index_of(latency_histogram::max_trackable_ns) == n - 1);
    for (std::size_t i = 0; i < n; ++i) {
        const auto lo = latency_histogram::lower_bound_of(i);
        const auto hi = latency_histogram::upper_bound_of(i);
        REQUIRE(lo <= hi);
        REQUIRE(latency_histogram::index_of(lo) == i);
        REQUIRE(latency_histogram::index_of(hi) == i);
        if (i + 1 < n) {
            REQUIRE(latency_histogram::lower_bound_of(i + 1) == hi + 1); // no gap, no overlap
        }
        if (lo >= 256) {
            REQUIRE(static_cast<double>(hi - lo + 1) <= static_cast<double>(lo) / 128.0);
        }
    }
}

TEST_CASE("histogram percentiles are within 1% of the exact sample values", "[bench][histogram]") {
    std::mt19937_64 rng(42);
    // Log-uniform between 1 µs and 10 s: every octave of the range gets samples.
    std::uniform_real_distribution<double> exponent(3.0, 10.0);
    std::vector<std::uint64_t> samples;
    latency_histogram h;
    for (int i = 0; i < 200'000; ++i) {
        const auto v = static_cast<std::uint64_t>(std::pow(10.0, exponent(rng)));
        samples.push_back(v);
        h.record(v);
    }
    std::sort(samples.begin(), samples.end());
    REQUIRE(h.count() == samples.size());
    REQUIRE(h.min() == samples.front());
    REQUIRE(h.max() == samples.back());
    for (const double p : {1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
        INFO("p" << p);
        CHECK(relative_error(h.percentile(p), exact_percentile(samples, p)) <= 0.01);
    }
    double sum = 0;
    for (const auto v : samples) {
        sum += static_cast<double>(v);
    }
    CHECK(h.mean() == Approx(sum / static_cast<double>(samples.size())).epsilon(1e-9));
}

TEST_CASE("histogram of a narrow distribution keeps p50 <= p99 <= max", "[bench][histogram]") {
    latency_histogram h;
    for (std::uint64_t v = 100'000; v < 101'000; ++v) {
        h.record(v);
    }
    CHECK(h.percentile(50) <= h.percentile(99));
    CHECK(h.percentile(99) <= h.max());
    CHECK(h.percentile(100) == h.max());
    CHECK(relative_error(h.percentile(50), 100'499) <= 0.01);
}

TEST_CASE("histogram merge equals recording everything in one", "[bench][histogram]") {
    latency_histogram a;
    latency_histogram b;
    latency_histogram all;
    for (std::uint64_t v = 1; v < 5'000'000; v = v * 3 + 7) {
        ((v & 1) != 0 ? a : b).record(v);
        all.record(v);
    }
    a.merge(b);
    CHECK(a.count() == all.count());
    CHECK(a.min() == all.min());
    CHECK(a.max() == all.max());
    for (const double p : {50.0, 90.0, 99.0}) {
        CHECK(a.percentile(p) == all.percentile(p));
    }
    std::uint64_t total = 0;
    std::uint64_t last = 0;
    a.for_each_bucket([&](std::uint64_t upper, std::uint64_t n) {
        CHECK(upper > last); // ascending
        last = upper;
        total += n;
    });
    CHECK(total == all.count());
}

TEST_CASE("histogram clear and empty state", "[bench][histogram]") {
    latency_histogram h;
    CHECK(h.count() == 0);
    CHECK(h.percentile(99) == 0);
    CHECK(h.min() == 0);
    h.record(1234);
    h.record(latency_histogram::max_trackable_ns * 5); // clamped into the last bucket
    CHECK(h.count() == 2);
    CHECK(h.max() == latency_histogram::max_trackable_ns * 5);
    h.clear();
    CHECK(h.count() == 0);
    int buckets = 0;
    h.for_each_bucket([&](std::uint64_t, std::uint64_t) { ++buckets; });
    CHECK(buckets == 0);
}
