// One tern-bench MQTT connection. Everything here runs on the client's worker thread: no
// locks, and the only cross-thread traffic is the controller's posts (engine.cpp).
//
// Hot path budget: a message costs one memcpy of its header template plus the payload header
// into a reused output buffer (no allocation once the buffers have grown), and on receipt one
// decode in place from the read buffer (decode_fixed_header + decode_body: no copy, no
// allocation, unlike stream_decoder which gives every packet its own storage), one clock read
// and one sequence-window update.

#include "engine_detail.hpp"

#include <tern/protocol/encoder.hpp>
#include <tern/protocol/error.hpp>
#include <tern/protocol/reason_code.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <fmt/format.h>

#include <openssl/ssl.h>

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

ack_template make_ack(mqtt::packet_type type, mqtt::protocol_version v) {
    constexpr std::uint16_t marker = 0xA5C3;
    mqtt::packet p;
    auto with_id = [&](auto ack) {
        ack.packet_id = marker;
        p = ack;
    };
    switch (type) {
    case mqtt::packet_type::puback:
        with_id(mqtt::puback{});
        break;
    case mqtt::packet_type::pubrec:
        with_id(mqtt::pubrec{});
        break;
    case mqtt::packet_type::pubrel:
        with_id(mqtt::pubrel{});
        break;
    default:
        with_id(mqtt::pubcomp{});
        break;
    }
    ack_template t;
    const auto n = mqtt::encode(p, v, t.bytes);
    // Acks of a success with no properties take 4 bytes in both versions; the identifier
    // follows the 2-byte fixed header.
    if (!n || *n < 4 || t.bytes[2] != 0xA5 || t.bytes[3] != 0xC3) {
        throw config_error("internal: unexpected acknowledgement encoding");
    }
    t.size = *n;
    return t;
}

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
    mqtt::publish p;
    p.topic = topic;
    p.payload = filler.substr(0, payload_size);
    p.qos = q;
    p.retain = retain;
    p.packet_id = q == mqtt::qos::at_most_once ? 0 : 0xA5C3;
    publish_template t;
    t.payload_size = payload_size;
    t.qos = q;
    const auto size = mqtt::publish_size(p, v);
    if (!size) {
        throw config_error(fmt::format("topic \"{}\": cannot encode a PUBLISH: {}", topic,
                                       size.error().message()));
    }
    t.header.resize(size->header_size);
    const auto layout = mqtt::encode_publish_header(p, v, t.header);
    if (!layout) {
        throw config_error(fmt::format("topic \"{}\": cannot encode a PUBLISH: {}", topic,
                                       layout.error().message()));
    }
    if (q != mqtt::qos::at_most_once) {
        // The identifier ends the variable header in 3.1.1; in 5 an empty property block
        // (one zero byte) follows it.
        t.packet_id_at = t.header.size() - 2 - (mqtt::is_v3(v) ? 0 : 1);
        if (t.header[t.packet_id_at] != 0xA5 || t.header[t.packet_id_at + 1] != 0xC3) {
            throw config_error("internal: unexpected PUBLISH header layout");
        }
    }
    return t;
}

client::client(worker& w, run_context& rc, client_plan plan)
    : w_(w), rc_(rc), plan_(std::move(plan)), role_(rc.sc->roles[plan_.role]), socket_(w.ctx),
      watchdog_(w.ctx), write_signal_(w.ctx),
      send_signal_(w.ctx), decode_options_{rc.version, mqtt::max_packet_size,
                                           mqtt::receiver_role::client} {
    // Read buffers by need: an idle connection only ever reads CONNACK and PINGRESP.
    rbuf_.resize(role_.subscribe ? 32 * 1024 : role_.publish ? 4096 : 512);
    keepalive_ = std::chrono::seconds(rc.sc->keepalive);
    puback_ = make_ack(mqtt::packet_type::puback, rc.version);
    pubrec_ = make_ack(mqtt::packet_type::pubrec, rc.version);
    pubrel_ = make_ack(mqtt::packet_type::pubrel, rc.version);
    pubcomp_ = make_ack(mqtt::packet_type::pubcomp, rc.version);
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

client::~client() = default;

std::int64_t client::since_t0(steady::time_point t) const noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t - rc_.t0).count();
}

