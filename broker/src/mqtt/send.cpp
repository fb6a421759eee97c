// Sending to a client: PUBLISH per subscriber (header per receiver, payload shared), other packets,
// the frame queue.
#include "mqtt/connection_detail.hpp"

namespace tern::broker {

bool connection::accepts_qos0() const noexcept {
    return !closing_ && queued_bytes_ < backlog_high_watermark;
}

std::size_t connection::inflight_window() const noexcept {
    const std::size_t configured =
        state_.config.max_inflight_messages == 0 ? 65535 : state_.config.max_inflight_messages;
    return std::min<std::size_t>(configured, receive_maximum_);
}

bool connection::send_publish(const outbound_message& out, std::uint16_t packet_id, bool dup) {
    if (publish_rate_) {
        // AWS counts what it sends against the connection's 100 a second, and the account's
        // outbound publishes a second, too: QoS 0 over either rate is discarded; QoS 1 still
        // goes (it waits in the session otherwise) but counts.
        const auto now = state_.clock.now();
        auto& account = state_.aws_account.outbound_publishes;
        if (packet_id == 0) {
            if (!publish_rate_->take(now) || !owner_.aws_outbound.take(account, now)) {
                owner_.counters.drop(drop_cause::rate_limited);
                return false;
            }
        } else {
            publish_rate_->charge(now);
            owner_.aws_outbound.charge(account, now);
        }
    }
    const message& m = *out.msg;
    if (owner_.check_delivery &&
        !owner_.authenticator->authorize(identity_, auth::access::receive, m.publish.topic)) {
        // An ACL without read for this topic: not sent, and the session forgets it (mosquitto
        // skips such deliveries the same way).
        return false;
    }
    mqtt::publish p;
    p.topic = m.publish.topic;
    p.payload = m.publish.payload;
    p.qos = out.qos;
    p.retain = out.retain;
    p.dup = dup && !aws(); // AWS IoT Core does not set DUP on a resend (mqtt.html)
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
        owner_.counters.drop(drop_cause::too_large);
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
    owner_.counters.add(
        owner_.counters.publish_sent_qos[std::min<std::size_t>(static_cast<std::size_t>(p.qos), 2)],
        1);
    if (owner_.readiness) {
        observe_publish_rate();
    }
    enqueue(std::move(f));
    return true;
}

void connection::send_pubrel(std::uint16_t packet_id) {
    send(mqtt::pubrel{packet_id, mqtt::reason_code::success, {}});
    hold_until_durable();
}

void connection::hold_until_durable() {
    hold_until_durable(0);
}

void connection::hold_until_durable(std::uint64_t ticket) {
    if (!state_.durable || queue_.empty() || closed_) {
        return;
    }
    auto& last = queue_.back();
    if (ticket > state_.store->durable_ticket() && last.ticket != pending_ticket) {
        // A pending frame gets its batch's ticket, which is never older than this one.
        last.ticket = std::max(last.ticket, ticket);
        // A ticket this worker did not submit (the retained store's direct writes): the store
        // wakes the worker only when asked to.
        if (state_.store->wake_when_durable(owner_.index, ticket)) {
            await_durable();
        } else {
            schedule_write();
        }
    }
    if (owner_.writes->dirty()) {
        // The change is still in the worker's batch: the ticket comes when it is submitted.
        last.ticket = pending_ticket;
        if (!gated_) {
            gated_ = true;
            owner_.gated_now.push_back(shared_from_this());
        }
    } else if (owner_.last_ticket > ticket_before_packet_ &&
               owner_.last_ticket > state_.store->durable_ticket()) {
        // Submitted while this packet was handled (a page-in submits the batch before it
        // reads), not yet on disk. A ticket submitted before the packet began is not waited
        // for: it holds other clients' changes, which this frame does not reveal (their own
        // frames wait for them), and while the store cannot write it never comes, so the
        // CONNACK of a new clean session or a PUBACK 0x80 would wait for a disk with room
        // (tests/broker/20_store_faults_test.cpp). Outside a packet (a delivery posted by
        // another worker) the mark is that of the last packet: the wait stays conservative.
        last.ticket = std::max(last.ticket, owner_.last_ticket);
        await_durable();
    }
}

void connection::assign_ticket(std::uint64_t ticket) {
    gated_ = false;
    for (auto& f : queue_) {
        if (f.ticket == pending_ticket) {
            f.ticket = ticket;
        }
    }
    if (ticket > state_.store->durable_ticket()) {
        await_durable();
    } else {
        schedule_write();
    }
}

void connection::await_durable() {
    if (!awaiting_) {
        awaiting_ = true;
        owner_.awaiting_durable.push_back(weak_from_this());
    }
}

void connection::durable_advanced() {
    awaiting_ = false;
    if (!closed_) {
        schedule_write(); // start_write waits again for what is still held
    }
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

} // namespace tern::broker
