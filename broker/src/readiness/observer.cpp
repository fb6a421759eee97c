// The readiness observer: per-worker recording, the once-a-second merge and the account
// peaks.
#include "readiness/observer.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

namespace tern::broker {

namespace {

/// Client ids and topics can be 64 KiB each (topic_too_long ones are long by definition):
/// a sample keeps the first readiness_sample_bytes, cut at a UTF-8 boundary, and says so.
std::string_view clipped(std::string_view s) noexcept {
    if (s.size() <= readiness_sample_bytes) {
        return s;
    }
    std::size_t end = readiness_sample_bytes - 3;
    while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) {
        --end; // not inside a multi-byte character
    }
    return s.substr(0, end);
}

std::string sample_text(std::string_view s) {
    const auto kept = clipped(s);
    return kept.size() == s.size() ? std::string(s) : std::string(kept) + "...";
}

void add_sample(std::vector<readiness_sample>& samples, std::string_view client_id,
                std::string_view topic, std::string_view detail) {
    if (samples.size() >= readiness_sample_limit) {
        return;
    }
    if (client_id.size() > readiness_sample_bytes || topic.size() > readiness_sample_bytes) {
        auto id = sample_text(client_id);
        auto t = sample_text(topic);
        const auto same = [&](const readiness_sample& s) {
            return s.client_id == id && s.topic == t;
        };
        if (std::none_of(samples.begin(), samples.end(), same)) {
            samples.push_back({std::move(id), std::move(t), std::string(detail)});
        }
        return;
    }
    const auto same = [&](const readiness_sample& s) {
        return s.client_id == client_id && s.topic == topic;
    };
    if (std::none_of(samples.begin(), samples.end(), same)) {
        samples.push_back({std::string(client_id), std::string(topic), std::string(detail)});
    }
}

} // namespace

readiness_aggregate::readiness_aggregate(std::int64_t since_ms) {
    report_.since_ms = since_ms;
    for (std::size_t q = 0; q < readiness_quota_count; ++q) {
        report_.peaks[q].aws_default = info(static_cast<readiness_quota>(q)).aws_default;
    }
}

void readiness_aggregate::merge(readiness_recorder& local) {
    if (!local.any_) {
        return;
    }
    const std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < readiness_finding_count; ++i) {
        if (local.pending_[i].count == 0) {
            continue;
        }
        // Taken out first: should a copy below throw, nothing is counted twice next time.
        const auto from = std::exchange(local.pending_[i], readiness_record{});
        auto& to = report_.findings[i];
        to.count += from.count;
        if (to.first_seen_ms == 0 || from.first_seen_ms < to.first_seen_ms) {
            to.first_seen_ms = from.first_seen_ms;
        }
        to.last_seen_ms = std::max(to.last_seen_ms, from.last_seen_ms);
        for (const auto& s : from.samples) {
            add_sample(to.samples, s.client_id, s.topic, s.detail);
        }
        if (to.samples.size() >= readiness_sample_limit) {
            full_[i].store(true, std::memory_order_relaxed);
        }
    }
    local.any_ = false;
}

void readiness_aggregate::note_peak(readiness_quota q, std::uint64_t value, std::int64_t now_ms) {
    const std::lock_guard lock(mutex_);
    auto& p = report_[q];
    if (value > p.peak) {
        p.peak = value;
        p.at_ms = now_ms;
    }
}

readiness_report readiness_aggregate::snapshot(std::int64_t now_ms) const {
    const std::lock_guard lock(mutex_);
    auto copy = report_;
    copy.generated_ms = now_ms;
    return copy;
}

void readiness_recorder::note(readiness_finding f, std::string_view client_id,
                              std::string_view topic, std::string_view detail) {
    auto& r = pending_[static_cast<std::size_t>(f)];
    ++r.count;
    if (r.first_seen_ms == 0) {
        r.first_seen_ms = now_ms_;
    }
    r.last_seen_ms = now_ms_;
    any_ = true;
    if (!aggregate_.samples_full(f)) {
        add_sample(r.samples, client_id, topic, detail);
    }
}

void readiness_sampler::sample(const totals& t, std::chrono::steady_clock::time_point now,
                               std::int64_t now_ms, readiness_aggregate& into) {
    into.note_peak(readiness_quota::connections, t.connections, now_ms);
    into.note_peak(readiness_quota::subscriptions, t.subscriptions, now_ms);
    const double seconds = std::chrono::duration<double>(now - last_at_).count();
    // The tick is nominally a second; a late one (a busy worker) spreads its counts over
    // the real interval rather than reporting a spike. Shorter than half a second: wait.
    if (seconds < 0.5) {
        return;
    }
    const auto rate = [&](std::uint64_t now_total, std::uint64_t then) {
        return static_cast<std::uint64_t>(
            std::llround(static_cast<double>(now_total - then) / seconds));
    };
    into.note_peak(readiness_quota::connects_per_second, rate(t.connects, last_.connects), now_ms);
    into.note_peak(readiness_quota::inbound_publishes_per_second,
                   rate(t.inbound_publishes, last_.inbound_publishes), now_ms);
    into.note_peak(readiness_quota::outbound_publishes_per_second,
                   rate(t.outbound_publishes, last_.outbound_publishes), now_ms);
    into.note_peak(readiness_quota::subscriptions_per_second,
                   rate(t.subscribe_filters, last_.subscribe_filters), now_ms);
    last_ = t;
    last_at_ = now;
}

bool is_valid_thing_name(std::string_view name) noexcept {
    if (name.empty() || name.size() > 128) {
        return false;
    }
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == ':' || c == '_' || c == '-';
    });
}

} // namespace tern::broker