tcp::socket& client::lowest() noexcept {
    return tls_ ? tls_->next_layer() : socket_;
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
    // DISCONNECT goes out after whatever is queued; the writer then half-closes and the
    // reader waits for the broker to close. A broker that does not: closed in 1 s anyway.
    mqtt::disconnect d;
    if (auto bytes = mqtt::encode_to_vector(d, rc_.version)) {
        append_bytes(*bytes);
    }
    disconnect_queued_ = true;
    wake_writer();
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
    boost::system::error_code ignored;
    lowest().close(ignored);
    watchdog_.cancel();
    write_signal_.cancel();
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
    if (!co_await establish()) {
        co_return;
    }
    spawn(write_loop(), "writer");
    spawn(read_loop(), "reader");
    if (plan_.unit != nullptr) {
        mqtt::subscribe s;
        s.packet_id = 1;
        s.subscriptions.push_back({plan_.subscription, {role_.subscribe->qos}});
        auto bytes = mqtt::encode_to_vector(s, rc_.version);
        if (!bytes) {
            lost("cannot encode SUBSCRIBE: " + bytes.error().message());
            co_return;
        }
        append_bytes(*bytes);
    }
    if (role_.publish) {
        co_await publish_loop();
    }
}

asio::awaitable<bool> client::establish() {
    auto& st = w_.stats;
    ++st.c.connect_attempts;
    const auto started = steady::now();
    if (st.first_attempt_ns < 0) {
        st.first_attempt_ns = since_t0(started);
    }
    if (rc_.tls != nullptr) {
        tls_ = std::make_unique<asio::ssl::stream<tcp::socket>>(w_.ctx, *rc_.tls);
    }
    // One deadline for TCP + TLS + CONNACK: on expiry the socket is closed, which fails
    // whatever operation is pending; timed_out_ tells that failure apart.
    watchdog_.expires_after(rc_.connect_timeout);
    watchdog_.async_wait([this](boost::system::error_code ec) {
        if (!ec && !connected_ && !closed_) {
            timed_out_ = true;
            boost::system::error_code ignored;
            lowest().close(ignored);
        }
    });
    auto [cec, endpoint] = co_await asio::async_connect(lowest(), rc_.endpoints, use_nothrow);
    if (cec) {
        connect_failed(timed_out_ ? "timeout" : describe_network(cec));
        co_return false;
    }
    boost::system::error_code ignored;
    lowest().set_option(tcp::no_delay(true), ignored);

    if (tls_) {
        if (!rc_.tls_server_name.empty() &&
            SSL_set_tlsext_host_name(tls_->native_handle(), rc_.tls_server_name.c_str()) != 1) {
            connect_failed("tls: cannot set SNI");
            co_return false;
        }
        if (!rc_.options->tls.insecure) {
            tls_->set_verify_callback(asio::ssl::host_name_verification(rc_.tls_verify_name));
        }
        auto [hec] = co_await tls_->async_handshake(asio::ssl::stream_base::client, use_nothrow);
        if (hec) {
            connect_failed(timed_out_ ? "timeout" : "tls: " + hec.message());
            co_return false;
        }
    }

    mqtt::connect c;
    c.version = rc_.version;
    c.clean_start = rc_.options->clean;
    c.keep_alive = rc_.sc->keepalive;
    c.client_id = plan_.client_id;
    if (rc_.options->username) {
        c.username = *rc_.options->username;
    }
    if (rc_.options->password) {
        c.password = *rc_.options->password;
    }
    if (!rc_.options->clean && !mqtt::is_v3(rc_.version)) {
        // MQTT 5 keeps no session unless asked for an expiry; --no-clean means "keep it".
        c.props.session_expiry_interval = 3600;
    }
    auto connect_bytes = mqtt::encode_to_vector(c, rc_.version);
    if (!connect_bytes) {
        connect_failed("cannot encode CONNECT: " + connect_bytes.error().message());
        co_return false;
    }
    auto [wec, wn] =
        tls_ ? co_await asio::async_write(*tls_, asio::buffer(*connect_bytes), use_nothrow)
             : co_await asio::async_write(socket_, asio::buffer(*connect_bytes), use_nothrow);
    if (wec) {
        connect_failed(timed_out_ ? "timeout" : describe_network(wec));
        co_return false;
    }
    st.c.bytes_sent += wn;

    for (;;) {
        auto p = next_packet();
        if (!p) {
            if (p.error() != mqtt::codec_error::need_more) {
                connect_failed("not an MQTT broker? malformed CONNACK: " + p.error().message());
                co_return false;
            }
            const auto rec = co_await read_more();
            if (rec) {
                connect_failed(timed_out_                ? "timeout"
                               : rec == asio::error::eof ? "closed by broker before CONNACK"
                               : tls_ && rec.category() != boost::system::system_category()
                                   ? "tls: " + rec.message()
                                   : describe_network(rec));
                co_return false;
            }
            continue;
        }
        if (const auto* ack = std::get_if<mqtt::connack>(&*p)) {
            if (mqtt::is_failure(ack->reason)) {
                connect_failed("connack: " + std::string(mqtt::to_string(ack->reason)));
                co_return false;
            }
            if (ack->props.receive_maximum) {
                window_ = std::min(window_, *ack->props.receive_maximum);
            }
            if (ack->props.server_keep_alive) {
                keepalive_ = std::chrono::seconds(*ack->props.server_keep_alive);
            }
            break;
        }
        if (const auto* d = std::get_if<mqtt::disconnect>(&*p)) {
            connect_failed("disconnected before CONNACK: " +
                           std::string(mqtt::to_string(d->reason)));
        } else {
            connect_failed("unexpected " + std::string(mqtt::to_string(mqtt::type_of(*p))) +
                           " before CONNACK");
        }
        co_return false;
    }
    watchdog_.cancel();
    const auto now = steady::now();
    connected_ = true;
    ++st.c.connect_ok;
    ++st.c.connected;
    st.connack.record(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(now - started).count()));
    st.last_connack_ns = std::max(st.last_connack_ns, since_t0(now));
    last_write_ = now;
    slots_.assign(window_, inflight_slot{});
    free_slots_.clear();
    for (std::uint32_t i = window_; i > 0; --i) {
        free_slots_.push_back(static_cast<std::uint16_t>(i - 1));
    }
    co_return true;
}

