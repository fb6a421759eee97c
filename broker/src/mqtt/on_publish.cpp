// PUBLISH from a client: topic aliases, limits, QoS 2 receive state, retained store, routing.
#include "mqtt/connection_detail.hpp"

namespace tern::broker {

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

} // namespace tern::broker
