// One tern-bench MQTT connection over tern::client. Everything here runs on the client's
// worker thread: no locks, and the only cross-thread traffic is the controller's posts
// (engine.cpp).
//
// Hot path budget: a message costs one memcpy of its header template plus the payload header
// into tern::client's reused output buffer (no allocation once the buffers have grown), and on
// receipt one decode in place from the connection's read buffer (no copy, no allocation), one
// clock read and one sequence-window update.

#include "engine_detail.hpp"

#include <tern/protocol/encoder.hpp>
#include <tern/protocol/error.hpp>
#include <tern/protocol/reason_code.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>

#include "payload.hpp"

namespace tern::bench::detail {

namespace {

namespace mqtt = tern::protocol;
using namespace std::chrono_literals;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

/// Pending replies held while the window is full; beyond this they are dropped (counted).
constexpr std::size_t max_pending_replies = 10'000;

std::string describe_network(const boost::system::error_code& ec) {
    if (ec == asio::error::connection_refused) {
        return "refused";
    }
    if (ec == asio::error::timed_out) {
        return "timeout";
    }
    if (ec == asio::error::host_unreachable || ec == asio::error::network_unreachable) {
        return "unreachable";
    }
    if (ec == asio::error::connection_reset) {
        return "reset by broker";
    }
    if (ec == asio::error::eof) {
        return "closed by broker";
    }
    return "network: " + ec.message();
}

} // namespace

counters& counters::operator+=(const counters& o) noexcept {
    connect_attempts += o.connect_attempts;
    connect_ok += o.connect_ok;
    connect_failed += o.connect_failed;
    connected += o.connected;
    errors += o.errors;
    sent += o.sent;
    acked += o.acked;
    received += o.received;
    foreign += o.foreign;
    duplicates += o.duplicates;
    reordered += o.reordered;
    sent_measured += o.sent_measured;
    received_measured += o.received_measured;
    bytes_sent += o.bytes_sent;
    bytes_received += o.bytes_received;
    return *this;
}

publish_template make_publish_template(std::string_view topic, mqtt::qos q, bool retain,
                                       std::uint32_t payload_size, mqtt::protocol_version v,
                                       std::string_view filler) {
    (void)filler; // the payload is zero-filled by tern::client; its size is what counts
    mqtt::publish p;
    p.topic = topic;
    p.qos = q;
    p.retain = retain;
    auto t = tern::client::publish_template::make(p, payload_size, v);
    if (!t) {
        throw config_error(
            fmt::format("topic \"{}\": cannot encode a PUBLISH: {}", topic, t.error().message()));
    }
    return std::move(*t);
}

client::client(worker& w, run_context& rc, client_plan plan)
    : w_(w), rc_(rc), plan_(std::move(plan)), role_(rc.sc->roles[plan_.role]), watchdog_(w.ctx),
      send_signal_(w.ctx) {
    std::uint32_t largest = 0;
    if (role_.publish) {
        const auto& p = *role_.publish;
        main_template_ = make_publish_template(plan_.publish_topic, p.qos, p.retain, p.size,
                                               rc.version, rc.filler);
        window_ = p.inflight;
        largest = p.size;
        pub_active_ = true;
    }
    if (role_.reply) {
        largest = std::max(largest, role_.reply->size);
        if (!role_.publish) {
            window_ = 64;
        }
    }
    high_water_ = std::max<std::size_t>(64 * 1024, 2 * (std::size_t{largest} + 256));
    if (role_.subscribe) {
        sub_pending_ = true;
        receiving_active_ = role_.subscribe->count > 0;
    }
}

client::~client() {
    if (conn_) {
        conn_->set_handler(nullptr);
        conn_->close();
    }
}

std::int64_t client::since_t0(steady::time_point t) const noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t - rc_.t0).count();
}

void client::spawn(asio::awaitable<void> task, const char* what) {
    ++tasks_;
    asio::co_spawn(w_.ctx, std::move(task), [this, what](std::exception_ptr e) {
        --tasks_;
        if (!e) {
            return;
        }
        std::string why;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            why = ex.what();
        } catch (...) {
            why = "unknown exception";
        }
        std::fprintf(stderr, "tern-bench: %s: %s failed: %s\n", plan_.client_id.c_str(), what,
                     why.c_str());
        ++w_.stats.c.errors;
        w_.stats.count_failure(std::string("internal: ") + what + " failed");
        close();
    });
}

