#!/usr/bin/env python3
"""Draws a Google Benchmark JSON report as a horizontal bar chart (SVG, no dependencies).

    python3 tools/bench_chart.py REPORT.json OUT.svg [--title TEXT]

One bar per benchmark: nanoseconds per message (CPU time, from items_per_second), medians when
the report holds repetitions. Shorter is faster. Used by tools/run-bench.sh --svg.
"""
import argparse
import html
import json


def rows_of(report):
    benchmarks = report["benchmarks"]
    medians = [b for b in benchmarks if b.get("aggregate_name") == "median"]
    chosen = medians or [b for b in benchmarks if b.get("run_type") == "iteration"]
    rows = []
    for b in chosen:
        items = b.get("items_per_second")
        if items and not b.get("error_occurred"):
            rows.append((b["run_name"], 1e9 / items))
    return rows, bool(medians)


def svg(rows, title, subtitle):
    label_w, bar_w, value_w, row_h, top = 380, 420, 80, 22, 64
    width = label_w + bar_w + value_w + 20
    height = top + row_h * len(rows) + 36
    peak = max(v for _, v in rows) if rows else 1.0
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="22" font-size="15" font-weight="bold">{html.escape(title)}</text>',
        f'<text x="10" y="42" fill="#555">{html.escape(subtitle)}</text>',
    ]
    for i, (name, ns) in enumerate(rows):
        y = top + i * row_h
        length = max(1.0, bar_w * ns / peak)
        colour = "#3b7dd8" if "decode" in name else "#e08a2c"
        out.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">'
                   f'{html.escape(name)}</text>')
        out.append(f'<rect x="{label_w}" y="{y + 3}" width="{length:.1f}" height="{row_h - 6}" '
                   f'fill="{colour}"/>')
        out.append(f'<text x="{label_w + length + 6:.1f}" y="{y + 15}">{ns:.0f} ns</text>')
    legend_y = top + row_h * len(rows) + 20
    out.append(f'<rect x="{label_w}" y="{legend_y - 10}" width="12" height="12" fill="#3b7dd8"/>')
    out.append(f'<text x="{label_w + 18}" y="{legend_y}">decode</text>')
    out.append(f'<rect x="{label_w + 90}" y="{legend_y - 10}" width="12" height="12" '
               f'fill="#e08a2c"/>')
    out.append(f'<text x="{label_w + 108}" y="{legend_y}">encode</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report")
    parser.add_argument("out")
    parser.add_argument("--title", default="Codec cost per message (ns, CPU time; shorter is faster)")
    args = parser.parse_args()
    with open(args.report) as f:
        report = json.load(f)
    rows, are_medians = rows_of(report)
    ctx = report.get("context", {})
    subtitle = (f"{'median of repetitions' if are_medians else 'single run'}, "
                f"{ctx.get('num_cpus', '?')} CPUs x {ctx.get('mhz_per_cpu', '?')} MHz, "
                f"{ctx.get('date', '')}")
    with open(args.out, "w") as f:
        f.write(svg(rows, args.title, subtitle))


if __name__ == "__main__":
    main()
