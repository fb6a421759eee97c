// The readiness observer's view of one connection: what of its traffic AWS IoT Core would
// refuse, throttle or treat differently (tern/broker/readiness.hpp). Called only with
// `readiness_report true`; each check is a few comparisons, and a finding is a count and, for
// the first few distinct clients, a copy of the client id and topic.
#include "mqtt/connection_detail.hpp"

namespace tern::broker {

namespace {

constexpr std::string_view share_prefix = "$share/";
/// Where the report itself is published: reading it is not a dependency on $SYS to move.
constexpr std::string_view report_topic = "$SYS/broker/readiness";

} // namespace

void connection::observe_connect(const mqtt::connect& c) {
    auto& r = *owner_.readiness;
    const std::string_view id = client_id_;
    if (!assigned_id_) {
        if (id.size() > aws_iot::max_client_id_bytes) {
            r.note(readiness_finding::client_id_too_long, id);
        } else if (id.starts_with('$')) {
            r.note(readiness_finding::client_id_reserved, id);
        } else if (!is_valid_thing_name(id)) {
            r.note(readiness_finding::client_id_not_thing_name, id);
        }
    }
    if (c.keep_alive == 0 || c.keep_alive < aws_iot::min_keep_alive ||
        c.keep_alive > aws_iot::max_keep_alive) {
        r.note(readiness_finding::keep_alive_out_of_range, id, {},
               fmt::format("keep-alive {} s", c.keep_alive));
    }
    if (v5() && c.props.session_expiry_interval.value_or(0) > aws_iot::max_session_expiry) {
        r.note(readiness_finding::session_expiry_over_7_days, id, {},
               fmt::format("session expiry {} s", *c.props.session_expiry_interval));
    }
    // Under `profile aws-iot` the checks of accept_connect already refused what AWS refuses
    // (a long or `$` client id, a QoS 2 will): this reports what passed.
    if (c.will) {
        if (c.will->qos == mqtt::qos::exactly_once) {
            r.note(readiness_finding::qos2_publish, id, c.will->topic);
        }
        if (c.will->payload.size() > aws_iot::max_packet_bytes) {
            r.note(readiness_finding::payload_too_large, id, c.will->topic,
                   fmt::format("will of {} bytes", c.will->payload.size()));
        }
        observe_topic(c.will->topic, false);
    }
}

void connection::observe_publish(const mqtt::publish& p, std::string_view topic) {
    auto& r = *owner_.readiness;
    if (p.qos == mqtt::qos::exactly_once) {
        r.note(readiness_finding::qos2_publish, client_id_, topic);
    }
    if (p.payload.size() > aws_iot::max_packet_bytes) {
        r.note(readiness_finding::payload_too_large, client_id_, topic,
               fmt::format("{} bytes", p.payload.size()));
    }
    observe_topic(topic, false);
    observe_publish_rate();
}

void connection::observe_subscribe(const mqtt::subscribe& s) {
    auto& r = *owner_.readiness;
    if (!s.props.subscription_identifiers.empty()) {
        r.note(readiness_finding::subscription_identifiers, client_id_,
               s.subscriptions.empty() ? std::string_view{} : s.subscriptions.front().filter);
    }
    if (s.subscriptions.size() > aws_iot::max_filters_per_subscribe) {
        r.note(readiness_finding::subscribe_over_8_filters, client_id_,
               s.subscriptions.front().filter,
               fmt::format("{} filters in one SUBSCRIBE", s.subscriptions.size()));
    }
    for (const auto& sub : s.subscriptions) {
        if (sub.options.qos == mqtt::qos::exactly_once) {
            r.note(readiness_finding::qos2_subscribe, client_id_, sub.filter);
        }
        observe_topic(sub.filter, true);
    }
}

void connection::observe_subscription_count() {
    if (!observed_over_50_ &&
        session_->subscriptions.size() > aws_iot::max_subscriptions_per_connection) {
        observed_over_50_ = true; // once per connection: the count says how many clients
        owner_.readiness->note(readiness_finding::connection_over_50_subscriptions, client_id_, {},
                               fmt::format("{} subscriptions", session_->subscriptions.size()));
    }
}

void connection::observe_topic(std::string_view topic, bool filter) {
    auto& r = *owner_.readiness;
    bool share_name_too_long = false;
    if (filter && topic.starts_with(share_prefix)) {
        const auto name_end = topic.find('/', share_prefix.size());
        share_name_too_long = name_end != std::string_view::npos &&
                              name_end - share_prefix.size() > aws_iot::max_share_name_bytes;
    }
    // The same exclusions AWS makes: `$share/<name>/` and `$aws/rules/<rule>/` do not count.
    const auto counted = aws_iot::counted_part(topic);
    if (share_name_too_long || counted.size() > aws_iot::max_topic_bytes) {
        r.note(readiness_finding::topic_too_long, client_id_, topic);
    }
    if (static_cast<std::size_t>(std::count(counted.begin(), counted.end(), '/')) >
        aws_iot::max_topic_slashes) {
        r.note(readiness_finding::topic_too_deep, client_id_, topic);
    }
    const bool reserved =
        filter ? aws_iot::check_subscribe_filter(topic).has_value() && topic != report_topic
               : aws_iot::check_publish_topic(topic, false).has_value();
    if (reserved) {
        r.note(readiness_finding::reserved_topic, client_id_, topic);
    }
}

void connection::observe_publish_rate() {
    if (observed_publishes_++ == 0) {
        // A window opens at its first PUBLISH, so idle time before a burst does not count.
        publishes_window_ = state_.clock.now();
        return;
    }
    if (observed_publishes_ <= static_cast<std::uint32_t>(aws_iot::publishes_per_second)) {
        return;
    }
    // The 101st PUBLISH since the window opened: over the rate if that took under a second.
    const auto now = state_.clock.now();
    if (now - publishes_window_ < 1s) {
        owner_.readiness->note(readiness_finding::publish_rate_over_100, client_id_, {},
                               fmt::format("101 PUBLISH in {} ms",
                                           std::chrono::duration_cast<std::chrono::milliseconds>(
                                               now - publishes_window_)
                                               .count()));
    }
    observed_publishes_ = 0;
}

void connection::observe_bytes(std::size_t n) {
    if (observed_bytes_ == 0) {
        bytes_window_ = state_.clock.now();
    }
    observed_bytes_ += n;
    if (observed_bytes_ <= static_cast<std::size_t>(aws_iot::bytes_per_second)) {
        return;
    }
    const auto now = state_.clock.now();
    if (now - bytes_window_ < 1s) {
        owner_.readiness->note(
            readiness_finding::byte_rate_over_512k, client_id_, {},
            fmt::format("{} bytes in {} ms", observed_bytes_,
                        std::chrono::duration_cast<std::chrono::milliseconds>(now - bytes_window_)
                            .count()));
    }
    observed_bytes_ = 0;
}

} // namespace tern::broker
