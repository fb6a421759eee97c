#!/usr/bin/env python3
"""Tables and a chart for bench/durable.sh (see bench/COMPARE.md, "Durable state").

Usage: durable_report.py OUT_DIR

Reads what durable.sh left in OUT_DIR: machine.env, throughput/results.json (compare.sh's
summary of the durable-fan-in* scenarios), loss/*/result.json and state/*/result.json. Writes
OUT_DIR/results.md (ready for docs/performance.md), results.json (everything in one document)
and durable-ratios.svg (Tern / Mosquitto, above 1 = Tern better), and prints the markdown.
"""

import glob
import json
import math
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402  (bench/compare/report.py: formatting and the SVG chart)

si, us, cnt, fixed, ratio_s, md_table = (report.si, report.us, report.cnt, report.fixed,
                                         report.ratio_s, report.md_table)


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def ratio(a, b):
    return a / b if a and b and a > 0 and b > 0 else None


def mib(kib):
    return None if kib is None else kib / 1024.0


def secs(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.2f} s" if v < 100 else f"{v:.0f} s"


# Rows of the throughput table: (label, scenario, broker, loss label).
THROUGHPUT_ROWS = [
    ("Tern, persistence_sync batch", "durable-fan-in", "tern", "tern-batch"),
    ("Tern, persistence_sync interval 100", "durable-fan-in-interval", "tern", "tern-interval-100"),
    ("Tern, persistence_sync never", "durable-fan-in-never", "tern", "tern-never"),
    ("Tern, persistence false (memory)", "durable-fan-in-memory", "tern", None),
    ("Mosquitto, persistence true", "durable-fan-in", "mosquitto", "mosquitto"),
    ("Mosquitto, persistence false", "durable-fan-in-memory", "mosquitto", None),
]


def throughput_section(out, tp, losses, L):
    sc = (tp or {}).get("summary", {}).get("scenarios", {})
    if not sc:
        return {}
    base_tern_mem = sc.get("durable-fan-in-memory", {}).get("tern", {}).get("recv_rate")
    base_mosq = sc.get("durable-fan-in", {}).get("mosquitto", {}).get("recv_rate")
    rows, data = [], {}
    for label, scen, broker, loss_label in THROUGHPUT_ROWS:
        e = sc.get(scen, {}).get(broker)
        if not e or not e.get("reps_ok"):
            continue
        lost = "–"
        lr = losses.get(loss_label) if loss_label else None
        if lr and lr.get("check"):
            subs = {("online" if x["online"] else "offline"): x
                    for x in lr["check"].get("subscribers", [])}
            lost = (f"{cnt(subs.get('online', {}).get('lost'))} / "
                    f"{cnt(subs.get('offline', {}).get('lost'))} of "
                    f"{cnt(lr['check'].get('acked'))}")
        rr = e.get("recv_rate")
        data[label] = {"scenario": scen, "broker": broker, "recv_rate": rr,
                       "vs_mosquitto_durable": ratio(rr, base_mosq),
                       "vs_tern_memory": ratio(rr, base_tern_mem), "lost_on_kill": lost,
                       **{k: e.get(k) for k in ("lat_p50", "lat_p99", "ack_p50", "ack_p99",
                                                "broker_cores", "bench_cores",
                                                "broker_peak_rss_mib", "store_mib", "lost",
                                                "duplicates", "reps_ok", "reps")}}
        rows.append([label, f"{e.get('reps_ok')}/{e.get('reps')}", si(rr, "/s"),
                     ratio_s(ratio(rr, base_mosq)), ratio_s(ratio(rr, base_tern_mem)),
                     f"{us(e.get('lat_p50'))} / {us(e.get('lat_p99'))}",
                     f"{us(e.get('ack_p50'))} / {us(e.get('ack_p99'))}",
                     f"{cnt(e.get('lost'))}/{cnt(e.get('duplicates'))}",
                     fixed(e.get("broker_cores"), 2), fixed(e.get("bench_cores"), 2),
                     fixed(e.get("broker_peak_rss_mib")), lost])
    L.append("### Durable QoS 1 fan-in (`durable-fan-in*`, limits off)")
    L.append("")
    L.append("10 publishers (MQTT 5, QoS 1, 64 B, window 64, as fast as PUBACKs return) → 1 "
             "persistent subscriber on `bench/durable/+` (Clean Start 0, Session Expiry 3600 s), "
             "so every message is recorded for its session; medians of the repetitions. "
             "\"lost on kill -9\": the loss phase below (its own clients and load).")
    L.append("")
    L.append(md_table(["broker", "ok", "recv/s", "vs Mosquitto durable", "vs Tern memory",
                       "end-to-end p50 / p99", "publish→PUBACK p50 / p99", "lost/dup",
                       "broker cores", "tern-bench cores", "peak RSS MiB",
                       "lost on kill -9 (online / offline)"], rows, ["---"] + ["---:"] * 11))
    L.append("")
    return data


