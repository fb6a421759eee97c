#pragma once
/// A log-linear ("HDR-style") latency histogram: exact below 256 ns, then 128 linear
/// sub-buckets per power of two, so every bucket is at most 1/128 (< 0.8 %) of its lower bound
/// wide. It covers 0 .. 100 s; longer durations are counted in the last bucket.
///
/// Thread contract: a plain value, owned by one thread (a tern-bench worker records into its
/// own); merge() folds another thread's copy in once that thread has handed it over.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace tern::bench {

class latency_histogram {
public:
    /// log2 of the linear sub-buckets per power of two (128): the relative bucket width.
    static constexpr unsigned sub_bucket_bits = 7;
    /// Largest duration told apart from longer ones: 100 s.
    static constexpr std::uint64_t max_trackable_ns = 100'000'000'000ULL;

    latency_histogram();

    /// Counts one duration of `ns` nanoseconds. No allocation.
    void record(std::uint64_t ns) noexcept {
        const std::size_t i = index_of(ns < max_trackable_ns ? ns : max_trackable_ns);
        ++counts_[i];
        ++count_;
        sum_ += static_cast<double>(ns);
        min_ = ns < min_ ? ns : min_;
        max_ = ns > max_ ? ns : max_;
        lo_ = i < lo_ ? i : lo_;
        hi_ = i > hi_ ? i : hi_;
    }

    /// Adds every sample of `other`.
    void merge(const latency_histogram& other) noexcept;
    /// Forgets every sample (keeps the bucket storage).
    void clear() noexcept;

    std::uint64_t count() const noexcept { return count_; }
    /// Smallest / largest sample exactly as recorded; 0 when empty.
    std::uint64_t min() const noexcept { return count_ == 0 ? 0 : min_; }
    std::uint64_t max() const noexcept { return max_; }
    /// Exact mean of the samples; 0 when empty.
    double mean() const noexcept { return count_ == 0 ? 0.0 : sum_ / static_cast<double>(count_); }

    /// The nearest-rank `p`-th percentile (0 < p <= 100), as the midpoint of its bucket clamped
    /// to [min, max]: within 0.4 % of the exact sample value. 0 when empty.
    std::uint64_t percentile(double p) const noexcept;

    /// Calls f(upper_bound_ns, count) for each non-empty bucket in ascending order, where
    /// upper_bound_ns is the bucket's exclusive upper edge.
    template <class F> void for_each_bucket(F&& f) const {
        if (count_ == 0) {
            return;
        }
        for (std::size_t i = lo_; i <= hi_; ++i) {
            if (counts_[i] != 0) {
                f(upper_bound_of(i) + 1, counts_[i]);
            }
        }
    }

    /// Bucket arithmetic, public for the tests.
    static std::size_t index_of(std::uint64_t ns) noexcept;
    static std::uint64_t lower_bound_of(std::size_t index) noexcept;
    /// Inclusive upper bound.
    static std::uint64_t upper_bound_of(std::size_t index) noexcept;
    static std::size_t bucket_count() noexcept;

private:
    std::vector<std::uint64_t> counts_;
    std::uint64_t count_ = 0;
    double sum_ = 0;
    std::uint64_t min_ = std::numeric_limits<std::uint64_t>::max();
    std::uint64_t max_ = 0;
    std::size_t lo_ = std::numeric_limits<std::size_t>::max(); ///< lowest non-empty bucket
    std::size_t hi_ = 0;                                       ///< highest non-empty bucket
};

} // namespace tern::bench
