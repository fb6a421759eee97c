#include "connection.hpp"

#include "router.hpp"

#include <tern/core/log.hpp>
#include <tern/protocol/encoder.hpp>
#include <tern/protocol/error.hpp>
#include <tern/protocol/topic.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <charconv>
#include <exception>
#include <utility>

namespace tern::broker {

using core::log;
using core::log_level;

namespace asio = boost::asio;
namespace mqtt = tern::protocol;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

/// How long a closing connection may take to write its last packets.
constexpr auto close_flush_timeout = 2s;
/// Write backlog above which QoS 0 waits in the session queue and the connection stops reading
/// (a client that does not read what it asked for); reading resumes below the low watermark.
constexpr std::size_t backlog_high_watermark = 1024 * 1024;
constexpr std::size_t backlog_low_watermark = backlog_high_watermark / 2;
/// Inbound topic aliases we accept (CONNACK Topic Alias Maximum, v5).
constexpr std::uint16_t inbound_alias_maximum = 64;
/// Outbound topic aliases we use at most, whatever larger maximum the client allows: bounds
/// the per-connection table.
constexpr std::uint16_t outbound_alias_cap = 64;
/// A SUBSCRIBE User Property naming the member's weight in a shared group (Tern extension).
constexpr std::string_view weight_property = "share-weight";

std::size_t frame_size(std::size_t head, std::string_view payload) {
    return head + payload.size();
}

} // namespace

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
            waiting->take_over();
        }
        handle_handover(w, next);
    } else if (waiting && !waiting->closing()) {
        // A session with expiry 0 ended with the connection just taken over, even if that
        // connection's DISCONNECT had not been processed yet when the new CONNECT arrived.
        const bool resumable = !req.clean_start && s.expiry_interval != 0;
        if (!resumable) {
            s.clear(); // [MQTT-3.1.2-4]: Clean Start discards the existing session
            s.pending_will.reset();
        }
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
    if (s.conn != nullptr) {
        s.conn->take_over(); // detaches the session
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
    auto& target = *w.state.workers[req.to];
    asio::post(target.ctx, [&target, sp = std::move(sp), req]() mutable {
        receive_session(target, std::move(sp), req);
    });
}

void end_session(worker& w, session& s) {
    const auto key = s.handle->key;
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
    if (s.expiry_interval != 0) {
        w.state.store->session_removed(s.client_id());
    }
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
        if (s.expiry_interval != 0xFFFFFFFFU &&
            now - s.offline_since >= std::chrono::seconds(s.expiry_interval)) {
            expired.push_back(&s);
        }
    }
    for (auto* s : expired) {
        log(log_level::info, "client '{}': session expired", s->client_id());
        end_session(w, *s);
    }
}

// ---------------------------------------------------------------------------------------------
// connection

