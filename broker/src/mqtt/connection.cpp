// The connection over its transport: reading, writing, deadlines, dispatch, closing.
#include "mqtt/connection_detail.hpp"

#include <exception>
#include <utility>

namespace tern::broker {

// ---------------------------------------------------------------------------------------------
// connection

connection::connection(worker& owner, std::unique_ptr<net::transport> transport, std::uint64_t key,
                       const listener_config& listener,
                       std::atomic<std::size_t>& listener_connections)
    : owner_(owner), state_(owner.state), transport_(std::move(transport)), listener_(listener),
      listener_index_(static_cast<std::size_t>(&listener - state_.config.listeners.data())),
      listener_connections_(listener_connections), key_(key), peer_(transport_->peer().address),
      deadline_(owner.state.clock.now() + owner.state.config.connect_timeout),
      decoder_(mqtt::decode_options{mqtt::protocol_version::v5,
                                    owner.state.config.max_connect_packet_size,
                                    mqtt::receiver_role::server}) {}

connection::~connection() = default;

void connection::start() {
    owner_.counters.add(owner_.counters.connections, 1);
    log(log_level::debug, "{}: accepted on worker {}", peer_, owner_.index);
    arm_read();
}

// Reading and writing are completion handlers, not coroutines: an idle connection then holds
// exactly one pending reactor wait and no coroutine frames, timers or buffers (the worker's
// tick enforces deadlines), which keeps it well under 2 KiB. Every handler holds a shared_ptr
// to the connection, so it lives until the last one has run.

void connection::arm_read() {
    if (read_armed_ || read_paused_ || throttled_ || closing_) {
        return;
    }
    read_armed_ = true;
    transport_->wait_readable([self = shared_from_this()](const boost::system::error_code& ec) {
        self->read_armed_ = false;
        self->on_readable(ec);
    });
}

void connection::fail_unexpected(const char* what) noexcept {
    // A bug or an allocation failure in one connection's handler must not take the worker (and
    // every other connection pinned to it) down with it.
    try {
        log(log_level::error, "{}: internal error ({}), closing the connection", describe(), what);
    } catch (...) {
    }
    try {
        close();
    } catch (...) {
    }
}

void connection::on_readable(boost::system::error_code ec) {
    try {
        read_and_handle(ec);
    } catch (const std::exception& e) {
        fail_unexpected(e.what());
    } catch (...) {
        fail_unexpected("unknown exception");
    }
}

void connection::read_and_handle(boost::system::error_code ec) {
    if (closing_) {
        return;
    }
    std::size_t n = 0;
    auto& buffer = owner_.read_buffer;
    if (!ec) {
        // Read into the worker's shared buffer and decode at once: the decoder copies what it
        // keeps, so the buffer is free again before any other connection reads.
        n = transport_->try_read(buffer, ec);
        if (net::is_would_block(ec)) {
            if (transport_->wants_write()) {
                schedule_write(); // e.g. a WebSocket pong or the upgrade answer
                flush_writes(owner_);
            }
            arm_read();
            return;
        }
    }
    if (ec) {
        // EOF or reset without DISCONNECT: an abnormal close, so the will is published.
        if (const auto why = transport_->describe_error(); !why.empty()) {
            if (transport_->peer().tls && !connect_received_) {
                owner_.counters.add(owner_.counters.tls_handshake_failures, 1);
            }
            log(log_level::info, "{}: {}, closing", describe(), why);
        } else if (decoder_.mid_packet()) {
            log(log_level::info, "{}: connection lost mid-packet ({})", describe(), ec.message());
        } else {
            log(log_level::debug, "{}: connection lost ({})", describe(), ec.message());
        }
        close();
        return;
    }
    owner_.counters.add(owner_.counters.bytes_received, n);
    if (owner_.readiness && connected_) {
        observe_bytes(n);
    }
    if (byte_rate_) {
        // AWS IoT Core: "Throughput per second per connection: 512 KiB ... excess is delayed".
        byte_rate_->charge(state_.clock.now(), static_cast<double>(n));
        throttled_ = byte_rate_->in_debt(state_.clock.now());
    }
    if (connected_ && keep_alive_ != 0) {
        // [MQTT-3.1.2-24]: 1.5 x Keep Alive since the client last sent something. Bytes of a
        // large packet in progress count, so a slow 1 MiB PUBLISH is not cut off.
        deadline_ = state_.clock.now() + keep_alive_ * 1500ms;
    }
    if (transport_->wants_write()) {
        schedule_write();
    }
    if (!connect_received_ && !decoder_.mid_packet() && n > 0 && buffer[0] == 0x16 &&
        !transport_->peer().tls) {
        // 0x16 is a TLS handshake record; as MQTT it would be a CONNECT with reserved flags,
        // which no client sends. Say what it is rather than "malformed packet".
        log(log_level::info, "{}: TLS handshake on a plain listener, closing", describe());
        close();
        return;
    }
    std::span<const std::uint8_t> input(buffer.data(), n);
    consume(input);
    if (!input.empty() && !closing_) {
        // CONNECT was accepted and the session is on its way: keep the rest for attach().
        held_input_.insert(held_input_.end(), input.begin(), input.end());
    }
    // Everything this read published goes to the other workers as one batch each, and what
    // it queued locally is written now.
    flush_outbox(owner_);
    flush_writes(owner_);
    if (closing_ || pending_connect_ || (connect_received_ && !connected_)) {
        return; // attach() resumes reading
    }
    if (queued_bytes_ > backlog_high_watermark) {
        // Back-pressure: the client does not read what it asked for; stop reading its requests
        // until the writer drains below the low watermark.
        read_paused_ = true;
        return;
    }
    arm_read();
}

void connection::resume_reading() {
    if (closing_) {
        return;
    }
    if (!held_input_.empty() && connected_) {
        auto held = std::move(held_input_);
        held_input_.clear();
        std::span<const std::uint8_t> input(held);
        consume(input);
        flush_outbox(owner_);
        if (closing_) {
            return;
        }
    }
    if (queued_bytes_ > backlog_high_watermark) {
        read_paused_ = true;
        return;
    }
    read_paused_ = false;
    arm_read();
}

void connection::consume(std::span<const std::uint8_t>& input) {
    auto& packet = owner_.packet_scratch;
    while (!closing_ && !input.empty()) {
        if (pending_connect_ || (connect_received_ && !connected_)) {
            return; // CONNECT is being checked or its session is on its way; the rest waits
        }
        // The in-place form: each packet is decoded into `packet`, never moved.
        if (auto err = decoder_.next(input, packet)) {
            if (err != mqtt::codec_error::need_more) {
                fail(err);
            }
            break;
        }
        owner_.counters.add(owner_.counters.packets_received, 1);
        ticket_before_packet_ = owner_.last_ticket;
        handle(packet);
        // An idle connection must not pin its last frame (it may be megabytes); the stale
        // views left in `packet` are never read before the next decode replaces them.
        packet.storage.reset();
    }
}

void connection::schedule_write() {
    if (write_in_flight_ || write_scheduled_ || closed_) {
        return;
    }
    // Deferred to the end of the current handler, so every frame it queues (a whole fan-out
    // batch, a read's worth of acknowledgements) goes out in one gathered write.
    write_scheduled_ = true;
    owner_.pending_writes.push_back(shared_from_this());
    if (!owner_.pending_writes_posted) {
        owner_.pending_writes_posted = true;
        asio::post(owner_.ctx, [&w = owner_] {
            w.pending_writes_posted = false;
            flush_writes(w);
        });
    }
}

void flush_writes(worker& w) {
    // The handler's store writes are submitted first: the frames that wait for them get
    // their ticket and stay queued until it is durable.
    w.submit_store();
    // start_write() can close a connection whose session then ends and publishes a will,
    // which queues frames on other connections: take the list out before walking it.
    std::vector<std::shared_ptr<connection>> batch;
    while (!w.pending_writes.empty()) {
        batch.swap(w.pending_writes);
        for (auto& c : batch) {
            c->start_write();
        }
        batch.clear();
        w.submit_store();
    }
}

void worker::submit_store() {
    if (!state.durable) {
        return;
    }
    if (writes->dirty()) {
        last_ticket = writes->submit();
    }
    if (!gated_now.empty()) {
        std::vector<std::shared_ptr<connection>> gated;
        gated.swap(gated_now);
        for (auto& c : gated) {
            c->assign_ticket(last_ticket);
        }
    }
}

void worker::release_durable() {
    std::vector<std::weak_ptr<connection>> waiting;
    waiting.swap(awaiting_durable);
    for (auto& weak : waiting) {
        if (auto c = weak.lock()) {
            c->durable_advanced();
        }
    }
    std::vector<std::uint64_t> paging;
    paging.swap(awaiting_page_in);
    for (const auto key : paging) {
        // A session that moved to another worker since is paged in there.
        if (const auto s = sessions.find(key); s != sessions.end()) {
            s->second->page_in_ready();
        }
    }
    flush_writes(*this);
}

bool connection::take_writable_frames() {
    if (!state_.durable) {
        writing_.swap(queue_);
        queued_bytes_ = 0;
        return true;
    }
    // Frames go out in order, so the first one still waiting for the store holds back the
    // rest (a PUBLISH after a held PUBACK must not overtake it).
    const auto durable = state_.store->durable_ticket();
    std::size_t ready = 0;
    while (ready < queue_.size() && queue_[ready].ticket <= durable) {
        ++ready;
    }
    if (ready == queue_.size()) {
        writing_.swap(queue_);
        queued_bytes_ = 0;
        return true;
    }
    await_durable();
    if (ready == 0) {
        return false;
    }
    for (std::size_t i = 0; i < ready; ++i) {
        queued_bytes_ -= frame_size(queue_[i].head.size(), queue_[i].payload);
        writing_.push_back(std::move(queue_[i]));
    }
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(ready));
    return true;
}

