#!/usr/bin/env bash
# bench/durable.sh: durable state, Tern (persistence true) and Mosquitto 2.0 (persistence true)
# side by side on this machine (see bench/COMPARE.md, "Durable state"). A measurement, not a
# test: nothing passes or fails on the numbers.
#
#   throughput  bench/compare.sh with the durable-fan-in* scenarios: durable QoS 1 fan-in to a
#               persistent subscriber, both brokers; Tern also with persistence_sync interval
#               100 and never, and in memory (persistence false)
#   loss        publishers number their messages and record which were PUBACKed; kill -9 of
#               the broker mid-run; restart on the same store; the persistent subscribers
#               reconnect and count acknowledged messages never delivered, and duplicates
#   state       offline queues of 1M messages: N sessions on their own topics, the fan-out case
#               (sessions on one topic), and 100k sessions: RSS with the queues offline, store
#               bytes per queued message, time from start until the listener accepts
#               (after SIGTERM, and for Tern after kill -9), a sample of queues drained
#
# Everything runs on 127.0.0.1, on free ports, with a fresh store per broker start under the
# output directory. Brokers and clients started here are stopped on exit, Ctrl-C included.
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLIENT_PY="$ROOT/bench/compare/durable_client.py"
REPORT_PY="$ROOT/bench/compare/durable_report.py"

PHASES="throughput,loss,state"
QUICK=0
OUT=""
TERN_BIN=""
MOSQUITTO_BIN="/usr/sbin/mosquitto"
BENCH_BIN=""
BROKERS="tern,mosquitto"
REPS=3
DURATION=""
TERN_THREADS=""
QUEUE_SESSIONS=10000 # own-topic and fan-out cases: sessions
QUEUE_DEPTH=100      # messages per session: 10k x 100 = 1M queued
MANY_SESSIONS=100000 # the recovery case: sessions ...
MANY_DEPTH=10        # ... x messages each = 1M queued
KILL_AFTER=3         # seconds of publishing before kill -9
LOSS_SYNCS="batch,interval 100,never"
DRAIN_SAMPLE=1000 # sessions whose queues are drained after the restart (0: none)
DRAIN_PARALLEL=1  # sessions reconnecting at once while draining (see bench/COMPARE.md)
CLIENT_PROTOCOL=4

usage() {
    cat <<EOF
Usage: bench/durable.sh [OPTION]...
Durable state, Tern vs Mosquitto 2.0 with persistence true: throughput, kill -9 loss,
recovery time, store size and memory with a million messages queued offline.

  --quick              a first look: 1 repetition, 5 s runs, 1k x 10 / 1k x 10 / 5k x 2
                       queued, loss with persistence_sync batch only
  --phases LIST        throughput, loss, state (default all three)
  --brokers LIST       tern,mosquitto (default), or one of them
  --reps N             repetitions of the throughput scenarios (default 3)
  --duration S         measured seconds of each throughput run (default: the scenarios' 10)
  --queue-sessions N   sessions of the own-topic and fan-out cases (default 10000)
  --queue-depth N      messages queued per session in those cases (default 100)
  --many-sessions N    sessions of the recovery case (default 100000)
  --many-depth N       messages queued per session there (default 10)
  --kill-after S       seconds of publishing before kill -9 in the loss phase (default 3)
  --loss-syncs LIST    Tern's persistence_sync values for the loss phase
                       (default "batch,interval 100,never")
  --drain-sample N     sessions drained after each restart to check the queues (default 1000)
  --drain-parallel N   sessions reconnecting at once while draining (default 1)
  --tern PATH          tern binary (default build/release/broker/tern)
  --mosquitto PATH     mosquitto binary (default /usr/sbin/mosquitto)
  --bench PATH         tern-bench (default build/release/bench/tern-bench)
  --tern-threads N     Tern worker threads (default: one per CPU)
  --out DIR            results directory (default build/bench-durable/<UTC timestamp>)
  -h, --help           this help
EOF
}

die() {
    printf 'durable.sh: %s\n' "$*" >&2
    exit 2
}

while (($#)); do
    case "$1" in
    --quick) QUICK=1; shift ;;
    --phases) PHASES=${2:?}; shift 2 ;;
    --brokers) BROKERS=${2:?}; shift 2 ;;
    --reps) REPS=${2:?}; shift 2 ;;
    --duration) DURATION=${2:?}; shift 2 ;;
    --queue-sessions) QUEUE_SESSIONS=${2:?}; shift 2 ;;
    --queue-depth) QUEUE_DEPTH=${2:?}; shift 2 ;;
    --many-sessions) MANY_SESSIONS=${2:?}; shift 2 ;;
    --many-depth) MANY_DEPTH=${2:?}; shift 2 ;;
    --kill-after) KILL_AFTER=${2:?}; shift 2 ;;
    --loss-syncs) LOSS_SYNCS=${2:?}; shift 2 ;;
    --drain-sample) DRAIN_SAMPLE=${2:?}; shift 2 ;;
    --drain-parallel) DRAIN_PARALLEL=${2:?}; shift 2 ;;
    --tern) TERN_BIN=${2:?}; shift 2 ;;
    --mosquitto) MOSQUITTO_BIN=${2:?}; shift 2 ;;
    --bench) BENCH_BIN=${2:?}; shift 2 ;;
    --tern-threads) TERN_THREADS=${2:?}; shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
    esac
