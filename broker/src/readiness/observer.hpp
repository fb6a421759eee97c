#pragma once
// The readiness report's observer: a recorder per worker that the connection's handlers tell
// what they saw, and one aggregate that every worker merges its recorder into once a second.
// The packet path only counts and, for the first few distinct clients of a finding, copies a
// client id and topic; the lock is taken once a second per worker, never per packet.

#include <tern/broker/readiness.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string_view>

namespace tern::broker {

class readiness_recorder;

/// The report being built: what every worker merged so far, and the account peaks.
///
/// Thread contract: thread-safe (merge() and note_peak() lock; samples_full() is a relaxed
/// atomic read meant for the packet path).
class readiness_aggregate {
public:
    explicit readiness_aggregate(std::int64_t since_ms);

    /// Moves what `local` recorded since its last merge into the report and resets it.
    void merge(readiness_recorder& local);
    /// Raises the peak of `q` to `value` (seen at `now_ms`) when higher.
    void note_peak(readiness_quota q, std::uint64_t value, std::int64_t now_ms);
    /// A copy of the report as of now.
    readiness_report snapshot(std::int64_t now_ms) const;
    /// The report already holds readiness_sample_limit samples of `f`: recorders stop copying.
    bool samples_full(readiness_finding f) const noexcept {
        return full_[static_cast<std::size_t>(f)].load(std::memory_order_relaxed);
    }

private:
    mutable std::mutex mutex_;
    readiness_report report_; // guarded by mutex_
    std::array<std::atomic<bool>, readiness_finding_count> full_{};
};

/// What one worker saw since its last merge.
///
/// Thread contract: owner worker only.
class readiness_recorder {
public:
    /// `now_ms`: the time stamped on findings until the first set_now().
    readiness_recorder(const readiness_aggregate& aggregate, std::int64_t now_ms)
        : aggregate_(aggregate), now_ms_(now_ms) {}

    /// One occurrence of `f` by `client_id` on `topic` (empty where there is none); `detail`
    /// is the value AWS would not take.
    void note(readiness_finding f, std::string_view client_id, std::string_view topic = {},
              std::string_view detail = {});
    /// The worker's tick sets the time stamped on findings (Unix ms): a clock read per
    /// finding would cost more than the finding.
    void set_now(std::int64_t now_ms) noexcept { now_ms_ = now_ms; }

private:
    friend class readiness_aggregate;
    const readiness_aggregate& aggregate_;
    std::array<readiness_record, readiness_finding_count> pending_{};
    bool any_ = false;
    std::int64_t now_ms_ = 0;
};

/// Samples one second of account-level figures from the workers' counters and feeds the
/// peaks (rates as deltas between two calls over the time between them).
///
/// Thread contract: one caller (worker 0's tick).
class readiness_sampler {
public:
    /// `started`: when the counters were all zero (the broker's start).
    explicit readiness_sampler(std::chrono::steady_clock::time_point started) : last_at_(started) {}
    struct totals {
        std::uint64_t connections = 0;   ///< now
        std::uint64_t subscriptions = 0; ///< now
        std::uint64_t connects = 0;      ///< since start
        std::uint64_t inbound_publishes = 0;
        std::uint64_t outbound_publishes = 0;
        std::uint64_t subscribe_filters = 0;
    };
    void sample(const totals& t, std::chrono::steady_clock::time_point now, std::int64_t now_ms,
                readiness_aggregate& into);

private:
    totals last_{};
    std::chrono::steady_clock::time_point last_at_{};
};

/// A thing name as AWS IoT accepts it: 1..128 of [a-zA-Z0-9:_-].
bool is_valid_thing_name(std::string_view name) noexcept;

} // namespace tern::broker
