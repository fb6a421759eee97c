// SUBSCRIBE and UNSUBSCRIBE: filters, shared groups and weights, retained messages,
// acknowledgements.
#include "mqtt/connection_detail.hpp"

#include <charconv>
#include <optional>
#include <vector>

namespace tern::broker {

namespace {

/// The Tern `share-weight` SUBSCRIBE User Property (1..10000; anything else: weight 1).
std::uint32_t share_weight_of(const mqtt::properties& props) {
    std::uint32_t weight = 1;
    for (const auto& up : props.user_properties) {
        if (up.key == weight_property) {
            std::uint32_t w = 0;
            const auto* end = up.value.data() + up.value.size();
            if (std::from_chars(up.value.data(), end, w).ptr == end && w >= 1 && w <= 10000) {
                weight = w;
            }
        }
    }
    return weight;
}

} // namespace

bool connection::aws_subscribe_answered(const mqtt::subscribe& s) {
    if (v5() && !s.props.subscription_identifiers.empty()) {
        // CONNACK said Subscription Identifier Available 0: a protocol error, 0xA1 (the code
        // AWS lists for it).
        disconnect_with(mqtt::reason_code::subscription_identifiers_not_supported,
                        "subscription identifiers are not supported");
        return false;
    }
    const auto qos2 =
        std::find_if(s.subscriptions.begin(), s.subscriptions.end(),
                     [](const auto& sub) { return sub.options.qos == mqtt::qos::exactly_once; });
    if (qos2 != s.subscriptions.end()) {
        // "doesn't send a PUBACK or SUBACK when QoS 2 is requested" (mqtt.html): nothing is
        // subscribed and nothing answered.
        log(log_level::info,
            "{}: SUBSCRIBE with QoS 2 for '{}' left unanswered (AWS IoT Core "
            "has no QoS 2)",
            describe(), qos2->filter);
        return false;
    }
    if (s.subscriptions.size() > aws_iot::max_filters_per_subscribe) {
        // AWS does not document the outcome; every filter is refused with 0x97 Quota exceeded
        // (0x80 in 3.1.1), so the client learns it asked for too many at once.
        log(log_level::info, "{}: SUBSCRIBE with {} filters refused (AWS IoT Core takes 8)",
            describe(), s.subscriptions.size());
        mqtt::suback ack;
        ack.packet_id = s.packet_id;
        ack.reasons.assign(s.subscriptions.size(), v5() ? mqtt::reason_code::quota_exceeded
                                                        : mqtt::reason_code::unspecified_error);
        if (v5() && problem_information_) {
            ack.props.reason_string = "more than 8 topic filters in one SUBSCRIBE";
        }
        send(ack);
        return false;
    }
    return true;
}

void connection::on_subscribe(const mqtt::subscribe& s) {
    owner_.counters.add(owner_.counters.subscribe_filters, s.subscriptions.size());
    if (owner_.readiness) {
        observe_subscribe(s);
    }
    if (aws() && !aws_subscribe_answered(s)) {
        return;
    }
    const std::uint32_t identifier =
        s.props.subscription_identifiers.empty() ? 0 : s.props.subscription_identifiers.front();
    const std::uint32_t weight = share_weight_of(s.props);
    std::vector<retained_request> retained;
    std::vector<std::string> subscribed;  // for the lifecycle event (profile aws-iot)
    bool over_subscription_quota = false; // profile aws-iot: the 51st subscription
    mqtt::suback ack;
    ack.packet_id = s.packet_id;
    for (const auto& sub : s.subscriptions) {
        const auto granted = subscribe_one(sub, identifier, weight, retained);
        if (!granted) {
            return; // a protocol error closed the connection
        }
        auto reason = *granted;
        // The 51st subscription, not the account's rate (which also answers 0x97).
        over_subscription_quota = over_subscription_quota || std::exchange(over_50_, false);
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
        if (aws() && !mqtt::is_failure(reason)) {
            subscribed.emplace_back(sub.filter);
        }
        ack.reasons.push_back(reason);
    }
    send(ack);
    hold_until_durable();    // the subscription survives a crash once the client knows of it
    send_retained(retained); // after the SUBACK [MQTT-3.3.1-8]
    if (owner_.readiness) {
        observe_subscription_count();
    }
    if (!subscribed.empty() && !session_identifier_.empty()) {
        publish_lifecycle(
            aws_iot::subscriptions_topic(client_id_, true),
            aws_iot::subscriptions_event(lifecycle_identity(), wall_clock_ms(), true, subscribed));
    }
    if (over_subscription_quota) {
        // "Subscriptions per connection: 50 ... may be rejected and the connection will be
        // closed" (AWS IoT Core quotas): the SUBACK says which, then the connection goes.
        if (v5()) {
            disconnect_with(mqtt::reason_code::quota_exceeded,
                            "more than 50 subscriptions on a connection");
        } else {
            close_after_flush(); // the SUBACK first
        }
    }
}

std::optional<mqtt::reason_code>
connection::subscribe_one(const mqtt::subscription& sub, std::uint32_t identifier,
                          std::uint32_t weight, std::vector<retained_request>& retained) {
    const auto parsed = mqtt::parse_topic_filter(sub.filter);
    if (!parsed) {
        return mqtt::reason_code::topic_filter_invalid;
    }
    if (parsed->is_shared() && sub.options.no_local) {
        // [MQTT-3.8.3-4]: No Local on a shared subscription is a protocol error.
        fail(mqtt::reason_code::protocol_error);
        return std::nullopt;
    }
    if (aws()) {
        if (auto r = aws_subscribe_refusal(sub.filter)) {
            log(log_level::info, "{}: subscription to '{}' refused: {}", describe(), sub.filter,
                r->why);
            return r->reason;
        }
        // The account's "subscriptions per second", which counts topic filters.
        auto& account = state_.aws_account.subscriptions;
        if (!account.unlimited() && account.draw(state_.clock.now(), 1) == 0) {
            log(log_level::info,
                "{}: subscription to '{}' refused: the account is over its subscriptions a "
                "second",
                describe(), sub.filter);
            return mqtt::reason_code::quota_exceeded;
        }
    }
    if (!owner_.authenticator->authorize(identity_, auth::access::subscribe, sub.filter)) {
        log(log_level::info, "{}: SUBSCRIBE to '{}' denied (not authorized)", describe(),
            sub.filter);
        return mqtt::reason_code::not_authorized; // 0x80 Failure in 3.1.1 [MQTT-3.9.3-2]
    }
    session& ses = *session_;
    subscription entry{sub.options, identifier, weight};
    entry.hash_skips_parent = aws(); // AWS: "a/#" does not match "a"
    if (bridge_ && !v5()) {
        // mosquitto (handle_subscribe.c): a 3.1/3.1.1 bridge is not sent its own messages
        // back and sees RETAIN as published, or bridged brokers would loop and lose the flag.
        entry.options.no_local = !parsed->is_shared();
        entry.options.retain_as_published = true;
    }
    const bool is_new = state_.subscriptions.subscribe(ses.handle, sub.filter, entry);
    if (ses.in_store()) {
        owner_.writes->subscription_added(ses.handle->key, sub.filter, entry);
    }
    ses.subscriptions[std::string(sub.filter)] = entry;
    const auto rh = sub.options.retain_handling;
    // Retained messages are not sent for shared subscriptions [MQTT-4.8.2-?].
    if (!parsed->is_shared() && (!aws() || aws_iot::sends_retained_on_subscribe(sub.filter)) &&
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
    return static_cast<mqtt::reason_code>(sub.options.qos); // granted = requested
}

std::optional<aws_iot::refusal> connection::aws_subscribe_refusal(std::string_view filter) {
    if (auto r = aws_iot::check_topic_limits(filter, true)) {
        return r;
    }
    if (auto r = aws_iot::check_subscribe_filter(filter)) {
        return r;
    }
    if (session_->subscriptions.size() >= aws_iot::max_subscriptions_per_connection &&
        !session_->subscriptions.contains(std::string(filter))) {
        over_50_ = true;
        return aws_iot::refusal{mqtt::reason_code::quota_exceeded,
                                "more than AWS IoT Core's 50 subscriptions on a connection"};
    }
    return std::nullopt;
}

void connection::send_retained(const std::vector<retained_request>& retained) {
    // Retained messages go out flagged RETAIN 1 [MQTT-3.3.1-8]; expired ones are skipped.
    std::vector<message_ptr> matches;
    const auto now = state_.clock.now();
    for (const auto& r : retained) {
        matches.clear();
        state_.retained.match(r.filter, matches);
        bool sent = false;
        for (const auto& m : matches) {
            if (const auto left = expiry_left(*m, now); left && *left == 0) {
                continue;
            }
            session_->deliver(m, r.d, true);
            sent = true;
        }
        if (sent && owner_.readiness && !aws_iot::sends_retained_on_subscribe(r.filter)) {
            // AWS sends retained messages for exact filters only: this client would miss them.
            owner_.readiness->note(readiness_finding::retained_via_wildcard, client_id_, r.filter);
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
            if (ses.in_store()) {
                owner_.writes->subscription_removed(ses.handle->key, filter);
            }
        }
        if (v5()) {
            ack.reasons.push_back(existed ? mqtt::reason_code::success
                                          : mqtt::reason_code::no_subscription_existed);
        }
    }
    send(ack);
    hold_until_durable();
    if (aws() && !session_identifier_.empty() && !u.filters.empty()) {
        const std::vector<std::string> filters(u.filters.begin(), u.filters.end());
        publish_lifecycle(
            aws_iot::subscriptions_topic(client_id_, false),
            aws_iot::subscriptions_event(lifecycle_identity(), wall_clock_ms(), false, filters));
    }
}

} // namespace tern::broker