done

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
for v in REPS QUEUE_SESSIONS QUEUE_DEPTH MANY_SESSIONS MANY_DEPTH KILL_AFTER DRAIN_SAMPLE DRAIN_PARALLEL; do
    is_uint "${!v}" || die "--$(tr '[:upper:]_' '[:lower:]-' <<<"$v") wants an integer"
done
((REPS >= 1 && DRAIN_PARALLEL >= 1)) || die "--reps and --drain-parallel want at least 1"
[[ -z $TERN_THREADS ]] || is_uint "$TERN_THREADS" || die "--tern-threads wants an integer"
if ((QUICK)); then
    REPS=1
    DURATION=${DURATION:-5}
    QUEUE_SESSIONS=1000
    QUEUE_DEPTH=10
    MANY_SESSIONS=5000
    MANY_DEPTH=2
    KILL_AFTER=2
    LOSS_SYNCS="batch"
    DRAIN_SAMPLE=200
fi
IFS=, read -r -a PHASE_LIST <<<"$PHASES"
IFS=, read -r -a BROKER_LIST <<<"$BROKERS"
IFS=, read -r -a SYNC_LIST <<<"$LOSS_SYNCS"
for p in "${PHASE_LIST[@]}"; do
    [[ $p == throughput || $p == loss || $p == state ]] || die "unknown phase '$p'"
done
for b in "${BROKER_LIST[@]}"; do
    [[ $b == tern || $b == mosquitto ]] || die "unknown broker '$b' (tern, mosquitto)"
done
has_phase() { [[ ,$PHASES, == *",$1,"* ]]; }
has_broker() { [[ ,$BROKERS, == *",$1,"* ]]; }

TERN_BIN=${TERN_BIN:-$ROOT/build/release/broker/tern}
if [[ -z $BENCH_BIN ]]; then
    for c in "$ROOT/build/release/bench/tern-bench" "$ROOT/build/release/bench/tern_bench/tern-bench"; do
        if [[ -x $c ]]; then BENCH_BIN=$c; break; fi
    done
fi
if has_broker tern; then [[ -x $TERN_BIN ]] || die "tern not found: $TERN_BIN (--tern PATH)"; fi
if has_broker mosquitto; then [[ -x $MOSQUITTO_BIN ]] || die "mosquitto not found: $MOSQUITTO_BIN"; fi
if has_phase throughput; then
    [[ -n $BENCH_BIN && -x $BENCH_BIN ]] || die "tern-bench not found (--bench PATH)"
fi
command -v python3 >/dev/null || die "python3 is needed"

STAMP=$(date -u +%Y%m%d-%H%M%S)
OUT=$(realpath -m -- "${OUT:-$ROOT/build/bench-durable/$STAMP}")
mkdir -p "$OUT"

