// SUBSCRIBE and UNSUBSCRIBE: filters, shared groups and weights, retained messages,
// acknowledgements.
#include "mqtt/connection_detail.hpp"

#include <charconv>

namespace tern::broker {

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

} // namespace tern::broker