void connection::start_write() {
    write_scheduled_ = false;
    if (write_in_flight_ || closed_) {
        return;
    }
    // Write synchronously while the (non-blocking) socket takes the bytes, and wait for
    // writability only when it is full. asio::async_write would split a long gather list into
    // 16–64-buffer pieces, each of them completing through the back of the worker's queue,
    // behind every publisher's 64 KiB read: a busy worker then fed one subscriber a few
    // messages per pass.
    for (;;) {
        if (write_pos_ == write_buffers_.size()) {
            if (queue_.empty() && transport_->wants_write()) {
                boost::system::error_code ec;
                transport_->try_write({}, ec);
                if (net::is_would_block(ec)) {
                    wait_writable();
                    return;
                }
                if (ec) {
                    close();
                    return;
                }
            }
            if (queue_.empty()) {
                if (closing_) {
                    close(); // everything written: the graceful close completes here
                }
                return;
            }
            if (!take_writable_frames()) {
                return; // every queued frame waits for the store (durable_advanced resumes)
            }
            write_buffers_.clear();
            write_pos_ = 0;
            for (const auto& f : writing_) {
                write_buffers_.emplace_back(asio::buffer(f.head.data(), f.head.size()));
                if (!f.payload.empty()) {
                    write_buffers_.emplace_back(asio::buffer(f.payload.data(), f.payload.size()));
                }
            }
        }
        while (write_pos_ < write_buffers_.size()) {
            const std::span<const asio::const_buffer> rest(write_buffers_.data() + write_pos_,
                                                           write_buffers_.size() - write_pos_);
            boost::system::error_code ec;
            std::size_t n = transport_->try_write(rest, ec);
            if (net::is_would_block(ec)) {
                wait_writable();
                return;
            }
            if (ec) {
                if (!closed_) {
                    const auto why = transport_->describe_error();
                    log(log_level::debug, "{}: write failed ({})", describe(),
                        why.empty() ? ec.message() : why);
                }
                close();
                return;
            }
            owner_.counters.add(owner_.counters.bytes_sent, n);
            while (n > 0 && write_pos_ < write_buffers_.size()) {
                auto& b = write_buffers_[write_pos_];
                if (n >= b.size()) {
                    n -= b.size();
                    ++write_pos_;
                } else {
                    b += n;
                    n = 0;
                }
            }
        }
        finish_batch();
        if (closed_) {
            return;
        }
    }
}

