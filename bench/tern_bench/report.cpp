#include "report.hpp"

#include <fmt/format.h>

#include <cmath>

namespace tern::bench {

namespace {

using json = nlohmann::json;

double us(std::uint64_t ns) {
    return static_cast<double>(ns) / 1000.0;
}

/// Microseconds rounded to 0.1 (the histogram is no more precise than that below 12.8 µs).
double round_us(double v) {
    return std::round(v * 10.0) / 10.0;
}

std::string human_count(double v) {
    if (v >= 1e9) {
        return fmt::format("{:.2f}G", v / 1e9);
    }
    if (v >= 1e6) {
        return fmt::format("{:.2f}M", v / 1e6);
    }
    if (v >= 1e4) {
        return fmt::format("{:.1f}k", v / 1e3);
    }
    return fmt::format("{:.0f}", v);
}

std::string human_bytes(double v) {
    if (v >= 1024.0 * 1024 * 1024) {
        return fmt::format("{:.2f} GiB", v / (1024.0 * 1024 * 1024));
    }
    if (v >= 1024.0 * 1024) {
        return fmt::format("{:.2f} MiB", v / (1024.0 * 1024));
    }
    if (v >= 1024.0) {
        return fmt::format("{:.1f} KiB", v / 1024.0);
    }
    return fmt::format("{:.0f} B", v);
}

std::string human_us(double v) {
    if (v >= 1e6) {
        return fmt::format("{:.2f}s", v / 1e6);
    }
    if (v >= 1e4) {
        return fmt::format("{:.1f}ms", v / 1e3);
    }
    return fmt::format("{:.0f}µs", v);
}

double num(const json& j, const char* key) {
    const auto it = j.find(key);
    return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
}

std::uint64_t count(const json& j, const char* key) {
    const auto it = j.find(key);
    return it != j.end() && it->is_number() ? it->get<std::uint64_t>() : 0;
}

std::string latency_row(const char* label, const json& l) {
    return fmt::format(
        "  {:<14}{:>10}{:>10.1f}{:>10.1f}{:>10.1f}{:>10.1f}{:>10.1f}{:>10.1f}{:>10.1f}\n", label,
        count(l, "count"), num(l, "min"), num(l, "mean"), num(l, "p50"), num(l, "p90"),
        num(l, "p99"), num(l, "p999"), num(l, "max"));
}

} // namespace

json latency_json(const latency_histogram& h) {
    if (h.count() == 0) {
        return nullptr;
    }
    return json{{"count", h.count()},
                {"min", round_us(us(h.min()))},
                {"mean", round_us(h.mean() / 1000.0)},
                {"p50", round_us(us(h.percentile(50)))},
                {"p90", round_us(us(h.percentile(90)))},
                {"p99", round_us(us(h.percentile(99)))},
                {"p999", round_us(us(h.percentile(99.9)))},
                {"max", round_us(us(h.max()))}};
}

json histogram_json(const latency_histogram& h) {
    json out = json::array();
    h.for_each_bucket([&](std::uint64_t upper_ns, std::uint64_t n) {
        out.push_back(json::array({us(upper_ns), n}));
    });
    return out;
}

std::string iso8601_utc(std::time_t t) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return std::string(buf, n);
}

std::string progress_line(const json& row, std::uint64_t errors_total) {
    std::string p99 = "-";
    if (const auto it = row.find("p99_us"); it != row.end() && it->is_number()) {
        p99 = human_us(it->get<double>());
    }
    const bool warm = row.value("warmup", false);
    return fmt::format(
        "[{:>5.0f}s{}] conns {:>6}  send {:>8}/s  recv {:>8}/s  errors {:>5}  p99 {}",
        num(row, "t"), warm ? " warm-up" : "", count(row, "connections"),
        human_count(num(row, "send_rate")), human_count(num(row, "recv_rate")), errors_total, p99);
}

std::string summary_table(const json& doc) {
    std::string out;
    const auto& target = doc.at("target");
    const auto& t = doc.at("totals");
    const int level = target.value("protocol", 4);
    out += fmt::format("tern-bench {} · {} \"{}\" · {}:{} ({}, MQTT {}) · {:.1f} s measured",
                       doc.value("version", ""), doc.value("mode", ""), doc.value("scenario", ""),
                       target.value("host", ""), target.value("port", 0),
                       target.value("tls", false) ? "tls" : "tcp", level == 5 ? "5" : "3.1.1",
                       num(doc, "duration_s"));
    if (num(doc, "warmup_s") > 0) {
        out += fmt::format(" (+{:.1f} s warm-up)", num(doc, "warmup_s"));
    }
    out += "\n\n";
    out += fmt::format("  {:<14}ok {}  failed {}", "connections", count(t, "connections_ok"),
                       count(t, "connections_failed"));
    if (num(t, "connect_rate") > 0) {
        out += fmt::format("  ({:.0f} connects/s)", num(t, "connect_rate"));
    }
    out += "\n";
    out += fmt::format("  {:<14}sent {}  acked {}  received {}\n", "messages", count(t, "sent"),
                       count(t, "acked"), count(t, "received"));
    out += fmt::format("  {:<14}lost {}  duplicates {}  reordered {}  foreign {}\n", "",
                       count(t, "lost"), count(t, "duplicates"), count(t, "reordered"),
                       count(t, "foreign"));
    out += fmt::format("  {:<14}send {:.1f}  receive {:.1f}\n", "rate (msg/s)", num(t, "send_rate"),
                       num(t, "recv_rate"));
    out += fmt::format("  {:<14}sent {}  received {}\n", "bytes", human_bytes(num(t, "bytes_sent")),
                       human_bytes(num(t, "bytes_received")));

    const auto has = [&](const char* key) { return doc.contains(key) && doc.at(key).is_object(); };
    if (has("latency_us") || has("connack_latency_us") || has("ack_latency_us")) {
        out +=
            fmt::format("\n  {:<14}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}\n",
                        "latency µs", "count", "min", "mean", "p50", "p90", "p99", "p99.9", "max");
        if (has("latency_us")) {
            out += latency_row("end-to-end", doc.at("latency_us"));
        }
        if (has("ack_latency_us")) {
            out += latency_row("publish→ack", doc.at("ack_latency_us"));
        }
        if (has("connack_latency_us")) {
            out += latency_row("connack", doc.at("connack_latency_us"));
        }
    }
    if (const auto it = t.find("failures_by_reason"); it != t.end() && !it->empty()) {
        out += "\n  failures\n";
        for (const auto& [reason, n] : it->items()) {
            out += fmt::format("    {:>8}  {}\n", n.get<std::uint64_t>(), reason);
        }
    }
    if (const auto it = doc.find("groups"); it != doc.end()) {
        for (const auto& g : *it) {
            out += fmt::format("\n  shared group {} (filter {})\n", g.value("name", ""),
                               g.value("filter", ""));
            for (const auto& m : g.at("members")) {
                out += fmt::format("    {:<40}{:>10}  {:5.1f} %\n", m.value("client", ""),
                                   count(m, "received"), 100.0 * num(m, "share"));
            }
        }
    }
    return out;
}

} // namespace tern::bench
