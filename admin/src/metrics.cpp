// The Prometheus text exposition of the broker's figures (metrics.hpp).
#include <tern/admin/metrics.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace tern::admin {

namespace {

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help,
            std::uint64_t value) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
}

} // namespace

std::string prometheus_text(const broker::broker_stats& s,
                            const std::optional<broker::readiness_report>& readiness) {
    std::string out;
    out.reserve(4096);
    family(out, "tern_uptime_seconds", "gauge", "Seconds since the broker started.",
           static_cast<std::uint64_t>(s.uptime.count()));
    family(out, "tern_connections", "gauge", "Network connections past CONNECT.",
           s.clients_connected);
    family(out, "tern_sessions", "gauge", "Sessions known, connected or not.", s.sessions);
    family(out, "tern_subscriptions", "gauge", "Subscriptions in the topic index.",
           s.subscriptions);
    family(out, "tern_retained_messages", "gauge", "Retained messages held.", s.retained_messages);
    family(out, "tern_packets_received_total", "counter", "MQTT packets received, of any type.",
           s.packets_received);
    family(out, "tern_packets_sent_total", "counter", "MQTT packets sent, of any type.",
           s.packets_sent);
    family(out, "tern_publish_received_total", "counter", "PUBLISH packets received.",
           s.messages_received);
    family(out, "tern_publish_sent_total", "counter", "PUBLISH packets sent.", s.messages_sent);
    family(out, "tern_publish_dropped_total", "counter",
           "Messages dropped: over queue limits, or QoS 0 to a backed-up client.",
           s.messages_dropped);
    family(out, "tern_received_bytes_total", "counter", "Bytes read from clients.",
           s.bytes_received);
    family(out, "tern_sent_bytes_total", "counter", "Bytes written to clients.", s.bytes_sent);
    if (!readiness) {
        return out;
    }
    out += "# HELP tern_readiness_findings_total Traffic AWS IoT Core would refuse or throttle, "
           "by finding (docs/readiness.md).\n# TYPE tern_readiness_findings_total counter\n";
    for (std::size_t i = 0; i < broker::readiness_finding_count; ++i) {
        const auto f = static_cast<broker::readiness_finding>(i);
        out += fmt::format("tern_readiness_findings_total{{finding=\"{}\",blocking=\"{}\"}} {}\n",
                           broker::info(f).key, broker::info(f).blocking ? "true" : "false",
                           (*readiness)[f].count);
    }
    out += "# HELP tern_readiness_account_peak The highest account-level figure seen, per AWS "
           "IoT Core quota.\n# TYPE tern_readiness_account_peak gauge\n";
    for (std::size_t i = 0; i < broker::readiness_quota_count; ++i) {
        const auto q = static_cast<broker::readiness_quota>(i);
        out += fmt::format("tern_readiness_account_peak{{quota=\"{}\"}} {}\n", broker::info(q).key,
                           (*readiness)[q].peak);
    }
    out += "# HELP tern_readiness_account_aws_default AWS IoT Core's default quota.\n"
           "# TYPE tern_readiness_account_aws_default gauge\n";
    for (std::size_t i = 0; i < broker::readiness_quota_count; ++i) {
        const auto q = static_cast<broker::readiness_quota>(i);
        out += fmt::format("tern_readiness_account_aws_default{{quota=\"{}\"}} {}\n",
                           broker::info(q).key, (*readiness)[q].aws_default);
    }
    return out;
}

std::string stats_json(const broker::broker_stats& s) {
    nlohmann::ordered_json j;
    j["uptime_seconds"] = s.uptime.count();
    j["connections"] = s.clients_connected;
    j["sessions"] = s.sessions;
    j["subscriptions"] = s.subscriptions;
    j["retained_messages"] = s.retained_messages;
    j["packets_received"] = s.packets_received;
    j["packets_sent"] = s.packets_sent;
    j["publish_received"] = s.messages_received;
    j["publish_sent"] = s.messages_sent;
    j["publish_dropped"] = s.messages_dropped;
    j["bytes_received"] = s.bytes_received;
    j["bytes_sent"] = s.bytes_sent;
    return j.dump();
}

} // namespace tern::admin