void connection::wait_writable() {
    write_in_flight_ = true;
    transport_->wait_writable([self = shared_from_this()](const boost::system::error_code& e) {
        self->write_in_flight_ = false;
        if (e) {
            self->close();
            return;
        }
        try {
            self->start_write();
            flush_writes(self->owner_); // a close may have queued wills elsewhere
        } catch (const std::exception& ex) {
            self->fail_unexpected(ex.what());
        } catch (...) {
            self->fail_unexpected("unknown exception");
        }
    });
}

void connection::finish_batch() {
    writing_.clear();
    write_buffers_.clear();
    write_pos_ = 0;
    if (writing_.capacity() > 64) {
        // A burst is over: give the memory back rather than keep it per connection.
        writing_ = {};
        write_buffers_ = {};
    }
    if (queued_bytes_ < backlog_low_watermark && !closing_) {
        if (session_ != nullptr) {
            session_->send_queued(); // QoS 0 that waited for room
        }
        if (read_paused_) {
            resume_reading();
        }
    }
}

void connection::check_deadline(steady::time_point now) {
    if (throttled_ && !closed_ && !byte_rate_->in_debt(now)) {
        throttled_ = false;
        arm_read();
    }
    if (replay_left_ != 0 && session_ != nullptr && session_->queued.empty() &&
        session_->on_disk() == 0) {
        replay_left_ = 0; // the backlog is out (what was in flight needed no pacing)
    }
    if (replay_left_ != 0 && session_ != nullptr && !closing_) {
        try {
            session_->send_queued(); // the next of the paced replay (profile aws-iot)
        } catch (const std::exception& e) {
            fail_unexpected(e.what());
            return;
        }
    }
    if (closed_ || now < deadline_) {
        return;
    }
    if (closing_) {
        log(log_level::info, "{}: peer did not read its last packets in time", describe());
        close();
    } else if (pending_connect_) {
        log(log_level::info, "{}: the checks of its CONNECT took longer than {} ms, closing", peer_,
            state_.config.connect_timeout.count());
        close();
    } else if (!connected_) {
        log(log_level::info, "{}: no CONNECT within {} ms, closing", peer_,
            state_.config.connect_timeout.count());
        close();
    } else {
        log(log_level::info, "{}: keep-alive timeout ({} s x 1.5)", describe(), keep_alive_);
        disconnect_with(mqtt::reason_code::keep_alive_timeout);
    }
}

