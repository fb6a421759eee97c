#!/usr/bin/env python3
"""Number crunching for bench/compare.sh (see bench/COMPARE.md).

Subcommands:
  expected FILE [--duration S] [--warmup S]   seconds one run of a scenario should take
  make-scenario fanout|latency --base FILE ... a scenario derived from a bench/scenarios file
  one-line PREFIX                             the progress line after one run
  summarize DIR                               medians, ratios, results.json, results.md,
                                              ratios.svg, printed table

A run is the set of files PREFIX.* that compare.sh leaves in DIR/runs: .meta (key=value),
.json (the tern-bench --json document), .time (/usr/bin/time: user sys wall maxrss_kib),
.samples (t fds rss_kib hwm_kib cpu_ticks threads of the broker, every 0.5 s), .end (the
same sample just before the broker is stopped), and for the subscriptions sweep .before,
.loaded and .loader.json.
"""

import argparse
import glob
import html
import json
import math
import os
import statistics
import sys

BROKERS = ("tern", "mosquitto")

# ---------------------------------------------------------------------------------------------
# Reading runs
# ---------------------------------------------------------------------------------------------


def read_kv(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                line = line.rstrip("\n")
                if "=" in line:
                    k, v = line.split("=", 1)
                    out[k] = v
    except OSError:
        pass
    return out


def read_doc(path):
    """The tern-bench result document: the whole stdout, or its last JSON object line."""
    try:
        with open(path, errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    text = text.strip()
    if not text:
        return None
    try:
        doc = json.loads(text)
        return doc if isinstance(doc, dict) else None
    except ValueError:
        pass
    # Progress lines before the document: take the outermost {...} that parses.
    start = text.find("{")
    while start != -1:
        try:
            doc = json.loads(text[start:])
            if isinstance(doc, dict):
                return doc
        except ValueError:
            pass
        start = text.find("\n{", start + 1)
        start = start + 1 if start != -1 else -1
    return None


def read_sample_line(path):
    """'tag fds rss hwm cpu threads' -> dict, or None."""
    try:
        with open(path) as f:
            parts = f.read().split()
    except OSError:
        return None
    if len(parts) < 6:
        return None
    try:
        fds, rss, hwm, cpu, threads = (int(x) for x in parts[1:6])
    except ValueError:
        return None
    return {"fds": fds, "rss": rss, "hwm": hwm, "cpu": cpu, "threads": threads}


def read_samples(path):
    rows = []
    try:
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) >= 6:
                    try:
                        rows.append({"t": float(p[0]), "fds": int(p[1]), "rss": int(p[2]),
                                     "hwm": int(p[3]), "cpu": int(p[4]), "threads": int(p[5])})
                    except ValueError:
                        pass
    except OSError:
        pass
    return [r for r in rows if r["rss"] > 0]


def read_time(path):
    try:
        with open(path) as f:
            lines = [ln for ln in f.read().splitlines() if ln.strip()]
        # /usr/bin/time prefixes "Command exited with non-zero status N" on failure.
        user, system, wall, maxrss = lines[-1].split()[:4]
        return {"user": float(user), "sys": float(system), "wall": float(wall),
                "maxrss_kib": int(maxrss)}
    except (OSError, ValueError, IndexError):
        return None


def num(d, *keys):
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    if isinstance(d, bool) or not isinstance(d, (int, float)):
        return None
    return float(d)


def load_run(prefix):
    meta = read_kv(prefix + ".meta")
    run = {"prefix": prefix, "meta": meta, "doc": read_doc(prefix + ".json"),
           "time": read_time(prefix + ".time"), "samples": read_samples(prefix + ".samples"),
           "end": read_sample_line(prefix + ".end"), "before": read_sample_line(prefix + ".before"),
           "loaded": read_sample_line(prefix + ".loaded"), "loader": None}
    try:
        with open(prefix + ".loader.json") as f:
            run["loader"] = json.loads(f.readline())
    except (OSError, ValueError):
        pass
    run["metrics"] = metrics(run)
    return run


def metrics(run):
    """Flat numbers of one run; None where not measured."""
    m = {}
    doc = run["doc"] or {}
    t = doc.get("totals") if isinstance(doc.get("totals"), dict) else {}
    for k in ("sent", "acked", "received", "lost", "duplicates", "reordered", "foreign",
              "send_rate", "recv_rate", "connections_ok", "connections_failed", "connect_rate"):
        m[k] = num(t, k)
    for k in ("p50", "p99", "p999", "max", "mean"):
        m["lat_" + k] = num(doc, "latency_us", k)
        m["connack_" + k] = num(doc, "connack_latency_us", k)
        m["ack_" + k] = num(doc, "ack_latency_us", k)  # publish -> PUBACK
    m["duration_s"] = num(doc, "duration_s")
    # Shared groups: the smallest and largest member share over all groups (0.25/0.25 is a
    # perfect split among four).
    shares = [num(mem, "share") for g in (doc.get("groups") or []) if isinstance(g, dict)
              for mem in (g.get("members") or []) if isinstance(mem, dict)]
    shares = [x for x in shares if x is not None]
    if shares:
        m["share_min"], m["share_max"] = min(shares), max(shares)
    # Steady-state receive rate: the mean of the per-second timeline over the measured window
    # (after warm-up, before the drain). Unlike totals.recv_rate it counts what subscribers
    # received in those seconds, whenever it was published.
    tl = doc.get("timeline") if isinstance(doc.get("timeline"), list) else []
    measured = sorted((p for p in tl if isinstance(p, dict) and not p.get("warmup")
                       and num(p, "t") is not None and num(p, "recv_rate") is not None),
                      key=lambda p: p["t"])
    if measured and m["duration_s"]:
        window = measured[:max(1, int(math.ceil(m["duration_s"] - 1e-9)))]
        m["steady_recv_rate"] = statistics.mean(num(p, "recv_rate") for p in window)

    clk = float(run["meta"].get("clk_tck") or 100)
    samples = run["samples"]
    end = run["end"]
    if samples:
        base = samples[0]
        last_cpu = end["cpu"] if end and end["cpu"] >= base["cpu"] else samples[-1]["cpu"]
        m["broker_cpu_s"] = (last_cpu - base["cpu"]) / clk
        hwm = max([s["hwm"] for s in samples] + ([end["hwm"]] if end else []))
        m["broker_peak_rss_mib"] = hwm / 1024.0
        m["broker_threads"] = float(max(s["threads"] for s in samples))
        # Connections held: the fd plateau above the baseline. RSS is read at the plateau's
        # last sample: by then every session is built (they follow the CONNECT after accept)
        # and the connections are idle, so this is what an idle connection costs. A burst's
        # transient heap (TLS handshakes) shows in the peak RSS column instead.
        max_fds = max(s["fds"] for s in samples)
        held = max_fds - base["fds"]
        m["held_connections"] = float(held)
        if held >= 1000:
            plateau = [s for s in samples if s["fds"] - base["fds"] >= 0.98 * held]
            rss_held = plateau[-1]["rss"]
            m["kib_per_conn"] = (rss_held - base["rss"]) / held
            m["rss_held_mib"] = rss_held / 1024.0
        m["broker_rss_base_mib"] = base["rss"] / 1024.0
    tm = run["time"]
    if tm:
        m["bench_cpu_s"] = tm["user"] + tm["sys"]
        m["bench_wall_s"] = tm["wall"]
        m["bench_cores"] = (tm["user"] + tm["sys"]) / tm["wall"] if tm["wall"] > 0 else None
        if m.get("broker_cpu_s") is not None and tm["wall"] > 0:
            m["broker_cores"] = m["broker_cpu_s"] / tm["wall"]
    try:
        m["store_mib"] = float(run["meta"]["store_kib"]) / 1024.0
    except (KeyError, ValueError):
        pass
    if m.get("received") and m.get("broker_cpu_s"):
        m["recv_per_broker_cpu_s"] = m["received"] / m["broker_cpu_s"]
    # Subscriptions sweep: memory per subscription and load time.
    before, loaded, loader = run["before"], run["loaded"], run["loader"]
    if before and loaded and loader and loader.get("ready"):
        subs = float(loader.get("subscriptions") or 0)
        if subs > 0:
            m["kib_per_sub"] = (loaded["rss"] - before["rss"]) / subs
            m["subs_load_s"] = float(loader.get("load_s") or 0)
            m["subs_refused"] = float(loader.get("refused") or 0)
    return {k: v for k, v in m.items() if v is not None}


def ok(run):
    return run["meta"].get("rc") == "0" and run["doc"] is not None


# ---------------------------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------------------------


def si(v, unit=""):
    if v is None:
        return "–"
    a = abs(v)
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"{v / div:.3g}{suffix}{unit}"
    return f"{v:.3g}{unit}"


def us(v):
    if v is None:
        return "–"
    if v >= 1e6:
        return f"{v / 1e6:.2f} s"
    if v >= 1e3:
        return f"{v / 1e3:.2f} ms"
    return f"{v:.0f} µs"


def cnt(v):
    return "–" if v is None else f"{v:,.0f}"


def ratio_s(r):
    return "–" if r is None else f"{r:.2f}×"


def fixed(v, digits=1):
    return "–" if v is None else f"{v:.{digits}f}"


# ---------------------------------------------------------------------------------------------
# Subcommands
# ---------------------------------------------------------------------------------------------


def cmd_expected(args):
    """ramp + warmup + duration + drain + connect time (clients / connect_rate) + broker start."""
    try:
        with open(args.file) as f:
            doc = json.load(f)
        if not isinstance(doc, dict):
            doc = {}
    except (OSError, ValueError):
        doc = {}

    def field(name, default):
        v = doc.get(name)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else default

    duration = float(args.duration) if args.duration else field("duration", 10.0)
    warmup = float(args.warmup) if args.warmup else field("warmup", 0.0)
    clients = sum(int(r.get("clients", 1)) for r in doc.get("roles", []) if isinstance(r, dict))
    rate = field("connect_rate", 1000.0)
    connect = clients / rate if rate > 0 else 0.0
    total = field("ramp", 0.0) + warmup + duration + field("drain", 2.0) + connect + 3
    print(int(math.ceil(total)))


def cmd_make_scenario(args):
    """Scenario files for the sweeps, in the format of bench/scenarios (bench/README.md)."""
    if args.kind == "fanout":
        # One publisher, K subscribers on the same topic. The publisher uses QoS 1 with a
        # window of 64, so the broker's PUBACKs pace it: it publishes as fast as the broker
        # routes (a closed loop), instead of piling messages up in socket buffers as an
        # unbounded QoS 0 publisher would. Subscriptions are QoS 0, so deliveries are QoS 0.
        doc = {"name": f"sweep-fanout-{args.subscribers}",
               "description": f"1 publisher (QoS 1, window 64, rate {args.rate or 'unbounded'}) "
                              f"to {args.subscribers} QoS 0 subscribers",
               "protocol": 4, "duration": args.duration, "warmup": args.warmup,
               "roles": [{"name": "subscribers", "clients": args.subscribers,
                          "subscribe": {"filter": "sweep/fanout", "qos": 0}},
                         {"name": "publisher", "clients": 1,
                          "publish": {"topic": "sweep/fanout", "rate": args.rate, "qos": 1,
                                      "inflight": 64, "size": args.size}}]}
    else:
        # Latency probe next to the subscriptions held by sub_loader.py (never matched by it).
        doc = {"name": "sweep-subscriptions-latency",
               "description": f"1 publisher at {args.rate} msg/s QoS 1 to 1 subscriber",
               "protocol": 4, "duration": args.duration, "warmup": args.warmup,
               "roles": [{"name": "subscriber", "clients": 1,
                          "subscribe": {"filter": "sweep/lat/#", "qos": 1}},
                         {"name": "publisher", "clients": 1,
                          "publish": {"topic": "sweep/lat/%i", "rate": args.rate, "qos": 1,
                                      "size": args.size}}]}
    json.dump(doc, sys.stdout, indent=2)
    print()


def cmd_one_line(args):
    run = load_run(args.prefix)
    m = run["metrics"]
    parts = []
    if m.get("send_rate") or m.get("recv_rate"):
        parts.append(f"send {si(m.get('send_rate'), '/s')} recv {si(m.get('recv_rate'), '/s')}")
    if "lat_p50" in m:
        parts.append(f"p50 {us(m.get('lat_p50'))} p99 {us(m.get('lat_p99'))}")
    if "connack_p50" in m:
        parts.append(f"connack p50 {us(m.get('connack_p50'))} p99 {us(m.get('connack_p99'))}")
    if "connections_ok" in m:
        parts.append(f"conns {cnt(m.get('connections_ok'))} ok / {cnt(m.get('connections_failed'))} failed")
    if m.get("sent"):
        parts.append(f"lost {cnt(m.get('lost'))} dup {cnt(m.get('duplicates'))}")
    if "kib_per_conn" in m:
        parts.append(f"{m['kib_per_conn']:.1f} KiB/conn over {cnt(m['held_connections'])}")
    if "kib_per_sub" in m:
        parts.append(f"{m['kib_per_sub']:.2f} KiB/sub, loaded in {m['subs_load_s']:.1f} s")
    b = []
    if "broker_cpu_s" in m:
        b.append(f"broker {m['broker_cpu_s']:.1f} CPU-s ({fixed(m.get('broker_cores'), 2)} cores)")
    if "broker_peak_rss_mib" in m:
        b.append(f"peak RSS {m['broker_peak_rss_mib']:.1f} MiB")
    if "bench_cores" in m:
        b.append(f"tern-bench {m['bench_cores']:.2f} cores")
    print("  " + ", ".join(parts) + (" | " + ", ".join(b) if b else ""))


# --- summarize -------------------------------------------------------------------------------

# Metrics compared across brokers: (key, label, formatter, direction). Direction "up": a larger
# Tern value is better and the ratio is tern/mosquitto; "down": smaller is better and the ratio
# is mosquitto/tern. Either way a ratio above 1 means Tern did better.
RATIOS = [
    ("recv_rate", "receive rate", "up"),
    ("send_rate", "send rate", "up"),
    ("lat_p50", "latency p50", "down"),
    ("lat_p99", "latency p99", "down"),
    ("connack_p99", "CONNACK p99", "down"),
    ("connect_rate", "connects/s", "up"),
    ("kib_per_conn", "memory/conn", "down"),
    ("broker_peak_rss_mib", "peak RSS", "down"),
    ("recv_per_broker_cpu_s", "msgs per CPU-s", "up"),
]


def ratio(tern, mosq, direction):
    if tern is None or mosq is None or tern <= 0 or mosq <= 0:
        return None
    return tern / mosq if direction == "up" else mosq / tern


def median_metrics(runs):
    keys = sorted({k for r in runs for k in r["metrics"]})
    out = {}
    for k in keys:
        vals = [r["metrics"][k] for r in runs if k in r["metrics"]]
        if vals:
            out[k] = statistics.median(vals)
    out["reps_ok"] = len(runs)
    return out


def short_ratio(r):
    return f"{r:.0f}" if r >= 10 else f"{r:.1f}" if r >= 1 else f"{r:.2f}"


def svg_ratio_chart(rows, title):
    """Diverging bars on a log2 axis: up = Tern better. rows: [(group, [(metric, ratio)])]."""
    colors = {"receive rate": "#2f6fdf", "send rate": "#6c9cf0", "latency p50": "#7a4fd6",
              "latency p99": "#d9480f", "CONNACK p99": "#b07d2b", "memory/conn": "#1b9e5a",
              "peak RSS": "#5fbf8a", "msgs per CPU-s": "#444b59", "deliveries/s": "#2f6fdf",
              "KiB/conn": "#1b9e5a", "RSS queued": "#5fbf8a", "store bytes": "#b07d2b",
              "restart": "#d9480f"}
    rows = [(g, [(m, r) for m, r in bars if r is not None]) for g, bars in rows]
    rows = [(g, bars) for g, bars in rows if bars]
    metrics_used = []
    for _, bars in rows:
        for m, _ in bars:
            if m not in metrics_used:
                metrics_used.append(m)
    bar_w, gap = 14, 26
    left, top, plot_h = 60, 60, 300
    width = max(560, left + 20 + sum(len(b) * bar_w + gap for _, b in rows))
    height = top + plot_h + 100
    lim = 4.0  # log2: 16x either way; longer bars are clipped, their label ends in "!"
    mid = top + plot_h / 2

    def y(r):
        v = max(-lim, min(lim, math.log2(r)))
        return mid - v / lim * (plot_h / 2)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="18" font-size="14">{html.escape(title)}</text>',
           f'<text x="{left}" y="32" fill="#5b6474">log scale; above 1 = Tern better '
           f'(throughput: tern/mosquitto;</text>',
           f'<text x="{left}" y="45" fill="#5b6474">latency, memory: mosquitto/tern)</text>']
    for k in range(-int(lim), int(lim) + 1):
        yy = mid - k / lim * (plot_h / 2)
        label = f"{2 ** k:g}×" if k >= 0 else f"1/{2 ** -k:g}×"
        out.append(f'<line x1="{left}" y1="{yy:.1f}" x2="{width - 10}" y2="{yy:.1f}" '
                   f'stroke="{"#1d2330" if k == 0 else "#e3e6eb"}"/>'
                   f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end" fill="#5b6474">'
                   f'{label}</text>')
    x = left + 14
    for group, bars in rows:
        gx = x
        for m, r in bars:
            yy = y(r)
            top_y, h = (yy, mid - yy) if r >= 1 else (mid, yy - mid)
            out.append(f'<rect x="{x}" y="{top_y:.1f}" width="{bar_w - 2}" height="{max(h, 1):.1f}" '
                       f'fill="{colors.get(m, "#888")}"><title>{html.escape(group)}: '
                       f'{html.escape(m)} {r:.2f}×</title></rect>')
            ty = top_y - 3 if r >= 1 else top_y + h + 10
            clipped = abs(math.log2(r)) > lim
            out.append(f'<text x="{x + bar_w / 2 - 1:.1f}" y="{ty:.1f}" text-anchor="middle" '
                       f'font-size="8" fill="#1d2330">{short_ratio(r)}{"!" if clipped else ""}</text>')
            x += bar_w
        out.append(f'<text x="{(gx + x) / 2:.1f}" y="{top + plot_h + 30}" text-anchor="middle">'
                   f'{html.escape(group)}</text>')
        x += gap
    lx, ly = left, top + plot_h + 54
    for m in metrics_used:
        out.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{colors.get(m, "#888")}"/>'
                   f'<text x="{lx + 14}" y="{ly}">{html.escape(m)}</text>')
        lx += 24 + 7 * len(m)
        if lx > width - 120:
            lx, ly = left, ly + 16
    out.append("</svg>")
    return "\n".join(out) + "\n"


