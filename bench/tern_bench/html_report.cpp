#include "html_report.hpp"

#include <tern/core/html.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

// The page is generated entirely here: inline CSS and inline SVG, no script and no external
// resource, so it renders the same from a file:// URL on a machine without network. A
// Content-Security-Policy meta tag forbids anything else, which also defuses markup that might
// slip through from the document (every string from it is escaped anyway).
//
// The document is input, not trusted: any field may be missing or of the wrong type, and the
// renderer must neither throw nor draw an empty section because of it.

namespace tern::bench {
namespace {

using json = nlohmann::json;

std::string escape(std::string_view s) {
    return tern::core::html_escape(s);
}

// --- tolerant accessors --------------------------------------------------------------------

const json* member(const json& j, const char* key) {
    if (!j.is_object()) {
        return nullptr;
    }
    const auto it = j.find(key);
    return it == j.end() || it->is_null() ? nullptr : &*it;
}

std::optional<double> number(const json& j, const char* key) {
    const json* m = member(j, key);
    if (m == nullptr || !m->is_number()) {
        return std::nullopt;
    }
    const double v = m->get<double>();
    return std::isfinite(v) ? std::optional<double>(v) : std::nullopt;
}

std::string text(const json& j, const char* key) {
    const json* m = member(j, key);
    if (m == nullptr) {
        return {};
    }
    if (m->is_string()) {
        return m->get<std::string>();
    }
    // Numbers and booleans print as JSON; replace keeps invalid UTF-8 from throwing.
    return m->is_primitive() ? m->dump(-1, ' ', false, json::error_handler_t::replace)
                             : std::string{};
}

const json* object_member(const json& j, const char* key) {
    const json* m = member(j, key);
    return m != nullptr && m->is_object() ? m : nullptr;
}

const json* array_member(const json& j, const char* key) {
    const json* m = member(j, key);
    return m != nullptr && m->is_array() && !m->empty() ? m : nullptr;
}

// --- number formatting ---------------------------------------------------------------------

std::string thousands(double v) {
    const bool negative = v < 0;
    const std::string digits = fmt::format("{:.0f}", std::fabs(v));
    std::string out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i != 0 && (digits.size() - i) % 3 == 0) {
            out += ',';
        }
        out += digits[i];
    }
    return negative ? "-" + out : out;
}

std::string count(double v) {
    return thousands(v);
}

std::string rate(double v) {
    if (std::fabs(v) >= 1e6) {
        return fmt::format("{:.2f} M/s", v / 1e6);
    }
    if (std::fabs(v) >= 1e4) {
        return fmt::format("{:.1f} k/s", v / 1e3);
    }
    return fmt::format("{:.1f} /s", v);
}

std::string bytes(double v) {
    static constexpr std::string_view units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    std::size_t unit = 0;
    double scaled = v;
    while (std::fabs(scaled) >= 1024 && unit + 1 < std::size(units)) {
        scaled /= 1024;
        ++unit;
    }
    return unit == 0 ? fmt::format("{} B", thousands(v))
                     : fmt::format("{:.2f} {}", scaled, units[unit]);
}

std::string micros(double us) {
    if (std::fabs(us) >= 1e6) {
        return fmt::format("{:.2f} s", us / 1e6);
    }
    if (std::fabs(us) >= 1e3) {
        return fmt::format("{:.2f} ms", us / 1e3);
    }
    return fmt::format("{:.0f} µs", us);
}

// Short SI form for axis ticks: 1.5k, 20M.
std::string si(double v) {
    const double a = std::fabs(v);
    const auto trim = [](std::string s) {
        if (s.find('.') != std::string::npos) {
            while (!s.empty() && s.back() == '0') {
                s.pop_back();
            }
            if (!s.empty() && s.back() == '.') {
                s.pop_back();
            }
        }
        return s;
    };
    if (a >= 1e9) {
        return trim(fmt::format("{:.2f}", v / 1e9)) + "G";
    }
    if (a >= 1e6) {
        return trim(fmt::format("{:.2f}", v / 1e6)) + "M";
    }
    if (a >= 1e3) {
        return trim(fmt::format("{:.2f}", v / 1e3)) + "k";
    }
    return trim(fmt::format("{:.2f}", v));
}

std::string short_micros(double us) {
    if (us >= 1e6) {
        return si(us / 1e6) + " s";
    }
    if (us >= 1e3) {
        return si(us / 1e3) + " ms";
    }
    return si(us) + " µs";
}

// --- SVG helpers ---------------------------------------------------------------------------

constexpr double chart_w = 900;
constexpr double chart_h = 300;
constexpr double pad_l = 70;
constexpr double pad_r = 20;
constexpr double pad_t = 30;
constexpr double pad_b = 45;
constexpr double plot_w = chart_w - pad_l - pad_r;
constexpr double plot_h = chart_h - pad_t - pad_b;

/// Rounds a tick step up to 1, 2 or 5 times a power of ten.
double nice_step(double raw) {
    if (!(raw > 0)) {
        return 1;
    }
    const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
    const double f = raw / magnitude;
    const double nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
    return nice * magnitude;
}