void client::start() {
    spawn(run(), "connection");
}

void client::allow_publishing() {
    if (waiting_allowed_) {
        send_signal_.cancel();
    }
}

void client::end_publishing() {
    // Waits for progress have no deadline of their own (see publish_loop): wake them.
    if (wake_on_progress_ || waiting_pace_) {
        send_signal_.cancel();
    }
}

void client::pace_tick(steady::time_point now) {
    if (waiting_pace_ && now >= next_due_) {
        waiting_pace_ = false;
        send_signal_.cancel();
    }
}

void client::keepalive_tick(steady::time_point now) {
    if (conn_ && !closed_) {
        conn_->tick(now); // PINGREQ when due (up to a second early: the sweep's period)
    }
}

void client::stop() {
    if (stopping_) {
        return;
    }
    stopping_ = true;
    if (closed_) {
        return;
    }
    if (!connected_) {
        close(); // still waiting for its slot, or connecting: abandon
        return;
    }
    // DISCONNECT goes out after whatever is queued; tern::client then waits for the broker to
    // close. A broker that does not: closed in 1 s anyway (the sweep that would tick the
    // connection's own close deadline has stopped).
    conn_->disconnect();
    send_signal_.cancel();
    watchdog_.expires_after(1s);
    watchdog_.async_wait([this](boost::system::error_code ec) {
        if (!ec) {
            close();
        }
    });
}

void client::close() {
    if (closed_) {
        return;
    }
    closed_ = true;
    if (connected_) {
        connected_ = false;
        --w_.stats.c.connected;
    }
    if (cancel_connect_) {
        auto cancel = std::move(cancel_connect_);
        cancel_connect_ = nullptr;
        cancel();
    }
    if (conn_) {
        conn_->close();
        if (!bytes_counted_) {
            bytes_counted_ = true;
            w_.stats.c.bytes_sent += conn_->counters().bytes_sent;
            w_.stats.c.bytes_received += conn_->counters().bytes_received;
        }
    }
    watchdog_.cancel();
    send_signal_.cancel();
    mark_sub_done();
    mark_pub_done();
    mark_receiving_done();
}

void client::mark_sub_done() {
    if (sub_pending_) {
        sub_pending_ = false;
        rc_.subs_pending.fetch_sub(1, std::memory_order_relaxed);
    }
}

void client::mark_pub_done() {
    if (pub_active_) {
        pub_active_ = false;
        rc_.pubs_active.fetch_sub(1, std::memory_order_relaxed);
    }
}

void client::mark_receiving_done() {
    if (receiving_active_) {
        receiving_active_ = false;
        rc_.receivers_active.fetch_sub(1, std::memory_order_relaxed);
    }
}

void client::connect_failed(const std::string& reason) {
    if (stopping_) {
        close(); // the run ended while this client was still connecting: not a failure
        return;
    }
    ++w_.stats.c.connect_failed;
    w_.stats.count_failure(reason);
    close();
}

void client::lost(const std::string& reason) {
    if (closed_) {
        return;
    }
    ++w_.stats.c.errors;
    w_.stats.count_failure("connection lost: " + reason);
    close();
}

asio::awaitable<void> client::wait_signal(steady::time_point until) {
    send_signal_.expires_at(until);
    co_await send_signal_.async_wait(use_nothrow);
}

asio::awaitable<void> client::run() {
    // The connect slot (ramp / connect rate). stop() cancels the wait through close().
    watchdog_.expires_at(rc_.t0 + plan_.connect_at);
    co_await watchdog_.async_wait(use_nothrow);
    if (stopping_ || closed_) {
        close();
        co_return;
    }
    begin_connect();
    // The publish loop waits for CONNACK (and then for the run's subscribers).
}

void client::begin_connect() {
    auto& st = w_.stats;
    ++st.c.connect_attempts;
    started_ = steady::now();
    if (st.first_attempt_ns < 0) {
        st.first_attempt_ns = since_t0(started_);
    }
    // One deadline for TCP + TLS + WebSocket upgrade + CONNACK.
    watchdog_.expires_after(rc_.connect_timeout);
    watchdog_.async_wait([this](boost::system::error_code ec) {
        if (!ec && !connected_ && !closed_) {
            timed_out_ = true;
            connect_failed("timeout");
        }
    });
    cancel_connect_ =
        net::async_connect_transport(w_.ctx, rc_.endpoint, rc_.connect_timeout,
                                     [this](net::connect_result r) { on_transport(std::move(r)); });
}

