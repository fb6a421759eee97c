#pragma once
/// The injected clock (STYLE.md §5, §8): everything that compares against "now" — connect
/// timeouts, keep-alive, session expiry, will delay, message expiry, back-off — asks a
/// `core::clock`, so tests advance a `manual_clock` instead of sleeping.
///
/// Timers that wake a worker (the 250 ms tick) stay real: with a manual clock the tick still
/// runs, and what it decides depends only on the time the clock reports.
///
/// Thread contract: every member of every clock here is thread-safe.

#include <atomic>
#include <chrono>

namespace tern::core {

/// A source of monotonic time.
class clock {
public:
    using duration = std::chrono::steady_clock::duration;
    using time_point = std::chrono::steady_clock::time_point;

    virtual ~clock() = default;
    /// Monotonic "now"; never goes backwards for one clock object.
    virtual time_point now() const noexcept = 0;
};

/// std::chrono::steady_clock.
class steady_clock final : public clock {
public:
    time_point now() const noexcept override { return std::chrono::steady_clock::now(); }
};

/// The process-wide steady clock: the default of every service that takes a clock. Never
/// destroyed (workers may read it while static destructors run).
const clock& default_clock() noexcept;

/// A clock that moves only when told. Starts at the steady clock's current value (so time
/// points mix safely with ones taken before the test switched clocks) unless given a start.
class manual_clock final : public clock {
public:
    manual_clock() noexcept : manual_clock(std::chrono::steady_clock::now()) {}
    explicit manual_clock(time_point start) noexcept : now_(start.time_since_epoch().count()) {}

    time_point now() const noexcept override {
        return time_point(duration(now_.load(std::memory_order_acquire)));
    }
    /// Moves the clock forward by `d` (a negative `d` is ignored: the clock is monotonic).
    void advance(duration d) noexcept {
        if (d.count() > 0) {
            now_.fetch_add(d.count(), std::memory_order_acq_rel);
        }
    }

private:
    std::atomic<duration::rep> now_;
};

} // namespace tern::core
