#include "histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace tern::bench {

namespace {

constexpr std::uint64_t half = 1ULL << latency_histogram::sub_bucket_bits; // 128
constexpr std::uint64_t linear = half * 2;                                 // exact below 256 ns

} // namespace

std::size_t latency_histogram::index_of(std::uint64_t ns) noexcept {
    if (ns < linear) {
        return static_cast<std::size_t>(ns);
    }
    // ns = sub << shift with sub in [128, 256): the bucket is sub's position in octave `shift`.
    const auto shift = static_cast<unsigned>(std::bit_width(ns)) - (sub_bucket_bits + 1);
    const std::uint64_t sub = ns >> shift;
    return static_cast<std::size_t>(linear + (shift - 1) * half + (sub - half));
}

std::uint64_t latency_histogram::lower_bound_of(std::size_t index) noexcept {
    if (index < linear) {
        return index;
    }
    const std::uint64_t j = index - linear;
    const std::uint64_t shift = j / half + 1;
    return (j % half + half) << shift;
}

std::uint64_t latency_histogram::upper_bound_of(std::size_t index) noexcept {
    if (index < linear) {
        return index;
    }
    const std::uint64_t j = index - linear;
    const std::uint64_t shift = j / half + 1;
    return ((j % half + half + 1) << shift) - 1;
}

std::size_t latency_histogram::bucket_count() noexcept {
    return index_of(max_trackable_ns) + 1;
}

latency_histogram::latency_histogram() : counts_(bucket_count(), 0) {}

void latency_histogram::merge(const latency_histogram& other) noexcept {
    if (other.count_ == 0) {
        return;
    }
    for (std::size_t i = other.lo_; i <= other.hi_; ++i) {
        counts_[i] += other.counts_[i];
    }
    count_ += other.count_;
    sum_ += other.sum_;
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
    lo_ = std::min(lo_, other.lo_);
    hi_ = std::max(hi_, other.hi_);
}

void latency_histogram::clear() noexcept {
    if (count_ != 0) {
        std::fill(counts_.begin() + static_cast<std::ptrdiff_t>(lo_),
                  counts_.begin() + static_cast<std::ptrdiff_t>(hi_) + 1, 0);
    }
    count_ = 0;
    sum_ = 0;
    min_ = std::numeric_limits<std::uint64_t>::max();
    max_ = 0;
    lo_ = std::numeric_limits<std::size_t>::max();
    hi_ = 0;
}

std::uint64_t latency_histogram::percentile(double p) const noexcept {
    if (count_ == 0) {
        return 0;
    }
    const double wanted =
        std::ceil(std::clamp(p, 0.0, 100.0) / 100.0 * static_cast<double>(count_));
    const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(wanted));
    std::uint64_t seen = 0;
    for (std::size_t i = lo_; i <= hi_; ++i) {
        seen += counts_[i];
        if (seen >= rank) {
            const std::uint64_t mid =
                lower_bound_of(i) + (upper_bound_of(i) - lower_bound_of(i)) / 2;
            return std::clamp(mid, min(), max_);
        }
    }
    return max_;
}

} // namespace tern::bench