void client::on_transport(net::connect_result r) {
    cancel_connect_ = nullptr;
    if (closed_) {
        return; // timed out or stopped meanwhile; the transport (if any) closes with `r`
    }
    if (!r.stream) {
        if (r.ec == asio::error::timed_out) {
            connect_failed("timeout");
        } else if (r.stage == "tls") {
            connect_failed("tls: " + r.error);
        } else if (r.stage == "websocket") {
            connect_failed("websocket: " + r.error);
        } else {
            connect_failed(describe_network(r.ec));
        }
        return;
    }
    tern::client::connect_options o;
    o.version = rc_.version;
    o.client_id = plan_.client_id;
    // The role's session flags win over --clean / --no-clean.
    const bool clean = role_.clean_session.value_or(rc_.options->clean);
    o.clean_start = clean;
    o.keep_alive = rc_.sc->keepalive;
    o.username = plan_.username;
    o.password = plan_.password;
    if (!mqtt::is_v3(rc_.version)) {
        if (role_.session_expiry) {
            o.session_expiry_interval = *role_.session_expiry;
        } else if (!clean) {
            // MQTT 5 keeps no session unless asked for an expiry; not clean means "keep it".
            o.session_expiry_interval = 3600;
        }
    }
    o.inflight_window = window_;
    o.max_queued_bytes = high_water_;
    // Read buffers by need: an idle connection only ever reads CONNACK and PINGRESP.
    o.read_buffer_size = role_.subscribe ? 32 * 1024 : role_.publish ? 4096 : 512;
    o.connack_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(rc_.connect_timeout);
    conn_ = tern::client::connection::create(std::move(r.stream), std::move(o), this);
    conn_->start(steady::now());
}

void client::on_connected(const mqtt::connack& ack) {
    (void)ack; // Receive Maximum and Server Keep Alive are applied by tern::client
    auto& st = w_.stats;
    watchdog_.cancel();
    const auto now = steady::now();
    connected_ = true;
    ++st.c.connect_ok;
    ++st.c.connected;
    st.connack.record(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(now - started_).count()));
    st.last_connack_ns = std::max(st.last_connack_ns, since_t0(now));
    slots_.assign(conn_->inflight_limit(), inflight_slot{});
    if (plan_.unit != nullptr) {
        const mqtt::subscription sub{plan_.subscription, {role_.subscribe->qos}};
        if (auto id = conn_->subscribe(std::span(&sub, 1)); !id) {
            lost("cannot encode SUBSCRIBE: " + id.error().message());
            return;
        }
    }
    if (role_.publish) {
        spawn(publish_loop(), "publisher");
    }
}

void client::on_closed(const boost::system::error_code& ec, const std::string& why) {
    if (stopping_ || closed_) {
        close(); // the broker closed after our DISCONNECT, or we closed
        return;
    }
    const std::string reason = !why.empty() ? why : describe_network(ec);
    if (!connected_) {
        connect_failed(timed_out_ ? "timeout" : reason);
    } else {
        lost(reason);
    }
}

void client::on_progress() {
    if (wake_on_progress_) {
        send_signal_.cancel();
    }
}

bool client::can_send(mqtt::qos q) const noexcept {
    return connected_ && !closed_ && !stopping_ && conn_->can_publish(q);
}

void client::append_publish(const publish_template& t, std::uint32_t stream, stream_counts& counts,
                            steady::time_point now) {
    auto& st = w_.stats.c;
    const bool measured = now >= rc_.measure_start && now < rc_.measure_end;
    auto queued = conn_->publish(t);
    if (!queued) {
        return; // can_send() said yes just before: cannot happen
    }
    if (queued->packet_id != 0) {
        slots_[queued->packet_id - 1U] = {since_t0(now), stream, t.qos, measured};
    }
    write_payload_header(queued->payload.data(),
                         {rc_.run_tag, plan_.global, stream, counts.sent, realtime_ns()});
    ++counts.sent;
    ++st.sent;
    st.sent_measured += measured ? 1 : 0;
    if (t.qos == mqtt::qos::at_most_once) {
        ++counts.acked;
        ++st.acked;
    }
}