def loss_section(losses, L):
    if not losses:
        return
    L.append("### Acknowledged messages lost to `kill -9`")
    L.append("")
    L.append("4 publishers (MQTT 3.1.1, QoS 1, window 64, 64 B, numbered) → 2 persistent "
             "subscribers of `durable/loss/+` (Clean Session 0): one online acknowledging what "
             "it gets, one offline (its whole queue is in the broker). `kill -9` of the broker "
             "mid-run, restart on the same store, both subscribers reconnect. Lost = PUBACKed "
             "to a publisher and never delivered to the subscriber (before the kill or after "
             "the restart).")
    L.append("")
    rows = []
    for label, r in losses.items():
        c = r.get("check") or {}
        subs = {("online" if s["online"] else "offline"): s for s in c.get("subscribers", [])}
        on, off = subs.get("online", {}), subs.get("offline", {})
        rows.append([label, cnt(c.get("sent")), cnt(c.get("acked")),
                     f"{cnt(on.get('lost'))} / {cnt(off.get('lost'))}",
                     f"{cnt(on.get('duplicates'))} / {cnt(off.get('duplicates'))}",
                     f"{cnt(on.get('before_kill'))} + {cnt(on.get('after_restart'))}",
                     cnt(off.get("after_restart")),
                     f"{c.get('session_present', '–')}/2", secs(r.get("restart_s"))])
    L.append(md_table(["broker", "sent", "PUBACKed", "lost (online / offline)",
                       "duplicates (online / offline)", "online got (before + after)",
                       "offline got after restart", "sessions found", "restart → listening"],
                      rows, ["---"] + ["---:"] * 8))
    L.append("")


CASES = [("queue", "own topics"), ("fanout", "fan-out, one topic"), ("many", "many sessions")]
SHORT = {"queue": "own topics", "fanout": "fan-out", "many": "many sess."}  # chart labels
LONG = {"fan-in": "durable fan-in", "own topics": "own topics", "fan-out": "fan-out, one topic",
        "many sess.": "many sessions"}