void connection::handle(mqtt::received_packet& packet) {
    if (!connect_received_) {
        if (auto* c = std::get_if<mqtt::connect>(&packet.packet)) {
            on_connect(*c, packet.storage);
        } else {
            // [MQTT-3.1.0-1]: the first packet must be CONNECT.
            log(log_level::warn, "{}: {} before CONNECT, closing (protocol error)", peer_,
                mqtt::to_string(mqtt::type_of(packet.packet)));
            close();
        }
        return;
    }
    switch (mqtt::type_of(packet.packet)) {
    case mqtt::packet_type::connect:
        // [MQTT-3.1.0-2]: a second CONNECT is a protocol violation.
        fail(mqtt::reason_code::protocol_error);
        break;
    case mqtt::packet_type::publish:
        on_publish(std::get<mqtt::publish>(packet.packet), packet.storage);
        break;
    case mqtt::packet_type::puback:
        on_puback(std::get<mqtt::puback>(packet.packet));
        break;
    case mqtt::packet_type::pubrec:
        on_pubrec(std::get<mqtt::pubrec>(packet.packet));
        break;
    case mqtt::packet_type::pubrel:
        on_pubrel(std::get<mqtt::pubrel>(packet.packet));
        break;
    case mqtt::packet_type::pubcomp:
        on_pubcomp(std::get<mqtt::pubcomp>(packet.packet));
        break;
    case mqtt::packet_type::subscribe:
        on_subscribe(std::get<mqtt::subscribe>(packet.packet));
        break;
    case mqtt::packet_type::unsubscribe:
        on_unsubscribe(std::get<mqtt::unsubscribe>(packet.packet));
        break;
    case mqtt::packet_type::pingreq:
        send(mqtt::pingresp{});
        break;
    case mqtt::packet_type::disconnect:
        on_disconnect(std::get<mqtt::disconnect>(packet.packet));
        break;
    default:
        // AUTH without an Authentication Method in CONNECT [MQTT-4.12.0-1]; the decoder's role
        // check already rejects CONNACK, SUBACK, UNSUBACK and PINGRESP.
        fail(mqtt::reason_code::protocol_error);
        break;
    }
}