# ---------------------------------------------------------------------------------------------
# Process bookkeeping: everything started here leads its own process group (setsid) and is
# stopped on exit; nothing else is touched.
# ---------------------------------------------------------------------------------------------
declare -a OWNED_PIDS=()
signal_owned() { kill "-$1" -- "-$2" 2>/dev/null || kill "-$1" "$2" 2>/dev/null || true; }
forget_pid() {
    local keep=() p
    for p in "${OWNED_PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    OWNED_PIDS=("${keep[@]}")
}
cleanup() {
    local pid
    for pid in "${OWNED_PIDS[@]}"; do signal_owned TERM "$pid"; done
    sleep 0.2
    for pid in "${OWNED_PIDS[@]}"; do signal_owned KILL "$pid"; done
}
trap cleanup EXIT
trap 'echo; echo "durable.sh: interrupted" >&2; exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
now_s() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.3f", b - a}'; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
cpu_s() { # utime + stime of PID in seconds
    local stat
    read -r stat <"/proc/$1/stat" 2>/dev/null || { echo 0; return; }
    stat=${stat##*) }
    awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($12 + $13) / t}' <<<"$stat"
}
du_kib() { if [[ -e $1 ]]; then du -sk -- "$1" | cut -f1; else echo 0; fi; }

# ---------------------------------------------------------------------------------------------
# Machine, and how fast this disk syncs
# ---------------------------------------------------------------------------------------------
NPROC=$(nproc)
CPU_MODEL=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)
MEM_TOTAL_KIB=$(awk '/^MemTotal/ {print $2}' /proc/meminfo)
MOSQUITTO_VERSION=$("$MOSQUITTO_BIN" -h 2>&1 | awk '/^mosquitto version/ {print $3; exit}' || true)
TERN_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -z $(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null) ]] ||
    TERN_REV="$TERN_REV (with uncommitted changes)"
# 2000 synchronous 4 KiB writes (dd oflag=dsync) on the filesystem the stores live on.
dd_out=$(dd if=/dev/zero of="$OUT/dsync.probe" bs=4k count=2000 oflag=dsync 2>&1 | tail -1)
rm -f -- "$OUT/dsync.probe"
DD_SECONDS=$(awk '{for (i = 1; i <= NF; i++) if ($(i + 1) == "s,") {print $i; exit}}' <<<"$dd_out")
SYNCS_PER_S=$(awk -v s="${DD_SECONDS:-0}" 'BEGIN {if (s > 0) printf "%.0f", 2000 / s; else print 0}')
{
    echo "started_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "cpu_model=$CPU_MODEL"
    echo "cpus=$NPROC"
    echo "mem_total_kib=$MEM_TOTAL_KIB"
    echo "kernel=$(uname -r)"
    echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "mosquitto_version=$MOSQUITTO_VERSION"
    echo "tern_rev=$TERN_REV"
    echo "tern_bin=$TERN_BIN"
    echo "tern_threads=${TERN_THREADS:-default ($NPROC)}"
    echo "bench_bin=$BENCH_BIN"
    echo "dd=$dd_out"
    echo "syncs_per_s=$SYNCS_PER_S"
    echo "quick=$QUICK"
    echo "phases=$PHASES"
    echo "brokers=$BROKERS"
    echo "reps=$REPS"
    echo "queue_sessions=$QUEUE_SESSIONS"
    echo "queue_depth=$QUEUE_DEPTH"
    echo "many_sessions=$MANY_SESSIONS"
    echo "many_depth=$MANY_DEPTH"
    echo "kill_after=$KILL_AFTER"
    echo "drain_sample=$DRAIN_SAMPLE"
    echo "drain_parallel=$DRAIN_PARALLEL"
    echo "client_protocol=$CLIENT_PROTOCOL"
} >"$OUT/machine.env"

echo "== durable state, Tern vs Mosquitto: $OUT"
echo "   machine : $CPU_MODEL, $NPROC CPUs (broker and clients share them), $((MEM_TOTAL_KIB / 1024)) MiB"
echo "   disk    : $SYNCS_PER_S synchronous 4 KiB writes/s (dd oflag=dsync: $dd_out)"
echo "   brokers : mosquitto $MOSQUITTO_VERSION ($MOSQUITTO_BIN); tern $TERN_REV ($TERN_BIN)"
echo "   phases  : $PHASES$( ((QUICK)) && echo " (--quick)")"

