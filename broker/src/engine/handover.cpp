// Session ownership: handover between workers, end of a session, the periodic sweep, wills at
// shutdown.
#include "mqtt/connection_detail.hpp"

namespace tern::broker {

// ---------------------------------------------------------------------------------------------
// Session ownership: handover between workers, end of a session, periodic sweep.

namespace {

/// The session `sp` arrived on `w` (or was found there) for the handover `req`.
void receive_session(worker& w, std::unique_ptr<session> sp, const handover_request& req) {
    session& s = *sp;
    s.owner = &w;
    s.handle->worker.store(w.index, std::memory_order_relaxed);
    w.sessions[req.key] = std::move(sp);

    std::shared_ptr<connection> waiting;
    if (const auto it = w.awaiting_session.find(req.key); it != w.awaiting_session.end()) {
        waiting = it->second.lock();
        w.awaiting_session.erase(it);
    }
    if (const auto p = w.pending_handover.find(req.key); p != w.pending_handover.end()) {
        // A newer connection claimed the client id while the session travelled here: it moves
        // on, and the connection that waited here is superseded.
        const auto next = p->second;
        w.pending_handover.erase(p);
        if (waiting) {
            waiting->take_over(!next.clean_start && s.expiry_interval != 0);
        }
        handle_handover(w, next);
    } else if (waiting && !waiting->closing()) {
        // A session with expiry 0 ended with the connection just taken over, even if that
        // connection's DISCONNECT had not been processed yet when the new CONNECT arrived.
        // One that expired (while the broker was down, found before the first sweep) is not
        // resumed either [MQTT-3.1.2-23].
        const bool resumable =
            !req.clean_start && s.expiry_interval != 0 && !s.expired(w.state.clock.now());
        if (!resumable) {
            s.clear(); // [MQTT-3.1.2-4]: Clean Start discards the existing session
            // The store forgets the old session before the new one (if persistent) is saved.
            s.remove_from_store();
            s.pending_will.reset();
        }
        waiting->begin_request();
        waiting->attach(s, resumable);
    } else if (s.expiry_interval == 0) {
        // The client gave up before its session arrived, and the session ends with it.
        end_session(w, s);
        return;
    }
    if (const auto e = w.early_deliveries.find(req.key); e != w.early_deliveries.end()) {
        auto batch = std::move(e->second);
        w.early_deliveries.erase(e);
        deliver_routed(w, batch);
    }
}

} // namespace

void handle_handover(worker& w, const handover_request& req) {
    const auto it = w.sessions.find(req.key);
    if (it == w.sessions.end()) {
        // Still on its way here: hand it on when it arrives.
        w.pending_handover[req.key] = req;
        return;
    }
    session& s = *it->second;
    if (s.sink != nullptr) {
        s.sink->take_over(!req.clean_start && s.expiry_interval != 0); // detaches it
        s.offline_since = w.state.clock.now();
    }
    // [MQTT-3.1.3-9]: a delayed will is not sent when a new connection resumes the session.
    s.pending_will.reset();
    auto sp = std::move(it->second);
    w.sessions.erase(it);
    if (req.to == w.index) {
        receive_session(w, std::move(sp), req);
        return;
    }
    // Publishers read handle->worker to find the session: point them at the new worker before
    // the session leaves. Deliveries already posted here are forwarded by deliver_routed.
    sp->handle->worker.store(req.to, std::memory_order_relaxed);
    // What this worker wrote about the session reaches the store before what the next one
    // writes.
    w.submit_store();
    auto& target = *w.state.workers[req.to];
    asio::post(target.ctx, [&target, sp = std::move(sp), req]() mutable {
        receive_session(target, std::move(sp), req);
    });
}

void end_session(worker& w, session& s) {
    const auto key = s.handle->key;
    if (w.stopping && w.state.durable && s.in_store()) {
        // The broker is stopping, not the session: the store keeps it (and a delayed will)
        // for the next start.
        s.handle->worker.store(no_worker, std::memory_order_relaxed);
        w.early_deliveries.erase(key);
        w.sessions.erase(key);
        return;
    }
    if (!w.state.directory.release(s.client_id(), *s.handle, w.index)) {
        // A newer connection claimed the client id; its handover request is on its way here.
        s.clear();
        return;
    }
    if (s.pending_will) {
        // [MQTT-3.1.2-8]: the will is published at the latest when the session ends.
        auto will = std::move(s.pending_will);
        publish_internal(w, will, key, s.client_id());
    }
    s.clear();
    s.handle->worker.store(no_worker, std::memory_order_relaxed);
    s.remove_from_store();
    w.early_deliveries.erase(key);
    w.sessions.erase(key); // destroys s
}

void sweep_sessions(worker& w) {
    const auto now = w.state.clock.now();
    std::vector<session*> expired;
    for (auto& [key, sp] : w.sessions) {
        session& s = *sp;
        if (s.online()) {
            continue;
        }
        if (s.pending_will && now >= s.will_due) {
            auto will = std::move(s.pending_will);
            publish_internal(w, will, key, s.client_id());
        }
        if (s.expired(now)) {
            expired.push_back(&s);
        }
    }
    for (auto* s : expired) {
        log(log_level::info, "client '{}': session expired", s->client_id());
        end_session(w, *s);
    }
}

void publish_wills_for_shutdown(worker& w) {
    std::vector<std::shared_ptr<connection>> all;
    for (const auto& [key, c] : w.connections) {
        all.push_back(c);
    }
    for (const auto& c : all) {
        c->publish_will_now();
    }
    for (auto& [key, s] : w.sessions) {
        if (s->pending_will && !(w.state.durable && s->in_store())) {
            auto will = std::move(s->pending_will);
            publish_internal(w, will, key, s->client_id());
        }
    }
    flush_writes(w);
}

} // namespace tern::broker