asio::awaitable<void> client::publish_loop() {
    const auto& spec = *role_.publish;
    // Wait until every subscriber of the run is subscribed (the controller says so).
    while (!w_.publishing_allowed && !stopping_ && !closed_) {
        waiting_allowed_ = true;
        co_await wait_signal(steady::time_point::max());
        waiting_allowed_ = false;
    }
    const auto start = steady::now();
    const std::uint64_t bound = spec.count;
    // Waits for window or socket progress use no deadline: a timer at time_point::max() never
    // becomes the reactor's earliest, so re-arming it per batch costs no timerfd_settime
    // syscall. The controller's end_publishing() post wakes them when the window closes.
    //
    // Pacing: message k is due at start + k / rate. A publisher held back (full window or
    // socket) catches up by at most one second's worth; beyond that the messages are skipped,
    // so the reported send rate shows the shortfall instead of a burst.
    std::uint64_t scheduled = 0;
    while (!stopping_ && !closed_) {
        auto now = steady::now();
        if (w_.publishing_closed || now >= rc_.measure_end || (bound != 0 && main_.sent >= bound)) {
            break;
        }
        if (spec.rate > 0) {
            const auto due = static_cast<std::uint64_t>(
                                 std::chrono::duration<double>(now - start).count() * spec.rate) +
                             1;
            const auto max_backlog = static_cast<std::uint64_t>(std::max(1.0, spec.rate));
            if (due > scheduled + max_backlog) {
                scheduled = due - max_backlog;
            }
            while (scheduled < due && can_send(spec.qos) && (bound == 0 || main_.sent < bound)) {
                append_publish(main_template_, 0, main_, now);
                ++scheduled;
            }
            if (bound != 0 && main_.sent >= bound) {
                break;
            }
            if (scheduled < due) {
                wake_on_progress_ = true;
                co_await wait_signal(steady::time_point::max());
                wake_on_progress_ = false;
                continue;
            }
            // Sleep to the next due message. The worker's pacer (one 1 ms tick for all its
            // paced publishers) wakes us: a timer per publisher would cost a timerfd_settime
            // and an epoll wake-up per message.
            next_due_ =
                start + std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(
                            static_cast<double>(scheduled) / spec.rate));
            waiting_pace_ = true;
            co_await wait_signal(steady::time_point::max());
            waiting_pace_ = false;
        } else {
            while (can_send(spec.qos) && (bound == 0 || main_.sent < bound)) {
                append_publish(main_template_, 0, main_, now);
            }
            if (bound != 0 && main_.sent >= bound) {
                break;
            }
            wake_on_progress_ = true;
            co_await wait_signal(steady::time_point::max());
            wake_on_progress_ = false;
        }
    }
    // Wait for the acknowledgements still outstanding (bounded by the drain period).
    while (conn_->inflight() > 0 && !closed_ && !stopping_) {
        wake_on_progress_ = true;
        co_await wait_signal(steady::time_point::max()); // stop() ends it at the latest
        wake_on_progress_ = false;
    }
    mark_pub_done();
}

void client::on_suback(const mqtt::suback& s) {
    subscribed_ = !s.reasons.empty();
    for (const auto rc : s.reasons) {
        if (mqtt::is_failure(rc)) {
            subscribed_ = false;
            ++w_.stats.c.errors;
            w_.stats.count_failure("suback: " + std::string(mqtt::to_string(rc)));
        }
    }
    mark_sub_done();
}