struct linear_axis {
    double lo = 0;
    double hi = 1;
    double step = 1;

    /// The tick values, lo to hi. Computed from an index so that a step too small to change a
    /// huge value cannot loop forever.
    std::vector<double> ticks() const {
        std::vector<double> out;
        const double n = std::min(50.0, std::round((hi - lo) / step));
        for (int i = 0; i <= static_cast<int>(n); ++i) {
            out.push_back(lo + step * i);
        }
        return out;
    }
};

linear_axis make_axis(double lo, double hi, int ticks) {
    if (!(hi > lo)) {
        hi = lo + std::max(1.0, std::fabs(lo) * 0.1);
    }
    linear_axis a;
    a.step = nice_step((hi - lo) / ticks);
    a.lo = std::floor(lo / a.step) * a.step;
    a.hi = std::ceil(hi / a.step) * a.step;
    if (!(a.hi > a.lo)) {
        a.hi = a.lo + a.step;
    }
    return a;
}

struct series {
    std::string name;
    std::string css_class;
    std::vector<std::pair<double, double>> points;
};

struct shaded_range {
    double from;
    double to;
};

using tick_label = std::string (*)(double);

std::string y_axis_label(double v) {
    return si(v);
}

void append_svg_open(std::string& out, const std::string& title) {
    fmt::format_to(std::back_inserter(out),
                   "<svg class=\"chart\" viewBox=\"0 0 {} {}\" role=\"img\" "
                   "aria-label=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">\n",
                   chart_w, chart_h, escape(title));
}

void append_legend(std::string& out, const std::vector<series>& lines, bool shaded) {
    double x = pad_l;
    for (const series& s : lines) {
        fmt::format_to(std::back_inserter(out),
                       "<line class=\"series {}\" x1=\"{:.1f}\" y1=\"14\" x2=\"{:.1f}\" y2=\"14\"/>"
                       "<text class=\"legend\" x=\"{:.1f}\" y=\"18\">{}</text>\n",
                       s.css_class, x, x + 20, x + 25, escape(s.name));
        x += 40 + 8 * static_cast<double>(s.name.size());
    }
    if (shaded) {
        fmt::format_to(std::back_inserter(out),
                       "<rect class=\"warmup\" x=\"{:.1f}\" y=\"8\" width=\"20\" height=\"12\"/>"
                       "<text class=\"legend\" x=\"{:.1f}\" y=\"18\">warm-up</text>\n",
                       x, x + 25);
    }
}

/// A line chart over time; `y_label` formats tick values, `log_y` picks a decade axis. Returns
/// an empty string when no series has a point, so the caller can omit the section.
std::string line_chart(const std::string& title, const std::string& y_title,
                       const std::vector<series>& all, const std::vector<shaded_range>& shaded,
                       tick_label y_label, bool log_y) {
    // A log axis cannot show 0: such points (no samples in that second) are left out.
    std::vector<series> lines;
    for (series s : all) {
        if (log_y) {
            std::erase_if(s.points, [](const auto& p) { return !(p.second > 0); });
        }
        if (!s.points.empty()) {
            lines.push_back(std::move(s));
        }
    }
    if (lines.empty()) {
        return {};
    }
    double x_min = lines.front().points.front().first;
    double x_max = x_min;
    double y_max = 0;
    double y_min = lines.front().points.front().second;
    for (const series& s : lines) {
        for (const auto& [x, y] : s.points) {
            x_min = std::min(x_min, x);
            x_max = std::max(x_max, x);
            y_max = std::max(y_max, y);
            y_min = std::min(y_min, y);
        }
    }
    for (const shaded_range& r : shaded) {
        x_min = std::min(x_min, r.from);
        x_max = std::max(x_max, r.to);
    }
    const linear_axis xa = make_axis(std::min(0.0, x_min), x_max, 10);
    // Linear: 0 to a nice maximum. Log: whole decades around the data, in exponent space.
    linear_axis ya = make_axis(0, y_max, 5);
    std::vector<double> y_ticks = ya.ticks();
    if (log_y) {
        ya.lo = std::floor(std::log10(y_min));
        ya.hi = std::max(std::ceil(std::log10(y_max)), ya.lo + 1);
        const double every = std::max(1.0, std::ceil((ya.hi - ya.lo) / 8));
        y_ticks.clear();
        for (double e = ya.lo; e <= ya.hi; e += every) {
            y_ticks.push_back(std::pow(10.0, e));
        }
    }
    const auto px = [&](double x) { return pad_l + (x - xa.lo) / (xa.hi - xa.lo) * plot_w; };
    const auto py = [&](double y) {
        const double v = log_y ? std::log10(y) : y;
        return pad_t + plot_h - (v - ya.lo) / (ya.hi - ya.lo) * plot_h;
    };

    std::string out;
    append_svg_open(out, title);
    auto it = std::back_inserter(out);
    for (const shaded_range& r : shaded) {
        fmt::format_to(it,
                       "<rect class=\"warmup\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" "
                       "height=\"{:.1f}\"><title>warm-up</title></rect>\n",
                       px(r.from), pad_t, std::max(0.0, px(r.to) - px(r.from)), plot_h);
    }
    for (const double y : y_ticks) {
        fmt::format_to(it,
                       "<line class=\"grid\" x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" "
                       "y2=\"{:.1f}\"/><text class=\"tick\" x=\"{:.1f}\" y=\"{:.1f}\" "
                       "text-anchor=\"end\">{}</text>\n",
                       pad_l, py(y), pad_l + plot_w, py(y), pad_l - 6, py(y) + 4,
                       escape(y_label(y)));
    }
    for (const double x : xa.ticks()) {
        fmt::format_to(it,
                       "<line class=\"grid\" x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" "
                       "y2=\"{:.1f}\"/><text class=\"tick\" x=\"{:.1f}\" y=\"{:.1f}\" "
                       "text-anchor=\"middle\">{}</text>\n",
                       px(x), pad_t, px(x), pad_t + plot_h, px(x), pad_t + plot_h + 16, si(x));
    }
    fmt::format_to(it,
                   "<text class=\"axis-title\" x=\"{:.1f}\" y=\"{:.1f}\" "
                   "text-anchor=\"middle\">time since start (s)</text>\n"
                   "<text class=\"axis-title\" x=\"14\" y=\"{:.1f}\" text-anchor=\"middle\" "
                   "transform=\"rotate(-90 14 {:.1f})\">{}</text>\n",
                   pad_l + plot_w / 2, chart_h - 6, pad_t + plot_h / 2, pad_t + plot_h / 2,
                   escape(y_title));
    for (const series& s : lines) {
        fmt::format_to(it, "<polyline class=\"series {}\" points=\"", s.css_class);
        for (const auto& [x, y] : s.points) {
            fmt::format_to(it, "{:.1f},{:.1f} ", px(x), py(y));
        }
        out += "\"/>\n";
        if (s.points.size() == 1) {
            fmt::format_to(it,
                           "<circle class=\"series {}\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\"/>\n",
                           s.css_class, px(s.points.front().first), py(s.points.front().second));
        }
    }
    append_legend(out, lines, !shaded.empty());
    out += "</svg>\n";
    return out;
}

