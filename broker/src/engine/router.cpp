#include "engine/router.hpp"

#include "mqtt/connection.hpp"
#include "session/session.hpp"

#include <tern/core/log.hpp>

#include <boost/asio/post.hpp>

#include <algorithm>
#include <utility>

namespace tern::broker {

using core::log;
using core::log_level;

namespace {

/// Appends (m, d) to `box`, extending the last entry when it carries the same message (the
/// receivers of one publish on one worker share one entry).
void append(std::vector<routed_message>& box, const message_ptr& m, delivery&& d) {
    if (box.empty() || box.back().msg != m) {
        box.push_back(routed_message{m, {}});
    }
    box.back().receivers.push_back(std::move(d));
}

} // namespace

std::size_t route(worker& w, const message_ptr& m, const publish_context& ctx) {
    auto& scratch = w.match_scratch;
    scratch.clear();
    w.state.subscriptions.match(ctx, scratch);
    for (auto& d : scratch) {
        route_to(w, m, std::move(d));
    }
    const auto n = scratch.size();
    scratch.clear();
    return n;
}

void route_to(worker& w, const message_ptr& m, delivery d) {
    auto target = d.to->worker.load(std::memory_order_relaxed);
    if (target == no_worker) {
        // The session ended after the index returned it: a shared message goes to another
        // member; anything else had no receiver left.
        if (d.stored) {
            w.writes->delivery_removed(d.to->key, *m);
        }
        delivery other;
        const publish_context ctx{m->publish.topic, 0, {}};
        if (d.group && d.group->pick(ctx, d.to->key, other) &&
            other.to->worker.load(std::memory_order_relaxed) != no_worker) {
            d = std::move(other);
            target = d.to->worker.load(std::memory_order_relaxed);
        } else {
            return;
        }
    }
    if (!d.stored && m->stored && d.qos != protocol::qos::at_most_once &&
        d.to->persistent.load(std::memory_order_relaxed)) {
        // Recorded here, in the publisher's batch, so the PUBACK that waits for this batch
        // covers every persistent session the message went to; the receiving worker only
        // updates the record.
        stored_delivery sd;
        sd.qos = std::min(m->publish.qos, d.qos);
        sd.retain = d.retain_as_published && m->publish.retain;
        sd.subscription_ids.assign(d.subscription_ids.begin(), d.subscription_ids.end());
        w.writes->delivery_saved(d.to->key, *m, sd);
        d.stored = true;
    }
    append(w.outbox[target], m, std::move(d));
}

void flush_outbox(worker& w) {
    // The writes behind these deliveries go to the store before any other worker can act on
    // them (and, say, record the acknowledgement before the delivery).
    w.submit_store();
    for (std::uint32_t i = 0; i < w.outbox.size(); ++i) {
        auto& box = w.outbox[i];
        if (box.empty()) {
            continue;
        }
        if (i == w.index) {
            // Swap out first: delivering may route again (a hand-back) into this outbox.
            std::vector<routed_message> local;
            local.swap(box);
            deliver_routed(w, local);
        } else {
            w.state.workers[i]->push_routed(std::move(box));
            box.clear();
        }
    }
}

void deliver_routed(worker& w, std::vector<routed_message>& batch) {
    for (auto& rm : batch) {
        for (auto& d : rm.receivers) {
            const auto it = w.sessions.find(d.to->key);
            if (it != w.sessions.end()) {
                // [MQTT-3.3.1-9]: RETAIN is 0 towards established subscriptions unless Retain
                // As Published asks for the flag as published.
                it->second->deliver(rm.msg, d, d.retain_as_published && rm.msg->publish.retain);
                continue;
            }
            const auto where = d.to->worker.load(std::memory_order_relaxed);
            if (where == w.index) {
                // The session is on its way here (posted before it reached us): hold on.
                auto& early = w.early_deliveries[d.to->key];
                append(early, rm.msg, std::move(d));
            } else {
                route_to(w, rm.msg, std::move(d)); // moved on, or gone
            }
        }
    }
    batch.clear();
    flush_outbox(w);
}

void publish_internal(worker& w, const message_ptr& m, std::uint64_t publisher_key,
                      std::string_view publisher_client_id) {
    if (m->publish.retain && w.state.config.retain_available) {
        w.state.retained.set(m, *w.state.store);
    }
    route(w, m, publish_context{m->publish.topic, publisher_key, publisher_client_id});
    flush_outbox(w);
}

worker::worker(shared_state& s, std::uint32_t i) : state(s), index(i) {
    if (s.readiness) {
        readiness = std::make_unique<readiness_recorder>(*s.readiness, wall_clock_ms());
    }
}

worker::~worker() = default;

void worker::push_routed(std::vector<routed_message>&& batch) {
    bool wake = false;
    {
        std::lock_guard lock(inbox_mutex_);
        if (inbox_.empty()) {
            inbox_.swap(batch);
        } else {
            for (auto& rm : batch) {
                inbox_.push_back(std::move(rm));
            }
        }
        // Wake only on empty → non-empty: one post drains everything that piles up meanwhile.
        if (!inbox_scheduled_) {
            inbox_scheduled_ = true;
            wake = true;
        }
    }
    if (wake) {
        boost::asio::post(ctx, [this] { drain_inbox(); });
    }
}

void worker::drain_inbox() {
    std::vector<routed_message> batch;
    {
        std::lock_guard lock(inbox_mutex_);
        batch.swap(inbox_);
        inbox_scheduled_ = false;
    }
    deliver_routed(*this, batch);
    flush_writes(*this);
}

} // namespace tern::broker
