#include "session/session.hpp"

#include "engine/router.hpp"
#include "engine/shared_state.hpp"
#include "session/session_sink.hpp"

#include <tern/core/log.hpp>

#include <algorithm>
#include <thread>
#include <vector>

namespace tern::broker {

using core::log;
using core::log_level;

namespace mqtt = tern::protocol;

std::optional<std::uint32_t> expiry_left(const message& m,
                                         std::chrono::steady_clock::time_point now) noexcept {
    const auto& interval = m.publish.props.message_expiry_interval;
    if (!interval) {
        return std::nullopt;
    }
    const auto elapsed =
        std::chrono::duration_cast<std::chrono::seconds>(now - m.received_at).count();
    if (elapsed >= static_cast<std::int64_t>(*interval)) {
        return 0U;
    }
    return *interval - static_cast<std::uint32_t>(elapsed);
}

namespace {

/// What a queued message counts against max_queued_bytes (as mosquitto counts it).
std::size_t queue_bytes(const message& m) noexcept {
    return m.publish.payload.size() + m.publish.topic.size();
}
std::size_t queue_bytes(const outbound_message& out) noexcept {
    return queue_bytes(*out.msg);
}

} // namespace

session::session(worker& w, subscriber_ptr h) : owner(&w), handle(std::move(h)) {
    handle->worker.store(w.index, std::memory_order_relaxed);
}

session::~session() = default;

std::size_t session::window() const noexcept {
    return sink != nullptr ? sink->inflight_window() : 0;
}

void session::deliver(const message_ptr& m, const delivery& d, bool retain) {
    if (d.via_parent_of_hash && owner->readiness) {
        owner->readiness->note(readiness_finding::hash_matches_parent, client_id(),
                               m->publish.topic,
                               fmt::format("delivered through '{}/#'", m->publish.topic));
    }
    outbound_message out;
    out.msg = m;
    out.qos = std::min(m->publish.qos, d.qos);
    out.retain = retain;
    out.subscription_ids = d.subscription_ids;
    out.group = d.group;
    out.hops = d.hops;
    if (out.qos == mqtt::qos::at_most_once) {
        out.group.reset(); // nothing to hand back: QoS 0 is fire and forget
        if (sink != nullptr && queued.empty() && sink->accepts_qos0()) {
            sink->send_publish(out, 0, false);
            return;
        }
        if (sink == nullptr) {
            return; // QoS 0 is not queued for offline clients (mosquitto's default)
        }
        enqueue(std::move(out));
        return;
    }
    out.stored = d.stored;
    if (in_store_ && !out.stored) {
        record(out, 0, false); // e.g. a retained message sent on SUBSCRIBE
    } else if (!in_store_ && out.stored) {
        forget(out); // the session stopped being persistent after the router looked
    }
    if (sink != nullptr && queued.empty() && on_disk_ == 0 && inflight.size() < window()) {
        send_new(std::move(out));
        return;
    }
    if (sink == nullptr && out.group && hand_back(out, true)) {
        forget(out);
        return; // a member went offline after it was picked: another online one takes it
    }
    if (stays_on_disk(out)) {
        leave_on_disk(std::move(out));
        return;
    }
    enqueue(std::move(out));
}

bool session::stays_on_disk(const outbound_message& out) const noexcept {
    // A message with a group stays here: it may be handed to another member, which needs the
    // message itself. One that came late from another worker, with an id below the queue on
    // disk, goes in front of it, here.
    if (!in_store_ || !out.stored || !out.msg->stored || out.group) {
        return false;
    }
    return sink == nullptr || (on_disk_ != 0 && out.msg->stored->id >= on_disk_from_);
}

void session::leave_on_disk(outbound_message&& out) {
    const auto& cfg = owner->state.config;
    const std::size_t bytes = queue_bytes(out);
    if (cfg.max_queued_messages != 0 && queued.size() + on_disk_ >= cfg.max_queued_messages) {
        note_drop(out, "max_queued_messages");
        forget(out);
        return;
    }
    if (cfg.max_queued_bytes != 0 && queued_bytes + on_disk_bytes_ + bytes > cfg.max_queued_bytes &&
        queued.size() + on_disk_ != 0) {
        note_drop(out, "max_queued_bytes");
        forget(out);
        return;
    }
    count_on_disk(out);
    // `out` goes: the message body stays on disk, referred to by the record.
}

void session::count_on_disk(const outbound_message& out) {
    owner->writes->delivery_left_on_disk(handle->key, *out.msg);
    const auto id = out.msg->stored->id;
    on_disk_from_ = on_disk_ == 0 ? id : std::min(on_disk_from_, id);
    ++on_disk_;
    on_disk_bytes_ += queue_bytes(out);
    // The record was written by a batch submitted before the message reached this worker
    // (current_ticket() covers it), or by this worker's own (page_in submits that first).
    on_disk_ticket_ = std::max(on_disk_ticket_, owner->state.store->current_ticket());
}

bool session::page_in() {
    auto& store = *owner->state.store;
    if (owner->writes->dirty()) {
        owner->submit_store();
    }
    const auto need = std::max(on_disk_ticket_, owner->last_ticket);
    if (store.durable_ticket() < need && store.wake_when_durable(owner->index, need)) {
        if (paging_wait_on_ != owner) {
            paging_wait_on_ = owner;
            owner->awaiting_page_in.push_back(handle->key);
        }
        return false;
    }
    const std::size_t limit = std::clamp<std::size_t>(2 * window(), 64, 1024);
    take_page(
        store.page_in(handle->key, on_disk_from_, UINT64_MAX, limit, owner->state.clock.now()));
    return !queued.empty() || on_disk_ != 0;
}

void session::take_page(delivery_page&& page) {
    for (auto& item : page.items) {
        const auto id = item.msg->stored->id;
        const std::size_t bytes = queue_bytes(*item.msg);
        on_disk_ -= std::min<std::uint64_t>(on_disk_, 1);
        on_disk_bytes_ -= std::min<std::uint64_t>(on_disk_bytes_, bytes);
        // Sent already (resumed from the store, or sent before it went to disk): in flight.
        if (std::any_of(inflight.begin(), inflight.end(), [&](const auto& e) {
                return e.second.out.msg->stored && e.second.out.msg->stored->id == id;
            })) {
            continue;
        }
        outbound_message out;
        out.msg = std::move(item.msg);
        out.qos = item.delivery.qos;
        out.retain = item.delivery.retain;
        out.subscription_ids.assign(item.delivery.subscription_ids.begin(),
                                    item.delivery.subscription_ids.end());
        out.stored = true;
        out.seq = next_seq_++;
        queued_bytes += bytes;
        queued.push_back(std::move(out));
    }
    on_disk_from_ = std::max(on_disk_from_, page.next_from);
    if (page.end) {
        on_disk_ = 0;
        on_disk_bytes_ = 0;
    }
}

void session::page_in_ready() {
    paging_wait_on_ = nullptr;
    send_queued();
}

void session::page_in_all() {
    if (on_disk_ == 0) {
        return;
    }
    // Rare (a persistent session resumed as a non-persistent one): the records are usually
    // durable long since; if the last ones are not, wait for them (bounded), since the next
    // write removes them.
    auto& store = *owner->state.store;
    owner->submit_store();
    const auto need = std::max(on_disk_ticket_, owner->last_ticket);
    for (int i = 0; i < 5000 && store.durable_ticket() < need; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    for (;;) {
        auto page =
            store.page_in(handle->key, on_disk_from_, UINT64_MAX, 1024, owner->state.clock.now());
        const bool end = page.end;
        take_page(std::move(page));
        if (end) {
            break;
        }
    }
}

void session::record(outbound_message& out, std::uint16_t packet_id, bool released) {
    if (!in_store_ || !out.msg->stored || out.qos == mqtt::qos::at_most_once) {
        return;
    }
    stored_delivery sd;
    sd.qos = out.qos;
    sd.retain = out.retain;
    sd.packet_id = packet_id;
    sd.released = released;
    sd.subscription_ids.assign(out.subscription_ids.begin(), out.subscription_ids.end());
    owner->writes->delivery_saved(handle->key, *out.msg, sd);
    out.stored = true;
}

void session::forget(outbound_message& out) {
    if (out.stored) {
        owner->writes->delivery_removed(handle->key, *out.msg);
        out.stored = false;
    }
}

void session::save(const message* will, std::uint32_t will_delay,
                   std::chrono::system_clock::time_point offline) {
    if (!owner->state.durable) {
        return;
    }
    stored_session rec;
    rec.client_id = client_id();
    rec.key = handle->key;
    rec.expiry_interval = expiry_interval;
    rec.version = version;
    rec.will = will;
    rec.will_delay = will_delay;
    rec.offline_since = offline;
    owner->writes->session_saved(rec);
    if (!in_store_) {
        // Everything the session already holds goes in with it (a session that became
        // persistent on a reconnect keeps what it had).
        in_store_ = true;
        for (const auto& [filter, sub] : subscriptions) {
            owner->writes->subscription_added(handle->key, filter, sub);
        }
        for (auto& [id, entry] : inflight) {
            record(entry.out, id, entry.released);
        }
        for (auto& out : queued) {
            record(out, 0, false);
        }
        for (const auto id : inbound_qos2) {
            owner->writes->inbound_qos2_added(handle->key, id);
        }
    }
    handle->persistent.store(true, std::memory_order_relaxed);
}

void session::restore(recovered_session&& rec, std::chrono::steady_clock::time_point now) {
    in_store_ = true;
    handle->persistent.store(rec.expiry_interval != 0, std::memory_order_relaxed);
    expiry_interval = rec.expiry_interval;
    version = rec.version;
    offline_since = now - rec.offline_for;
    if (rec.will) {
        // The connection ended when the broker did, without DISCONNECT: the will goes out
        // after its delay, counted from then, unless the client resumes first [MQTT-3.1.3-9].
        if (!rec.will->stored && rec.will->publish.qos != mqtt::qos::at_most_once) {
            owner->state.store->name_message(*std::const_pointer_cast<message>(rec.will));
        }
        pending_will = std::move(rec.will);
        will_due = offline_since + std::chrono::seconds(rec.will_delay);
    }
    for (auto& [filter, sub] : rec.subscriptions) {
        owner->state.subscriptions.subscribe(handle, filter, sub);
        subscriptions[filter] = sub;
    }
    for (auto& [msg, d] : rec.messages) {
        outbound_message out;
        out.msg = std::move(msg);
        out.qos = d.qos;
        out.retain = d.retain;
        out.subscription_ids.assign(d.subscription_ids.begin(), d.subscription_ids.end());
        out.seq = next_seq_++;
        out.stored = true;
        if (d.packet_id != 0 && !inflight.contains(d.packet_id)) {
            inflight.emplace(d.packet_id, inflight_message{std::move(out), d.released});
        } else {
            queued_bytes += queue_bytes(out);
            queued.push_back(std::move(out));
        }
    }
    on_disk_ = rec.on_disk;
    on_disk_from_ = rec.on_disk_from;
    handle->inflight.store(static_cast<std::uint32_t>(inflight.size()), std::memory_order_relaxed);
    inbound_qos2.insert(rec.inbound_qos2.begin(), rec.inbound_qos2.end());
}

void session::remove_from_store() {
    handle->persistent.store(false, std::memory_order_relaxed);
    if (!in_store_) {
        return;
    }
    page_in_all(); // the queue goes on in memory (a resumed session that is no longer kept)
    owner->writes->session_removed(client_id(), handle->key);
    in_store_ = false;
    for (auto& [id, entry] : inflight) {
        entry.out.stored = false;
    }
    for (auto& out : queued) {
        out.stored = false;
    }
}

bool session::enqueue(outbound_message&& out) {
    const auto& cfg = owner->state.config;
    const std::size_t bytes = queue_bytes(out);
    const bool over_count =
        cfg.max_queued_messages != 0 && queued.size() + on_disk_ >= cfg.max_queued_messages;
    const bool over_bytes = cfg.max_queued_bytes != 0 &&
                            queued_bytes + on_disk_bytes_ + bytes > cfg.max_queued_bytes &&
                            queued.size() + on_disk_ != 0;
    if (over_count || over_bytes) {
        // An overloaded member passes a shared message on once; if the next one is full too
        // the group is overloaded and the message is dropped (counted), not bounced around.
        if (out.group && out.hops == 0 && hand_back(out, true)) {
            forget(out);
            return true;
        }
        note_drop(out, over_count ? "max_queued_messages" : "max_queued_bytes");
        forget(out);
        return false;
    }
    out.seq = next_seq_++;
    queued_bytes += bytes;
    queued.push_back(std::move(out));
    return true;
}

void session::note_drop(const outbound_message& out, const char* why) {
    ++dropped;
    owner->counters.add(owner->counters.publish_dropped, 1);
    owner->counters.drop(drop_cause::queue_full);
    // One line for the first drop and then every 1000th: counted, never silent, never a flood.
    if (dropped % 1000 == 1) {
        log(log_level::warn,
            "client '{}': queue full ({}), QoS {} message on '{}' dropped ({} so far)", client_id(),
            why, static_cast<int>(out.qos), out.msg->publish.topic, dropped);
    }
}

std::uint16_t session::allocate_packet_id() {
    // inflight holds at most 65535 ids (the window is capped there), so a free one exists.
    while (next_packet_id_ == 0 || inflight.contains(next_packet_id_)) {
        ++next_packet_id_;
    }
    return next_packet_id_++;
}

void session::send_new(outbound_message&& out) {
    if (out.seq == 0) {
        out.seq = next_seq_++;
    }
    const auto id = allocate_packet_id();
    if (!sink->send_publish(out, id, false)) {
        // Expired or too large for this client: done with it, as if delivered.
        forget(out);
        return;
    }
    if (out.stored) {
        record(out, id, false);
        if (out.qos == mqtt::qos::exactly_once) {
            // Sent under this id, the message must be resent under it after a crash, or the
            // client would take the resend for a second message.
            sink->hold_until_durable();
        }
    }
    handle->inflight.store(static_cast<std::uint32_t>(inflight.size() + 1),
                           std::memory_order_relaxed);
    inflight.emplace(id, inflight_message{std::move(out), false});
}

void session::send_queued() {
    while (sink != nullptr && !sink->closing()) {
        if (queued.empty()) {
            // Paged in only when what is here has gone out: the queue on disk holds nothing
            // that is also here, but for what is in flight (which page_in skips).
            if (on_disk_ == 0 || inflight.size() >= window() || !page_in()) {
                return;
            }
            continue;
        }
        auto& front = queued.front();
        if (front.qos == mqtt::qos::at_most_once) {
            if (!sink->accepts_qos0()) {
                return;
            }
        } else if (inflight.size() >= window()) {
            return;
        }
        if (!sink->may_send_queued()) {
            return;
        }
        auto out = std::move(front);
        queued.pop_front();
        queued_bytes -= queue_bytes(out);
        if (out.qos == mqtt::qos::at_most_once) {
            sink->send_publish(out, 0, false);
        } else {
            send_new(std::move(out));
        }
    }
}

bool session::complete(std::uint16_t packet_id, mqtt::qos stage) {
    const auto it = inflight.find(packet_id);
    if (it == inflight.end()) {
        return false;
    }
    // PUBACK completes QoS 1; PUBCOMP completes a released QoS 2 message.
    const bool matches = stage == mqtt::qos::at_least_once
                             ? it->second.out.qos == mqtt::qos::at_least_once
                             : it->second.out.qos == mqtt::qos::exactly_once && it->second.released;
    if (!matches) {
        return false;
    }
    forget(it->second.out);
    inflight.erase(it);
    handle->inflight.store(static_cast<std::uint32_t>(inflight.size()), std::memory_order_relaxed);
    send_queued();
    return true;
}

bool session::release(std::uint16_t packet_id) {
    const auto it = inflight.find(packet_id);
    if (it == inflight.end() || it->second.out.qos != mqtt::qos::exactly_once) {
        return false;
    }
    it->second.released = true;
    // Once released the message is the client's: it no longer needs its payload or its group.
    it->second.out.group.reset();
    if (it->second.out.stored) {
        record(it->second.out, packet_id, true); // the PUBREL that follows waits for this
    }
    return true;
}

void session::refuse(std::uint16_t packet_id) {
    const auto it = inflight.find(packet_id);
    if (it != inflight.end()) {
        forget(it->second.out);
        inflight.erase(it);
        handle->inflight.store(static_cast<std::uint32_t>(inflight.size()),
                               std::memory_order_relaxed);
        send_queued();
    }
}

void session::resume() {
    if (sink == nullptr) {
        return;
    }
    // [MQTT-4.4.0-1]: resend unacknowledged PUBLISH (DUP 1) and PUBREL packets, in the order
    // they were first sent.
    std::vector<std::pair<std::uint64_t, std::uint16_t>> order;
    order.reserve(inflight.size());
    for (const auto& [id, entry] : inflight) {
        order.emplace_back(entry.out.seq, id);
    }
    std::sort(order.begin(), order.end());
    for (const auto& [seq, id] : order) {
        auto& entry = inflight.at(id);
        if (entry.released) {
            sink->send_pubrel(id);
        } else if (!sink->send_publish(entry.out, id, true)) {
            forget(entry.out);
            inflight.erase(id);
        }
    }
    handle->inflight.store(static_cast<std::uint32_t>(inflight.size()), std::memory_order_relaxed);
    send_queued();
}

bool session::hand_back(outbound_message& out, bool online_only) {
    delivery d;
    const publish_context ctx{out.msg->publish.topic, 0, {}};
    if (!out.group || !out.group->pick(ctx, handle->key, d)) {
        return false;
    }
    if (online_only && !d.to->online.load(std::memory_order_relaxed)) {
        // Every other member is offline too: keep it rather than bounce it between them.
        return false;
    }
    // The new member gets the message as it was published, at its own granted QoS.
    d.hops = static_cast<std::uint8_t>(out.hops + 1);
    route_to(*owner, out.msg, std::move(d));
    return true;
}

void session::go_offline() {
    sink = nullptr;
    handle->online.store(false, std::memory_order_relaxed);
    offline_since = owner->state.clock.now();
    // Shared-subscription messages not yet acknowledged go to another member of their group:
    // nothing is lost when a member disconnects mid-flight.
    bool handed = false;
    for (auto it = inflight.begin(); it != inflight.end();) {
        // A QoS 2 message already sent stays: the member completes it when it reconnects
        // [MQTT-4.8.2-4], and if its session ends it is not sent to anyone else, which could
        // deliver it twice [MQTT-4.8.2-5]. QoS 1 may be repeated, so it moves on.
        if (it->second.out.group && it->second.out.qos == mqtt::qos::at_least_once &&
            hand_back(it->second.out, false)) {
            forget(it->second.out);
            it = inflight.erase(it);
            handed = true;
        } else {
            ++it;
        }
    }
    boost::container::devector<outbound_message> keep;
    for (auto& out : queued) {
        if (out.group && hand_back(out, false)) {
            queued_bytes -= queue_bytes(out);
            forget(out);
            handed = true;
        } else if (out.qos == mqtt::qos::at_most_once) {
            queued_bytes -= queue_bytes(out);
        } else if (stays_on_disk(out)) {
            // Offline queues live on disk: what is recorded leaves memory until the client is
            // back (what has a group stays, for another member to take).
            queued_bytes -= queue_bytes(out);
            count_on_disk(out);
        } else {
            keep.push_back(std::move(out));
        }
    }
    queued.swap(keep);
    if (on_disk_ != 0) {
        on_disk_ticket_ = std::max(on_disk_ticket_, owner->last_ticket);
    }
    handle->inflight.store(static_cast<std::uint32_t>(inflight.size()), std::memory_order_relaxed);
    if (handed) {
        flush_outbox(*owner);
    }
}

void session::clear() {
    for (const auto& [filter, sub] : subscriptions) {
        owner->state.subscriptions.unsubscribe(handle->key, filter);
        if (in_store_) {
            owner->writes->subscription_removed(handle->key, filter);
        }
    }
    subscriptions.clear();
    // Shared messages still owed to the group go to another member; the rest end here.
    for (auto& [id, entry] : inflight) {
        if (entry.out.group && entry.out.qos == mqtt::qos::at_least_once) {
            hand_back(entry.out, false); // QoS 2 in flight: [MQTT-4.8.2-5], see go_offline
        }
        forget(entry.out);
    }
    for (auto& out : queued) {
        if (out.group) {
            hand_back(out, false);
        }
        forget(out);
    }
    if (in_store_) {
        for (const auto id : inbound_qos2) {
            owner->writes->inbound_qos2_removed(handle->key, id);
        }
        if (on_disk_ != 0) {
            owner->writes->deliveries_cleared(handle->key);
        }
    }
    on_disk_ = 0;
    on_disk_bytes_ = 0;
    inflight.clear();
    queued.clear();
    queued_bytes = 0;
    inbound_qos2.clear();
    handle->inflight.store(0, std::memory_order_relaxed);
    flush_outbox(*owner);
}

} // namespace tern::broker