// --- sections ------------------------------------------------------------------------------

struct timeline_point {
    double t;
    const json* j;
};

std::vector<timeline_point> timeline_points(const json& doc) {
    std::vector<timeline_point> points;
    if (const json* tl = array_member(doc, "timeline")) {
        for (const json& p : *tl) {
            if (const auto t = number(p, "t")) {
                points.push_back({*t, &p});
            }
        }
    }
    std::stable_sort(points.begin(), points.end(),
                     [](const timeline_point& a, const timeline_point& b) { return a.t < b.t; });
    return points;
}

/// Warm-up ranges: the points flagged `"warmup": true` when the timeline flags any, else
/// [0, warmup_s].
std::vector<shaded_range> warmup_ranges(const json& doc, const std::vector<timeline_point>& tl) {
    std::vector<shaded_range> ranges;
    bool flagged = false;
    for (const timeline_point& p : tl) {
        flagged = flagged || member(*p.j, "warmup") != nullptr;
    }
    if (flagged) {
        // A point's t is the end of its sampling interval, so a flagged run covers the time
        // from the point before it (or 0) to its last flagged point.
        bool in_run = false;
        double start = 0;
        double last_flagged = 0;
        double previous_t = std::min(0.0, tl.front().t);
        for (const timeline_point& p : tl) {
            const json* w = member(*p.j, "warmup");
            const bool in = w != nullptr && w->is_boolean() && w->get<bool>();
            if (in) {
                if (!in_run) {
                    in_run = true;
                    start = previous_t;
                }
                last_flagged = p.t;
            } else if (in_run) {
                ranges.push_back({start, last_flagged});
                in_run = false;
            }
            previous_t = p.t;
        }
        if (in_run) {
            ranges.push_back({start, last_flagged});
        }
        return ranges;
    }
    if (const auto w = number(doc, "warmup_s"); w && *w > 0 && !tl.empty()) {
        ranges.push_back({0, *w});
    }
    return ranges;
}

series timeline_series(const std::vector<timeline_point>& tl, const char* key, std::string name,
                       std::string css_class) {
    series s{std::move(name), std::move(css_class), {}};
    for (const timeline_point& p : tl) {
        if (const auto v = number(*p.j, key)) {
            s.points.emplace_back(p.t, *v);
        }
    }
    return s;
}

