#include "sequence_tracker.hpp"

#include <algorithm>

namespace tern::bench {

sequence_window::outcome sequence_window::record(std::uint64_t seq) {
    if (!started_) {
        started_ = true;
        if (origin_ == unknown_origin) {
            origin_ = base_ = end_ = seq;
        }
        bits_.assign(initial_bits / 64, 0);
    }
    if (seq < origin_) {
        // Only with an unknown origin: older than the first one seen, so it was sent before
        // this unit heard the stream. It counts, but cannot be checked for duplicates.
        ++unique_;
        ++reordered_;
        return {false, true};
    }
    if (seq < base_) {
        // Everything below base_ was seen, except what make_room() gave up on.
        if (evicted_ > 0) {
            --evicted_;
            ++unique_;
            ++reordered_;
            return {false, true};
        }
        ++duplicates_;
        return {true, false};
    }
    make_room(seq);
    if (test(seq)) {
        ++duplicates_;
        return {true, false};
    }
    set(seq);
    ++unique_;
    const bool reordered = seq + 1 < end_;
    reordered_ += reordered ? 1 : 0;
    end_ = std::max(end_, seq + 1);
    advance();
    return {false, reordered};
}

void sequence_window::advance() noexcept {
    while (base_ < end_) {
        // A whole word of seen numbers at once (the common in-order case clears bit by bit,
        // which is just as cheap).
        if ((base_ & 63U) == 0 && base_ + 64 <= end_) {
            auto& word = bits_[(base_ & (capacity() - 1)) / 64];
            if (word == ~std::uint64_t{0}) {
                word = 0;
                base_ += 64;
                continue;
            }
        }
        if (!test(base_)) {
            break;
        }
        reset(base_);
        ++base_;
    }
}

void sequence_window::make_room(std::uint64_t seq) {
    if (seq - base_ < capacity()) {
        return;
    }
    // Grow (doubling) while allowed: re-place the set bits of [base_, end_).
    std::size_t cap = capacity();
    while (seq - base_ >= cap && cap < max_bits) {
        cap *= 2;
    }
    if (cap != capacity()) {
        std::vector<std::uint64_t> grown(cap / 64, 0);
        for (std::uint64_t s = base_; s < end_; ++s) {
            if (test(s)) {
                const std::uint64_t pos = s & (cap - 1);
                grown[pos / 64] |= std::uint64_t{1} << (pos % 64);
            }
        }
        bits_.swap(grown);
    }
    if (seq - base_ < capacity()) {
        return;
    }
    // Still too far ahead: give up on the oldest numbers so seq fits.
    const std::uint64_t new_base = seq - capacity() + 1;
    if (new_base - base_ >= capacity()) {
        // The whole window goes: count what was set in it, then start afresh.
        std::uint64_t seen = 0;
        for (const auto w : bits_) {
            seen += static_cast<std::uint64_t>(__builtin_popcountll(w));
        }
        evicted_ += (new_base - base_) - seen;
        std::fill(bits_.begin(), bits_.end(), 0);
    } else {
        for (std::uint64_t s = base_; s < new_base; ++s) {
            if (s < end_ && test(s)) {
                reset(s);
            } else {
                ++evicted_;
            }
        }
    }
    base_ = new_base;
    end_ = std::max(end_, base_);
    advance();
}

std::uint64_t sequence_window::missing_below(std::uint64_t limit) const noexcept {
    if (!started_) {
        return origin_ == unknown_origin || limit <= origin_ ? 0 : limit - origin_;
    }
    if (limit <= origin_) {
        return 0;
    }
    if (limit <= base_) {
        return std::min(evicted_, limit - origin_);
    }
    std::uint64_t missing = evicted_;
    const std::uint64_t window_end = std::min(limit, end_);
    for (std::uint64_t s = base_; s < window_end; ++s) {
        missing += test(s) ? 0U : 1U;
    }
    if (limit > end_) {
        missing += limit - std::max(end_, base_);
    }
    return missing;
}

} // namespace tern::bench