boost::system::result<mqtt::packet> client::next_packet() {
    const std::span<const std::uint8_t> avail(rbuf_.data() + rpos_, rend_ - rpos_);
    const auto header = mqtt::decode_fixed_header(avail, decode_options_);
    if (!header) {
        return header.error();
    }
    const std::size_t total = std::size_t{header->size} + header->remaining_length;
    if (avail.size() < total) {
        // A packet larger than the buffer: make room for all of it (rare; the buffer stays).
        if (total > rbuf_.size()) {
            rbuf_.resize(std::max(total, rbuf_.size() * 2));
        }
        return mqtt::make_error_code(mqtt::codec_error::need_more);
    }
    auto p = mqtt::decode_body(*header, avail.subspan(header->size, header->remaining_length),
                               decode_options_);
    if (p) {
        rpos_ += total;
    }
    return p;
}

asio::awaitable<boost::system::error_code> client::read_more() {
    if (rpos_ == rend_) {
        rpos_ = rend_ = 0;
    } else if (rpos_ > 0 && (rend_ == rbuf_.size() || rbuf_.size() - rend_ < rbuf_.size() / 4)) {
        // Move the partial packet to the front. Views into the buffer are dead by now: every
        // complete packet was handled before this read.
        std::memmove(rbuf_.data(), rbuf_.data() + rpos_, rend_ - rpos_);
        rend_ -= rpos_;
        rpos_ = 0;
    }
    if (rend_ == rbuf_.size()) {
        rbuf_.resize(rbuf_.size() * 2);
    }
    const auto buffer = asio::buffer(rbuf_.data() + rend_, rbuf_.size() - rend_);
    auto [ec, n] = tls_ ? co_await tls_->async_read_some(buffer, use_nothrow)
                        : co_await socket_.async_read_some(buffer, use_nothrow);
    rend_ += n;
    w_.stats.c.bytes_received += n;
    co_return ec;
}