void append_header(std::string& out, const json& doc) {
    const std::string scenario = text(doc, "scenario");
    const std::string mode = text(doc, "mode");
    const std::string heading = !scenario.empty() ? scenario : !mode.empty() ? mode : "result";
    auto it = std::back_inserter(out);
    fmt::format_to(it, "<header>\n<h1>tern-bench: {}</h1>\n", escape(heading));
    if (const std::string description = text(doc, "description"); !description.empty()) {
        fmt::format_to(it, "<p class=\"description\">{}</p>\n", escape(description));
    }
    out += "<dl class=\"meta\">\n";
    const auto row = [&](std::string_view key, const std::string& value) {
        if (!value.empty()) {
            fmt::format_to(it, "<dt>{}</dt><dd>{}</dd>\n", key, escape(value));
        }
    };
    row("scenario", scenario);
    row("mode", mode);
    if (const json* target = object_member(doc, "target")) {
        std::string where = text(*target, "host");
        if (const std::string port = text(*target, "port"); !port.empty()) {
            where += ":" + port;
        }
        const json* tls = member(*target, "tls");
        if (tls != nullptr && tls->is_boolean()) {
            where += tls->get<bool>() ? " (TLS)" : " (plain TCP)";
        }
        if (const auto p = number(*target, "protocol")) {
            where += *p == 5   ? ", MQTT 5"
                     : *p == 4 ? ", MQTT 3.1.1"
                               : fmt::format(", MQTT level {}", *p);
        }
        row("target", where);
    }
    row("started", text(doc, "started_at"));
    if (const auto d = number(doc, "duration_s")) {
        row("duration", fmt::format("{:.1f} s", *d));
    }
    if (const auto w = number(doc, "warmup_s"); w && *w > 0) {
        row("warm-up", fmt::format("{:.1f} s", *w));
    }
    std::string tool = text(doc, "tool");
    if (const std::string v = text(doc, "version"); !v.empty()) {
        tool += (tool.empty() ? "" : " ") + v;
    }
    row("tool", tool);
    out += "</dl>\n</header>\n";
}

void append_totals(std::string& out, const json& doc) {
    const json* totals = object_member(doc, "totals");
    if (totals == nullptr) {
        return;
    }
    struct field {
        const char* key;
        const char* label;
        std::string (*format)(double);
        bool bad_if_nonzero;
    };
    static constexpr field fields[] = {
        {"connections_ok", "connections ok", count, false},
        {"connections_failed", "connections failed", count, true},
        {"connect_rate", "connect rate (connects/s)", rate, false},
        {"sent", "sent", count, false},
        {"acked", "acknowledged", count, false},
        {"received", "received", count, false},
        {"lost", "lost", count, true},
        {"duplicates", "duplicates", count, true},
        {"reordered", "reordered", count, true},
        {"foreign", "foreign (not ours)", count, true},
        {"errors", "errors", count, true},
        {"send_rate", "send rate (msg/s)", rate, false},
        {"recv_rate", "receive rate (msg/s)", rate, false},
        {"bytes_sent", "bytes sent", bytes, false},
        {"bytes_received", "bytes received", bytes, false},
    };
    std::string rows;
    auto it = std::back_inserter(rows);
    for (const field& f : fields) {
        if (const auto v = number(*totals, f.key)) {
            fmt::format_to(it, "<tr{}><th>{}</th><td>{}</td></tr>\n",
                           f.bad_if_nonzero && *v > 0 ? " class=\"bad\"" : "", f.label,
                           escape(f.format(*v)));
        }
    }
    if (!rows.empty()) {
        out += "<section id=\"totals\">\n<h2>Totals</h2>\n<table class=\"kv\">\n";
        out += rows;
        out += "</table>\n</section>\n";
    }

    const json* reasons = object_member(*totals, "failures_by_reason");
    if (reasons != nullptr && !reasons->empty()) {
        std::string reason_rows;
        for (const auto& [reason, n] : reasons->items()) {
            if (n.is_number()) {
                fmt::format_to(std::back_inserter(reason_rows), "<tr><th>{}</th><td>{}</td></tr>\n",
                               escape(reason), count(n.get<double>()));
            }
        }
        if (!reason_rows.empty()) {
            out += "<section id=\"failures\">\n<h2>Failures by reason</h2>\n<table class=\"kv\">\n";
            out += reason_rows;
            out += "</table>\n</section>\n";
        }
    }
}

void append_timeline_charts(std::string& out, const json& doc) {
    const std::vector<timeline_point> tl = timeline_points(doc);
    if (tl.empty()) {
        return;
    }
    const std::vector<shaded_range> warm = warmup_ranges(doc, tl);

    const std::string rates =
        line_chart("send and receive rate over time", "messages/s",
                   {timeline_series(tl, "send_rate", "send rate", "s-send"),
                    timeline_series(tl, "recv_rate", "receive rate", "s-recv")},
                   warm, y_axis_label, false);
    if (!rates.empty()) {
        out += "<section id=\"rates\">\n<h2>Throughput over time</h2>\n" + rates + "</section>\n";
    }

    const std::string latency = line_chart("p50 and p99 latency over time", "latency (log scale)",
                                           {timeline_series(tl, "p50_us", "p50", "s-p50"),
                                            timeline_series(tl, "p99_us", "p99", "s-p99")},
                                           warm, short_micros, true);
    if (!latency.empty()) {
        out += "<section id=\"latency-timeline\">\n<h2>Latency over time</h2>\n" + latency +
               "</section>\n";
    }

    // Connections and errors only carry information when something changes: a flat line of
    // 100 connections and 0 errors would just repeat the totals table.
    series conns = timeline_series(tl, "connections", "connections", "s-conn");
    series errors = timeline_series(tl, "errors", "errors", "s-err");
    const auto varies = [](const series& s) {
        return std::any_of(s.points.begin(), s.points.end(),
                           [&](const auto& p) { return p.second != s.points.front().second; });
    };
    const bool any_error = std::any_of(errors.points.begin(), errors.points.end(),
                                       [](const auto& p) { return p.second > 0; });
    if (!varies(conns) && !any_error) {
        return;
    }
    if (!any_error) {
        errors.points.clear();
    }
    const std::string chart = line_chart("connections and errors over time", "count",
                                         {conns, errors}, warm, y_axis_label, false);
    if (!chart.empty()) {
        out += "<section id=\"connections-timeline\">\n<h2>Connections over time</h2>\n" + chart +
               "</section>\n";
    }
}