connection::connection(worker& owner, std::unique_ptr<net::transport> transport, std::uint64_t key,
                       const listener_config& listener,
                       std::atomic<std::size_t>& listener_connections)
    : owner_(owner), state_(owner.state), transport_(std::move(transport)), listener_(listener),
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
    if (read_armed_ || read_paused_ || closing_) {
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
    if (closing_ || (connect_received_ && !connected_)) {
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
        if (connect_received_ && !connected_) {
            return; // the session is on its way; the rest waits in `input`
        }
        // The in-place form: each packet is decoded into `packet`, never moved.
        if (auto err = decoder_.next(input, packet)) {
            if (err != mqtt::codec_error::need_more) {
                fail(err);
            }
            break;
        }
        owner_.counters.add(owner_.counters.packets_received, 1);
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
    // start_write() can close a connection whose session then ends and publishes a will,
    // which queues frames on other connections: take the list out before walking it.
    std::vector<std::shared_ptr<connection>> batch;
    while (!w.pending_writes.empty()) {
        batch.swap(w.pending_writes);
        for (auto& c : batch) {
            c->start_write();
        }
        batch.clear();
    }
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
            writing_.swap(queue_);
            queued_bytes_ = 0;
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
    if (closed_ || now < deadline_) {
        return;
    }
    if (closing_) {
        log(log_level::info, "{}: peer did not read its last packets in time", describe());
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

void connection::refuse_connect(mqtt::reason_code reason, std::string_view why) {
    log(log_level::info, "{}: CONNECT refused: {} ({})", peer_, why, mqtt::to_string(reason));
    connect_received_ = true; // nothing more is read
    mqtt::connack ack{false, reason, {}};
    if (v5()) {
        ack.props.reason_string = why; // CONNACK may always carry one [MQTT-3.1.2-29]
    }
    send(ack);
    close_after_flush();
}

void connection::on_connect(const mqtt::connect& c,
                            const std::shared_ptr<const std::uint8_t[]>& storage) {
    const auto& cfg = state_.config;
    version_ = c.version;

    if (cfg.max_connections && state_.connection_count.load() >= *cfg.max_connections) {
        refuse_connect(v5() ? mqtt::reason_code::quota_exceeded
                            : mqtt::reason_code::server_unavailable,
                       "max_connections reached");
        return;
    }
    if (listener_.max_connections && listener_connections_.load() >= *listener_.max_connections) {
        refuse_connect(v5() ? mqtt::reason_code::quota_exceeded
                            : mqtt::reason_code::server_unavailable,
                       "max_connections of this listener reached");
        return;
    }
    if (v5() && c.props.authentication_method) {
        // Enhanced authentication: no method is implemented yet [MQTT-4.12.0-1].
        refuse_connect(mqtt::reason_code::bad_authentication_method,
                       fmt::format("authentication method '{}'", *c.props.authentication_method));
        return;
    }
    if (c.username) {
        username_ = std::string(*c.username);
    }
    bool authenticated_by_certificate = false;
    if (listener_.use_identity_as_username || listener_.use_subject_as_username) {
        // mosquitto: the certificate (or PSK identity) replaces whatever User Name was sent,
        // and a client without one is refused as having bad credentials.
        const auto& peer = transport_->peer();
        std::string identity;
        if (peer.certificate) {
            identity = listener_.use_subject_as_username ? peer.certificate->subject
                                                         : peer.certificate->common_name;
        } else if (!peer.psk_identity.empty()) {
            identity = peer.psk_identity;
        }
        if (identity.empty()) {
            refuse_connect(mqtt::reason_code::bad_user_name_or_password,
                           "no certificate identity to use as username");
            return;
        }
        username_ = std::move(identity);
        authenticated_by_certificate = true;
    }
    if (!cfg.allow_anonymous && !authenticated_by_certificate) {
        // No password file or plugin exists yet: only certificate identities authenticate (a
        // User Name alone proves nothing).
        refuse_connect(mqtt::reason_code::not_authorized, "allow_anonymous is false");
        return;
    }
    if (c.client_id.empty()) {
        if (!v5() && !c.clean_start) {
            // [MQTT-3.1.3-8]: a zero-byte ClientId needs CleanSession 1; return code 2.
            refuse_connect(mqtt::reason_code::client_identifier_not_valid,
                           "empty client id without clean session");
            return;
        }
        client_id_ = fmt::format("tern-{:x}-{}", state_.client_id_salt, key_);
        assigned_id_ = true;
    } else {
        client_id_ = std::string(c.client_id);
    }
    keep_alive_ = c.keep_alive;
    problem_information_ = c.props.request_problem_information.value_or(1) != 0;
    if (keep_alive_ > cfg.max_keepalive || (keep_alive_ == 0 && cfg.max_keepalive < 65535)) {
        if (!v5()) {
            // 3.1.1 cannot be told another keep-alive: refused like mosquitto does.
            refuse_connect(mqtt::reason_code::client_identifier_not_valid,
                           fmt::format("keep-alive {} s above max_keepalive", keep_alive_));
            return;
        }
        keep_alive_ = cfg.max_keepalive; // sent back as Server Keep Alive [MQTT-3.2.2-22]
        keep_alive_changed_ = true;
    }
    if (c.will && c.will->retain && !cfg.retain_available) {
        refuse_connect(v5() ? mqtt::reason_code::retain_not_supported
                            : mqtt::reason_code::unspecified_error,
                       "retained will while retain_available is false");
        return;
    }

    connect_received_ = true;
    state_.connection_count.fetch_add(1);
    listener_connections_.fetch_add(1);
    counted_ = true;
    decoder_.options().version = c.version;
    decoder_.options().maximum_packet_size = state_.max_packet_size;
    if (v5()) {
        // The decoder rejects Receive Maximum 0; max() keeps a quota of 0 from ever stalling.
        receive_maximum_ = std::max<std::uint16_t>(c.props.receive_maximum.value_or(65535), 1);
        client_max_packet_size_ = c.props.maximum_packet_size.value_or(0xFFFFFFFF);
        client_alias_maximum_ =
            std::min(c.props.topic_alias_maximum.value_or(0), outbound_alias_cap);
        requested_expiry_ = c.props.session_expiry_interval.value_or(0);
    } else if (!c.clean_start) {
        requested_expiry_ = cfg.persistent_client_expiration
                                ? static_cast<std::uint32_t>(std::min<std::int64_t>(
                                      cfg.persistent_client_expiration->count(), 0xFFFFFFFE))
                                : 0xFFFFFFFFU;
    }
    if (c.will) {
        auto w = std::make_shared<message>();
        w->publish.topic = c.will->topic;
        w->publish.payload = c.will->payload;
        w->publish.qos = c.will->qos;
        w->publish.retain = c.will->retain;
        // Will Delay Interval is not a PUBLISH property; the rest travel on.
        w->publish.props = forwardable_properties(c.will->props);
        w->storage = storage;
        w->received_at = state_.clock.now();
        will_delay_ = c.will->props.will_delay_interval.value_or(0);
        will_ = std::move(w);
    }
    claim_session(c.clean_start);
}

void connection::claim_session(bool clean_start) {
    const auto claim = state_.directory.claim(client_id_, owner_.index, state_.next_key++);
    const auto key = claim.handle->key;
    if (!claim.existing) {
        auto sp = std::make_unique<session>(owner_, claim.handle);
        session& s = *sp;
        owner_.sessions.emplace(key, std::move(sp));
        attach(s, false);
        return;
    }
    // The client id has a session (maybe with a live connection): fetch it from the worker
    // that holds it, or will once the handovers already on their way complete.
    owner_.awaiting_session[key] = weak_from_this();
    const handover_request req{key, owner_.index, clean_start};
    if (claim.previous_claimant == owner_.index) {
        handle_handover(owner_, req);
        return;
    }
    auto& holder = *state_.workers[claim.previous_claimant];
    asio::post(holder.ctx, [&holder, req] { handle_handover(holder, req); });
}

void connection::attach(session& s, bool session_present) {
    session_ = &s;
    s.conn = this;
    s.version = version_;
    s.expiry_interval = requested_expiry_;
    s.handle->online.store(true, std::memory_order_relaxed);
    connected_ = true;
    deadline_ =
        keep_alive_ == 0 ? steady::time_point::max() : state_.clock.now() + keep_alive_ * 1500ms;
    // Reading stopped after CONNECT while the session was fetched; go on (after this handler,
    // since attach() may run inside consume()).
    asio::post(transport_->get_executor(), [self = shared_from_this()] { self->resume_reading(); });
    if (s.expiry_interval != 0) {
        state_.store->session_opened(client_id_, s.expiry_interval);
    }

    mqtt::connack ack;
    ack.session_present = session_present;
    const auto& cfg = state_.config;
    if (v5()) {
        if (assigned_id_) {
            ack.props.assigned_client_identifier = client_id_;
        }
        if (keep_alive_changed_) {
            ack.props.server_keep_alive = keep_alive_;
        }
        ack.props.maximum_packet_size = state_.max_packet_size;
        ack.props.topic_alias_maximum = inbound_alias_maximum;
        if (!cfg.retain_available) {
            ack.props.retain_available = 0;
        }
        // Absent on purpose: Maximum QoS (2), Wildcard, Subscription Identifier and Shared
        // Subscription Available (all 1), Receive Maximum (65535).
    }
    send(ack);
    if (cfg.logging.connection_messages) {
        const auto& peer = transport_->peer();
        std::string via;
        if (peer.tls) {
            via = fmt::format(", {} {}", peer.transport, peer.tls_version);
            if (!peer.server_name.empty()) {
                via += fmt::format(" sni {}", peer.server_name);
            }
            if (!peer.alpn.empty()) {
                via += fmt::format(" alpn {}", peer.alpn);
            }
        } else if (peer.transport != "tcp") {
            via = fmt::format(", {}", peer.transport);
        }
        if (!username_.empty()) {
            via += fmt::format(", user '{}'", username_);
        }
        log(log_level::info, "{}: client '{}' connected (MQTT {}, keep-alive {} s{}{}{})", peer_,
            client_id_, mqtt::to_string(version_), keep_alive_, will_ ? ", will" : "",
            session_present ? ", session resumed" : "", via);
    }
    s.resume();
}

void connection::on_publish(mqtt::publish& p,
                            const std::shared_ptr<const std::uint8_t[]>& storage) {
    const auto& cfg = state_.config;
    owner_.counters.add(owner_.counters.messages_received, 1);
    std::string aliased_topic;
    if (p.props.topic_alias) {
        const auto alias = *p.props.topic_alias;
        if (!v5() || alias > inbound_alias_maximum) {
            fail(mqtt::reason_code::topic_alias_invalid); // [MQTT-3.3.2-9]
            return;
        }
        if (p.topic.empty()) {
            const auto it = inbound_aliases_.find(alias);
            if (it == inbound_aliases_.end()) {
                fail(mqtt::reason_code::protocol_error); // [MQTT-3.3.4-?]: unknown alias
                return;
            }
            aliased_topic = it->second;
        } else {
            inbound_aliases_[alias] = std::string(p.topic);
        }
        p.props.topic_alias.reset(); // never forwarded [MQTT-3.3.2-?]
    }
    if (!p.props.subscription_identifiers.empty()) {
        // Only a server puts Subscription Identifiers in PUBLISH [MQTT-3.3.4-6].
        fail(mqtt::reason_code::protocol_error);
        return;
    }
    if (aliased_topic.empty()) {
        if (const auto ec = mqtt::validate_topic_name(p.topic)) {
            fail(ec);
            return;
        }
    }
    if (p.retain && !cfg.retain_available) {
        fail(mqtt::reason_code::retain_not_supported); // [MQTT-3.3.1-?]
        return;
    }
    if (p.qos == mqtt::qos::exactly_once && session_->inbound_qos2.contains(p.packet_id)) {
        // A resend before PUBREL: already delivered once [MQTT-4.3.3-10]; just acknowledge.
        send(mqtt::pubrec{p.packet_id, mqtt::reason_code::success, {}});
        return;
    }
    auto reason = mqtt::reason_code::success;
    std::string_view reason_text;
    if (cfg.message_size_limit != 0 && p.payload.size() > cfg.message_size_limit) {
        // mosquitto's behaviour: the message is dropped, the flow still completes.
        log(log_level::info, "{}: PUBLISH on '{}' with {} bytes over message_size_limit, dropped",
            describe(), p.topic, p.payload.size());
        reason = mqtt::reason_code::implementation_specific_error;
        reason_text = "payload larger than message_size_limit";
    } else {
        auto m = std::make_shared<message>();
        if (!aliased_topic.empty()) {
            m->topic_storage = std::move(aliased_topic);
            m->publish.topic = m->topic_storage;
        } else {
            m->publish.topic = p.topic;
        }
        m->publish.payload = p.payload;
        m->publish.qos = p.qos;
        m->publish.retain = p.retain;
        if (v5()) {
            m->publish.props = forwardable_properties(p.props);
        }
        m->storage = storage;
        m->received_at = state_.clock.now();
        const message_ptr shared = std::move(m);
        if (p.retain) {
            state_.retained.set(shared);
        }
        const auto receivers =
            route(owner_, shared,
                  publish_context{shared->publish.topic, session_->handle->key, client_id_});
        if (receivers == 0 && v5()) {
            reason = mqtt::reason_code::no_matching_subscribers;
        }
    }
    switch (p.qos) {
    case mqtt::qos::at_most_once:
        break;
    case mqtt::qos::at_least_once: {
        mqtt::puback ack{p.packet_id, reason, {}};
        if (v5() && problem_information_ && !reason_text.empty()) {
            ack.props.reason_string = reason_text;
        }
        send(ack);
        break;
    }
    case mqtt::qos::exactly_once: {
        if (!mqtt::is_failure(reason)) {
            session_->inbound_qos2.insert(p.packet_id);
        }
        mqtt::pubrec ack{p.packet_id, reason, {}};
        if (v5() && problem_information_ && !reason_text.empty()) {
            ack.props.reason_string = reason_text;
        }
        send(ack);
        break;
    }
    }
}

void connection::on_subscribe(const mqtt::subscribe& s) {
    std::uint32_t identifier = 0;
    if (!s.props.subscription_identifiers.empty()) {
        identifier = s.props.subscription_identifiers.front();
    }
    std::uint32_t weight = 1;
    for (const auto& up : s.props.user_properties) {
        if (up.key == weight_property) {
            std::uint32_t w = 0;
            const auto* end = up.value.data() + up.value.size();
            if (std::from_chars(up.value.data(), end, w).ptr == end && w >= 1 && w <= 10000) {
                weight = w;
            }
        }
    }
    struct retained_request {
        std::string_view filter;
        delivery d;
    };
    std::vector<retained_request> retained;
    mqtt::suback ack;
    ack.packet_id = s.packet_id;
    session& ses = *session_;
    for (const auto& sub : s.subscriptions) {
        mqtt::reason_code reason = mqtt::reason_code::unspecified_error;
        const auto parsed = mqtt::parse_topic_filter(sub.filter);
        if (!parsed) {
            reason = mqtt::reason_code::topic_filter_invalid;
        } else if (parsed->is_shared() && sub.options.no_local) {
            // [MQTT-3.8.3-4]: No Local on a shared subscription is a protocol error.
            fail(mqtt::reason_code::protocol_error);
            return;
        } else {
            subscription entry{sub.options, identifier, weight};
            const bool is_new = state_.subscriptions.subscribe(ses.handle, sub.filter, entry);
            if (ses.expiry_interval != 0) {
                state_.store->subscription_added(client_id_, sub.filter, entry);
            }
            ses.subscriptions[std::string(sub.filter)] = entry;
            reason = static_cast<mqtt::reason_code>(sub.options.qos); // granted = requested
            const auto rh = sub.options.retain_handling;
            // Retained messages are not sent for shared subscriptions [MQTT-4.8.2-?].
            if (!parsed->is_shared() &&
                (rh == mqtt::retain_handling::send_on_subscribe ||
                 (rh == mqtt::retain_handling::send_if_new_subscription && is_new))) {
                delivery d;
                d.to = ses.handle;
                d.qos = sub.options.qos;
                if (identifier != 0) {
                    d.subscription_ids.push_back(identifier);
                }
                retained.push_back({sub.filter, std::move(d)});
            }
        }
        if (!v5() && mqtt::is_failure(reason)) {
            reason = mqtt::reason_code::unspecified_error; // 3.1.1 knows only 0x80 Failure
        }
        if (mqtt::is_failure(reason)) {
            log(log_level::info, "{}: subscription to '{}' refused: {}", describe(), sub.filter,
                mqtt::to_string(reason));
            if (v5() && problem_information_ && !ack.props.reason_string) {
                ack.props.reason_string = mqtt::to_string(reason); // the first refusal
            }
        }
        ack.reasons.push_back(reason);
    }
    send(ack);
    // Retained messages follow the SUBACK, flagged RETAIN 1 [MQTT-3.3.1-8].
    std::vector<message_ptr> matches;
    const auto now = state_.clock.now();
    for (const auto& r : retained) {
        matches.clear();
        state_.retained.match(r.filter, matches);
        for (const auto& m : matches) {
            if (const auto left = expiry_left(*m, now); left && *left == 0) {
                continue;
            }
            ses.deliver(m, r.d, true);
        }
    }
}

void connection::on_unsubscribe(const mqtt::unsubscribe& u) {
    mqtt::unsuback ack;
    ack.packet_id = u.packet_id;
    session& ses = *session_;
    for (const auto filter : u.filters) {
        const bool existed = state_.subscriptions.unsubscribe(ses.handle->key, filter);
        if (const auto it = ses.subscriptions.find(std::string(filter));
            it != ses.subscriptions.end()) {
            ses.subscriptions.erase(it);
            if (ses.expiry_interval != 0) {
                state_.store->subscription_removed(client_id_, filter);
            }
        }
        if (v5()) {
            ack.reasons.push_back(existed ? mqtt::reason_code::success
                                          : mqtt::reason_code::no_subscription_existed);
        }
    }
    send(ack);
}

void connection::on_disconnect(const mqtt::disconnect& d) {
    if (v5() && d.props.session_expiry_interval) {
        if (requested_expiry_ == 0 && *d.props.session_expiry_interval != 0) {
            // [MQTT-3.14.2-2]: a session that was to end may not be extended now.
            fail(mqtt::reason_code::protocol_error);
            return;
        }
        requested_expiry_ = *d.props.session_expiry_interval;
        session_->expiry_interval = requested_expiry_;
    }
    // [MQTT-3.14.4-3]: a normal DISCONNECT discards the will; v5 0x04 asks for it anyway.
    if (!(v5() && d.reason == mqtt::reason_code::disconnect_with_will_message)) {
        will_discarded_ = true;
    }
    log(log_level::debug, "{}: DISCONNECT ({})", describe(), mqtt::to_string(d.reason));
    close();
}

void connection::on_puback(const mqtt::puback& a) {
    session_->complete(a.packet_id, mqtt::qos::at_least_once);
}

void connection::on_pubrec(const mqtt::pubrec& a) {
    if (mqtt::is_failure(a.reason)) {
        // The client refused the message: the exchange ends here [MQTT-4.3.3-4 note].
        session_->refuse(a.packet_id);
        return;
    }
    if (!session_->release(a.packet_id)) {
        const auto it = session_->inflight.find(a.packet_id);
        if (it == session_->inflight.end() || !it->second.released) {
            send(mqtt::pubrel{a.packet_id,
                              v5() ? mqtt::reason_code::packet_identifier_not_found
                                   : mqtt::reason_code::success,
                              {}});
            return;
        }
    }
    send_pubrel(a.packet_id);
}

void connection::on_pubrel(const mqtt::pubrel& a) {
    const bool known = session_->inbound_qos2.erase(a.packet_id) != 0;
    send(mqtt::pubcomp{a.packet_id,
                       known || !v5() ? mqtt::reason_code::success
                                      : mqtt::reason_code::packet_identifier_not_found,
                       {}});
}

void connection::on_pubcomp(const mqtt::pubcomp& a) {
    session_->complete(a.packet_id, mqtt::qos::exactly_once);
}

bool connection::accepts_qos0() const noexcept {
    return !closing_ && queued_bytes_ < backlog_high_watermark;
}

std::size_t connection::inflight_window() const noexcept {
    const std::size_t configured =
        state_.config.max_inflight_messages == 0 ? 65535 : state_.config.max_inflight_messages;
    return std::min<std::size_t>(configured, receive_maximum_);
}

bool connection::send_publish(const outbound_message& out, std::uint16_t packet_id, bool dup) {
    const message& m = *out.msg;
    mqtt::publish p;
    p.topic = m.publish.topic;
    p.payload = m.publish.payload;
    p.qos = out.qos;
    p.retain = out.retain;
    p.dup = dup;
    p.packet_id = packet_id;
    if (v5()) {
        p.props = m.publish.props;
        if (const auto left = expiry_left(m, state_.clock.now())) {
            if (*left == 0) {
                return false; // expired on the way [MQTT-3.3.2-5]
            }
            p.props.message_expiry_interval = *left; // [MQTT-3.3.2-6]
        }
        p.props.subscription_identifiers.assign(out.subscription_ids.begin(),
                                                out.subscription_ids.end());
        if (client_alias_maximum_ != 0) {
            const auto topic = std::string(m.publish.topic);
            if (const auto it = outbound_aliases_.find(topic); it != outbound_aliases_.end()) {
                p.props.topic_alias = it->second;
                p.topic = {}; // the client knows the topic by its alias
            } else if (outbound_aliases_.size() < client_alias_maximum_) {
                const auto alias = static_cast<std::uint16_t>(outbound_aliases_.size() + 1);
                outbound_aliases_.emplace(topic, alias);
                p.props.topic_alias = alias;
            }
        }
    } else if (const auto left = expiry_left(m, state_.clock.now()); left && *left == 0) {
        return false;
    }
    auto layout = mqtt::publish_size(p, version_);
    if (!layout) {
        log(log_level::error, "{}: cannot encode PUBLISH to '{}': {}", describe(), m.publish.topic,
            layout.error().message());
        return false;
    }
    if (layout->total_size > client_max_packet_size_) {
        // [MQTT-3.1.2-25]: never send more than the client's Maximum Packet Size; the message
        // is discarded for this client as if delivered.
        log(log_level::debug,
            "{}: message on '{}' ({} bytes) over the client's maximum packet size, dropped",
            describe(), m.publish.topic, layout->total_size);
        return false;
    }
    frame f;
    f.head.resize(layout->header_size);
    const auto written = mqtt::encode_publish_header(p, version_, f.head);
    if (!written) {
        log(log_level::error, "{}: cannot encode PUBLISH to '{}': {}", describe(), m.publish.topic,
            written.error().message());
        return false;
    }
    f.payload = p.payload;
    f.keep = out.msg;
    owner_.counters.add(owner_.counters.messages_sent, 1);
    enqueue(std::move(f));
    return true;
}

void connection::send_pubrel(std::uint16_t packet_id) {
    send(mqtt::pubrel{packet_id, mqtt::reason_code::success, {}});
}

void connection::send(const mqtt::packet& p) {
    auto size = mqtt::encoded_size(p, version_);
    if (size && *size > client_max_packet_size_) {
        // [MQTT-3.1.2-25]: drop the Reason String (and User Properties) rather than exceed the
        // client's Maximum Packet Size; what is left is small enough for any legal maximum.
        auto lean = p;
        std::visit(
            [](auto& packet) {
                if constexpr (requires { packet.props.reason_string; }) {
                    packet.props.reason_string.reset();
                    packet.props.user_properties.clear();
                }
            },
            lean);
        send_encoded(lean);
        return;
    }
    send_encoded(p);
}

void connection::send_encoded(const mqtt::packet& p) {
    const auto size = mqtt::encoded_size(p, version_);
    if (!size) {
        // Only a bug can get here: every packet we build is encodable.
        log(log_level::error, "{}: cannot encode {}: {}", describe(),
            mqtt::to_string(mqtt::type_of(p)), size.error().message());
        close();
        return;
    }
    frame f;
    f.head.resize(*size);
    (void)mqtt::encode(p, version_, f.head);
    enqueue(std::move(f));
}

void connection::enqueue(frame f) {
    if (closed_) {
        return;
    }
    owner_.counters.add(owner_.counters.packets_sent, 1);
    queued_bytes_ += frame_size(f.head.size(), f.payload);
    queue_.push_back(std::move(f));
    schedule_write();
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

void connection::take_over() {
    log(log_level::info, "{}: taken over by a new connection with the same client id", describe());
    if (session_ != nullptr) {
        if (will_ && !will_discarded_ && will_delay_ == 0) {
            // The old connection ends without DISCONNECT: its will goes out, unless it is
            // delayed, in which case the resumed session cancels it [MQTT-3.1.3-9].
            publish_internal(owner_, will_, session_->handle->key, client_id_);
        }
        session_->conn = nullptr;
        session_->handle->online.store(false, std::memory_order_relaxed);
        session_ = nullptr;
    }
    will_discarded_ = true;
    disconnect_with(mqtt::reason_code::session_taken_over);
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
        if (s->pending_will) {
            auto will = std::move(s->pending_will);
            publish_internal(w, will, key, s->client_id());
        }
    }
    flush_writes(w);
}

void connection::publish_will_now() {
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
    s.go_offline();
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