asio::awaitable<void> client::read_loop() {
    while (!closed_) {
        auto p = next_packet();
        if (p) {
            handle(*p);
            continue;
        }
        if (p.error() != mqtt::codec_error::need_more) {
            lost("malformed packet from broker: " +
                 std::string(
                     mqtt::enumerator_name(static_cast<mqtt::codec_error>(p.error().value()))));
            break;
        }
        const auto ec = co_await read_more();
        if (ec) {
            if (stopping_ || closed_) {
                close(); // the broker closed after our DISCONNECT, or we closed
            } else {
                lost(describe_network(ec));
            }
            break;
        }
    }
}

asio::awaitable<void> client::write_loop() {
    while (!closed_) {
        if (out_.empty()) {
            if (disconnect_queued_) {
                // DISCONNECT is out: half-close; the reader sees the broker's close.
                boost::system::error_code ignored;
                if (!tls_) {
                    socket_.shutdown(tcp::socket::shutdown_send, ignored);
                }
                break;
            }
            // No deadline (time_point::max() never becomes the reactor's earliest timer, so
            // this costs no syscall); keep-alive is the worker's sweep (keepalive_tick).
            writer_idle_ = true;
            write_signal_.expires_at(steady::time_point::max());
            co_await write_signal_.async_wait(use_nothrow);
            writer_idle_ = false;
            continue;
        }
        std::swap(out_, writing_);
        auto [ec, n] =
            tls_ ? co_await asio::async_write(*tls_, asio::buffer(writing_), use_nothrow)
                 : co_await asio::async_write(socket_, asio::buffer(writing_), use_nothrow);
        writing_.clear();
        if (ec) {
            if (stopping_ || closed_) {
                close();
            } else {
                lost("write: " + describe_network(ec));
            }
            break;
        }
        w_.stats.c.bytes_sent += n;
        last_write_ = steady::now();
        if (wake_on_progress_) {
            send_signal_.cancel();
        }
    }
}

void client::keepalive_tick(steady::time_point now) {
    if (!connected_ || closed_ || disconnect_queued_ || keepalive_.count() == 0 || !writer_idle_) {
        return;
    }
    // The sweep runs once a second: ping up to a second early (half the interval if shorter).
    const auto margin = std::min<steady::duration>(keepalive_ / 2, 1s);
    if (now >= last_write_ + keepalive_ - margin) {
        static constexpr std::uint8_t pingreq[] = {0xC0, 0x00};
        out_.insert(out_.end(), std::begin(pingreq), std::end(pingreq));
        wake_writer();
    }
}

void client::wake_writer() {
    if (writer_idle_) {
        write_signal_.cancel();
    }
}

void client::append_bytes(const std::vector<std::uint8_t>& bytes) {
    if (closed_ || disconnect_queued_) {
        return;
    }
    out_.insert(out_.end(), bytes.begin(), bytes.end());
    wake_writer();
}

void client::append_ack(const ack_template& t, std::uint16_t packet_id) {
    if (closed_ || disconnect_queued_) {
        return;
    }
    const auto at = out_.size();
    out_.insert(out_.end(), t.bytes.begin(), t.bytes.begin() + static_cast<std::ptrdiff_t>(t.size));
    out_[at + 2] = static_cast<std::uint8_t>(packet_id >> 8);
    out_[at + 3] = static_cast<std::uint8_t>(packet_id & 0xFF);
    wake_writer();
}

bool client::can_send(mqtt::qos q) const noexcept {
    return connected_ && !closed_ && !disconnect_queued_ && out_.size() < high_water_ &&
           (q == mqtt::qos::at_most_once || inflight_ < window_);
}

void client::append_publish(const publish_template& t, std::uint32_t stream, stream_counts& counts,
                            steady::time_point now) {
    auto& st = w_.stats.c;
    const bool measured = now >= rc_.measure_start && now < rc_.measure_end;
    std::uint16_t packet_id = 0;
    if (t.qos != mqtt::qos::at_most_once) {
        const auto slot = free_slots_.back();
        free_slots_.pop_back();
        slots_[slot] = {since_t0(now), stream, 1, t.qos, measured};
        ++inflight_;
        packet_id = static_cast<std::uint16_t>(slot + 1);
    }
    const auto at = out_.size();
    out_.resize(at + t.header.size() + t.payload_size); // the filler stays zero
    std::uint8_t* dst = out_.data() + at;
    std::memcpy(dst, t.header.data(), t.header.size());
    if (packet_id != 0) {
        dst[t.packet_id_at] = static_cast<std::uint8_t>(packet_id >> 8);
        dst[t.packet_id_at + 1] = static_cast<std::uint8_t>(packet_id & 0xFF);
    }
    write_payload_header(dst + t.header.size(),
                         {rc_.run_tag, plan_.global, stream, counts.sent, realtime_ns()});
    ++counts.sent;
    ++st.sent;
    st.sent_measured += measured ? 1 : 0;
    if (t.qos == mqtt::qos::at_most_once) {
        ++counts.acked;
        ++st.acked;
    }
    wake_writer();
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
    while (inflight_ > 0 && !closed_ && !stopping_) {
        wake_on_progress_ = true;
        co_await wait_signal(steady::time_point::max()); // stop() ends it at the latest
        wake_on_progress_ = false;
    }
    mark_pub_done();
}