constexpr const char* percentile_keys[] = {"min", "mean", "p50", "p90", "p99", "p999", "max"};

/// The stats table of a latency object, or an empty string when it has no usable field.
std::string latency_table(const json& stats) {
    std::string head;
    std::string cells;
    for (const char* key : percentile_keys) {
        if (const auto v = number(stats, key)) {
            fmt::format_to(std::back_inserter(head), "<th>{}</th>",
                           std::string_view(key) == "p999" ? "p99.9" : key);
            fmt::format_to(std::back_inserter(cells), "<td>{}</td>", escape(micros(*v)));
        }
    }
    if (cells.empty()) {
        return {};
    }
    std::string out = "<table class=\"stats\">\n<tr>";
    if (const auto n = number(stats, "count")) {
        head = "<th>samples</th>" + head;
        cells = "<td>" + count(*n) + "</td>" + cells;
    }
    out += head + "</tr>\n<tr>" + cells + "</tr>\n</table>\n";
    return out;
}

struct log_axis {
    double lo_exp;
    double hi_exp;
};

/// The latency histogram: bars on a log x-axis, percentile markers from `stats`.
std::string histogram_chart(const json& hist, const json* stats) {
    std::vector<std::pair<double, double>> buckets; // upper bound (µs), count
    for (const json& b : hist) {
        if (b.is_array() && b.size() >= 2 && b[0].is_number() && b[1].is_number()) {
            const double ub = b[0].get<double>();
            const double n = b[1].get<double>();
            if (std::isfinite(ub) && ub > 0 && std::isfinite(n) && n > 0) {
                buckets.emplace_back(ub, n);
            }
        }
    }
    if (buckets.empty()) {
        return {};
    }
    std::sort(buckets.begin(), buckets.end());
    // Fine-grained histograms (tern-bench's buckets are a few percent wide) would make hundreds
    // of one-pixel bars whose heights are mostly noise: draw them merged, 20 bins per decade.
    // Buckets are merged by upper bound, so a bin's count is exact for the bin's bounds.
    constexpr std::size_t max_bars = 120;
    constexpr double bins_per_decade = 20;
    if (buckets.size() > max_bars) {
        std::vector<std::pair<double, double>> merged;
        for (const auto& [ub, n] : buckets) {
            const double bin = std::pow(10.0, std::ceil(std::log10(ub) * bins_per_decade - 1e-9) /
                                                  bins_per_decade);
            if (!merged.empty() && merged.back().first == bin) {
                merged.back().second += n;
            } else {
                merged.emplace_back(bin, n);
            }
        }
        buckets = std::move(merged);
    }
    // Only non-empty buckets are listed, so a bucket's lower bound is unknown. Estimate the
    // histogram's growth factor as the smallest ratio between neighbours (adjacent buckets
    // exist in any distribution with some spread) and draw each bar over [ub / factor, ub].
    double factor = 2;
    for (std::size_t i = 1; i < buckets.size(); ++i) {
        const double r = buckets[i].first / buckets[i - 1].first;
        if (r > 1 && (i == 1 || r < factor)) {
            factor = r;
        }
    }
    factor = std::clamp(factor, 1.01, 10.0);
    double n_max = 0;
    double lo = buckets.front().first / factor;
    double hi = buckets.back().first;
    for (const auto& [ub, n] : buckets) {
        n_max = std::max(n_max, n);
    }
    std::vector<std::pair<std::string, double>> markers;
    if (stats != nullptr) {
        for (const char* key : {"p50", "p90", "p99", "p999", "max"}) {
            if (const auto v = number(*stats, key); v && *v > 0) {
                markers.emplace_back(std::string_view(key) == "p999" ? "p99.9" : key, *v);
                lo = std::min(lo, *v);
                hi = std::max(hi, *v);
            }
        }
    }
    const log_axis xa{std::floor(std::log10(lo)),
                      std::max(std::ceil(std::log10(hi)), std::floor(std::log10(lo)) + 1)};
    const linear_axis ya = make_axis(0, n_max, 5);
    const auto px = [&](double us) {
        return pad_l + (std::log10(us) - xa.lo_exp) / (xa.hi_exp - xa.lo_exp) * plot_w;
    };
    const auto py = [&](double y) {
        return pad_t + plot_h - (y - ya.lo) / (ya.hi - ya.lo) * plot_h;
    };

    std::string out;
    append_svg_open(out, "latency distribution");
    auto it = std::back_inserter(out);
    for (const double y : ya.ticks()) {
        fmt::format_to(it,
                       "<line class=\"grid\" x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" "
                       "y2=\"{:.1f}\"/><text class=\"tick\" x=\"{:.1f}\" y=\"{:.1f}\" "
                       "text-anchor=\"end\">{}</text>\n",
                       pad_l, py(y), pad_l + plot_w, py(y), pad_l - 6, py(y) + 4, si(y));
    }
    // One labelled line per decade (per few decades for absurd ranges), minor lines at 2 and 5.
    const double decades = xa.hi_exp - xa.lo_exp;
    const double every = std::max(1.0, std::ceil(decades / 10));
    for (double e = xa.lo_exp; e <= xa.hi_exp; e += every) {
        const double decade = std::pow(10.0, e);
        fmt::format_to(it,
                       "<line class=\"grid\" x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" "
                       "y2=\"{2:.1f}\"/><text class=\"tick\" x=\"{0:.1f}\" y=\"{3:.1f}\" "
                       "text-anchor=\"middle\">{4}</text>\n",
                       px(decade), pad_t, pad_t + plot_h, pad_t + plot_h + 16,
                       short_micros(decade));
        if (e < xa.hi_exp && every == 1) {
            for (const double m : {2.0, 5.0}) {
                fmt::format_to(it,
                               "<line class=\"grid minor\" x1=\"{0:.1f}\" y1=\"{1:.1f}\" "
                               "x2=\"{0:.1f}\" y2=\"{2:.1f}\"/>\n",
                               px(m * decade), pad_t, pad_t + plot_h);
            }
        }
    }
    fmt::format_to(it,
                   "<text class=\"axis-title\" x=\"{:.1f}\" y=\"{:.1f}\" "
                   "text-anchor=\"middle\">end-to-end latency (log scale)</text>\n"
                   "<text class=\"axis-title\" x=\"14\" y=\"{:.1f}\" text-anchor=\"middle\" "
                   "transform=\"rotate(-90 14 {:.1f})\">messages</text>\n",
                   pad_l + plot_w / 2, chart_h - 6, pad_t + plot_h / 2, pad_t + plot_h / 2);
    double previous_ub = 0;
    for (const auto& [ub, n] : buckets) {
        const double from = std::max(ub / factor, previous_ub);
        previous_ub = ub;
        const double x0 = px(from);
        const double width = std::max(1.0, px(ub) - x0 - 0.5);
        fmt::format_to(it,
                       "<rect class=\"bar\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" "
                       "height=\"{:.1f}\"><title>{} – {}: {}</title></rect>\n",
                       x0, py(n), width, py(0) - py(n), escape(micros(from)), escape(micros(ub)),
                       count(n));
    }
    // Labels sit above the plot, on the first of two rows where they do not overlap the
    // previous label (p99 and p99.9 are often close); the marker line runs down from it.
    double row_end[2] = {0, 0};
    for (const auto& [label, us] : markers) {
        const double x = px(us);
        const std::string caption = escape(label) + " " + escape(micros(us));
        const int row = row_end[0] <= x            ? 0
                        : row_end[1] <= x          ? 1
                        : row_end[0] <= row_end[1] ? 0
                                                   : 1;
        const double label_y = 12.0 + 13.0 * row;
        row_end[row] = x + 3 + 6.5 * static_cast<double>(label.size() + micros(us).size() + 1);
        fmt::format_to(it,
                       "<line class=\"marker\" x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" "
                       "y2=\"{2:.1f}\"/><text class=\"marker-label\" x=\"{3:.1f}\" "
                       "y=\"{4:.1f}\">{5}</text>\n",
                       x, label_y - 9, pad_t + plot_h, x + 3, label_y, caption);
    }
    out += "</svg>\n";
    return out;
}