# ---------------------------------------------------------------------------------------------
# Brokers for the loss and state phases
# ---------------------------------------------------------------------------------------------
# Both: persistence true in DIR, max_inflight_messages 20 (the default), max_queued_messages 0
# (no limit: a queue limit would drop messages that were acknowledged, and the loss phase would
# count them), Mosquitto's default autosave_interval (1800 s).
write_conf() { # BROKER SYNC PORT DIR FILE
    local broker=$1 sync=$2 port=$3 dir=$4 file=$5
    {
        echo "# generated by bench/durable.sh"
        echo "listener $port 127.0.0.1"
        echo "allow_anonymous true"
        echo "persistence true"
        echo "persistence_location $dir/"
        [[ $broker != tern || -z $sync ]] || echo "persistence_sync $sync"
        echo "max_inflight_messages 20"
        echo "max_queued_messages 0"
        echo "sys_interval 0"
        echo "connection_messages false"
        echo "log_dest stderr"
        echo "log_type error"
        echo "log_type warning"
        echo "log_type notice"
        # Tern logs "listening on" and "recovered N sessions" at information level.
        [[ $broker != tern ]] || echo "log_type information"
        [[ $broker != mosquitto ]] || echo "set_tcp_nodelay true"
    } >"$file"
}

BROKER_PID=""
BROKER_PORT=""
LISTEN_S=""
# start_broker BROKER SYNC DIR LOG: on a new port (the store DIR is kept); sets BROKER_PID,
# BROKER_PORT and LISTEN_S, the seconds from the start until the port accepts (10 ms polls).
start_broker() {
    local broker=$1 sync=$2 dir=$3 log=$4 cmd=() t0 i
    mkdir -p -- "$dir"
    chmod 777 -- "$dir" # Mosquitto, started as root, writes it as user mosquitto
    for _ in 1 2 3; do
        BROKER_PORT=$(free_port)
        write_conf "$broker" "$sync" "$BROKER_PORT" "$dir" "$log.conf"
        case $broker in
        tern)
            cmd=("$TERN_BIN" -c "$log.conf")
            [[ -z $TERN_THREADS ]] || cmd+=(--threads "$TERN_THREADS")
            ;;
        mosquitto) cmd=("$MOSQUITTO_BIN" -c "$log.conf") ;;
        esac
        t0=$EPOCHREALTIME
        setsid "${cmd[@]}" >>"$log" 2>&1 </dev/null &
        BROKER_PID=$!
        OWNED_PIDS+=("$BROKER_PID")
        # Up to 10 minutes: recovering a large store takes a while.
        for ((i = 0; i < 60000; i++)); do
            kill -0 "$BROKER_PID" 2>/dev/null || break
            if port_open "$BROKER_PORT"; then
                LISTEN_S=$(elapsed "$t0")
                return 0
            fi
            sleep 0.01
        done
        stop_broker KILL >/dev/null
        grep -qiE 'address already in use' "$log" || break
    done
    echo "  $broker did not start; log $log:" >&2
    tail -n 5 "$log" | sed 's/^/    /' >&2
    return 1
}

# stop_broker [TERM|KILL]: prints the seconds the broker took to exit. TERM waits up to 10
# minutes (Mosquitto writes its whole database at exit), then KILL.
stop_broker() {
    local sig=${1:-TERM} t0 i
    [[ -n $BROKER_PID ]] || { echo 0; return 0; }
    t0=$EPOCHREALTIME
    signal_owned "$sig" "$BROKER_PID"
    # Reaped by wait right away after KILL: bash then reports no "Killed" job line.
    [[ $sig != KILL ]] || wait "$BROKER_PID" 2>/dev/null || true
    for ((i = 0; i < 6000; i++)); do
        kill -0 "$BROKER_PID" 2>/dev/null || break
        sleep 0.1
    done
    signal_owned KILL "$BROKER_PID"
    wait "$BROKER_PID" 2>/dev/null || true
    forget_pid "$BROKER_PID"
    BROKER_PID=""
    elapsed "$t0"
}