void client::on_publish_done(std::uint16_t packet_id, mqtt::reason_code rc) {
    auto& st = w_.stats;
    if (packet_id == 0 || packet_id > slots_.size()) {
        return;
    }
    auto& slot = slots_[packet_id - 1U];
    stream_counts& counts = slot.stream == 0 ? main_ : reply_counts_[slot.stream - 1];
    if (mqtt::is_failure(rc)) {
        ++st.c.errors;
        // A failure ends a QoS 1 flow at PUBACK, a QoS 2 one at PUBREC.
        const auto type = slot.qos == mqtt::qos::at_least_once ? mqtt::packet_type::puback
                                                               : mqtt::packet_type::pubrec;
        st.count_failure(fmt::format("{}: {}", mqtt::to_string(type), mqtt::to_string(rc)));
    } else {
        ++counts.acked;
        ++st.c.acked;
        if (slot.measured) {
            const auto now = since_t0(steady::now());
            st.ack.record(
                static_cast<std::uint64_t>(std::max<std::int64_t>(0, now - slot.queued_ns)));
        }
    }
    if (!pending_replies_.empty()) {
        flush_replies(steady::now());
    }
    // tern::client calls on_progress next, which wakes a waiting publisher.
}

void client::on_unexpected_ack(mqtt::packet_type type, std::uint16_t packet_id) {
    (void)packet_id;
    ++w_.stats.c.errors;
    w_.stats.count_failure("unexpected " + std::string(mqtt::to_string(type)));
}

void client::on_message(const mqtt::publish& p) {
    // tern::client has queued PUBACK / PUBREC already.
    auto& st = w_.stats;
    if (plan_.unit == nullptr) {
        return; // a publisher that does not subscribe got something: not ours to count
    }
    const auto h = read_payload_header(p.payload);
    if (!h) {
        ++st.c.foreign;
        return;
    }
    ++st.c.received;
    ++received_;
    const std::uint64_t now_rt = realtime_ns();
    const std::uint64_t latency = now_rt > h->sent_ns ? now_rt - h->sent_ns : 0;
    st.latency_second.record(latency);
    if (h->sent_ns >= rc_.measure_start_rt && h->sent_ns < rc_.measure_end_rt) {
        ++st.c.received_measured;
        st.latency.record(latency);
    }
    const bool own = h->run_tag == rc_.run_tag;
    const stream_key key{h->publisher_id(), h->stream};
    auto& unit = *plan_.unit;
    const auto seen = unit.window(key, own).record(h->sequence);
    st.c.duplicates += seen.duplicate ? 1 : 0;
    if (!unit.shared()) {
        st.c.reordered += seen.reordered ? 1 : 0;
    } else if (!seen.duplicate) {
        // Across a group, messages interleave between members by design; reordering is what
        // one member sees out of order.
        auto [it, fresh] = member_last_.try_emplace(key, h->sequence);
        if (!fresh) {
            if (h->sequence < it->second) {
                ++st.c.reordered;
            } else {
                it->second = h->sequence;
            }
        }
    }
    if (role_.reply && own && h->stream == 0 && ++reply_tick_ % role_.reply->every == 0) {
        reply_to(h->publisher);
    }
    if (receiving_active_ && received_ >= role_.subscribe->count) {
        mark_receiving_done();
    }
}

void client::reply_to(std::uint32_t global) {
    if (global >= rc_.role_of_global.size()) {
        return;
    }
    const auto now = steady::now();
    if (w_.publishing_closed || now >= rc_.measure_end || stopping_) {
        return; // replies stop with the publishers, so the drain can collect them all
    }
    const auto& layout = rc_.roles[rc_.role_of_global[global]];
    const std::uint32_t target = global - layout.first_global;
    if (pending_replies_.empty() && can_send(role_.reply->qos)) {
        pending_replies_.push_back(target);
        flush_replies(now);
    } else if (pending_replies_.size() < max_pending_replies) {
        pending_replies_.push_back(target);
    } else {
        ++w_.stats.c.errors;
        w_.stats.count_failure("reply dropped: window full");
    }
}

void client::flush_replies(steady::time_point now) {
    const auto& spec = *role_.reply;
    while (!pending_replies_.empty() && can_send(spec.qos)) {
        const std::uint32_t target = pending_replies_.front();
        pending_replies_.pop_front();
        if (target >= reply_templates_.size()) {
            reply_templates_.resize(target + 1);
            reply_counts_.resize(target + 1);
        }
        auto& t = reply_templates_[target];
        if (t.header.empty()) {
            const auto topic = spec.topic.render(plan_.local, plan_.client_id, target);
            t = make_publish_template(topic, spec.qos, spec.retain, spec.size, rc_.version,
                                      rc_.filler);
        }
        append_publish(t, target + 1, reply_counts_[target], now);
    }
}

} // namespace tern::bench::detail