def md_table(header, rows, align=None):
    align = align or ["---"] + ["---:"] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(lines)


def cmd_summarize(args):
    out_dir = args.dir
    machine = read_kv(os.path.join(out_dir, "machine.env"))
    runs = [load_run(p[:-len(".meta")]) for p in sorted(glob.glob(os.path.join(out_dir, "runs", "*.meta")))]
    if not runs:
        print("no runs found in", out_dir)
        return 1

    # Group: (kind, label, broker) -> runs
    groups = {}
    order = []
    for r in runs:
        key = (r["meta"].get("kind", "?"), r["meta"].get("label", "?"), r["meta"].get("broker", "?"))
        if key[:2] not in order:
            order.append(key[:2])
        groups.setdefault(key, []).append(r)
    summary = {"machine": machine, "scenarios": {}, "sweeps": {}}
    failures = []
    for (kind, label, broker), rs in groups.items():
        good = [r for r in rs if ok(r)]
        for r in rs:
            if not ok(r) and r["meta"].get("rc") != "skipped":
                failures.append(f"{label} {broker} rep {r['meta'].get('rep')}: status "
                                f"{r['meta'].get('rc')} ({os.path.basename(r['prefix'])}.log)")
        entry = median_metrics(good) if good else {"reps_ok": 0}
        entry["reps"] = len(rs)
        skipped = [r["meta"].get("skip_reason") for r in rs if r["meta"].get("rc") == "skipped"]
        if skipped:
            entry["skipped"] = skipped[0]
        if kind == "scenario":
            summary["scenarios"].setdefault(label, {})[broker] = entry
        else:
            sweep = kind[len("sweep-"):]
            point = rs[0]["meta"].get("arg")
            summary["sweeps"].setdefault(sweep, {}).setdefault(point, {})[broker] = entry

    # Scenarios in the order they were asked for (the plan), not the file names' order.
    wanted = [os.path.basename(s)[:-len(".json")] if s.endswith(".json") else s
              for s in machine.get("scenarios", "").split(",") if s]
    rank = {name: i for i, name in enumerate(wanted)}
    summary["scenarios"] = dict(sorted(summary["scenarios"].items(),
                                       key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))
    for label, per in summary["scenarios"].items():
        t, mq = per.get("tern", {}), per.get("mosquitto", {})
        per["ratios"] = {k: ratio(t.get(k), mq.get(k), d) for k, _, d in RATIOS}

    md = render_markdown(summary, machine, order, failures)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(md)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump({"summary": summary, "failures": failures,
                   "runs": [{"meta": r["meta"], "metrics": r["metrics"],
                             "document": os.path.basename(r["prefix"]) + ".json"} for r in runs]},
                  f, indent=2, sort_keys=True)
    chart_rows = []
    for label, per in summary["scenarios"].items():
        r = per["ratios"]
        chart_rows.append((label, [(name, r.get(k)) for k, name, _ in RATIOS if k != "send_rate"]))
    for sweep, points in summary["sweeps"].items():
        key, name, d = {"idle": ("kib_per_conn", "KiB/conn", "down"),
                        "fanout": ("steady_recv_rate", "deliveries/s", "up"),
                        "subscriptions": ("lat_p99", "latency p99", "down")}[sweep]
        for point, per in sorted(points.items(), key=lambda kv: int(kv[0])):
            chart_rows.append((f"{sweep} {si(float(point))}",
                               [(name, ratio(per.get("tern", {}).get(key),
                                             per.get("mosquitto", {}).get(key), d))]))
    svg = svg_ratio_chart(chart_rows, "Tern vs Mosquitto 2.0")
    with open(os.path.join(out_dir, "ratios.svg"), "w") as f:
        f.write(svg)
    print()
    print(md)
    print(f"\nwritten: {out_dir}/results.md, results.json, ratios.svg (runs/ has every document)")
    return 0