void append_latency(std::string& out, const json& doc) {
    const json* stats = object_member(doc, "latency_us");
    const std::string table = stats != nullptr ? latency_table(*stats) : std::string{};
    const json* hist = array_member(doc, "histogram");
    const std::string chart = hist != nullptr ? histogram_chart(*hist, stats) : std::string{};
    if (table.empty() && chart.empty()) {
        return;
    }
    out +=
        "<section id=\"latency\">\n<h2>End-to-end latency</h2>\n" + table + chart + "</section>\n";
}

/// A latency object other than the end-to-end one (CONNACK, publish acknowledgement): the stats
/// table and one horizontal bar per percentile on a log axis.
void append_latency_bars(std::string& out, const json& doc, const char* key, std::string_view id,
                         std::string_view title) {
    const json* stats = object_member(doc, key);
    if (stats == nullptr) {
        return;
    }
    const std::string table = latency_table(*stats);
    if (table.empty()) {
        return;
    }
    fmt::format_to(std::back_inserter(out), "<section id=\"{}\">\n<h2>{}</h2>\n{}", id, title,
                   table);
    std::vector<std::pair<std::string, double>> bars;
    double hi = 0;
    for (const char* pct : {"p50", "p90", "p99", "p999", "max"}) {
        if (const auto v = number(*stats, pct); v && *v > 0) {
            bars.emplace_back(std::string_view(pct) == "p999" ? "p99.9" : pct, *v);
            hi = std::max(hi, *v);
        }
    }
    if (!bars.empty()) {
        const double max_exp = std::max(1.0, std::ceil(std::log10(hi)));
        constexpr double row_h = 22;
        const double height = 20 + row_h * static_cast<double>(bars.size());
        auto it = std::back_inserter(out);
        fmt::format_to(it,
                       "<svg class=\"chart\" viewBox=\"0 0 {} {}\" role=\"img\" "
                       "aria-label=\"{} percentiles\" "
                       "xmlns=\"http://www.w3.org/2000/svg\">\n",
                       chart_w, height, title);
        double y = 6;
        for (const auto& [label, us] : bars) {
            // Log scale from 1 µs: a p50 of 200 µs and a max of 3 s both stay visible.
            const double w = std::max(1.0, std::log10(std::max(us, 1.0)) / max_exp * plot_w);
            fmt::format_to(it,
                           "<text class=\"tick\" x=\"{:.1f}\" y=\"{:.1f}\" "
                           "text-anchor=\"end\">{}</text><rect class=\"bar connack\" "
                           "x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"16\"/>"
                           "<text class=\"value\" x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n",
                           pad_l - 6, y + 12, escape(label), pad_l, y, w, pad_l + w + 4, y + 12,
                           escape(micros(us)));
            y += row_h;
        }
        fmt::format_to(it,
                       "<text class=\"axis-title\" x=\"{:.1f}\" y=\"{:.1f}\">bar length: log "
                       "scale, 1 µs to {}</text>\n</svg>\n",
                       pad_l, height - 2, short_micros(std::pow(10.0, max_exp)));
    }
    out += "</section>\n";
}

