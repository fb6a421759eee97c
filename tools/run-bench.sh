#!/usr/bin/env bash
# Builds the release preset and runs the codec micro-benchmarks (bench/protocol_bench), then
# prints a table: ns per operation, messages/s and bytes/s. Informational only: nothing passes
# or fails on time.
#
#   bash tools/run-bench.sh [--json FILE] [--filter REGEX] [--min-time SECONDS]
#                          [--repetitions N] [--no-build]
#
#   --json FILE        also write Google Benchmark's JSON report to FILE
#   --filter REGEX     run only matching benchmarks (--benchmark_filter)
#   --min-time SECONDS minimum time per benchmark (default 0.5)
#   --repetitions N    run each benchmark N times and report the median (noisy machines)
#   --no-build         run the protocol_bench already in the build directory
#   --svg FILE         also draw the results as a bar chart (tools/bench_chart.py)
#   --instructions     instead: instructions per operation under callgrind (repeatable on a
#                      noisy machine, unlike time), from bench/protocol_icount
#
# Environment: TERN_BENCH_BUILD_DIR builds somewhere else than build/release (configured with
# the release preset); TERN_BENCH_JOBS sets build parallelism (default: nproc).
set -euo pipefail

json_out=""
svg_out=""
instructions=0
filter=""
min_time="0.5"
build_it=1
repetitions=1
while [ $# -gt 0 ]; do
    case "$1" in
    --json) json_out="${2:?--json needs a file}"; shift 2 ;;
    --filter) filter="${2:?--filter needs a regex}"; shift 2 ;;
    --min-time) min_time="${2:?--min-time needs seconds}"; shift 2 ;;
    --repetitions) repetitions="${2:?--repetitions needs a count}"; shift 2 ;;
    --no-build) build_it=0; shift ;;
    --svg) svg_out="${2:?--svg needs a file}"; shift 2 ;;
    --instructions) instructions=1; shift ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "run-bench: unknown argument $1" >&2; exit 2 ;;
    esac
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
jobs="${TERN_BENCH_JOBS:-$(nproc)}"
build="${TERN_BENCH_BUILD_DIR:-$root/build/release}"
if [ "$build_it" = 0 ]; then
    : # use what is there
elif [ -n "${TERN_BENCH_BUILD_DIR:-}" ]; then
    cmake --preset release -B "$build" -DTERN_BUILD_BENCH=ON >/dev/null
    cmake --build "$build" -j "$jobs" --target protocol_bench
else
    cmake --preset release -DTERN_BUILD_BENCH=ON >/dev/null
    cmake --build --preset release -j "$jobs" --target protocol_bench
fi

if [ "$instructions" = 1 ]; then
    [ "$build_it" = 0 ] || cmake --build "$build" -j "$jobs" --target protocol_icount
    command -v valgrind >/dev/null 2>&1 || { echo "run-bench: valgrind is not installed" >&2; exit 1; }
    # Run each operation N and 2N times: the difference divided by N is the cost of one
    # operation, with start-up and set-up cancelled out.
    n=20000
    echo "| operation | instructions/op |"
    echo "|---|--:|"
    echo "run-bench: counting instructions under callgrind (about 15 s)..." >&2
    for op in stream_decode_publish_v311_16B stream_decode_publish_v5_16B \
              stream_decode_publish_v5_4KiB stream_decode_connect_v5 \
              encode_publish_v311_16B encode_publish_v5_16B encode_connect_v5; do
        counts=()
        for count in "$n" "$((2 * n))"; do
            counts+=("$(valgrind --tool=callgrind --callgrind-out-file=/dev/null \
                "$build/bench/protocol_icount" "$op" "$count" 2>&1 >/dev/null |
                awk '/Collected/ { print $NF }')")
        done
        echo "| $op | $(( (counts[1] - counts[0]) / n )) |"
    done
    exit 0
fi

# Keep the JSON report even when --json was not given: the table is printed from it.
report="${json_out:-$build/protocol_bench.json}"
mkdir -p "$(dirname "$report")"
args=(--benchmark_min_time="$min_time" --benchmark_out="$report" --benchmark_out_format=json
      --benchmark_format=console)
[ -z "$filter" ] || args+=(--benchmark_filter="$filter")
[ "$repetitions" -le 1 ] ||
    args+=(--benchmark_repetitions="$repetitions" --benchmark_report_aggregates_only=true)
# Google Benchmark's own lines show progress while it runs; the summary table follows.
"$build/bench/protocol_bench" "${args[@]}" 2>&1 | tee "$build/protocol_bench.txt" >&2 || {
    cat "$build/protocol_bench.txt" >&2
    echo "run-bench: protocol_bench failed" >&2
    exit 1
}

if command -v python3 >/dev/null 2>&1; then
    python3 - "$report" <<'PY'
import json, sys

def si(v, unit):
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= scale:
            return f"{v / scale:.2f} {prefix}{unit}"
    return f"{v:.0f} {unit}"

def binary(v):
    for scale, prefix in ((2**30, "Gi"), (2**20, "Mi"), (2**10, "Ki")):
        if v >= scale:
            return f"{v / scale:.2f} {prefix}B/s"
    return f"{v:.0f} B/s"

data = json.load(open(sys.argv[1]))
ctx = data["context"]
rows = [("benchmark", "ns/op", "messages/s", "bytes/s")]
# With --repetitions only aggregates are reported: show the medians.
medians = [b for b in data["benchmarks"] if b.get("aggregate_name") == "median"]
stat = f"median of {medians[0]['repetitions']} runs" if medians else "single run"
print(f"# protocol_bench ({stat}), {ctx.get('num_cpus')} CPUs x {ctx.get('mhz_per_cpu')} MHz, "
      f"load {' '.join(f'{x:.2f}' for x in ctx.get('load_avg', []))}, {ctx.get('date')}")
for b in medians or data["benchmarks"]:
    if not medians and b.get("run_type") != "iteration":
        continue
    if b.get("error_occurred"):
        rows.append((b["run_name"], "ERROR", b.get("error_message", ""), ""))
        continue
    # ns per message (CPU time): a stream_decode iteration decodes 1000 packets.
    items = b.get("items_per_second")
    ns = 1e9 / items if items else None
    rows.append((b["run_name"], f"{ns:.1f}" if ns is not None else "?",
                 si(items, "msg/s") if items else "", binary(b["bytes_per_second"])
                 if b.get("bytes_per_second") else ""))
w = [max(len(r[i]) for r in rows) for i in range(4)]
for n, r in enumerate(rows):
    print(f"| {r[0]:<{w[0]}} | {r[1]:>{w[1]}} | {r[2]:>{w[2]}} | {r[3]:>{w[3]}} |")
    if n == 0:
        print(f"|{'-' * (w[0] + 2)}|{'-' * (w[1] + 1)}:|{'-' * (w[2] + 1)}:|{'-' * (w[3] + 1)}:|")
PY
else
    cat "$build/protocol_bench.txt"
fi
[ -z "$json_out" ] || echo "run-bench: JSON report written to $json_out"
if [ -n "$svg_out" ]; then
    python3 "$root/tools/bench_chart.py" "$report" "$svg_out"
    echo "run-bench: chart written to $svg_out"
fi