client() { # PORT ARGS...: the Python client, its JSON on stdout (progress on stderr)
    local port=$1
    shift
    python3 "$CLIENT_PY" --port "$port" --protocol "$CLIENT_PROTOCOL" "$@"
}

json_field() { # JSON KEY -> value (empty when absent)
    python3 -c 'import json, sys; d = json.loads(sys.argv[1] or "{}"); v = d.get(sys.argv[2]); print("" if v is None else v)' "$1" "$2" 2>/dev/null || true
}

T_START=$EPOCHREALTIME
phase_header() { echo; echo "== $1 (elapsed $(printf '%.0f' "$(elapsed "$T_START")") s)"; }

# ---------------------------------------------------------------------------------------------
# Phase 1: throughput, through compare.sh
# ---------------------------------------------------------------------------------------------
if has_phase throughput; then
    phase_header "throughput: durable QoS 1 fan-in (bench/compare.sh)"
    scenarios="durable-fan-in,durable-fan-in-memory,durable-fan-in-interval,durable-fan-in-never"
    args=(--out "$OUT/throughput" --reps "$REPS" --brokers "$BROKERS" --bench "$BENCH_BIN"
        --tern "$TERN_BIN" --mosquitto "$MOSQUITTO_BIN" --max-inflight 0 --max-queued 0
        --scenarios "$scenarios")
    ((QUICK)) && args+=(--quick)
    [[ -z $DURATION ]] || args+=(--duration "$DURATION")
    [[ -z $TERN_THREADS ]] || args+=(--tern-threads "$TERN_THREADS")
    bash "$ROOT/bench/compare.sh" "${args[@]}" | sed -u -n '/^\[/,/^== done/p' ||
        echo "  compare.sh failed (see $OUT/throughput)"
fi

# ---------------------------------------------------------------------------------------------
# Phase 2: acknowledged messages lost to kill -9
# ---------------------------------------------------------------------------------------------
loss_run() { # BROKER SYNC LABEL
    local broker=$1 sync=$2 label=$3 d="$OUT/loss/$3" cpid i out lr kill_at
    mkdir -p "$d"
    echo "-- $label: 1 online + 1 offline persistent subscriber, 4 publishers; kill -9 after ${KILL_AFTER} s"
    start_broker "$broker" "$sync" "$d/store" "$d/broker.log" || return 1
    setsid python3 "$CLIENT_PY" --port "$BROKER_PORT" --protocol "$CLIENT_PROTOCOL" --seconds 60 \
        loss-run --publishers 4 --online 1 --offline 1 --state "$d/state.json" \
        --started-file "$d/started" >"$d/run.json" 2> >(tee "$d/run.log" >&2) </dev/null &
    cpid=$!
    OWNED_PIDS+=("$cpid")
    for ((i = 0; i < 300; i++)); do
        [[ -e $d/started ]] && break
        kill -0 "$cpid" 2>/dev/null || break
        sleep 0.1
    done
    if [[ ! -e $d/started ]]; then
        echo "  the publishers did not start (see $d/run.log)"
        stop_broker >/dev/null
        return 1
    fi
    sleep "$KILL_AFTER"
    kill_at=$(cpu_s "$BROKER_PID")
    stop_broker KILL >/dev/null
    for ((i = 0; i < 300; i++)); do
        kill -0 "$cpid" 2>/dev/null || break
        sleep 0.1
    done
    signal_owned KILL "$cpid"
    wait "$cpid" 2>/dev/null || true
    forget_pid "$cpid"
    lr=$(cat "$d/run.json" 2>/dev/null || true)
    start_broker "$broker" "$sync" "$d/store" "$d/broker.log" || return 1
    local restart_s=$LISTEN_S
    out=$(client "$BROKER_PORT" --seconds 300 loss-check --state "$d/state.json" \
        --parallel "$DRAIN_PARALLEL") || true
    stop_broker >/dev/null
    python3 - "$d/result.json" "$broker" "$sync" "$label" "$restart_s" "$kill_at" "$lr" "$out" <<'EOF'
import json, sys
path, broker, sync, label, restart_s, cpu, run, check = sys.argv[1:9]
doc = {"broker": broker, "sync": sync, "label": label, "restart_s": float(restart_s),
       "broker_cpu_s_at_kill": float(cpu), "run": json.loads(run or "{}"),
       "check": json.loads(check or "{}")}
json.dump(doc, open(path, "w"), indent=2, sort_keys=True)
c = doc["check"]
print(f"  acknowledged {c.get('acked', '?')} of {c.get('sent', '?')} sent before the kill; "
      f"lost {c.get('lost', '?')}, duplicates {c.get('duplicates', '?')}; "
      f"restart {float(restart_s):.2f} s; sessions found {c.get('session_present', '?')}/2")
for s in c.get("subscribers", []):
    print(f"    {s['client']:<18} lost {s['lost']:>7}  duplicates {s['duplicates']:>5}  "
          f"before the kill {s['before_kill']:>7}  after the restart {s['after_restart']:>7}")
EOF
    rm -rf -- "$d/store"
}

