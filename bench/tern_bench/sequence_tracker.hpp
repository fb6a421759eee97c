#pragma once
/// Loss, duplicate and reordering accounting for the sequence-numbered messages of tern-bench.
///
/// Every message names its stream (publisher id + stream number, see payload.hpp) and carries
/// that stream's next sequence number. A receiving unit (one subscriber, or one whole shared
/// group) keeps one sequence_window per stream it hears from.
///
/// Thread contract: plain values owned by the thread of the unit's worker.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

namespace tern::bench {

/// Identifies one sequence-numbered stream: `publisher` = run tag << 32 | publisher index (so
/// it is unique across processes), `stream` = 0 for a publisher's own topic, or 1 + target
/// index for the replies a responder sends to each target.
struct stream_key {
    std::uint64_t publisher = 0;
    std::uint32_t stream = 0;
    friend bool operator==(const stream_key&, const stream_key&) = default;
};

struct stream_key_hash {
    std::size_t operator()(const stream_key& k) const noexcept {
        // splitmix64 finaliser over both fields: cheap and well spread.
        std::uint64_t x = k.publisher ^ (static_cast<std::uint64_t>(k.stream) << 47) ^
                          (static_cast<std::uint64_t>(k.stream) * 0x9E3779B97F4A7C15ULL);
        x ^= x >> 30;
        x *= 0xBF58476D1CE4E5B9ULL;
        x ^= x >> 27;
        x *= 0x94D049BB133111EBULL;
        x ^= x >> 31;
        return static_cast<std::size_t>(x);
    }
};

/// The sequence numbers of one stream seen by one receiving unit.
///
/// A ring bitmap anchored at `base`, the lowest sequence number not yet seen: everything below
/// it was seen (or given up on, see below). In-order arrival keeps the bitmap empty; it grows
/// (256 bits, doubling up to 1 Mi bits = 128 KiB) only to span a hole — a loss or a message
/// overtaken by later ones. When a hole would need more, its oldest numbers are given up on
/// ("evicted") and counted as missing; one arriving later still counts once (as reordered),
/// but a duplicate of it can no longer be told apart.
///
/// `origin` is the first sequence number expected: 0 when the publisher is known to start
/// there (tern-bench `run`), otherwise the first one seen (a `sub` that joined late).
class sequence_window {
public:
    static constexpr std::uint64_t unknown_origin = std::numeric_limits<std::uint64_t>::max();
    static constexpr std::size_t initial_bits = 256;
    static constexpr std::size_t max_bits = std::size_t{1} << 20;

    explicit sequence_window(std::uint64_t origin = unknown_origin) noexcept
        : origin_(origin), base_(origin == unknown_origin ? 0 : origin),
          end_(origin == unknown_origin ? 0 : origin) {}

    struct outcome {
        bool duplicate = false;
        bool reordered = false; ///< arrived after a higher sequence number of the stream
    };

    /// Accounts for one received message.
    outcome record(std::uint64_t seq);

    std::uint64_t unique() const noexcept { return unique_; }
    std::uint64_t duplicates() const noexcept { return duplicates_; }
    std::uint64_t reordered() const noexcept { return reordered_; }
    /// One past the highest sequence number seen (origin when none).
    std::uint64_t end() const noexcept { return end_; }
    bool started() const noexcept { return started_; }

    /// Sequence numbers in [origin, limit) never seen.
    std::uint64_t missing_below(std::uint64_t limit) const noexcept;
    /// Holes between the origin and the highest sequence number seen.
    std::uint64_t gaps() const noexcept { return started_ ? missing_below(end_) : 0; }

private:
    std::size_t capacity() const noexcept { return bits_.size() * 64; }
    bool test(std::uint64_t seq) const noexcept {
        const std::uint64_t pos = seq & (capacity() - 1);
        return ((bits_[pos / 64] >> (pos % 64)) & 1U) != 0;
    }
    void set(std::uint64_t seq) noexcept {
        const std::uint64_t pos = seq & (capacity() - 1);
        bits_[pos / 64] |= std::uint64_t{1} << (pos % 64);
    }
    void reset(std::uint64_t seq) noexcept {
        const std::uint64_t pos = seq & (capacity() - 1);
        bits_[pos / 64] &= ~(std::uint64_t{1} << (pos % 64));
    }
    void make_room(std::uint64_t seq);
    void advance() noexcept;

    std::uint64_t origin_;
    std::uint64_t base_; ///< lowest sequence number neither seen nor evicted
    std::uint64_t end_;  ///< one past the highest seen; base_ <= end_
    std::uint64_t evicted_ = 0;
    std::uint64_t unique_ = 0;
    std::uint64_t duplicates_ = 0;
    std::uint64_t reordered_ = 0;
    bool started_ = false;
    std::vector<std::uint64_t> bits_; ///< bit (seq mod capacity) for seq in [base_, end_)
};

} // namespace tern::bench
