#include "connection.hpp"

#include <tern/broker/log.hpp>
#include <tern/protocol/encoder.hpp>
#include <tern/protocol/error.hpp>
#include <tern/protocol/topic.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>
#include <exception>
#include <span>
#include <utility>

namespace tern::broker {

namespace asio = boost::asio;
namespace mqtt = tern::protocol;
using namespace std::chrono_literals;

namespace {

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

/// Bytes read from the socket at a time; the decoder copies bodies out of it.
constexpr std::size_t read_chunk_size = 16 * 1024;
/// Frames gathered into one write.
constexpr std::size_t max_frames_per_write = 64;
/// How long a closing connection may take to write its last packets.
constexpr auto close_flush_timeout = 2s;
/// QoS 1/2 messages held back by the client's Receive Maximum, per connection. Beyond this they
/// are dropped (counted, logged): a stand-in for the back-pressure of the broker-core issue.
constexpr std::size_t max_pending_messages = 10'000;

std::string peer_name(const asio::ip::tcp::socket& socket) {
    boost::system::error_code ec;
    const auto ep = socket.remote_endpoint(ec);
    if (ec) {
        return "?";
    }
    return ep.address().is_v6() ? fmt::format("[{}]:{}", ep.address().to_string(), ep.port())
                                : fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

} // namespace

std::size_t route(shared_state& state, const message_ptr& m, std::uint64_t publisher) {
    auto targets = state.subscriptions.match(m->publish.topic, publisher);
    if (targets.empty()) {
        return 0;
    }
    // One task per receiving worker (STYLE.md §4): the shared message plus its receivers.
    std::vector<std::vector<delivery_target>> by_worker(state.workers.size());
    for (auto& t : targets) {
        by_worker[t.to.worker].push_back(std::move(t));
    }
    for (std::size_t i = 0; i < by_worker.size(); ++i) {
        if (by_worker[i].empty()) {
            continue;
        }
        asio::post(state.workers[i]->ctx, [m, receivers = std::move(by_worker[i])] {
            for (const auto& r : receivers) {
                if (auto c = r.to.conn.lock()) {
                    // [MQTT-3.3.1-9]: RETAIN is 0 towards established subscriptions unless
                    // Retain As Published (v5) asks for the flag as published.
                    c->deliver(m, r.qos, r.retain_as_published && m->publish.retain);
                }
            }
        });
    }
    return targets.size();
}

connection::connection(shared_state& state, worker& owner, asio::ip::tcp::socket socket,
                       std::uint64_t key)
    : state_(state), owner_(owner), socket_(std::move(socket)), key_(key),
      peer_(peer_name(socket_)), write_signal_(socket_.get_executor()),
      watchdog_timer_(socket_.get_executor()),
      deadline_(std::chrono::steady_clock::now() + state.options.connect_timeout),
      decoder_(mqtt::decode_options{mqtt::protocol_version::v5,
                                    state.options.max_connect_packet_size,
                                    mqtt::receiver_role::server}) {}

void connection::start() {
    boost::system::error_code ignored;
    socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
    log(log_level::debug, "{}: accepted on worker {}", peer_, owner_.index);

    // No bare `detached`: an escaped exception is logged and closes the connection.
    auto on_done = [self = shared_from_this()](const char* what) {
        return [self, what](std::exception_ptr e) {
            if (!e) {
                return;
            }
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                log(log_level::error, "{}: {} failed: {}", self->describe(), what, ex.what());
            } catch (...) {
                log(log_level::error, "{}: {} failed: unknown exception", self->describe(), what);
            }
            self->close();
        };
    };
    asio::co_spawn(socket_.get_executor(), read_loop(), on_done("reader"));
    asio::co_spawn(socket_.get_executor(), write_loop(), on_done("writer"));
    asio::co_spawn(socket_.get_executor(), watchdog(), on_done("watchdog"));
}

asio::awaitable<void> connection::read_loop() {
    auto self = shared_from_this();
    std::vector<std::uint8_t> buffer(read_chunk_size);
    mqtt::received_packet packet;
    while (!closing_) {
        auto [ec, n] = co_await socket_.async_read_some(asio::buffer(buffer), use_nothrow);
        if (closing_) {
            break;
        }
        if (ec) {
            // EOF or reset without DISCONNECT: an abnormal close, so the will is published.
            if (decoder_.mid_packet()) {
                log(log_level::info, "{}: connection lost mid-packet ({})", describe(),
                    ec.message());
            } else {
                log(log_level::debug, "{}: connection lost ({})", describe(), ec.message());
            }
            close();
            break;
        }
        if (connected_ && keep_alive_ != 0) {
            // [MQTT-3.1.2-24]: 1.5 x Keep Alive since the client last sent something. Bytes of
            // a large packet in progress count, so a slow 1 MiB PUBLISH is not cut off.
            deadline_ = std::chrono::steady_clock::now() + keep_alive_ * 1500ms;
        }
        std::span<const std::uint8_t> input(buffer.data(), n);
        while (!closing_) {
            // The in-place form: each packet is decoded into `packet`, never moved.
            if (auto err = decoder_.next(input, packet)) {
                if (err != mqtt::codec_error::need_more) {
                    fail(err);
                }
                break;
            }
            handle(packet);
            // An idle connection must not pin its last frame (it may be megabytes); the stale
            // views left in `packet` are never read before the next decode replaces them.
            packet.storage.reset();
        }
    }
}

asio::awaitable<void> connection::write_loop() {
    auto self = shared_from_this();
    std::vector<frame> batch;
    std::vector<asio::const_buffer> buffers;
    while (!closed_) {
        if (queue_.empty()) {
            if (closing_) {
                close(); // everything written: the graceful close completes here
                break;
            }
            write_signal_.expires_at(std::chrono::steady_clock::time_point::max());
            co_await write_signal_.async_wait(use_nothrow); // woken by cancel()
            continue;
        }
        batch.clear();
        buffers.clear();
        while (!queue_.empty() && batch.size() < max_frames_per_write) {
            batch.push_back(std::move(queue_.front()));
            queue_.pop_front();
        }
        for (const auto& f : batch) {
            buffers.emplace_back(asio::buffer(f.head));
            if (!f.payload.empty()) {
                buffers.emplace_back(asio::buffer(f.payload.data(), f.payload.size()));
            }
        }
        auto [ec, n] = co_await asio::async_write(socket_, buffers, use_nothrow);
        if (ec) {
            if (!closed_) {
                log(log_level::debug, "{}: write failed ({})", describe(), ec.message());
            }
            close();
            break;
        }
    }
}

asio::awaitable<void> connection::watchdog() {
    auto self = shared_from_this();
    while (!closed_) {
        watchdog_timer_.expires_at(deadline_);
        co_await watchdog_timer_.async_wait(use_nothrow);
        if (closed_) {
            break;
        }
        if (std::chrono::steady_clock::now() < deadline_) {
            continue; // the reader moved the deadline while we slept
        }
        if (closing_) {
            log(log_level::info, "{}: peer did not read its last packets in time", describe());
            close();
        } else if (!connected_) {
            log(log_level::info, "{}: no CONNECT within {} ms, closing", peer_,
                state_.options.connect_timeout.count());
            close();
        } else {
            log(log_level::info, "{}: keep-alive timeout ({} s x 1.5)", describe(), keep_alive_);
            disconnect_with(mqtt::reason_code::keep_alive_timeout);
        }
    }
}

void connection::handle(mqtt::received_packet& packet) {
    if (!connected_) {
        if (const auto* c = std::get_if<mqtt::connect>(&packet.packet)) {
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

void connection::on_connect(const mqtt::connect& c,
                            const std::shared_ptr<const std::uint8_t[]>& storage) {
    version_ = c.version;
    mqtt::connack ack;

    if (v5() && c.props.authentication_method) {
        // Enhanced authentication is not implemented [MQTT-4.12.0-1].
        log(log_level::info, "{}: CONNECT with authentication method '{}' refused", peer_,
            *c.props.authentication_method);
        ack.reason = mqtt::reason_code::bad_authentication_method;
        send(ack);
        close_after_flush();
        return;
    }
    bool assigned = false;
    if (c.client_id.empty()) {
        if (!v5() && !c.clean_start) {
            // [MQTT-3.1.3-8]: a zero-byte ClientId needs CleanSession 1; return code 2.
            log(log_level::info, "{}: empty client id without clean session refused", peer_);
            ack.reason = mqtt::reason_code::client_identifier_not_valid;
            send(ack);
            close_after_flush();
            return;
        }
        client_id_ = fmt::format("tern-{:x}-{}", state_.client_id_salt, key_);
        assigned = true;
    } else {
        client_id_ = std::string(c.client_id);
    }

    connected_ = true;
    decoder_.options().version = c.version;
    decoder_.options().maximum_packet_size = state_.options.max_packet_size;
    keep_alive_ = c.keep_alive;
    deadline_ = keep_alive_ == 0 ? std::chrono::steady_clock::time_point::max()
                                 : std::chrono::steady_clock::now() + keep_alive_ * 1500ms;
    watchdog_timer_.cancel(); // re-arm at the new deadline
    if (v5()) {
        // The decoder rejects Receive Maximum 0 (MQTT 5 section 3.1.2.11.3); max() keeps a quota of
        // 0 from ever stalling delivery should one get through.
        send_quota_ = std::max<std::uint16_t>(c.props.receive_maximum.value_or(65535), 1);
        client_max_packet_size_ = c.props.maximum_packet_size.value_or(0xFFFFFFFF);
    }
    if (c.will) {
        message w;
        w.publish.topic = c.will->topic;
        w.publish.payload = c.will->payload;
        w.publish.qos = c.will->qos;
        w.publish.retain = c.will->retain;
        // Will Delay Interval is not a PUBLISH property and delayed wills are not supported.
        w.publish.props = forwardable_properties(c.will->props);
        w.storage = storage;
        will_ = std::move(w);
    }

    const connection_ref self_ref{key_, owner_.index, weak_from_this()};
    if (auto previous = state_.subscriptions.claim_client_id(client_id_, self_ref)) {
        // [MQTT-3.1.4-2]: the existing connection with this client id is disconnected.
        asio::post(state_.workers[previous->worker]->ctx, [old = previous->conn] {
            if (auto conn = old.lock()) {
                conn->take_over();
            }
        });
    }

    if (v5()) {
        if (assigned) {
            ack.props.assigned_client_identifier = client_id_;
        }
        if (c.props.session_expiry_interval.value_or(0) != 0) {
            // Sessions end with the connection: tell the client so [MQTT-3.2.2.3.2].
            ack.props.session_expiry_interval = 0;
        }
        ack.props.maximum_packet_size = state_.options.max_packet_size;
        ack.props.shared_subscription_available = 0;
        ack.props.subscription_identifier_available = 0;
        // Absent on purpose: Maximum QoS (2), Retain Available (1), Wildcard Subscription
        // Available (1), Topic Alias Maximum (0: none accepted), Receive Maximum (65535).
    }
    send(ack);
    log(log_level::info, "{}: client '{}' connected (MQTT {}, keep-alive {} s{}{})", peer_,
        client_id_, mqtt::to_string(version_), keep_alive_, c.will ? ", will" : "",
        c.clean_start ? "" : ", clean start 0 treated as 1");
}

void connection::on_publish(const mqtt::publish& p,
                            const std::shared_ptr<const std::uint8_t[]>& storage) {
    if (p.props.topic_alias) {
        // We announce Topic Alias Maximum 0, so any alias is invalid [MQTT-3.3.2-8].
        fail(mqtt::reason_code::topic_alias_invalid);
        return;
    }
    if (!p.props.subscription_identifiers.empty()) {
        // Only a server puts Subscription Identifiers in PUBLISH [MQTT-3.3.4-6].
        fail(mqtt::reason_code::protocol_error);
        return;
    }
    if (const auto ec = mqtt::validate_topic_name(p.topic)) {
        fail(ec);
        return;
    }
    if (p.qos == mqtt::qos::exactly_once && inbound_qos2_.contains(p.packet_id)) {
        // A resend before PUBREL: already delivered once [MQTT-4.3.3-10]; just acknowledge.
        send(mqtt::pubrec{p.packet_id, mqtt::reason_code::success, {}});
        return;
    }

    auto m = std::make_shared<message>();
    m->publish.topic = p.topic;
    m->publish.payload = p.payload;
    m->publish.qos = p.qos;
    m->publish.retain = p.retain;
    m->publish.props = forwardable_properties(p.props);
    m->storage = storage;
    const message_ptr shared = std::move(m);

    if (p.retain) {
        state_.subscriptions.retain(shared);
    }
    const std::size_t receivers = route(state_, shared, key_);
    const auto reason = receivers == 0 && v5() ? mqtt::reason_code::no_matching_subscribers
                                               : mqtt::reason_code::success;
    switch (p.qos) {
    case mqtt::qos::at_most_once:
        break;
    case mqtt::qos::at_least_once:
        send(mqtt::puback{p.packet_id, reason, {}});
        break;
    case mqtt::qos::exactly_once:
        inbound_qos2_.insert(p.packet_id);
        send(mqtt::pubrec{p.packet_id, reason, {}});
        break;
    }
}

void connection::on_subscribe(const mqtt::subscribe& s) {
    if (!s.props.subscription_identifiers.empty()) {
        // We announce Subscription Identifier Available 0 [MQTT-3.8.2.1.2].
        fail(mqtt::reason_code::subscription_identifiers_not_supported);
        return;
    }
    struct retained_request {
        std::string_view filter;
        mqtt::qos qos;
    };
    std::vector<retained_request> retained;
    mqtt::suback ack;
    ack.packet_id = s.packet_id;
    const connection_ref self_ref{key_, owner_.index, weak_from_this()};
    for (const auto& sub : s.subscriptions) {
        mqtt::reason_code reason = mqtt::reason_code::unspecified_error;
        const auto parsed = mqtt::parse_topic_filter(sub.filter);
        if (!parsed) {
            reason = mqtt::reason_code::topic_filter_invalid;
        } else if (parsed->is_shared()) {
            reason = mqtt::reason_code::shared_subscriptions_not_supported;
        } else {
            const bool is_new = state_.subscriptions.subscribe(self_ref, sub.filter, sub.options);
            reason = static_cast<mqtt::reason_code>(sub.options.qos); // granted = requested
            const auto rh = sub.options.retain_handling;
            if (rh == mqtt::retain_handling::send_on_subscribe ||
                (rh == mqtt::retain_handling::send_if_new_subscription && is_new)) {
                retained.push_back({sub.filter, sub.options.qos});
            }
        }
        if (!v5() && mqtt::is_failure(reason)) {
            reason = mqtt::reason_code::unspecified_error; // 3.1.1 knows only 0x80 Failure
        }
        if (mqtt::is_failure(reason)) {
            log(log_level::info, "{}: subscription to '{}' refused: {}", describe(), sub.filter,
                mqtt::to_string(reason));
        }
        ack.reasons.push_back(reason);
    }
    send(ack);
    // Retained messages follow the SUBACK, flagged RETAIN 1 [MQTT-3.3.1-8].
    for (const auto& r : retained) {
        for (const auto& m : state_.subscriptions.retained_matching(r.filter)) {
            deliver(m, r.qos, true);
        }
    }
}

void connection::on_unsubscribe(const mqtt::unsubscribe& u) {
    mqtt::unsuback ack;
    ack.packet_id = u.packet_id;
    for (const auto filter : u.filters) {
        const bool existed = state_.subscriptions.unsubscribe(key_, filter);
        if (v5()) {
            ack.reasons.push_back(existed ? mqtt::reason_code::success
                                          : mqtt::reason_code::no_subscription_existed);
        }
    }
    send(ack);
}

void connection::on_disconnect(const mqtt::disconnect& d) {
    // [MQTT-3.14.4-3]: a normal DISCONNECT discards the will; v5 0x04 asks for it anyway.
    if (!(v5() && d.reason == mqtt::reason_code::disconnect_with_will_message)) {
        will_.reset();
    }
    log(log_level::debug, "{}: DISCONNECT ({})", describe(), mqtt::to_string(d.reason));
    close();
}

void connection::on_puback(const mqtt::puback& a) {
    const auto it = inflight_.find(a.packet_id);
    if (it != inflight_.end() && it->second.qos == mqtt::qos::at_least_once) {
        inflight_.erase(it);
        release_pending();
    }
}

void connection::on_pubrec(const mqtt::pubrec& a) {
    const auto it = inflight_.find(a.packet_id);
    if (it == inflight_.end() || it->second.qos != mqtt::qos::exactly_once) {
        send(mqtt::pubrel{a.packet_id,
                          v5() ? mqtt::reason_code::packet_identifier_not_found
                               : mqtt::reason_code::success,
                          {}});
        return;
    }
    if (mqtt::is_failure(a.reason)) {
        // The client refused the message: the exchange ends here [MQTT-4.3.3-4 note].
        inflight_.erase(it);
        release_pending();
        return;
    }
    it->second.released = true;
    send(mqtt::pubrel{a.packet_id, mqtt::reason_code::success, {}});
}

void connection::on_pubrel(const mqtt::pubrel& a) {
    const bool known = inbound_qos2_.erase(a.packet_id) != 0;
    send(mqtt::pubcomp{a.packet_id,
                       known || !v5() ? mqtt::reason_code::success
                                      : mqtt::reason_code::packet_identifier_not_found,
                       {}});
}

void connection::on_pubcomp(const mqtt::pubcomp& a) {
    const auto it = inflight_.find(a.packet_id);
    if (it != inflight_.end() && it->second.released) {
        inflight_.erase(it);
        release_pending();
    }
}

void connection::deliver(const message_ptr& m, mqtt::qos granted, bool retain) {
    if (!connected_ || closing_) {
        return;
    }
    const auto qos = std::min(m->publish.qos, granted);
    if (qos == mqtt::qos::at_most_once) {
        send_publish(m, qos, retain, 0);
        return;
    }
    if (inflight_.size() >= send_quota_ || !pending_.empty()) {
        // Receive Maximum reached [MQTT-4.9.0-2]: wait for acknowledgements, in order.
        if (pending_.size() >= max_pending_messages) {
            if (dropped_++ % 1000 == 0) {
                log(log_level::warn, "{}: client is not acknowledging, {} message(s) dropped",
                    describe(), dropped_);
            }
            return;
        }
        pending_.push_back({m, qos, retain});
        return;
    }
    const auto id = allocate_packet_id();
    inflight_.emplace(id, inflight_message{m, qos, false});
    send_publish(m, qos, retain, id);
}

void connection::release_pending() {
    while (!pending_.empty() && inflight_.size() < send_quota_ && !closing_) {
        auto next = std::move(pending_.front());
        pending_.pop_front();
        const auto id = allocate_packet_id();
        inflight_.emplace(id, inflight_message{next.msg, next.qos, false});
        send_publish(next.msg, next.qos, next.retain, id);
    }
}

std::uint16_t connection::allocate_packet_id() {
    // inflight_ holds at most 65535 ids (send_quota_ <= 65535), so a free one exists.
    while (next_packet_id_ == 0 || inflight_.contains(next_packet_id_)) {
        ++next_packet_id_;
    }
    return next_packet_id_++;
}

void connection::send_publish(const message_ptr& m, mqtt::qos qos, bool retain, std::uint16_t id) {
    mqtt::publish p = m->publish;
    p.qos = qos;
    p.packet_id = id;
    p.retain = retain;
    p.dup = false;
    if (!v5()) {
        p.props = {};
    }
    auto layout = mqtt::publish_size(p, version_);
    if (!layout) {
        log(log_level::error, "{}: cannot encode PUBLISH to '{}': {}", describe(), p.topic,
            layout.error().message());
        inflight_.erase(id);
        return;
    }
    if (layout->total_size > client_max_packet_size_) {
        // [MQTT-3.1.2-25]: never send more than the client's Maximum Packet Size; the message
        // is discarded for this client as if delivered.
        log(log_level::debug,
            "{}: message on '{}' ({} bytes) over the client's maximum packet "
            "size, dropped",
            describe(), p.topic, layout->total_size);
        if (id != 0) {
            inflight_.erase(id);
            release_pending();
        }
        return;
    }
    frame f;
    f.head.resize(layout->header_size);
    const auto written = mqtt::encode_publish_header(p, version_, f.head);
    if (!written) {
        log(log_level::error, "{}: cannot encode PUBLISH to '{}': {}", describe(), p.topic,
            written.error().message());
        inflight_.erase(id);
        return;
    }
    f.payload = p.payload;
    f.keep = m;
    enqueue(std::move(f));
}

void connection::send(const mqtt::packet& p) {
    auto bytes = mqtt::encode_to_vector(p, version_);
    if (!bytes) {
        // Only a bug can get here: every packet we build is encodable.
        log(log_level::error, "{}: cannot encode {}: {}", describe(),
            mqtt::to_string(mqtt::type_of(p)), bytes.error().message());
        close();
        return;
    }
    enqueue(frame{std::move(*bytes), {}, nullptr});
}

void connection::enqueue(frame f) {
    if (closed_) {
        return;
    }
    queue_.push_back(std::move(f));
    write_signal_.cancel(); // wake the writer if it waits
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
    disconnect_with(reason);
}

void connection::disconnect_with(mqtt::reason_code reason) {
    if (connected_ && v5() && !closing_) {
        send(mqtt::disconnect{reason, {}});
        close_after_flush();
    } else {
        close();
    }
}

void connection::take_over() {
    log(log_level::info, "{}: taken over by a new connection with the same client id", describe());
    disconnect_with(mqtt::reason_code::session_taken_over);
}

void connection::shut_down() {
    will_.reset(); // nobody is left to receive it
    disconnect_with(mqtt::reason_code::server_shutting_down);
}

void connection::close_after_flush() {
    if (closing_) {
        return;
    }
    closing_ = true;
    // Stop reading more requests, but let the writer finish; the watchdog bounds the wait.
    deadline_ = std::chrono::steady_clock::now() + close_flush_timeout;
    watchdog_timer_.cancel();
    write_signal_.cancel();
}

void connection::close() {
    if (closed_) {
        return;
    }
    closed_ = true;
    closing_ = true;
    boost::system::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    write_signal_.cancel();
    watchdog_timer_.cancel();
    finish();
}

void connection::finish() {
    if (connected_) {
        state_.subscriptions.remove_subscriber(key_);
        state_.subscriptions.release_client_id(client_id_, key_);
        if (will_ && !owner_.stopping) {
            // [MQTT-3.1.2-8]: the connection closed without a normal DISCONNECT.
            auto w = std::make_shared<const message>(std::move(*will_));
            log(log_level::debug, "{}: publishing will on '{}'", describe(), w->publish.topic);
            if (w->publish.retain) {
                state_.subscriptions.retain(w);
            }
            route(state_, w, key_);
        }
        log(log_level::info, "{}: client '{}' disconnected", peer_, client_id_);
    }
    will_.reset();
    inflight_.clear();
    pending_.clear();
    queue_.clear();
    owner_.connections.erase(key_); // the coroutines still hold the object
}

std::string connection::describe() const {
    if (client_id_.empty()) {
        return peer_;
    }
    return fmt::format("{} client '{}'", peer_, client_id_);
}

} // namespace tern::broker