if has_phase loss; then
    phase_header "loss: acknowledged messages lost to kill -9"
    if has_broker tern; then
        for s in "${SYNC_LIST[@]}"; do loss_run tern "$s" "tern-${s// /-}" || true; done
    fi
    if has_broker mosquitto; then loss_run mosquitto "" mosquitto || true; fi
fi

# ---------------------------------------------------------------------------------------------
# Phase 3: a million messages queued offline
# ---------------------------------------------------------------------------------------------
# state_case CASE BROKER SESSIONS DEPTH TOPIC: SESSIONS offline persistent sessions, DEPTH
# messages each; TOPIC "own" (durable/q/<i>) or "one" (all on durable/fan: DEPTH bodies).
state_case() {
    local case=$1 broker=$2 n=$3 depth=$4 topic=$5 d="$OUT/state/$1.$2"
    local sess pub total topic_arg topics rss0 rss1 hwm1 cpu0 cpu1 store_run store_stop stop_s
    local crash_s="" crash_rss="" listen_s rss2 drain="" recovered crash_recovered="" sample
    mkdir -p "$d"
    rm -rf -- "$d/store"
    if [[ $topic == own ]]; then
        total=$((n * depth)) topic_arg='durable/q/{i}' topics=$n
    else
        total=$depth topic_arg='durable/fan' topics=1
    fi
    echo "-- $case, $broker: $n sessions x $depth messages = $((n * depth)) queued deliveries ($total bodies)"
    start_broker "$broker" "" "$d/store" "$d/broker.log" || return 1
    rss0=$(rss_kib "$BROKER_PID")
    sess=$(client "$BROKER_PORT" --label "filling $n sessions" sessions --count "$n" \
        --topic "$topic_arg" --parallel 200) || true
    cpu0=$(cpu_s "$BROKER_PID")
    pub=$(client "$BROKER_PORT" --label "publishing $total messages" --seconds 900 publish \
        --count "$total" --topics "$topics" --topic "${topic_arg//\{i\}/\{t\}}" --publishers 4) || true
    cpu1=$(cpu_s "$BROKER_PID")
    sleep 2 # let the store settle (memtable flush, compaction start) before sampling
    rss1=$(rss_kib "$BROKER_PID")
    hwm1=$(hwm_kib "$BROKER_PID")
    store_run=$(du_kib "$d/store")
    echo "  broker RSS $((rss0 / 1024)) MiB empty -> $((rss1 / 1024)) MiB with the queues offline; store $((store_run / 1024)) MiB"
    if [[ $broker == tern ]]; then
        # Recovery after a crash: the write-ahead log is replayed.
        stop_broker KILL >/dev/null
        : >"$d/broker.crash.log"
        start_broker "$broker" "" "$d/store" "$d/broker.crash.log" || return 1
        crash_s=$LISTEN_S
        crash_rss=$(rss_kib "$BROKER_PID")
        crash_recovered=$(grep -o 'recovered [0-9]* sessions, [0-9]* queued' "$d/broker.crash.log" | tail -1 || true)
        echo "  kill -9, restart: listening after $crash_s s ($crash_recovered), RSS $((crash_rss / 1024)) MiB"
    fi
    stop_s=$(stop_broker TERM)
    store_stop=$(du_kib "$d/store")
    : >"$d/broker.restart.log"
    start_broker "$broker" "" "$d/store" "$d/broker.restart.log" || return 1
    listen_s=$LISTEN_S
    sleep 1
    rss2=$(rss_kib "$BROKER_PID")
    recovered=$(grep -o 'recovered [0-9]* sessions, [0-9]* queued' "$d/broker.restart.log" | tail -1 || true)
    echo "  SIGTERM (exit took $stop_s s, store $((store_stop / 1024)) MiB), restart: listening after $listen_s s${recovered:+ ($recovered)}, RSS $((rss2 / 1024)) MiB"
    sample=$((DRAIN_SAMPLE < n ? DRAIN_SAMPLE : n))
    if ((sample > 0)); then
        drain=$(client "$BROKER_PORT" --label "draining $sample of the $n queues" --seconds 300 \
            drain --count "$sample" --expect "$depth" --parallel "$DRAIN_PARALLEL" --idle 3) || true
    fi
    stop_broker >/dev/null
    printf '%s\n' "$sess" >"$d/sessions.json"
    printf '%s\n' "$pub" >"$d/publish.json"
    printf '%s\n' "$drain" >"$d/drain.json"
    python3 - "$d" "$case" "$broker" "$n" "$depth" "$total" "$rss0" "$rss1" "$hwm1" \
        "$cpu0" "$cpu1" "$store_run" "$store_stop" "$stop_s" "$listen_s" "$rss2" "$recovered" \
        "${crash_s:-nan}" "${crash_rss:-0}" "$crash_recovered" <<'EOF'
import json, os, sys
(d, case, broker, n, depth, total, rss0, rss1, hwm1, cpu0, cpu1, store_run, store_stop, stop_s,
 listen_s, rss2, recovered, crash_s, crash_rss, crash_recovered) = sys.argv[1:21]


def j(name):
    try:
        with open(os.path.join(d, name)) as f:
            return json.loads(f.read().strip() or "{}")
    except (OSError, ValueError):
        return {}


doc = {"case": case, "broker": broker, "sessions": int(n), "depth": int(depth),
       "queued": int(n) * int(depth), "bodies": int(total),
       "sessions_run": j("sessions.json"), "publish_run": j("publish.json"),
       "drain": j("drain.json"), "rss_empty_kib": int(rss0), "rss_queued_kib": int(rss1),
       "hwm_kib": int(hwm1), "broker_cpu_fill_s": round(float(cpu1) - float(cpu0), 2),
       "store_running_kib": int(store_run), "store_stopped_kib": int(store_stop),
       "stop_s": float(stop_s), "listen_s": float(listen_s), "rss_recovered_kib": int(rss2),
       "recovered": recovered, "crash_listen_s": None if crash_s == "nan" else float(crash_s),
       "crash_rss_kib": int(crash_rss), "crash_recovered": crash_recovered}
with open(os.path.join(d, "result.json"), "w") as f:
    json.dump(doc, f, indent=2, sort_keys=True)
dr = doc["drain"]
if dr:
    print(f"  drained {dr.get('sessions')} sessions: {dr.get('unique')} of {dr.get('expected')} "
          f"messages, {dr.get('duplicates')} duplicates, {dr.get('missing')} missing, "
          f"{dr.get('session_present')} sessions present ({dr.get('per_second', 0) / 1000:.1f}k msg/s)")
EOF
    rm -rf -- "$d/store"
}

if has_phase state; then
    phase_header "state: offline queues on disk, recovery, memory"
    for b in "${BROKER_LIST[@]}"; do
        state_case queue "$b" "$QUEUE_SESSIONS" "$QUEUE_DEPTH" own || true
        state_case fanout "$b" "$QUEUE_SESSIONS" "$QUEUE_DEPTH" one || true
        state_case many "$b" "$MANY_SESSIONS" "$MANY_DEPTH" own || true
    done
fi

echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.env"
echo
echo "== done in $(printf '%.0f' "$(elapsed "$T_START")") s"
python3 "$REPORT_PY" "$OUT"