void connection::on_disconnect(const mqtt::disconnect& d) {
    if (v5() && d.props.session_expiry_interval) {
        if (requested_expiry_ == 0 && *d.props.session_expiry_interval != 0) {
            // [MQTT-3.14.2-2]: a session that was to end may not be extended now.
            fail(mqtt::reason_code::protocol_error);
            return;
        }
        requested_expiry_ = *d.props.session_expiry_interval;
        if (aws()) {
            requested_expiry_ = aws_iot::session_expiry(requested_expiry_, false);
        }
        session_->expiry_interval = requested_expiry_;
        if (requested_expiry_ == 0) {
            session_->handle->persistent.store(false, std::memory_order_relaxed);
        }
    }
    lifecycle_reason_ = aws_iot::client_initiated_disconnect;
    client_initiated_ = true;
    // [MQTT-3.14.4-3]: a normal DISCONNECT discards the will; v5 0x04 asks for it anyway.
    if (!(v5() && d.reason == mqtt::reason_code::disconnect_with_will_message)) {
        will_discarded_ = true;
    }
    log(log_level::debug, "{}: DISCONNECT ({})", describe(), mqtt::to_string(d.reason));
    close();
}

void connection::fail(boost::system::error_code ec) {
    auto reason = mqtt::to_reason_code(ec);
    log(log_level::warn, "{}: closing: {} (reason 0x{:02X} {})", describe(), ec.message(),
        static_cast<unsigned>(reason), mqtt::to_string(reason));
    if (!connected_) {
        if (ec == mqtt::codec_error::unsupported_protocol_version) {
            // [MQTT-3.1.2-2]: CONNACK 0x01 (3.1.1) / 0x84 (v5) then close. The level is unknown
            // to us, so answer in the 3.1.1 layout every client generation can read.
            version_ = mqtt::protocol_version::v3_1_1;
            send(mqtt::connack{false, mqtt::reason_code::unsupported_protocol_version, {}});
            close_after_flush();
            return;
        }
        close();
        return;
    }
    if (!mqtt::is_allowed_in(reason, mqtt::packet_type::disconnect)) {
        reason = mqtt::reason_code::unspecified_error;
    }
    disconnect_with(reason, ec.message());
}

void connection::disconnect_with(mqtt::reason_code reason, std::string_view why) {
    if (lifecycle_reason_.empty()) {
        lifecycle_reason_ = aws_iot::disconnect_reason(reason);
    }
    if (connected_ && v5() && !closing_) {
        mqtt::disconnect d{reason, {}};
        if (!why.empty()) {
            d.props.reason_string = why; // DISCONNECT may always carry one
        }
        send(d);
        close_after_flush();
    } else {
        close();
    }
}

std::optional<client_info> connection::info() const {
    if (!connected_ || closing_ || session_ == nullptr) {
        return std::nullopt;
    }
    client_info i;
    i.client_id = client_id_;
    i.username = identity_.username.value_or("");
    i.address = peer_;
    i.listener = listener_index_;
    i.protocol = version_slot() == 0 ? "3.1" : version_slot() == 1 ? "3.1.1" : "5";
    i.connected_ms = connected_ms_;
    i.bridge = bridge_;
    i.subscriptions = session_->subscriptions.size();
    i.shared_member = std::any_of(session_->subscriptions.begin(), session_->subscriptions.end(),
                                  [](const auto& e) { return e.first.starts_with("$share/"); });
    i.inflight = session_->inflight.size();
    i.queued = session_->queued.size() + session_->on_disk();
    return i;
}

void connection::admin_disconnect(const disconnect_request& request) {
    const auto reason = static_cast<mqtt::reason_code>(request.reason);
    log(log_level::info, "{}: disconnected by the admin API ({})", describe(),
        mqtt::to_string(reason));
    if (connected_ && v5() && !closing_ && !request.server_reference.empty()) {
        mqtt::disconnect d{reason, {}};
        d.props.server_reference = request.server_reference;
        send(d);
        close_after_flush();
        return;
    }
    disconnect_with(reason, reason == mqtt::reason_code::use_another_server
                                ? "this broker is draining: connect again"
                                : "disconnected by the administrator");
}

