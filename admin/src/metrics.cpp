// The Prometheus text exposition of the broker's figures (metrics.hpp).
#include <tern/admin/metrics.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace tern::admin {

namespace {

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help,
            std::uint64_t value) {
    header(out, name, type, help);
    out += fmt::format("{} {}\n", name, value);
}

/// A label value as the exposition format wants it: backslash, quote and newline escaped.
std::string label(std::string_view v) {
    std::string out;
    for (const char c : v) {
        if (c == '\\' || c == '"') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

constexpr const char* qos_names[] = {"0", "1", "2"};
constexpr const char* version_names[] = {"3.1", "3.1.1", "5"};

} // namespace

std::string prometheus_text(const broker::broker_stats& s,
                            const std::optional<broker::readiness_report>& readiness) {
    std::string out;
    out.reserve(8192);
    family(out, "tern_uptime_seconds", "gauge", "Seconds since the broker started.",
           static_cast<std::uint64_t>(s.uptime.count()));
    family(out, "tern_connections", "gauge", "Network connections past CONNECT.",
           s.clients_connected);
    header(out, "tern_listener_connections", "gauge",
           "Connections past CONNECT by listener and MQTT version.");
    for (std::size_t i = 0; i < s.listeners.size(); ++i) {
        const auto& l = s.listeners[i];
        for (std::size_t v = 0; v < 3; ++v) {
            out += fmt::format("tern_listener_connections{{listener=\"{}\",address=\"{}\","
                               "transport=\"{}\",protocol=\"{}\"}} {}\n",
                               i, label(l.name), label(l.transport), version_names[v],
                               l.connections_by_version[v]);
        }
    }
    family(out, "tern_sessions", "gauge", "Sessions known, connected or not.", s.sessions);
    family(out, "tern_subscriptions", "gauge", "Subscriptions in the topic index.",
           s.subscriptions);
    family(out, "tern_retained_messages", "gauge", "Retained messages held.", s.retained_messages);
    family(out, "tern_packets_received_total", "counter", "MQTT packets received, of any type.",
           s.packets_received);
    family(out, "tern_packets_sent_total", "counter", "MQTT packets sent, of any type.",
           s.packets_sent);
    header(out, "tern_publish_received_total", "counter", "PUBLISH packets received, by QoS.");
    for (std::size_t q = 0; q < 3; ++q) {
        out += fmt::format("tern_publish_received_total{{qos=\"{}\"}} {}\n", qos_names[q],
                           s.publish_received_by_qos[q]);
    }
    header(out, "tern_publish_sent_total", "counter", "PUBLISH packets sent, by QoS.");
    for (std::size_t q = 0; q < 3; ++q) {
        out += fmt::format("tern_publish_sent_total{{qos=\"{}\"}} {}\n", qos_names[q],
                           s.publish_sent_by_qos[q]);
    }
    header(out, "tern_publish_dropped_total", "counter",
           "Messages not delivered or not taken, by cause.");
    for (std::size_t d = 0; d < broker::drop_cause_count; ++d) {
        out += fmt::format("tern_publish_dropped_total{{cause=\"{}\"}} {}\n",
                           broker::to_string(static_cast<broker::drop_cause>(d)),
                           s.dropped_by_cause[d]);
    }
    header(out, "tern_connects_refused_total", "counter",
           "CONNECTs refused, by CONNACK reason (authentication refusals are \"Not authorized\" "
           "and \"Bad user name or password\").");
    for (const auto& [reason, n] : s.connects_refused) {
        out += fmt::format("tern_connects_refused_total{{reason=\"{}\"}} {}\n", label(reason), n);
    }
    family(out, "tern_tls_handshake_failures_total", "counter",
           "TLS connections that ended in a TLS error before CONNECT.", s.tls_handshake_failures);
    family(out, "tern_received_bytes_total", "counter", "Bytes read from clients.",
           s.bytes_received);
    family(out, "tern_sent_bytes_total", "counter", "Bytes written to clients.", s.bytes_sent);
    header(out, "tern_worker_loop_lag_seconds", "gauge",
           "How late each worker's last 250 ms tick ran (event-loop lag).");
    for (std::size_t w = 0; w < s.worker_loop_lag_seconds.size(); ++w) {
        out += fmt::format("tern_worker_loop_lag_seconds{{worker=\"{}\"}} {:.6f}\n", w,
                           s.worker_loop_lag_seconds[w]);
    }
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
    j["publish_received_by_qos"] = s.publish_received_by_qos;
    j["publish_sent_by_qos"] = s.publish_sent_by_qos;
    auto& drops = j["dropped_by_cause"] = nlohmann::ordered_json::object();
    for (std::size_t d = 0; d < broker::drop_cause_count; ++d) {
        drops[broker::to_string(static_cast<broker::drop_cause>(d))] = s.dropped_by_cause[d];
    }
    auto& refused = j["connects_refused"] = nlohmann::ordered_json::object();
    for (const auto& [reason, n] : s.connects_refused) {
        refused[reason] = n;
    }
    j["tls_handshake_failures"] = s.tls_handshake_failures;
    auto& listeners = j["listeners"] = nlohmann::ordered_json::array();
    for (const auto& l : s.listeners) {
        listeners.push_back({{"name", l.name},
                             {"transport", l.transport},
                             {"connections",
                              {{"3.1", l.connections_by_version[0]},
                               {"3.1.1", l.connections_by_version[1]},
                               {"5", l.connections_by_version[2]}}}});
    }
    j["worker_loop_lag_seconds"] = s.worker_loop_lag_seconds;
    return j.dump();
}

} // namespace tern::admin