void append_groups(std::string& out, const json& doc) {
    const json* groups = array_member(doc, "groups");
    if (groups == nullptr) {
        return;
    }
    std::string body;
    for (const json& g : *groups) {
        const json* members = array_member(g, "members");
        if (members == nullptr) {
            continue;
        }
        std::vector<std::pair<std::string, const json*>> rows;
        for (const json& m : *members) {
            if (m.is_object()) {
                rows.emplace_back(text(m, "client"), &m);
            }
        }
        if (rows.empty()) {
            continue;
        }
        // Share: from the document when given, else computed from the received counts.
        double total = 0;
        for (const auto& [client, m] : rows) {
            total += number(*m, "received").value_or(0);
        }
        const double ideal = 1.0 / static_cast<double>(rows.size());
        // Bars run from 0 to twice the even share (or the largest share), so a 24 % vs 26 %
        // split among four members is visible; the scale is printed under the bars.
        double largest = 0;
        for (const auto& [client, m] : rows) {
            const double received = number(*m, "received").value_or(0);
            largest =
                std::max(largest, number(*m, "share").value_or(total > 0 ? received / total : 0));
        }
        const double full_scale = std::clamp(std::max(2 * ideal, largest * 1.1), 0.01, 1.0);
        constexpr double row_h = 24;
        constexpr double label_w = 200;
        constexpr double bar_w = chart_w - label_w - 160;
        const double height = 30 + row_h * static_cast<double>(rows.size());
        auto it = std::back_inserter(body);
        fmt::format_to(it, "<h3>group <code>{}</code>", escape(text(g, "name")));
        if (const std::string filter = text(g, "filter"); !filter.empty()) {
            fmt::format_to(it, ", filter <code>{}</code>", escape(filter));
        }
        fmt::format_to(it,
                       "</h3>\n<svg class=\"chart\" viewBox=\"0 0 {} {}\" role=\"img\" "
                       "aria-label=\"share per member\" xmlns=\"http://www.w3.org/2000/svg\">\n",
                       chart_w, height);
        double y = 8;
        for (const auto& [client, m] : rows) {
            const double received = number(*m, "received").value_or(0);
            const double share = number(*m, "share").value_or(total > 0 ? received / total : 0);
            const double w = std::clamp(share / full_scale, 0.0, 1.0) * bar_w;
            fmt::format_to(it,
                           "<text class=\"tick\" x=\"{:.1f}\" y=\"{:.1f}\" "
                           "text-anchor=\"end\">{}</text><rect class=\"bar share\" x=\"{:.1f}\" "
                           "y=\"{:.1f}\" width=\"{:.1f}\" height=\"16\"/><text class=\"value\" "
                           "x=\"{:.1f}\" y=\"{:.1f}\">{:.1f} % ({})</text>\n",
                           label_w - 6, y + 12, escape(client), label_w, y, w, label_w + w + 4,
                           y + 12, share * 100, count(received));
            y += row_h;
        }
        const double ideal_x = label_w + ideal / full_scale * bar_w;
        fmt::format_to(it,
                       "<line class=\"marker\" x1=\"{0:.1f}\" y1=\"4\" x2=\"{0:.1f}\" "
                       "y2=\"{1:.1f}\"/><text class=\"marker-label\" x=\"{2:.1f}\" "
                       "y=\"{3:.1f}\">even share {4:.1f} %</text><text class=\"axis-title\" "
                       "x=\"{5:.1f}\" y=\"{3:.1f}\" text-anchor=\"end\">bar length: 0 to {6:.0f} "
                       "%</text>\n</svg>\n",
                       ideal_x, y, ideal_x + 3, y + 14, ideal * 100, chart_w - 4, full_scale * 100);
    }
    if (!body.empty()) {
        out += "<section id=\"groups\">\n<h2>Shared subscription groups</h2>\n" + body +
               "</section>\n";
    }
}