void connection::take_over(bool session_continues) {
    log(log_level::info, "{}: taken over by a new connection with the same client id", describe());
    if (session_ != nullptr) {
        // MQTT 5: the old connection ends without DISCONNECT, so its will goes out, unless it
        // is delayed, in which case the resumed session cancels it [MQTT-3.1.3-9]. 3.1.1 and
        // 3.1, as mosquitto 2.0 (handle_connect.c): only when the session ends with the old
        // connection; a session the new connection resumes drops the old connection's will.
        const bool publish = v5() ? will_delay_ == 0 : !session_continues;
        if (will_ && !will_discarded_ && publish) {
            publish_internal(owner_, will_, session_->handle->key, client_id_);
        }
        lifecycle_reason_ = aws_iot::disconnect_reason(mqtt::reason_code::session_taken_over);
        publish_disconnected_event(); // before the new connection's connected event
        session_->sink = nullptr;
        session_->handle->online.store(false, std::memory_order_relaxed);
        session_ = nullptr;
    }
    will_discarded_ = true;
    disconnect_with(mqtt::reason_code::session_taken_over);
}

void connection::publish_will_now() {
    if (will_ && !will_discarded_ && session_ != nullptr && state_.durable &&
        session_->in_store() && will_delay_ != 0 && session_->expiry_interval != 0) {
        // The session outlives this shutdown in the store, and its delayed will with it: the
        // delay runs on after the restart [MQTT-3.1.3-9].
        session_->pending_will = will_;
        session_->will_due = state_.clock.now() + std::chrono::seconds(will_delay_);
        will_discarded_ = true;
        return;
    }
    if (will_ && !will_discarded_ && session_ != nullptr) {
        publish_internal(owner_, will_, session_->handle->key, client_id_);
    }
    will_discarded_ = true; // published once, here
}

void connection::shut_down() {
    will_discarded_ = true; // phase 1 published it
    disconnect_with(mqtt::reason_code::server_shutting_down);
}

void connection::close_after_flush() {
    if (closing_) {
        return;
    }
    closing_ = true;
    // Stop reading more requests, but let the writer finish; the watchdog bounds the wait.
    deadline_ = state_.clock.now() + close_flush_timeout;
    schedule_write(); // closes once the queue is written
    finish_session(); // the session stops taking messages for this connection now
}

void connection::close() {
    if (closed_) {
        return;
    }
    auto self = shared_from_this(); // finish() drops the worker's reference
    closed_ = true;
    closing_ = true;
    // The session ends (and its client id is released) before the client can see the socket
    // close: a client that reconnects the moment it sees EOF finds its session state settled.
    finish();
    transport_->close(); // cancels the pending waits: their handlers see closed_
}

void connection::finish_session() {
    if (session_ == nullptr) {
        return;
    }
    session& s = *session_;
    session_ = nullptr;
    if (will_ && !will_discarded_ && !owner_.stopping) {
        if (will_delay_ == 0 || s.expiry_interval == 0) {
            // [MQTT-3.1.2-8]: the connection closed without a normal DISCONNECT.
            log(log_level::debug, "{}: publishing will on '{}'", describe(), will_->publish.topic);
            publish_internal(owner_, will_, s.handle->key, client_id_);
        } else {
            // [MQTT-3.1.3-9]: sent after the delay unless the session resumes first.
            s.pending_will = will_;
            s.will_due = state_.clock.now() + std::chrono::seconds(will_delay_);
        }
    }
    will_.reset();
    publish_disconnected_event();
    s.go_offline();
    if (s.in_store() && s.expiry_interval != 0) {
        s.save(s.pending_will.get(), will_delay_, std::chrono::system_clock::now());
    }
    if (s.expiry_interval == 0 || owner_.stopping) {
        end_session(owner_, s);
    }
    if (state_.config.logging.connection_messages) {
        log(log_level::info, "{}: client '{}' disconnected", peer_, client_id_);
    }
}

void connection::finish() {
    finish_session();
    if (counted_) {
        state_.connection_count.fetch_sub(1);
        listener_connections_.fetch_sub(1);
        state_.connections_by_version[listener_index_][version_slot()].fetch_sub(1);
        if (aws()) {
            state_.aws_account.connections.fetch_sub(1);
        }
        counted_ = false;
    }
    will_.reset();
    queue_.clear();
    queued_bytes_ = 0;
    owner_.connections.erase(key_); // the coroutines still hold the object
}

std::string connection::describe() const {
    if (client_id_.empty()) {
        return peer_;
    }
    return fmt::format("{} client '{}'", peer_, client_id_);
}

} // namespace tern::broker
