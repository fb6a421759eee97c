// PUBLISH from a client: topic aliases, limits, QoS 2 receive state, retained store, routing.
#include "mqtt/connection_detail.hpp"

namespace tern::broker {

void connection::on_publish(mqtt::publish& p,
                            const std::shared_ptr<const std::uint8_t[]>& storage) {
    owner_.counters.add(owner_.counters.messages_received, 1);
    owner_.counters.add(
        owner_.counters
            .publish_received_qos[std::min<std::size_t>(static_cast<std::size_t>(p.qos), 2)],
        1);
    std::string aliased_topic;
    if (!resolve_topic_alias(p, aliased_topic) || !check_publish(p, !aliased_topic.empty())) {
        return; // the connection is closing with the reason
    }
    if (aws() && p.qos == mqtt::qos::exactly_once) {
        // AWS IoT Core "doesn't send a PUBACK or SUBACK when QoS 2 is requested" (mqtt.html):
        // the message is dropped unanswered; MQTT 5, whose CONNACK said Maximum QoS 1, is
        // disconnected with 0x9B QoS not supported [MQTT-3.2.2-11].
        log(log_level::info, "{}: QoS 2 PUBLISH on '{}' dropped (AWS IoT Core has no QoS 2)",
            describe(), aliased_topic.empty() ? p.topic : aliased_topic);
        if (v5()) {
            disconnect_with(mqtt::reason_code::qos_not_supported, "QoS 2 is not supported");
        }
        return;
    }
    if (p.qos == mqtt::qos::exactly_once && session_->inbound_qos2.contains(p.packet_id)) {
        // A resend before PUBREL: already delivered once [MQTT-4.3.3-10]; just acknowledge.
        send(mqtt::pubrec{p.packet_id, mqtt::reason_code::success, {}});
        hold_until_durable();
        return;
    }
    if (owner_.readiness) {
        observe_publish(p, aliased_topic.empty() ? p.topic : aliased_topic); // not resends
    }
    auto reason = mqtt::reason_code::success;
    std::string_view reason_text;
    const auto limit = state_.config.message_size_limit;
    const std::string_view topic = aliased_topic.empty() ? p.topic : aliased_topic;
    if (!owner_.authenticator->authorize(identity_, auth::access::publish, topic)) {
        // mosquitto: the message is dropped and the flow completes; MQTT 5 learns why.
        log(log_level::info, "{}: PUBLISH on '{}' denied (not authorized)", describe(), topic);
        owner_.counters.drop(drop_cause::not_authorized);
        reason = mqtt::reason_code::not_authorized;
    } else if (p.qos != mqtt::qos::at_most_once && state_.durable && state_.store->failing()) {
        // Nothing is acknowledged that the store could not keep: v5 learns why, a 3.1.1
        // client (whose acks carry no reason) is disconnected unacknowledged and resends.
        log(log_level::warn, "{}: QoS {} PUBLISH on '{}' refused: the session store cannot write",
            describe(), static_cast<int>(p.qos), topic);
        if (!v5()) {
            close();
            return;
        }
        reason = mqtt::reason_code::unspecified_error;
        reason_text = "the broker cannot store messages now";
    } else if (publish_rate_ && !publish_rate_->take(state_.clock.now())) {
        // "Publish requests per second per connection: 100 ... excess is discarded"; a flood
        // would flood the log too, so debug only.
        log(log_level::debug, "{}: PUBLISH on '{}' discarded: over 100 a second", describe(),
            topic);
        owner_.counters.drop(drop_cause::rate_limited);
        reason = mqtt::reason_code::quota_exceeded;
        reason_text = "over AWS IoT Core's 100 publishes a second on a connection";
    } else if (publish_rate_ &&
               !owner_.aws_inbound.take(state_.aws_account.inbound_publishes, state_.clock.now())) {
        // The account's "inbound publish requests per second" (adjustable, default 20,000).
        log(log_level::debug, "{}: PUBLISH on '{}' discarded: the account is over its rate",
            describe(), topic);
        owner_.counters.drop(drop_cause::rate_limited);
        reason = mqtt::reason_code::quota_exceeded;
        reason_text = "over the account's inbound publishes a second";
    } else if (const auto refused = aws() ? aws_publish_refusal(p, topic) : std::nullopt) {
        // AWS IoT Core drops the message; MQTT 5 learns why in the PUBACK.
        log(log_level::info, "{}: PUBLISH on '{}' refused: {}", describe(), topic, refused->why);
        reason = refused->reason;
        reason_text = refused->why;
    } else if (limit != 0 && p.payload.size() > limit) {
        // mosquitto's behaviour: the message is dropped, the flow still completes.
        log(log_level::info, "{}: PUBLISH on '{}' with {} bytes over message_size_limit, dropped",
            describe(), p.topic, p.payload.size());
        // mosquitto 2.0 answers 0x95 Packet too large, which is not a PUBACK/PUBREC reason
        // code [MQTT-3.4.2.1]: a strict client would fail the connection. 0x83 is.
        owner_.counters.drop(drop_cause::too_large);
        reason = mqtt::reason_code::implementation_specific_error;
        reason_text = "payload larger than message_size_limit";
    } else if (distribute(p, storage, std::move(aliased_topic)) == 0 && v5()) {
        reason = mqtt::reason_code::no_matching_subscribers;
    }
    if (aws() && !v5() && mqtt::is_failure(reason) && reason != mqtt::reason_code::quota_exceeded) {
        // A 3.1.1 acknowledgement cannot refuse: AWS IoT Core disconnects a client that
        // publishes where it may not (only the rate limit discards silently).
        close();
        return;
    }
    acknowledge_publish(p, reason, reason_text);
}

bool connection::resolve_topic_alias(mqtt::publish& p, std::string& aliased_topic) {
    if (!p.props.topic_alias) {
        return true;
    }
    const auto alias = *p.props.topic_alias;
    if (owner_.readiness && alias > aws_iot::topic_alias_maximum) {
        owner_.readiness->note(readiness_finding::topic_alias_over_8, client_id_, p.topic,
                               fmt::format("topic alias {}", alias));
    }
    if (!v5() || alias > topic_alias_limit()) {
        fail(mqtt::reason_code::topic_alias_invalid); // [MQTT-3.3.2-9]
        return false;
    }
    if (p.topic.empty()) {
        const auto it = inbound_aliases_.find(alias);
        if (it == inbound_aliases_.end()) {
            fail(mqtt::reason_code::protocol_error); // an alias never set [MQTT-3.3.2-8]
            return false;
        }
        aliased_topic = it->second;
    } else {
        inbound_aliases_[alias] = std::string(p.topic);
    }
    p.props.topic_alias.reset(); // a hop-by-hop property: never forwarded
    return true;
}

bool connection::check_publish(const mqtt::publish& p, bool aliased) {
    if (!p.props.subscription_identifiers.empty()) {
        // Only a server puts Subscription Identifiers in PUBLISH [MQTT-3.3.4-6].
        fail(mqtt::reason_code::protocol_error);
        return false;
    }
    if (!aliased) {
        if (const auto ec = mqtt::validate_topic_name(p.topic)) {
            fail(ec);
            return false;
        }
    }
    if (p.retain && !state_.config.retain_available) {
        fail(mqtt::reason_code::retain_not_supported);
        return false;
    }
    return true;
}

std::uint16_t connection::topic_alias_limit() const noexcept {
    return aws() ? aws_iot::topic_alias_maximum : listener_.max_topic_alias;
}

std::optional<aws_iot::refusal> connection::aws_publish_refusal(const mqtt::publish& p,
                                                                std::string_view topic) const {
    if (auto r = aws_iot::check_topic_limits(topic, false)) {
        return r;
    }
    return aws_iot::check_publish_topic(topic, p.retain);
}

std::size_t connection::distribute(const mqtt::publish& p,
                                   const std::shared_ptr<const std::uint8_t[]>& storage,
                                   std::string aliased_topic) {
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
    m->storage = storage; // topic and payload stay views into the received frame
    m->received_at = state_.clock.now();
    if (state_.durable && p.qos != mqtt::qos::at_most_once) {
        state_.store->name_message(*m);
    }
    const message_ptr shared = std::move(m);
    if (p.retain) {
        state_.retained.set(shared, *state_.store);
        if (state_.durable) {
            retained_ticket_ = state_.store->current_ticket();
        }
    }
    return route(owner_, shared,
                 publish_context{shared->publish.topic, session_->handle->key, client_id_});
}

void connection::acknowledge_publish(const mqtt::publish& p, mqtt::reason_code reason,
                                     std::string_view reason_text) {
    if (!v5()) {
        // 3.1.1 acks carry no reason: a refused message is acknowledged like any other (and
        // dropped), as mosquitto does.
        reason = mqtt::reason_code::success;
    }
    const bool with_text = v5() && problem_information_ && !reason_text.empty();
    switch (p.qos) {
    case mqtt::qos::at_most_once:
        retained_ticket_ = 0;
        break;
    case mqtt::qos::at_least_once: {
        mqtt::puback ack{p.packet_id, reason, {}};
        if (with_text) {
            ack.props.reason_string = reason_text;
        }
        send(ack);
        hold_until_durable(std::exchange(retained_ticket_, 0)); // acknowledged once on disk
        break;
    }
    case mqtt::qos::exactly_once: {
        if (!mqtt::is_failure(reason)) {
            session_->inbound_qos2.insert(p.packet_id);
            if (session_->in_store()) {
                owner_.writes->inbound_qos2_added(session_->handle->key, p.packet_id);
            }
        }
        mqtt::pubrec ack{p.packet_id, reason, {}};
        if (with_text) {
            ack.props.reason_string = reason_text;
        }
        send(ack);
        hold_until_durable(std::exchange(retained_ticket_, 0));
        break;
    }
    }
}

} // namespace tern::broker
