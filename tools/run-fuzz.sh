#!/usr/bin/env bash
# Builds the libFuzzer targets (the `fuzz` preset: clang 14, ASan + UBSan) and runs each one for
# a bounded time on a copy of its seed corpus. Exits non-zero on any crash, leak, timeout, OOM or
# UBSan report, naming the reproducer file.
#
#   bash tools/run-fuzz.sh [SECONDS]      # total fuzzing time, split across targets (default 60)
#
# Environment:
#   TERN_FUZZ_BUILD_DIR  build somewhere else than build/fuzz (configured with the fuzz preset)
#   TERN_FUZZ_TARGETS    space-separated subset of targets to run
#   TERN_FUZZ_JOBS       parallel build jobs (default: nproc)
#
# The working corpus lives in <build>/fuzz-corpus/<target>/ and grows across runs; the seeds in
# tests/fuzz/corpus/ are only read. Reproducers go to <build>/fuzz-artifacts/<target>/; replay
# one with `<build>/tests/fuzz/<target> <file>`.
set -euo pipefail

total="${1:-60}"
if ! [[ "$total" =~ ^[0-9]+$ ]] || [ "$total" -lt 1 ]; then
    echo "usage: $0 [SECONDS]" >&2
    exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
targets=(${TERN_FUZZ_TARGETS:-fuzz_decode fuzz_roundtrip fuzz_topic fuzz_config fuzz_websocket fuzz_proxy fuzz_password fuzz_acl fuzz_mosquitto_db fuzz_store_records fuzz_readiness})
jobs="${TERN_FUZZ_JOBS:-$(nproc)}"

# ---- build -------------------------------------------------------------------------------------
start=$(date +%s)
if [ -n "${TERN_FUZZ_BUILD_DIR:-}" ]; then
    build="$TERN_FUZZ_BUILD_DIR"
    cmake --preset fuzz -B "$build" >/dev/null
    cmake --build "$build" -j "$jobs" --target "${targets[@]}"
else
    build="$root/build/fuzz"
    cmake --preset fuzz >/dev/null
    # Only the fuzz targets (and tern::protocol): the rest of the tree is not needed here.
    cmake --build --preset fuzz -j "$jobs" --target "${targets[@]}"
fi
echo "run-fuzz: built ${#targets[@]} targets in $(($(date +%s) - start)) s ($build)"

# ---- run ---------------------------------------------------------------------------------------
per_target=$((total / ${#targets[@]}))
[ "$per_target" -ge 1 ] || per_target=1

max_len_for() {
    case "$1" in
    fuzz_topic) echo 512 ;;
    *) echo 4096 ;; # room for several packets with properties in one input
    esac
}

# UBSan is built with -fno-sanitize-recover=all; these make every report fatal and symbolized
# so libFuzzer writes the input that triggered it.
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}"

# The conformance vectors (tests/conformance/vectors/*.json, STYLE.md §8) seed the packet
# fuzzers too. A vector {"hex", "level", "role"} becomes one input with the matching selector
# byte (tests/fuzz/fuzz_common.hpp); any other hex string becomes inputs for levels 4 and 5.
seed_from_vectors() {
    local vectors="$root/tests/conformance/vectors"
    [ -d "$vectors" ] && command -v python3 >/dev/null 2>&1 || return 0
    python3 - "$vectors" "$1" <<'PY' || echo "run-fuzz: could not read conformance vectors" >&2
import hashlib, json, pathlib, re, sys
hexre = re.compile(r"^(?:[0-9a-fA-F]{2}[\s:]*)+$")
levels = {3: 0x00, 4: 0x01, 5: 0x02}
roles = {"any": 0x00, "server": 0x04, "client": 0x08}
def units(node):
    if isinstance(node, dict):
        h = node.get("hex")
        if isinstance(h, str) and hexre.match(h) and node.get("level") in levels:
            raw = bytes.fromhex(re.sub(r"[\s:]", "", h))
            yield bytes([levels[node["level"]] | roles.get(node.get("role"), 0)]) + raw
            return
        for v in node.values():
            yield from units(v)
    elif isinstance(node, list):
        for v in node:
            yield from units(v)
    elif isinstance(node, str) and len(node) >= 4 and hexre.match(node):
        raw = bytes.fromhex(re.sub(r"[\s:]", "", node))
        yield b"\x01" + raw
        yield b"\x02" + raw
out = pathlib.Path(sys.argv[2])
for f in sorted(pathlib.Path(sys.argv[1]).glob("*.json")):
    try:
        data = json.loads(f.read_text())
    except (OSError, ValueError):
        continue
    for unit in units(data):
        (out / ("vector-" + hashlib.sha1(unit).hexdigest())).write_bytes(unit)
PY
}

failed=0
for t in "${targets[@]}"; do
    exe="$build/tests/fuzz/$t"
    seeds="$root/tests/fuzz/corpus/$t"
    work="$build/fuzz-corpus/$t"
    artifacts="$build/fuzz-artifacts/$t"
    log="$build/fuzz-logs/$t.log"
    mkdir -p "$work" "$artifacts" "$(dirname "$log")"
    if [ -d "$seeds" ]; then
        cp -n "$seeds"/* "$work"/ 2>/dev/null || true
    fi
    case "$t" in
    fuzz_decode | fuzz_roundtrip | fuzz_config) seed_from_vectors "$work" ;; # the packet ones
    esac

    set +e
    "$exe" "$work" \
        -max_total_time="$per_target" \
        -max_len="$(max_len_for "$t")" \
        -timeout=10 \
        -rss_limit_mb=2048 \
        -artifact_prefix="$artifacts/" \
        -print_final_stats=1 \
        >"$log" 2>&1
    rc=$?
    set -e

    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    status_line=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status_line")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$status_line")
    corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$status_line")
    if [ "$rc" -eq 0 ]; then
        printf 'run-fuzz: %-15s OK    %4s s  %10s execs  %7s exec/s  cov %5s  ft %6s  corpus %5s\n' \
            "$t" "$per_target" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}"
    else
        failed=1
        repro=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        printf 'run-fuzz: %-15s FAIL  exit %s after %s execs\n' "$t" "$rc" "${execs:-?}"
        grep -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|FUZZ INVARIANT VIOLATED|SUMMARY:' "$log" | head -5 | sed 's/^/run-fuzz:     /'
        if [ -n "$repro" ]; then
            echo "run-fuzz:     reproducer: $repro"
            echo "run-fuzz:     hex: $(od -An -tx1 -v "$repro" | tr -d ' \n' | head -c 600)"
            echo "run-fuzz:     replay: $exe $repro"
        fi
        echo "run-fuzz:     full log: $log"
    fi
done

echo "run-fuzz: done in $(($(date +%s) - start)) s"
exit "$failed"