def render_markdown(summary, machine, order, failures):
    L = []
    L.append("## Side by side with Mosquitto (`bench/compare.sh`)")
    L.append("")
    L.append("Ratios: **above 1 means Tern did better.** Throughput and messages per broker "
             "CPU-second are tern/mosquitto; latency and memory are mosquitto/tern. Values are "
             "medians over the repetitions that succeeded.")
    L.append("")
    L.append(md_table(["", ""], [
        ["CPU", f"{machine.get('cpu_model', '?')}, {machine.get('cpus', '?')} CPUs "
                f"(broker and load generator share them)"],
        ["Memory", f"{int(machine.get('mem_total_kib', '0')) // 1024} MiB"],
        ["OS", f"{machine.get('os', '?')}, kernel {machine.get('kernel', '?')}"],
        ["Mosquitto", f"{machine.get('mosquitto_version', '?')} (Debian), 1 thread"],
        ["Tern", f"{machine.get('tern_rev', '?')}, threads {machine.get('tern_threads', '?')}, "
                 f"config via {machine.get('tern_config', '?')}"],
        ["tern-bench", f"{machine.get('bench_version') or '?'}, threads {machine.get('bench_threads', '?')}"],
        ["Limits", f"both brokers max_inflight_messages {machine.get('max_inflight_messages')}, "
                   f"max_queued_messages {machine.get('max_queued_messages')}; nofile "
                   f"{machine.get('nofile')} (hard {machine.get('nofile_hard')}), ephemeral ports "
                   f"{machine.get('ephemeral_ports')}"],
        ["Pinning", machine.get("pin", "no")],
        ["Load average", f"{machine.get('loadavg_start', '?')} at start, "
                         f"{machine.get('loadavg_end', '?')} at end"],
        ["Runs", f"{machine.get('reps')} repetition(s), brokers alternating, fresh broker per run"
                 + (", --quick" if machine.get("quick") == "1" else "")],
    ], ["---", "---"]))
    L.append("")

    sc = summary["scenarios"]
    if sc:
        L.append("### Scenarios (medians)")
        L.append("")
        rows = []
        for label, per in sc.items():
            for b in BROKERS:
                e = per.get(b)
                if e is None:
                    continue
                rows.append([label, b, f"{e.get('reps_ok')}/{e.get('reps')}",
                             si(e.get("send_rate"), "/s"), si(e.get("recv_rate"), "/s"),
                             us(e.get("lat_p50")), us(e.get("lat_p99")),
                             us(e.get("connack_p99")), si(e.get("connect_rate"), "/s"),
                             f"{cnt(e.get('connections_ok'))}/{cnt(e.get('connections_failed'))}",
                             f"{cnt(e.get('lost'))}/{cnt(e.get('duplicates'))}/{cnt(e.get('reordered'))}",
                             fixed(e.get("kib_per_conn")),
                             fixed(e.get("broker_peak_rss_mib")),
                             fixed(e.get("broker_cores"), 2), fixed(e.get("bench_cores"), 2)])
        L.append(md_table(["scenario", "broker", "ok", "send/s", "recv/s", "p50", "p99",
                           "CONNACK p99", "connects/s", "conns ok/failed", "lost/dup/reord",
                           "KiB/conn", "peak RSS MiB", "broker cores", "tern-bench cores"], rows,
                          ["---", "---"] + ["---:"] * 13))
        L.append("")
        shared = [(label, b, per[b]) for label, per in sc.items() for b in BROKERS
                  if b in per and "share_min" in per[b]]
        if shared:
            L.append("Shared-subscription balance (member share, min – max; even = 1/members):")
            L.append("")
            L.append(md_table(["scenario", "broker", "min share", "max share"],
                              [[label, b, f"{e['share_min'] * 100:.1f} %",
                                f"{e['share_max'] * 100:.1f} %"] for label, b, e in shared],
                              ["---", "---", "---:", "---:"]))
            L.append("")
        if any(set(per) >= {"tern", "mosquitto"} for per in sc.values()):
            L.append("### Tern / Mosquitto (above 1 = Tern better)")
            L.append("")
            rows = []
            for label, per in sc.items():
                if not set(per) >= {"tern", "mosquitto"}:
                    continue  # a scenario run on one broker only ("brokers" in its block)
                r = per.get("ratios", {})
                rows.append([label] + [ratio_s(r.get(k)) for k, _, _ in RATIOS])
            L.append(md_table(["scenario"] + [n for _, n, _ in RATIOS], rows))
            L.append("")

    sw = summary["sweeps"]

    def pts(points):
        return sorted(points.items(), key=lambda kv: int(kv[0]))

    def get(per, b, k):
        return per.get(b, {}).get(k)

    def skipped(per):
        return "; ".join(sorted({per[b]["skipped"] for b in per if "skipped" in per[b]}))

    if "idle" in sw:
        L.append("### Idle connections: broker memory per connection")
        L.append("")
        rows = []
        for p, per in pts(sw["idle"]):
            rows.append([cnt(float(p)),
                         fixed(get(per, "mosquitto", "kib_per_conn"), 2),
                         fixed(get(per, "tern", "kib_per_conn"), 2),
                         ratio_s(ratio(get(per, "tern", "kib_per_conn"),
                                       get(per, "mosquitto", "kib_per_conn"), "down")),
                         f"{cnt(get(per, 'mosquitto', 'held_connections'))} / "
                         f"{cnt(get(per, 'tern', 'held_connections'))}",
                         skipped(per) or ""])
        L.append(md_table(["connections", "mosquitto KiB/conn", "tern KiB/conn",
                           "ratio (mosq/tern)", "held (mosq / tern)", "capped by"], rows,
                          ["---:"] * 5 + ["---"]))
        L.append("")
        L.append("KiB/conn = (broker VmRSS while the connections are held − VmRSS before) / "
                 "connections held (broker file descriptors above the baseline).")
        L.append("")
    if "fanout" in sw:
        L.append("### Fan-out: deliveries per second by subscriber count")
        L.append("")
        rows = []
        for p, per in pts(sw["fanout"]):
            rows.append([cnt(float(p)),
                         si(get(per, "mosquitto", "steady_recv_rate"), "/s"),
                         si(get(per, "tern", "steady_recv_rate"), "/s"),
                         ratio_s(ratio(get(per, "tern", "steady_recv_rate"),
                                       get(per, "mosquitto", "steady_recv_rate"), "up")),
                         f"{us(get(per, 'mosquitto', 'lat_p99'))} / {us(get(per, 'tern', 'lat_p99'))}",
                         f"{cnt(get(per, 'mosquitto', 'lost'))} / {cnt(get(per, 'tern', 'lost'))}",
                         f"{fixed(get(per, 'mosquitto', 'broker_cores'), 2)} / "
                         f"{fixed(get(per, 'tern', 'broker_cores'), 2)}",
                         f"{fixed(get(per, 'mosquitto', 'bench_cores'), 2)} / "
                         f"{fixed(get(per, 'tern', 'bench_cores'), 2)}"])
        L.append(md_table(["subscribers", "mosquitto deliveries/s", "tern deliveries/s",
                           "ratio (tern/mosq)", "p99 (mosq / tern)", "lost (mosq / tern)",
                           "broker cores (mosq / tern)", "tern-bench cores (mosq / tern)"], rows))
        L.append("")
        L.append("Deliveries/s: the subscribers' receive rate per second, averaged over the "
                 "measured seconds (after warm-up, before the drain). The publisher is QoS 1 "
                 "with a window of 64, so the broker's acknowledgements pace it; deliveries are "
                 "QoS 0.")
        L.append("")
    if "subscriptions" in sw:
        L.append("### Subscription count: publish latency with N other subscriptions held")
        L.append("")
        rows = []
        for p, per in pts(sw["subscriptions"]):
            rows.append([cnt(float(p)),
                         f"{us(get(per, 'mosquitto', 'lat_p50'))} / {us(get(per, 'mosquitto', 'lat_p99'))}",
                         f"{us(get(per, 'tern', 'lat_p50'))} / {us(get(per, 'tern', 'lat_p99'))}",
                         ratio_s(ratio(get(per, "tern", "lat_p99"),
                                       get(per, "mosquitto", "lat_p99"), "down")),
                         f"{fixed(get(per, 'mosquitto', 'kib_per_sub'), 2)} / "
                         f"{fixed(get(per, 'tern', 'kib_per_sub'), 2)}",
                         f"{fixed(get(per, 'mosquitto', 'subs_load_s'), 1)} / "
                         f"{fixed(get(per, 'tern', 'subs_load_s'), 1)}"])
        L.append(md_table(["subscriptions", "mosquitto p50 / p99", "tern p50 / p99",
                           "p99 ratio (mosq/tern)", "KiB/sub (mosq / tern)",
                           "load s (mosq / tern)"], rows))
        L.append("")
    if sc or sw:
        L.append("![Tern / Mosquitto ratios](img/compare-ratios.svg)")
        L.append("")
    if failures:
        L.append("Failed runs (left out of the medians):")
        L.append("")
        for f in failures:
            L.append(f"- {f}")
        L.append("")
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("expected")
    p.add_argument("file")
    p.add_argument("--duration", default="")
    p.add_argument("--warmup", default="")
    p.set_defaults(fn=cmd_expected)
    p = sub.add_parser("make-scenario")
    p.add_argument("kind", choices=("fanout", "latency"))
    p.add_argument("--subscribers", type=int, default=1)
    p.add_argument("--rate", type=float, default=0)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--warmup", type=float, default=2)
    p.set_defaults(fn=cmd_make_scenario)
    p = sub.add_parser("one-line")
    p.add_argument("prefix")
    p.set_defaults(fn=cmd_one_line)
    p = sub.add_parser("summarize")
    p.add_argument("dir")
    p.set_defaults(fn=cmd_summarize)
    args = ap.parse_args()
    return args.fn(args) or 0


if __name__ == "__main__":
    sys.exit(main())