constexpr std::string_view style = R"(
:root { --fg: #1d2330; --muted: #5b6474; --grid: #e3e6eb; --bg: #fff; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
       background: var(--bg); max-width: 960px; margin: 24px auto; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 8px; word-break: break-all; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid var(--grid); }
h3 { font-size: 14px; margin: 16px 0 4px; }
code { font: 13px ui-monospace, monospace; word-break: break-all; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
p.description { margin: 0 0 10px; color: var(--muted); }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; word-break: break-all; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 10px; border-bottom: 1px solid var(--grid); text-align: right; }
table.kv th { text-align: left; font-weight: normal; color: var(--muted); }
table.stats th { color: var(--muted); font-weight: normal; }
tr.bad td, tr.bad th { color: #b3261e; font-weight: 600; }
svg.chart { width: 100%; height: auto; display: block; margin: 8px 0; }
svg text { font: 11px system-ui, sans-serif; fill: var(--fg); }
svg .tick { fill: var(--muted); }
svg .axis-title { fill: var(--muted); font-size: 12px; }
svg .grid { stroke: var(--grid); stroke-width: 1; }
svg .grid.minor { stroke-dasharray: 2 3; }
svg .warmup { fill: #f3e7c4; opacity: 0.7; }
svg .series { fill: none; stroke: currentColor; stroke-width: 2; }
svg circle.series { fill: currentColor; }
svg .s-send, svg .s-conn { color: #2f6fdf; }
svg .s-recv { color: #1b9e5a; }
svg .s-p50 { color: #7a4fd6; }
svg .s-p99, svg .s-err { color: #d9480f; }
svg .bar { fill: #2f6fdf; }
svg .bar.connack { fill: #7a4fd6; }
svg .bar.share { fill: #1b9e5a; }
svg .marker { stroke: #b3261e; stroke-width: 1.5; stroke-dasharray: 4 3; }
svg .marker-label { fill: #b3261e; }
svg .value { fill: var(--fg); }
details { margin-top: 28px; }
details pre { font: 12px ui-monospace, monospace; white-space: pre-wrap; word-break: break-all;
              background: #f6f7f9; padding: 8px; max-height: 480px; overflow: auto; }
footer { margin-top: 24px; color: var(--muted); font-size: 12px; }
)";

} // namespace

std::string render_html_report(const nlohmann::json& result) {
    const std::string scenario = text(result, "scenario");
    std::string out;
    out.reserve(32 * 1024);
    out += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
           "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
           "style-src 'unsafe-inline'\">\n"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
    fmt::format_to(std::back_inserter(out), "<title>tern-bench{}{}</title>\n<style>{}</style>\n",
                   scenario.empty() ? "" : ": ", escape(scenario), style);
    out += "</head>\n<body>\n";
    append_header(out, result);
    append_totals(out, result);
    append_timeline_charts(out, result);
    append_latency(out, result);
    append_latency_bars(out, result, "ack_latency_us", "ack",
                        "Publish → acknowledgement latency (QoS 1/2)");
    append_latency_bars(out, result, "connack_latency_us", "connack", "CONNACK latency");
    append_groups(out, result);
    // The whole document, for numbers the page does not draw. replace: a client id with
    // invalid UTF-8 must not make the report fail.
    out += "<details id=\"raw\">\n<summary>Result document (JSON)</summary>\n<pre>";
    out += escape(result.dump(2, ' ', false, json::error_handler_t::replace));
    out += "</pre>\n</details>\n<footer>Generated by tern-bench. Self-contained: no scripts, "
           "no network.</footer>\n</body>\n</html>\n";
    return out;
}

std::string write_html_report(const nlohmann::json& result, const std::string& path) {
    std::string page;
    try {
        page = render_html_report(result);
    } catch (const std::exception& e) {
        return fmt::format("cannot render report for {}: {}", path, e.what());
    }
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) {
        const int err = errno;
        return fmt::format("cannot open {}: {}", path, std::system_category().message(err));
    }
    const std::size_t written = std::fwrite(page.data(), 1, page.size(), f);
    const int write_err = errno;
    if (written != page.size()) {
        std::fclose(f);
        return fmt::format("cannot write {}: {}", path, std::system_category().message(write_err));
    }
    if (std::fclose(f) != 0) {
        const int err = errno;
        return fmt::format("cannot write {}: {}", path, std::system_category().message(err));
    }
    return {};
}

} // namespace tern::bench