def state_section(states, L):
    if not states:
        return {}
    L.append("### Offline queues, recovery and memory")
    L.append("")
    L.append("Persistent sessions (MQTT 3.1.1, Clean Session 0, QoS 1) created and left, then "
             "4 publishers fill their queues. RSS is the broker's VmRSS with every queue "
             "offline (2 s after the last PUBACK); fill = queued deliveries / publishing time; "
             "store = `du` of the store directory "
             "(Tern: `tern.db/`, Mosquitto: `mosquitto.db`); restart = from starting the "
             "process until the listener accepts a TCP connection (10 ms polls). A sample of "
             "the queues is drained after the SIGTERM restart to check them.")
    L.append("")
    rows, data = [], {}
    for case, what in CASES:
        for b in report.BROKERS:
            r = states.get((case, b))
            if not r:
                continue
            q = r["queued"]
            pub = r.get("publish_run") or {}
            dr = r.get("drain") or {}
            store = r.get("store_stopped_kib") or r.get("store_running_kib")
            per_msg = store * 1024 / q if store and q else None
            rss_per = ((r["rss_queued_kib"] - r["rss_empty_kib"]) * 1024 / q) if q else None
            check = "–"
            if dr:
                check = (f"{cnt(dr.get('unique'))}/{cnt(dr.get('expected'))}, "
                         f"{cnt(dr.get('duplicates'))} dup")
            fill_s = pub.get("seconds")
            cores = "–"
            if fill_s:
                cores = (f"{fixed(r.get('broker_cpu_fill_s', 0) / fill_s, 2)} / "
                         f"{fixed(pub.get('client_cpu_s', 0) / fill_s, 2)}")
            rows.append([f"{what}: {cnt(r['sessions'])} × {cnt(r['depth'])}", b,
                         f"{cnt(q)} ({cnt(r['bodies'])})",
                         si(q / fill_s if fill_s else None, "/s"), cores,
                         f"{fixed(mib(r['rss_empty_kib']))} → {fixed(mib(r['rss_queued_kib']))}",
                         fixed(rss_per, 0),
                         f"{fixed(mib(r.get('store_running_kib')))} / {fixed(mib(r.get('store_stopped_kib')))}",
                         fixed(per_msg, 0), secs(r.get("stop_s")), secs(r.get("listen_s")),
                         secs(r.get("crash_listen_s")) if b == "tern" else "(nothing kept)",
                         fixed(mib(r.get("rss_recovered_kib"))), check])
            data[f"{case}/{b}"] = {"rss_queued_kib": r["rss_queued_kib"],
                                   "rss_bytes_per_msg": rss_per, "store_bytes_per_msg": per_msg,
                                   "listen_s": r.get("listen_s"),
                                   "crash_listen_s": r.get("crash_listen_s")}
    L.append(md_table(["case (sessions × messages)", "broker", "queued (bodies)",
                       "fill (queued/s)", "fill cores broker / client", "RSS MiB empty → queued", "RSS B/queued msg",
                       "store MiB running / stopped", "store B/queued msg", "SIGTERM exit",
                       "restart → listening", "after kill -9", "RSS MiB recovered",
                       "drained sample"], rows, ["---", "---"] + ["---:"] * 12))
    L.append("")
    for case, what in CASES:
        t = states.get((case, "tern"))
        if t and t.get("recovered"):
            L.append(f"- {what}: Tern logged `{t['recovered']}` after the SIGTERM restart"
                     + (f", `{t['crash_recovered']}` after `kill -9`" if t.get("crash_recovered")
                        else "") + ".")
    L.append("")
    return data


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = argv[1]
    machine = report.read_kv(os.path.join(out, "machine.env"))
    tp = load(os.path.join(out, "throughput", "results.json"))
    losses = {}
    for p in sorted(glob.glob(os.path.join(out, "loss", "*", "result.json"))):
        r = load(p)
        if r:
            losses[r["label"]] = r
    states = {}
    for p in sorted(glob.glob(os.path.join(out, "state", "*", "result.json"))):
        r = load(p)
        if r:
            states[(r["case"], r["broker"])] = r

    L = ["## Durable state (`bench/durable.sh`)", ""]
    L.append(md_table(["", ""], [
        ["CPU", f"{machine.get('cpu_model', '?')}, {machine.get('cpus', '?')} CPUs shared by "
                "the broker and the load generator"],
        ["Disk", f"{machine.get('syncs_per_s', '?')} synchronous 4 KiB writes/s "
                 f"(`dd bs=4k count=2000 oflag=dsync`: {machine.get('dd', '?')})"],
        ["Mosquitto", f"{machine.get('mosquitto_version', '?')} (Debian), persistence true, "
                      "autosave_interval 1800 (its default)"],
        ["Tern", f"{machine.get('tern_rev', '?')}, threads {machine.get('tern_threads', '?')}"],
        ["Load average", f"{machine.get('loadavg_start', '?')} at start, "
                         f"{machine.get('loadavg_end', '?')} at end"],
        ["Runs", f"throughput: {machine.get('reps')} repetition(s)"
                 + (" (--quick)" if machine.get("quick") == "1" else "")],
    ], ["---", "---"]))
    L.append("")
    tdata = throughput_section(out, tp, losses, L)
    loss_section(losses, L)
    sdata = state_section(states, L)

    # Tern / Mosquitto, above 1 = Tern better.
    bars = []
    t = tdata.get("Tern, persistence_sync batch", {})
    m = tdata.get("Mosquitto, persistence true", {})
    if t or m:
        bars.append(("fan-in", [("receive rate", ratio(t.get("recv_rate"),
                                                              m.get("recv_rate")))]))
    for case, what in CASES:
        tt, mm = sdata.get(f"{case}/tern", {}), sdata.get(f"{case}/mosquitto", {})
        if tt and mm:
            bars.append((SHORT[case], [
                ("RSS queued", ratio(mm.get("rss_queued_kib"), tt.get("rss_queued_kib"))),
                ("store bytes", ratio(mm.get("store_bytes_per_msg"), tt.get("store_bytes_per_msg"))),
                ("restart", ratio(mm.get("listen_s"), tt.get("listen_s")))]))
    if bars:
        L.append("### Tern / Mosquitto (above 1 = Tern better)")
        L.append("")
        L.append(md_table(["", "metric", "ratio"],
                          [[LONG.get(g, g), name, ratio_s(r)] for g, bs in bars for name, r in bs
                           if r],
                          ["---", "---", "---:"]))
        L.append("")
        L.append("Throughput: tern / mosquitto; memory, store size and restart time: "
                 "mosquitto / tern.")
        L.append("")
        L.append("![Durable state, Tern / Mosquitto](img/durable-ratios.svg)")
        L.append("")
        with open(os.path.join(out, "durable-ratios.svg"), "w") as f:
            f.write(report.svg_ratio_chart(bars, "Durable state: Tern vs Mosquitto 2.0 "
                                                 "(persistence true)"))
    md = "\n".join(L)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(md + "\n")
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"machine": machine, "throughput": tdata, "loss": losses,
                   "state": {f"{c}/{b}": r for (c, b), r in states.items()}}, f, indent=2,
                  sort_keys=True, default=str)
    print(md)
    print(f"\nwritten: {out}/results.md, results.json"
          + (", durable-ratios.svg" if bars else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