void client::handle(const mqtt::packet& p) {
    if (const auto* pub = std::get_if<mqtt::publish>(&p)) {
        on_publish(*pub);
    } else if (const auto* a = std::get_if<mqtt::puback>(&p)) {
        on_ack(a->packet_id, mqtt::packet_type::puback, a->reason);
    } else if (const auto* rec = std::get_if<mqtt::pubrec>(&p)) {
        on_ack(rec->packet_id, mqtt::packet_type::pubrec, rec->reason);
    } else if (const auto* comp = std::get_if<mqtt::pubcomp>(&p)) {
        on_ack(comp->packet_id, mqtt::packet_type::pubcomp, comp->reason);
    } else if (const auto* rel = std::get_if<mqtt::pubrel>(&p)) {
        append_ack(pubcomp_, rel->packet_id);
    } else if (const auto* sa = std::get_if<mqtt::suback>(&p)) {
        on_suback(*sa);
    } else if (std::holds_alternative<mqtt::pingresp>(p) ||
               std::holds_alternative<mqtt::unsuback>(p)) {
        // nothing to do
    } else if (const auto* d = std::get_if<mqtt::disconnect>(&p)) {
        lost("DISCONNECT from broker: " + std::string(mqtt::to_string(d->reason)));
    } else {
        lost("unexpected " + std::string(mqtt::to_string(mqtt::type_of(p))) + " from broker");
    }
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

void client::on_ack(std::uint16_t packet_id, mqtt::packet_type type, mqtt::reason_code rc) {
    auto& st = w_.stats;
    const std::size_t index = packet_id == 0 ? slots_.size() : std::size_t{packet_id} - 1U;
    const bool expect_first = type != mqtt::packet_type::pubcomp;
    if (index >= slots_.size() || slots_[index].state != (expect_first ? 1 : 2) ||
        (type == mqtt::packet_type::puback) != (slots_[index].qos == mqtt::qos::at_least_once)) {
        ++st.c.errors;
        st.count_failure("unexpected " + std::string(mqtt::to_string(type)));
        return;
    }
    auto& slot = slots_[index];
    stream_counts& counts = slot.stream == 0 ? main_ : reply_counts_[slot.stream - 1];
    if (mqtt::is_failure(rc)) {
        ++st.c.errors;
        st.count_failure(fmt::format("{}: {}", mqtt::to_string(type), mqtt::to_string(rc)));
    } else if (type == mqtt::packet_type::pubrec) {
        slot.state = 2;
        append_ack(pubrel_, packet_id);
        return;
    } else {
        ++counts.acked;
        ++st.c.acked;
        if (slot.measured) {
            const auto now = since_t0(steady::now());
            st.ack.record(
                static_cast<std::uint64_t>(std::max<std::int64_t>(0, now - slot.queued_ns)));
        }
    }
    slot.state = 0;
    free_slots_.push_back(static_cast<std::uint16_t>(index));
    --inflight_;
    if (!pending_replies_.empty()) {
        flush_replies(steady::now());
    }
    if (wake_on_progress_) {
        send_signal_.cancel();
    }
}

void client::on_publish(const mqtt::publish& p) {
    auto& st = w_.stats;
    if (p.qos == mqtt::qos::at_least_once) {
        append_ack(puback_, p.packet_id);
    } else if (p.qos == mqtt::qos::exactly_once) {
        append_ack(pubrec_, p.packet_id);
    }
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
