#!/usr/bin/env bash
# bench/compare.sh: Tern and Mosquitto side by side, driven by tern-bench (see bench/COMPARE.md).
#
# Starts each broker fresh for every run on a free 127.0.0.1 port with the same limits, runs the
# scenarios against both (alternating which goes first), repeats, and hands the --json result
# documents plus its own broker samples (RSS, fds, CPU) to bench/compare/report.py for the
# median table, the Tern/Mosquitto ratios, a markdown table and an SVG chart.
set -euo pipefail
export LC_ALL=C # one decimal mark for EPOCHREALTIME, awk and the tools

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPORT_PY="$ROOT/bench/compare/report.py"
LOADER_PY="$ROOT/bench/compare/sub_loader.py"
AUTH_PY="$ROOT/bench/compare/auth.py"

# ---------------------------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------------------------
DEFAULT_SCENARIOS="fan-in,fan-out,shared-balance,latency-10k,idle-10k,conn-storm"
BROKERS="tern,mosquitto"
SCENARIOS=""
SCENARIOS_SET=0
REPS=3
REPS_SET=0
QUICK=0
SWEEPS=""
OUT=""
DURATION=""
WARMUP=""
TERN_BIN=""
MOSQUITTO_BIN="/usr/sbin/mosquitto"
BENCH_BIN=""
TERN_THREADS=""
TERN_CONF_LINES=()
BENCH_THREADS=""
PIN=0
DRY_RUN=0
IDLE_POINTS=""
FANOUT_POINTS=""
SUBS_POINTS=""
SUBS_PER_CONN=1000
FANOUT_RATE=0
IDLE_CONNECT_RATE=2000
SUBS_RATE=5000
MAX_INFLIGHT=20
MAX_QUEUED=1000
TRANSPORT=tcp
PASSWORD_FILE_OPT="" # empty: each scenario's own ("broker" block); "none": no file
ACL_FILE_OPT=""
MOSQUITTO_PASSWD=""
KEEP_STORES=0

usage() {
    cat <<EOF
Usage: bench/compare.sh [OPTION]...
Run tern-bench scenarios against Tern and Mosquitto 2.0 on this machine and compare them.

  --brokers LIST        tern,mosquitto (default), or one of them alone
  --scenarios LIST      scenario names from bench/scenarios/ or paths to .json files
                        (default: $DEFAULT_SCENARIOS;
                        'none' with --sweep runs only the sweeps)
  --reps N              repetitions of every scenario per broker (default 3); medians reported
  --quick               1 repetition, short durations (--duration 5 --warmup 1), small sweeps
  --sweep LIST          idle, fanout, subscriptions, or all; may repeat. Without --scenarios,
                        only the sweeps run
  --idle-points LIST    idle connections per sweep point (default 1000,5000,10000,20000,50000)
  --fanout-points LIST  subscribers per sweep point (default 1,10,100,1000)
  --subs-points LIST    subscriptions per sweep point (default 1000,10000,100000,1000000)
  --subs-per-conn N     subscriptions per loader connection in the subscriptions sweep (1000)
  --fanout-rate R       publish rate of the fan-out sweep's publisher (default 0: unbounded)
  --subs-rate R         probe rate (msg/s, QoS 1) of the subscriptions sweep (default 5000)
  --duration S          override the measured duration of every run
  --warmup S            override the warm-up of every run
  --out DIR             results directory (default build/bench-compare/<timestamp>)
  --tern PATH           tern binary (default build/release/broker/tern)
  --mosquitto PATH      mosquitto binary (default /usr/sbin/mosquitto)
  --bench PATH          tern-bench binary (default: build/release/bench/tern-bench, then
                        build/h-bench/bench/tern-bench)
  --tern-threads N      Tern worker threads (default: Tern's default, one per CPU)
  --tern-conf LINE      one more line for Tern's configuration file, repeatable (e.g.
                        'readiness_report true' to measure the readiness observer)
  --bench-threads N     tern-bench threads (default: tern-bench's default)
  --max-inflight N      max_inflight_messages for both brokers (default 20)
  --max-queued N        max_queued_messages for both brokers (default 1000)
  --transport T         tcp (default), tls (ECDSA P-256 server key), tls-rsa (RSA-2048),
                        ws or wss: for the sweeps and for scenarios without their own.
                        A scenario takes its own as NAME@T, e.g. conn-storm@tls-rsa,fan-in@ws
  --password-file FILE  password_file for both brokers in every scenario run (and
                        allow_anonymous false), instead of the scenario's own; 'none': no file
  --acl-file FILE       acl_file for both brokers in every scenario run, instead of the
                        scenario's own; 'none': no ACL. Sweeps always run without either
  --mosquitto-passwd PATH  the tool that hashes generated password files
                        (default: mosquitto_passwd next to --mosquitto, then on PATH)
  --keep-stores         keep the store directories of persistence runs (runs/*.store;
                        default: their size goes into the run's .meta, then they are removed)
  --pin                 pin the broker to the last CPU and tern-bench to the others (taskset)
  --dry-run             print the plan and the commands, run nothing
  -h, --help            this help

Only 127.0.0.1 is used. Broker processes started here are killed on exit.
EOF
}

die() {
    printf 'compare.sh: %s\n' "$*" >&2
    exit 2
}

while (($#)); do
    case "$1" in
    --brokers) BROKERS=${2:?}; shift 2 ;;
    --scenarios) SCENARIOS=${2:?}; SCENARIOS_SET=1; shift 2 ;;
    --reps) REPS=${2:?}; REPS_SET=1; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --sweep) SWEEPS="${SWEEPS:+$SWEEPS,}${2:?}"; shift 2 ;;
    --idle-points) IDLE_POINTS=${2:?}; shift 2 ;;
    --fanout-points) FANOUT_POINTS=${2:?}; shift 2 ;;
    --subs-points) SUBS_POINTS=${2:?}; shift 2 ;;
    --subs-per-conn) SUBS_PER_CONN=${2:?}; shift 2 ;;
    --fanout-rate) FANOUT_RATE=${2:?}; shift 2 ;;
    --subs-rate) SUBS_RATE=${2:?}; shift 2 ;;
    --duration) DURATION=${2:?}; shift 2 ;;
    --warmup) WARMUP=${2:?}; shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    --tern) TERN_BIN=${2:?}; shift 2 ;;
    --mosquitto) MOSQUITTO_BIN=${2:?}; shift 2 ;;
    --bench) BENCH_BIN=${2:?}; shift 2 ;;
    --tern-threads) TERN_THREADS=${2:?}; shift 2 ;;
    --tern-conf) TERN_CONF_LINES+=("${2:?}"); shift 2 ;;
    --bench-threads) BENCH_THREADS=${2:?}; shift 2 ;;
    --max-inflight) MAX_INFLIGHT=${2:?}; shift 2 ;;
    --max-queued) MAX_QUEUED=${2:?}; shift 2 ;;
    --transport) TRANSPORT=${2:?}; shift 2 ;;
    --password-file) PASSWORD_FILE_OPT=${2:?}; shift 2 ;;
    --acl-file) ACL_FILE_OPT=${2:?}; shift 2 ;;
    --mosquitto-passwd) MOSQUITTO_PASSWD=${2:?}; shift 2 ;;
    --keep-stores) KEEP_STORES=1; shift ;;
    --pin) PIN=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
    esac
done

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
is_num() { [[ $1 =~ ^[0-9]+([.][0-9]+)?$ ]]; }
if ! is_uint "$REPS" || ((REPS < 1)); then die "--reps wants a positive integer"; fi
[[ -z $DURATION ]] || is_num "$DURATION" || die "--duration wants seconds"
[[ -z $WARMUP ]] || is_num "$WARMUP" || die "--warmup wants seconds"
[[ -z $TERN_THREADS ]] || is_uint "$TERN_THREADS" || die "--tern-threads wants an integer"
[[ -z $BENCH_THREADS ]] || is_uint "$BENCH_THREADS" || die "--bench-threads wants an integer"

if ((QUICK)); then
    ((REPS_SET)) || REPS=1
    DURATION=${DURATION:-5}
    WARMUP=${WARMUP:-1}
    IDLE_POINTS=${IDLE_POINTS:-1000,5000}
    FANOUT_POINTS=${FANOUT_POINTS:-1,10,100}
    SUBS_POINTS=${SUBS_POINTS:-1000,10000}
fi
IDLE_POINTS=${IDLE_POINTS:-1000,5000,10000,20000,50000}
FANOUT_POINTS=${FANOUT_POINTS:-1,10,100,1000}
SUBS_POINTS=${SUBS_POINTS:-1000,10000,100000,1000000}

for opt in password-file acl-file; do
    v=$([[ $opt == acl-file ]] && echo "$ACL_FILE_OPT" || echo "$PASSWORD_FILE_OPT")
    [[ -z $v || $v == none || -r $v ]] || die "--$opt: cannot read '$v'"
done
[[ -z $PASSWORD_FILE_OPT || $PASSWORD_FILE_OPT == none ]] || PASSWORD_FILE_OPT=$(realpath -- "$PASSWORD_FILE_OPT")
[[ -z $ACL_FILE_OPT || $ACL_FILE_OPT == none ]] || ACL_FILE_OPT=$(realpath -- "$ACL_FILE_OPT")

valid_transport() { [[ $1 == tcp || $1 == tls || $1 == tls-rsa || $1 == ws || $1 == wss ]]; }
valid_transport "$TRANSPORT" || die "unknown transport '$TRANSPORT' (tcp, tls, tls-rsa, ws, wss)"

if ((!SCENARIOS_SET)); then
    if [[ -n $SWEEPS ]]; then SCENARIOS=none; else SCENARIOS=$DEFAULT_SCENARIOS; fi
fi
[[ $SCENARIOS == none ]] && SCENARIOS=""
[[ $SWEEPS == *all* ]] && SWEEPS="idle,fanout,subscriptions"

IFS=, read -r -a BROKER_LIST <<<"$BROKERS"
IFS=, read -r -a SCENARIO_LIST <<<"$SCENARIOS"
IFS=, read -r -a SWEEP_LIST <<<"$SWEEPS"
for b in "${BROKER_LIST[@]}"; do
    [[ $b == tern || $b == mosquitto ]] || die "unknown broker '$b' (tern, mosquitto)"
done
for s in "${SWEEP_LIST[@]}"; do
    [[ $s == idle || $s == fanout || $s == subscriptions ]] ||
        die "unknown sweep '$s' (idle, fanout, subscriptions, all)"
done
((${#SCENARIO_LIST[@]} + ${#SWEEP_LIST[@]})) || die "nothing to run"

# ---------------------------------------------------------------------------------------------
# Binaries
# ---------------------------------------------------------------------------------------------
if [[ -z $BENCH_BIN ]]; then
    for c in "$ROOT/build/release/bench/tern-bench" "$ROOT/build/release/bench/tern_bench/tern-bench" \
        "$ROOT/build/h-bench/bench/tern-bench" "$ROOT/build/h-bench/bench/tern_bench/tern-bench"; do
        if [[ -x $c ]]; then BENCH_BIN=$c; break; fi
    done
fi
TERN_BIN=${TERN_BIN:-$ROOT/build/release/broker/tern}
have_broker() {
    case $1 in
    tern) [[ -x $TERN_BIN ]] ;;
    mosquitto) [[ -x $MOSQUITTO_BIN ]] ;;
    esac
}
if ((!DRY_RUN)); then
    [[ -n $BENCH_BIN && -x $BENCH_BIN ]] ||
        die "tern-bench not found (build the tern_bench target, or pass --bench PATH)"
    "$BENCH_BIN" --help >/dev/null 2>&1 || die "$BENCH_BIN --help failed"
    for b in "${BROKER_LIST[@]}"; do
        have_broker "$b" || die "$b binary not found (tern: --tern PATH, build/release/broker/tern)"
    done
fi
BENCH_HELP=$("$BENCH_BIN" --help 2>&1 || true)
bench_has() { grep -q -- "$1" <<<"$BENCH_HELP"; }

# Tern reads a mosquitto-style file with -c once the config work lands; until then, flags.
TERN_HAS_CONFIG=0
if [[ -x $TERN_BIN ]] && "$TERN_BIN" --help 2>&1 | grep -qE -- '(^|[[:space:]])(-c|--config)([[:space:],=]|$)'; then
    TERN_HAS_CONFIG=1
fi

# ---------------------------------------------------------------------------------------------
# Limits and machine
# ---------------------------------------------------------------------------------------------
# Raise the open-files limit as far as allowed: the hard limit first (root with
# CAP_SYS_RESOURCE may go up to fs.nr_open), then the soft one. Brokers and tern-bench inherit it.
NR_OPEN=$(cat /proc/sys/fs/nr_open 2>/dev/null || echo 1048576)
ulimit -Hn "$NR_OPEN" 2>/dev/null || true
NOFILE_HARD=$(ulimit -Hn)
if [[ $NOFILE_HARD == unlimited ]]; then
    ulimit -n 1048576 2>/dev/null || true
else
    ulimit -n "$NOFILE_HARD" 2>/dev/null || true
fi
NOFILE=$(ulimit -n)
read -r PORT_LO PORT_HI </proc/sys/net/ipv4/ip_local_port_range
EPHEMERAL_PORTS=$((PORT_HI - PORT_LO + 1))
SOMAXCONN=$(cat /proc/sys/net/core/somaxconn 2>/dev/null || echo "?")
NPROC=$(nproc)
CLK_TCK=$(getconf CLK_TCK)
CPU_MODEL=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)
MEM_TOTAL_KIB=$(awk '/^MemTotal/ {print $2}' /proc/meminfo)
KERNEL=$(uname -r)
# shellcheck disable=SC1091
OS=$( (. /etc/os-release && echo "$PRETTY_NAME") 2>/dev/null || echo "?")
MOSQUITTO_VERSION=$("$MOSQUITTO_BIN" -h 2>&1 | awk '/^mosquitto version/ {print $3; exit}' || true)
TERN_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
    TERN_REV="$TERN_REV (with uncommitted changes)"
fi
BENCH_VERSION=$("$BENCH_BIN" --version 2>/dev/null | head -1 || true)
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)

# Load generator and broker CPUs with --pin: the broker gets the last CPU, tern-bench the rest.
BROKER_CPUS=""
BENCH_CPUS=""
if ((PIN)); then
    command -v taskset >/dev/null || die "--pin needs taskset (util-linux)"
    if ((NPROC >= 2)); then
        BROKER_CPUS=$((NPROC - 1))
        BENCH_CPUS="0-$((NPROC - 2))"
    else
        die "--pin needs at least 2 CPUs"
    fi
fi

STAMP=$(date -u +%Y%m%d-%H%M%S)
OUT=${OUT:-$ROOT/build/bench-compare/$STAMP}
OUT=$(realpath -m -- "$OUT")

# ---------------------------------------------------------------------------------------------
# Process bookkeeping: everything started here is killed on exit
# ---------------------------------------------------------------------------------------------
# Every process is started with setsid, so it leads its own process group and `signal_owned`
# reaches its children too (tern-bench under /usr/bin/time); Ctrl-C reaches only this script,
# whose trap then stops them in order.
declare -a OWNED_PIDS=()
signal_owned() { # SIGNAL PID: the process group PID leads, else the process alone
    kill "-$1" -- "-$2" 2>/dev/null || kill "-$1" "$2" 2>/dev/null || true
}
cleanup() {
    local pid
    for pid in "${OWNED_PIDS[@]}"; do
        signal_owned TERM "$pid"
    done
    sleep 0.2
    for pid in "${OWNED_PIDS[@]}"; do
        signal_owned KILL "$pid"
    done
}
trap cleanup EXIT
trap 'echo; echo "compare.sh: interrupted" >&2; exit 130' INT TERM

forget_pid() {
    local keep=() p
    for p in "${OWNED_PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    OWNED_PIDS=("${keep[@]}")
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# broker_sample PID -> "fds rss_kib hwm_kib cpu_ticks threads" with no fork (bash builtins only),
# so sampling every half second does not take CPU from the run being measured.
broker_sample() {
    local pid=$1 key value rest rss=0 hwm=0 threads=0 stat fields fds
    [[ -r /proc/$pid/status ]] || { echo "0 0 0 0 0"; return; }
    while read -r key value rest; do
        case $key in
        VmRSS:) rss=$value ;;
        VmHWM:) hwm=$value ;;
        Threads:) threads=$value ;;
        esac
    done <"/proc/$pid/status"
    read -r stat <"/proc/$pid/stat" || stat=""
    stat=${stat##*) }
    read -r -a fields <<<"$stat"
    fds=("/proc/$pid/fd/"*)
    echo "${#fds[@]} $rss $hwm $((${fields[11]:-0} + ${fields[12]:-0})) $threads"
}

# ---------------------------------------------------------------------------------------------
# Brokers
# ---------------------------------------------------------------------------------------------
# Same limits for both. Mosquitto-only lines: TCP_NODELAY (Tern always sets it), no $SYS,
# no persistence, quiet logging. Both log errors and warnings only.
write_mosquitto_conf() { # FILE PORT
    local extra=""
    # Mosquitto 2.0.11 will not start with WebSocket listeners only ("Unable to start any
    # listening sockets"): give it a plain one too, on another port nobody uses.
    [[ $CUR_TRANSPORT == ws || $CUR_TRANSPORT == wss ]] &&
        extra="listener $(free_port) 127.0.0.1"
    cat >"$1" <<EOF
# generated by bench/compare.sh
$extra
listener $2 127.0.0.1
$(auth_conf_lines)
max_inflight_messages $MAX_INFLIGHT
max_queued_messages $MAX_QUEUED
$(persistence_conf_lines mosquitto)
sys_interval 0
set_tcp_nodelay true
connection_messages false
log_dest stderr
log_type error
log_type warning
EOF
    transport_conf_lines >>"$1"
}

# Persistence of the current run (a scenario's "broker" block): CUR_PERSISTENCE (0/1),
# CUR_PERSISTENCE_SYNC (Tern's persistence_sync, or empty) and CUR_STORE, a fresh directory per
# run. Mosquitto keeps its default autosave_interval (1800 s): what `persistence true` means
# there out of the box.
persistence_conf_lines() { # BROKER
    if ((!CUR_PERSISTENCE)); then
        echo "persistence false"
        return 0
    fi
    printf 'persistence true\npersistence_location %s/\n' "$CUR_STORE"
    [[ $1 != tern || -z $CUR_PERSISTENCE_SYNC ]] || echo "persistence_sync $CUR_PERSISTENCE_SYNC"
    return 0
}

# Access control of the current run (same for both brokers): CUR_PASSWORD_FILE and
# CUR_ACL_FILE, world-readable copies under OUT/auth (prepare_auth), or empty.
auth_conf_lines() {
    if [[ -n $CUR_PASSWORD_FILE ]]; then
        printf 'allow_anonymous false\npassword_file %s\n' "$CUR_PASSWORD_FILE"
    else
        echo "allow_anonymous true"
    fi
    [[ -z $CUR_ACL_FILE ]] || echo "acl_file $CUR_ACL_FILE"
    return 0
}

# The listener lines for CUR_TRANSPORT (same for both brokers): TLS certificate and key,
# WebSocket protocol.
transport_conf_lines() {
    case $CUR_TRANSPORT in
    tls | wss) printf 'certfile %s\nkeyfile %s\n' "$PKI/server-ec.crt" "$PKI/server-ec.key" ;;
    tls-rsa) printf 'certfile %s\nkeyfile %s\n' "$PKI/server-rsa.crt" "$PKI/server-rsa.key" ;;
    esac
    case $CUR_TRANSPORT in
    ws | wss) echo "protocol websockets" ;;
    esac
    return 0
}

write_tern_conf() { # FILE PORT [minimal]
    {
        echo "# generated by bench/compare.sh"
        echo "listener $2 127.0.0.1"
        auth_conf_lines # kept in the minimal file too: a run must not lose its ACL silently
        ((!CUR_PERSISTENCE)) || persistence_conf_lines tern # nor its persistence
        echo "max_inflight_messages $MAX_INFLIGHT"
        echo "max_queued_messages $MAX_QUEUED"
        for line in "${TERN_CONF_LINES[@]}"; do
            echo "$line"
        done
        if [[ ${3:-} != minimal ]]; then
            echo "sys_interval 0"
            echo "log_dest stderr"
            echo "log_type error"
            echo "log_type warning"
        fi
        transport_conf_lines
    } >"$1"
}

BROKER_PID=""
BROKER_PORT=""
BROKER_MODE=""
# start_broker NAME PREFIX: starts NAME on a fresh port, logs to PREFIX.broker.log; sets
# BROKER_PID, BROKER_PORT, BROKER_MODE. Returns 1 (log tail on stderr) when it does not listen.
start_broker() {
    local name=$1 prefix=$2 cmd=() modes=() mode
    case $name in
    mosquitto) modes=(conf) ;;
    tern) if ((TERN_HAS_CONFIG)); then modes=(conf minimal flags); else modes=(flags); fi ;;
    esac
    # --port/--bind cannot carry a password file, an ACL or persistence: no fallback to flags.
    if [[ $name == tern && (-n $CUR_PASSWORD_FILE$CUR_ACL_FILE || $CUR_PERSISTENCE == 1) ]]; then
        if ((TERN_HAS_CONFIG)); then modes=(conf minimal); else
            echo "  tern without -c cannot be given a password_file, acl_file or persistence" >&2
            return 1
        fi
    fi
    for mode in "${modes[@]}"; do
        for _ in 1 2 3; do
            BROKER_PORT=$(free_port)
            cmd=()
            [[ -n $BROKER_CPUS ]] && cmd=(taskset -c "$BROKER_CPUS")
            case $name/$mode in
            mosquitto/conf)
                write_mosquitto_conf "$prefix.broker.conf" "$BROKER_PORT"
                cmd+=("$MOSQUITTO_BIN" -c "$prefix.broker.conf")
                ;;
            tern/conf | tern/minimal)
                write_tern_conf "$prefix.broker.conf" "$BROKER_PORT" "$mode"
                cmd+=("$TERN_BIN" -c "$prefix.broker.conf")
                [[ -n $TERN_THREADS ]] && cmd+=(--threads "$TERN_THREADS")
                ;;
            tern/flags)
                cmd+=("$TERN_BIN" --port "$BROKER_PORT" --bind 127.0.0.1)
                [[ -n $TERN_THREADS ]] && cmd+=(--threads "$TERN_THREADS")
                ;;
            esac
            printf '%q ' "${cmd[@]}" >"$prefix.broker.cmd"
            if ((CUR_PERSISTENCE)); then
                # A fresh store for every start. Mosquitto, started as root, writes it as user
                # mosquitto after dropping privileges.
                rm -rf -- "$CUR_STORE"
                mkdir -p -- "$CUR_STORE" && chmod 777 -- "$CUR_STORE"
            fi
            setsid "${cmd[@]}" >"$prefix.broker.log" 2>&1 </dev/null &
            BROKER_PID=$!
            OWNED_PIDS+=("$BROKER_PID")
            BROKER_MODE=$mode
            local i
            for ((i = 0; i < 100; i++)); do
                if ! kill -0 "$BROKER_PID" 2>/dev/null; then break; fi
                if port_open "$BROKER_PORT"; then return 0; fi
                sleep 0.1
            done
            stop_broker
            # Port taken between picking and binding: try another; anything else: next mode.
            grep -qiE 'address already in use|EADDRINUSE' "$prefix.broker.log" || break
        done
        echo "  $name ($mode) did not start; log:" >&2
        tail -n 5 "$prefix.broker.log" | sed 's/^/    /' >&2
    done
    return 1
}

# stop_broker: SIGTERM, up to 5 s for a clean exit, then SIGKILL.
stop_broker() {
    [[ -n $BROKER_PID ]] || return 0
    signal_owned TERM "$BROKER_PID"
    local i
    for ((i = 0; i < 50; i++)); do
        kill -0 "$BROKER_PID" 2>/dev/null || break
        sleep 0.1
    done
    signal_owned KILL "$BROKER_PID"
    wait "$BROKER_PID" 2>/dev/null || true
    forget_pid "$BROKER_PID"
    BROKER_PID=""
}

# ---------------------------------------------------------------------------------------------
# Running tern-bench
# ---------------------------------------------------------------------------------------------
scenario_file() { # NAME[@TRANSPORT] or PATH[@TRANSPORT] -> the .json file
    local s=${1%@*}
    if [[ $s == */* || $s == *.json ]]; then echo "$s"; else echo "$ROOT/bench/scenarios/$s.json"; fi
}
scenario_name() { # the label: file name without .json, with @TRANSPORT when not tcp
    local spec=$1 t
    t=$(transport_of "$spec")
    local s=${spec%@*}
    s=${s##*/}
    s=${s%.json}
    if [[ $t == tcp ]]; then echo "$s"; else echo "$s@$t"; fi
}
transport_of() { # NAME@TRANSPORT -> TRANSPORT; without @: the --transport default
    if [[ $1 == *@* ]]; then echo "${1##*@}"; else echo "$TRANSPORT"; fi
}

common_bench_flags() { # PORT -> flags on stdout, one per line
    printf '%s\n' --host 127.0.0.1 --port "$1" --json --quiet
    case $CUR_TRANSPORT in
    tls | tls-rsa) printf '%s\n' --tls --cafile "$PKI/ca.crt" ;;
    ws) printf '%s\n' --transport ws --ws-path /mqtt ;;
    wss) printf '%s\n' --transport wss --ws-path /mqtt --cafile "$PKI/ca.crt" ;;
    esac
    [[ -n $BENCH_THREADS ]] && printf '%s\n' --threads "$BENCH_THREADS"
    [[ -n $DURATION ]] && printf '%s\n' --duration "$DURATION"
    [[ -n $WARMUP ]] && printf '%s\n' --warmup "$WARMUP"
    return 0
}

# run_bench PREFIX TIMEOUT_S ARGS...: runs tern-bench in the background, writes
# PREFIX.json (stdout), PREFIX.log (stderr), PREFIX.time (user sys wall maxrss), and samples
# the broker every half second into PREFIX.samples (t fds rss hwm cpu_ticks threads).
# Returns tern-bench's exit status (124 on timeout).
run_bench() {
    local prefix=$1 timeout_s=$2
    shift 2
    local cmd=()
    [[ -n $BENCH_CPUS ]] && cmd=(taskset -c "$BENCH_CPUS")
    cmd+=("$BENCH_BIN" "$@")
    printf '%q ' "${cmd[@]}" >"$prefix.cmd"
    # Time in microseconds from EPOCHREALTIME (any locale's decimal mark removed): no fork
    # per sample.
    local t0 now el t
    t0=${EPOCHREALTIME//[!0-9]/}
    echo "0 $(broker_sample "$BROKER_PID")" >"$prefix.samples"
    setsid /usr/bin/time -f '%U %S %e %M' -o "$prefix.time" "${cmd[@]}" >"$prefix.json" 2>"$prefix.log" </dev/null &
    local pid=$!
    OWNED_PIDS+=("$pid")
    local rc=0 timed_out=0
    while kill -0 "$pid" 2>/dev/null; do
        sleep 0.5
        now=${EPOCHREALTIME//[!0-9]/}
        el=$(((now - t0) / 10000))
        printf -v t '%d.%02d' $((el / 100)) $((el % 100))
        echo "$t $(broker_sample "$BROKER_PID")" >>"$prefix.samples"
        if ((now - t0 > timeout_s * 1000000)); then
            signal_owned TERM "$pid"
            timed_out=1
            break
        fi
    done
    wait "$pid" || rc=$?
    forget_pid "$pid"
    ((timed_out)) && rc=124
    return "$rc"
}

# ---------------------------------------------------------------------------------------------
# Plan, progress and ETA
# ---------------------------------------------------------------------------------------------
# Expected seconds of one scenario run: its duration + warm-up (from the file or the
# overrides) plus broker start/stop. The ETA scales these by how long runs actually took.
expected_seconds() { # SCENARIO_FILE
    python3 "$REPORT_PY" expected --duration "${DURATION:-}" --warmup "${WARMUP:-}" "$1" 2>/dev/null || echo 30
}

# Sweep points that cannot run here are skipped with a reason instead of failing half-way.
idle_cap_reason() { # N
    local n=$1
    if [[ $NOFILE != unlimited ]] && ((n + 64 > NOFILE)); then
        echo "open files limit $NOFILE (ulimit -n; hard limit $NOFILE_HARD)"
    elif ((n > EPHEMERAL_PORTS - 1000)); then
        echo "ephemeral ports: $EPHEMERAL_PORTS from one client address to one server port"
    fi
}

declare -a PLAN_KIND=() PLAN_ARG=() PLAN_BROKER=() PLAN_REP=() PLAN_EXPECT=()
plan_add() { PLAN_KIND+=("$1"); PLAN_ARG+=("$2"); PLAN_BROKER+=("$3"); PLAN_REP+=("$4"); PLAN_EXPECT+=("$5"); }

ordered_brokers() { # REP_INDEX -> brokers, order flipped on every other repetition
    local n=${#BROKER_LIST[@]} i
    if (($1 % 2 == 0)); then
        for ((i = 0; i < n; i++)); do echo "${BROKER_LIST[i]}"; done
    else
        for ((i = n - 1; i >= 0; i--)); do echo "${BROKER_LIST[i]}"; done
    fi
}

# Access control per scenario file: what its "broker" block asks for (bench/compare/auth.py),
# then --password-file / --acl-file over it. AUTH_ACL[f]: a path or empty; AUTH_PW[f]: a path,
# "generate" (from the roles' credentials, AUTH_USERS[f] entries) or empty.
# The same block's persistence (PERSIST[f]: 0/1, PERSIST_SYNC[f]: Tern's persistence_sync or
# empty) and the brokers it runs on (ONLY_BROKERS[f]: comma-separated, empty: all).
declare -A AUTH_ACL=() AUTH_PW=() AUTH_USERS=() PERSIST=() PERSIST_SYNC=() ONLY_BROKERS=()
resolve_auth() { # SCENARIO_FILE
    local f=$1 out acl="" pw="" users=0 line persist=0 sync="" only=""
    [[ -n ${AUTH_PW[$f]+set} ]] && return 0
    if [[ -r $f ]]; then
        out=$(python3 "$AUTH_PY" files "$f") || die "scenario $f: invalid \"broker\" block (see above)"
        while IFS= read -r line; do
            case $line in
            acl=*) acl=${line#acl=} ;;
            password=*) pw=${line#password=} ;;
            users=*) users=${line#users=} ;;
            persistence=*) persist=${line#persistence=} ;;
            persistence_sync=*) sync=${line#persistence_sync=} ;;
            brokers=*) only=${line#brokers=} ;;
            esac
        done <<<"$out"
    fi
    PERSIST[$f]=$persist
    PERSIST_SYNC[$f]=$sync
    ONLY_BROKERS[$f]=$only
    case $ACL_FILE_OPT in "") ;; none) acl="" ;; *) acl=$ACL_FILE_OPT ;; esac
    case $PASSWORD_FILE_OPT in "") ;; none) pw="" users=0 ;; *) pw=$PASSWORD_FILE_OPT users=0 ;; esac
    AUTH_ACL[$f]=$acl
    AUTH_PW[$f]=$pw
    AUTH_USERS[$f]=$users
}
runs_on() { # SCENARIO_FILE BROKER: does the scenario's "brokers" list allow BROKER?
    [[ -z ${ONLY_BROKERS[$1]:-} || ,${ONLY_BROKERS[$1]}, == *",$2,"* ]]
}
persistence_summary() { # SCENARIO_FILE -> one line, empty without persistence
    ((${PERSIST[$1]:-0})) || return 0
    echo "persistence true (a store per run), tern persistence_sync ${PERSIST_SYNC[$1]:-batch (default)}${ONLY_BROKERS[$1]:+; only on ${ONLY_BROKERS[$1]}}"
}
auth_summary() { # SCENARIO_FILE -> one line, empty when the scenario has no access control
    local f=$1 parts=()
    case ${AUTH_PW[$f]:-} in
    "") ;;
    generate) parts+=("password_file generated for ${AUTH_USERS[$f]} users (mosquitto_passwd -U: \$7\$)") ;;
    *) parts+=("password_file ${AUTH_PW[$f]#"$ROOT"/}") ;;
    esac
    [[ -z ${AUTH_ACL[$f]:-} ]] || parts+=("acl_file ${AUTH_ACL[$f]#"$ROOT"/}")
    local out="" p
    for p in "${parts[@]}"; do out+="${out:+; }$p"; done
    echo "$out"
}

HOLD_SECONDS=${DURATION:-10}
for ((rep = 1; rep <= REPS; rep++)); do
    for s in "${SCENARIO_LIST[@]}"; do
        f=$(scenario_file "$s")
        if ((!DRY_RUN)) && [[ ! -r $f ]]; then die "scenario not found: $f"; fi
        resolve_auth "$f"
        t=$(transport_of "$s")
        valid_transport "$t" || die "unknown transport '$t' in '$s' (tcp, tls, tls-rsa, ws, wss)"
        e=$(expected_seconds "$f")
        while read -r b; do
            runs_on "$f" "$b" && plan_add scenario "$f@$t" "$b" "$rep" "$e"
        done < <(ordered_brokers "$rep")
    done
done
# Sweeps: every point, every broker, REPS times; brokers alternate per point.
FANOUT_SECONDS=${DURATION:-10}
SUBS_SECONDS=${DURATION:-10}
for sw in "${SWEEP_LIST[@]}"; do
    case $sw in
    idle) points=$IDLE_POINTS ;;
    fanout) points=$FANOUT_POINTS ;;
    subscriptions) points=$SUBS_POINTS ;;
    esac
    IFS=, read -r -a pts <<<"$points"
    k=0
    for ((rep = 1; rep <= REPS; rep++)); do
        for p in "${pts[@]}"; do
            is_uint "$p" || die "sweep point '$p' is not an integer"
            case $sw in
            idle)
                e=$((HOLD_SECONDS + p / IDLE_CONNECT_RATE + 5))
                [[ -z $(idle_cap_reason "$p") ]] || e=0
                ;;
            fanout) e=$((FANOUT_SECONDS + ${WARMUP:-2} + 6)) ;;
            subscriptions) e=$((SUBS_SECONDS + ${WARMUP:-2} + p / 20000 + 6)) ;;
            esac
            while read -r b; do plan_add "sweep-$sw" "$p" "$b" "$rep" "$e"; done < <(ordered_brokers "$k")
            k=$((k + 1))
        done
    done
done
TOTAL_RUNS=${#PLAN_KIND[@]}
if [[ -z $MOSQUITTO_PASSWD ]]; then
    MOSQUITTO_PASSWD=$(dirname "$MOSQUITTO_BIN")/mosquitto_passwd
    [[ -x $MOSQUITTO_PASSWD ]] || MOSQUITTO_PASSWD=$(command -v mosquitto_passwd || echo /usr/bin/mosquitto_passwd)
fi
for f in "${!AUTH_PW[@]}"; do
    if [[ ${AUTH_PW[$f]} == generate ]] && ((!DRY_RUN)) && [[ ! -x $MOSQUITTO_PASSWD ]]; then
        die "$f needs mosquitto_passwd to hash its password file (--mosquitto-passwd PATH)"
    fi
done
EXPECTED_TOTAL=0
for e in "${PLAN_EXPECT[@]}"; do EXPECTED_TOTAL=$((EXPECTED_TOTAL + e)); done

fmt_duration() {
    local s=${1%.*}
    ((s < 0)) && s=0
    printf '%dh%02dm%02ds' $((s / 3600)) $((s % 3600 / 60)) $((s % 60))
}

# ---------------------------------------------------------------------------------------------
# Header
# ---------------------------------------------------------------------------------------------
mkdir -p "$OUT/runs"
{
    echo "started_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "cpu_model=$CPU_MODEL"
    echo "cpus=$NPROC"
    echo "mem_total_kib=$MEM_TOTAL_KIB"
    echo "kernel=$KERNEL"
    echo "os=$OS"
    echo "loadavg_start=$LOADAVG"
    echo "mosquitto_version=$MOSQUITTO_VERSION"
    echo "mosquitto_bin=$MOSQUITTO_BIN"
    echo "tern_rev=$TERN_REV"
    echo "tern_bin=$TERN_BIN"
    echo "tern_config=$([[ $TERN_HAS_CONFIG == 1 ]] && echo "-c FILE" || echo "flags (--port/--bind: no -c yet)")"
    echo "tern_threads=${TERN_THREADS:-default ($NPROC)}"
    echo "bench_bin=$BENCH_BIN"
    echo "bench_version=$BENCH_VERSION"
    echo "bench_threads=${BENCH_THREADS:-default}"
    echo "nofile=$NOFILE"
    echo "nofile_hard=$NOFILE_HARD"
    echo "ephemeral_ports=$EPHEMERAL_PORTS ($PORT_LO-$PORT_HI)"
    echo "somaxconn=$SOMAXCONN"
    echo "pin=$([[ $PIN == 1 ]] && echo "broker on CPU $BROKER_CPUS, tern-bench on CPU $BENCH_CPUS" || echo no)"
    echo "max_inflight_messages=$MAX_INFLIGHT"
    echo "max_queued_messages=$MAX_QUEUED"
    echo "reps=$REPS"
    echo "quick=$QUICK"
    echo "duration_override=${DURATION:-}"
    echo "warmup_override=${WARMUP:-}"
    echo "brokers=$BROKERS"
    echo "scenarios=$SCENARIOS"
    echo "sweeps=$SWEEPS"
    echo "password_file_override=$PASSWORD_FILE_OPT"
    echo "acl_file_override=$ACL_FILE_OPT"
} >"$OUT/machine.env"

echo "== Tern vs Mosquitto: $OUT"
echo "   machine   : $CPU_MODEL, $NPROC CPUs, $((MEM_TOTAL_KIB / 1024)) MiB, kernel $KERNEL, load $LOADAVG"
echo "   brokers   : mosquitto $MOSQUITTO_VERSION ($MOSQUITTO_BIN); tern $TERN_REV ($TERN_BIN, $(
    [[ $TERN_HAS_CONFIG == 1 ]] && echo "-c" || echo "flags"), threads ${TERN_THREADS:-$NPROC})"
echo "   limits    : nofile $NOFILE (hard $NOFILE_HARD), ephemeral ports $EPHEMERAL_PORTS, somaxconn $SOMAXCONN;" \
    "both brokers max_inflight_messages $MAX_INFLIGHT, max_queued_messages $MAX_QUEUED"
echo "   tern-bench: ${BENCH_BIN:-?} ${BENCH_VERSION:+($BENCH_VERSION)}, threads ${BENCH_THREADS:-default}$(
    ((PIN)) && echo ", broker pinned to CPU $BROKER_CPUS, tern-bench to CPU $BENCH_CPUS")"
echo "   plan      : $TOTAL_RUNS runs (${#SCENARIO_LIST[@]} scenarios${SWEEPS:+, sweeps $SWEEPS} x ${#BROKER_LIST[@]} brokers x $REPS reps), about $(fmt_duration "$EXPECTED_TOTAL")"
# Access control, per scenario (the same files for both brokers).
AUTH_LINES=$(for s in "${SCENARIO_LIST[@]}"; do
    a=$(auth_summary "$(scenario_file "$s")")
    [[ -z $a ]] || echo "   auth      : $(scenario_name "$s"): $a"
done | sort -u)
if [[ -n $AUTH_LINES ]]; then
    echo "$AUTH_LINES"
    echo "               (both brokers; allow_anonymous false with a password_file; mosquitto_passwd: $MOSQUITTO_PASSWD)"
fi
for s in "${SCENARIO_LIST[@]}"; do
    a=$(persistence_summary "$(scenario_file "$s")")
    [[ -z $a ]] || echo "   durable   : $(scenario_name "$s"): $a"
done | sort -u
if ((NPROC <= 2)); then
    echo "   note      : $NPROC CPUs shared by broker and load generator: see bench/COMPARE.md, fairness"
fi

# ---------------------------------------------------------------------------------------------
# The runs
# ---------------------------------------------------------------------------------------------
write_meta() { # FILE key=value...
    local f=$1
    shift
    printf '%s\n' "$@" >"$f"
}

run_scenario() { # IDX FILE@TRANSPORT BROKER REP PREFIX
    local f broker=$3 prefix=$5 flags=()
    f=$(scenario_file "$2")
    mapfile -t flags < <(common_bench_flags "$BROKER_PORT")
    local timeout_s=$((${PLAN_EXPECT[$1]} * 3 + 60))
    local args=(run "$f" "${flags[@]}")
    bench_has --report && args+=(--report "$prefix.html")
    run_bench "$prefix" "$timeout_s" "${args[@]}"
}

run_sweep_idle() { # N PREFIX
    local n=$1 prefix=$2 flags=()
    mapfile -t flags < <(common_bench_flags "$BROKER_PORT")
    # Without --duration the hold time is HOLD_SECONDS; the connections must stay up long
    # enough for a few samples at the plateau.
    [[ -n $DURATION ]] || flags+=(--duration "$HOLD_SECONDS")
    run_bench "$prefix" $((HOLD_SECONDS * 3 + n / 500 + 60)) conn --clients "$n" \
        --connect-rate "$IDLE_CONNECT_RATE" "${flags[@]}"
}

run_sweep_fanout() { # K PREFIX
    local k=$1 prefix=$2 flags=()
    mapfile -t flags < <(common_bench_flags "$BROKER_PORT")
    local f="$prefix.scenario.json"
    python3 "$REPORT_PY" make-scenario fanout --subscribers "$k" --rate "$FANOUT_RATE" \
        --duration "$FANOUT_SECONDS" --warmup "${WARMUP:-2}" >"$f"
    run_bench "$prefix" $((FANOUT_SECONDS * 3 + 60)) run "$f" "${flags[@]}"
}

run_sweep_subscriptions() { # M PREFIX
    local m=$1 prefix=$2 flags=() rc=0
    mapfile -t flags < <(common_bench_flags "$BROKER_PORT")
    echo "before $(broker_sample "$BROKER_PID")" >"$prefix.before"
    setsid python3 "$LOADER_PY" --port "$BROKER_PORT" --count "$m" --per-connection "$SUBS_PER_CONN" \
        >"$prefix.loader.json" 2>"$prefix.loader.log" </dev/null &
    local loader=$!
    OWNED_PIDS+=("$loader")
    local i
    for ((i = 0; i < 6000; i++)); do
        [[ -s $prefix.loader.json ]] && break
        kill -0 "$loader" 2>/dev/null || break
        sleep 0.1
    done
    echo "loaded $(broker_sample "$BROKER_PID")" >"$prefix.loaded"
    if ! grep -q '"ready": true' "$prefix.loader.json" 2>/dev/null; then
        signal_owned TERM "$loader"
        wait "$loader" 2>/dev/null || true
        forget_pid "$loader"
        echo "  subscription loader failed: $(cat "$prefix.loader.json" "$prefix.loader.log" 2>/dev/null | head -3)" >&2
        return 3
    fi
    local f="$prefix.scenario.json"
    python3 "$REPORT_PY" make-scenario latency --rate "$SUBS_RATE" --duration "$SUBS_SECONDS" \
        --warmup "${WARMUP:-2}" >"$f"
    run_bench "$prefix" $((SUBS_SECONDS * 3 + 60)) run "$f" "${flags[@]}" || rc=$?
    signal_owned TERM "$loader"
    wait "$loader" 2>/dev/null || true
    forget_pid "$loader"
    return "$rc"
}

if ((DRY_RUN)); then
    echo "-- dry run: plan"
    for ((i = 0; i < TOTAL_RUNS; i++)); do
        cap=""
        [[ ${PLAN_KIND[i]} == sweep-idle ]] && cap=$(idle_cap_reason "${PLAN_ARG[i]}")
        printf '   %3d/%d  %-16s %-40s %-10s rep %s  ~%ss%s\n' $((i + 1)) "$TOTAL_RUNS" "${PLAN_KIND[i]}" \
            "$(scenario_name "${PLAN_ARG[i]}")" "${PLAN_BROKER[i]}" "${PLAN_REP[i]}" "${PLAN_EXPECT[i]}" \
            "${cap:+  (skipped: capped by $cap)}"
    done
    exit 0
fi

# A throwaway PKI for the TLS transports: one CA, an ECDSA P-256 and an RSA-2048 server key,
# both for 127.0.0.1 (tern-bench verifies the server against the CA).
PKI="$OUT/pki"
CUR_TRANSPORT=tcp
needs_pki=0
for a in "${PLAN_ARG[@]}"; do [[ $a == *@tls* || $a == *@wss ]] && needs_pki=1; done
[[ $TRANSPORT == tls* || $TRANSPORT == wss ]] && needs_pki=1
if ((needs_pki)); then
    mkdir -p "$PKI"
    (
        cd "$PKI"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
            -subj "/CN=compare.sh CA" -keyout ca.key -out ca.crt
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >san.ext
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
            -keyout server-ec.key -out server-ec.csr
        openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server-rsa.key \
            -out server-rsa.csr
        for k in ec rsa; do
            openssl x509 -req -in "server-$k.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
                -days 2 -extfile san.ext -out "server-$k.crt"
        done
        chmod a+r ./* # mosquitto reads them after dropping privileges
    ) >"$OUT/pki.log" 2>&1 || die "could not make the test certificates (see $OUT/pki.log)"
fi

# The access-control files of a scenario run, made once per scenario file: world-readable
# copies under OUT/auth (Mosquitto, started as root, reads them as user mosquitto after dropping
# privileges), and generated password files hashed by mosquitto_passwd -U ($7$, PBKDF2-SHA512,
# its default iterations). Sets CUR_PASSWORD_FILE and CUR_ACL_FILE.
CUR_PASSWORD_FILE=""
CUR_ACL_FILE=""
CUR_PERSISTENCE=0
CUR_PERSISTENCE_SYNC=""
CUR_STORE=""
declare -A AUTH_MADE=()
auth_copy() { # SOURCE -> AUTH_RESULT, a 644 copy in OUT/auth
    local src=$1 dst
    if [[ -z ${AUTH_MADE[$src]:-} ]]; then
        dst="$OUT/auth/${#AUTH_MADE[@]}-$(basename -- "$src")"
        { cp -- "$src" "$dst" && chmod 644 "$dst"; } || die "cannot copy $src to $dst"
        AUTH_MADE[$src]=$dst
    fi
    AUTH_RESULT=${AUTH_MADE[$src]}
}
prepare_auth() { # SCENARIO_FILE
    local f=$1 key dst stem
    CUR_PASSWORD_FILE=""
    CUR_ACL_FILE=""
    [[ -n $f && -n ${AUTH_PW[$f]:-}${AUTH_ACL[$f]:-} ]] || return 0
    mkdir -p "$OUT/auth"
    if [[ -n ${AUTH_ACL[$f]} ]]; then
        auth_copy "${AUTH_ACL[$f]}"
        CUR_ACL_FILE=$AUTH_RESULT
    fi
    case ${AUTH_PW[$f]} in
    "") ;;
    generate)
        key="generate:$f"
        if [[ -z ${AUTH_MADE[$key]:-} ]]; then
            stem=$(basename -- "$f" .json)
            dst="$OUT/auth/$stem.passwd"
            # One mosquitto_passwd call for all users: -U hashes a "user:password" file in place.
            if ! { python3 "$AUTH_PY" credentials "$f" >"$dst" &&
                "$MOSQUITTO_PASSWD" -U "$dst" && chmod 644 "$dst"; } >"$OUT/auth/$stem.passwd.log" 2>&1; then
                die "could not make $dst (see $OUT/auth/$stem.passwd.log)"
            fi
            AUTH_MADE[$key]=$dst
        fi
        CUR_PASSWORD_FILE=${AUTH_MADE[$key]}
        ;;
    *)
        auth_copy "${AUTH_PW[$f]}"
        CUR_PASSWORD_FILE=$AUTH_RESULT
        ;;
    esac
}

RUN_START=$EPOCHREALTIME
SPENT_EXPECTED=0
FAILED=0
for ((i = 0; i < TOTAL_RUNS; i++)); do
    kind=${PLAN_KIND[i]}
    arg=${PLAN_ARG[i]}
    broker=${PLAN_BROKER[i]}
    rep=${PLAN_REP[i]}
    case $kind in
    scenario) label=$(scenario_name "$arg") ;;
    *) label="${kind#sweep-}-$arg" ;;
    esac
    prefix="$OUT/runs/$label.$broker.rep$rep"

    # ETA: the expected seconds still to go, scaled by actual/expected so far.
    elapsed=$(awk -v a="$RUN_START" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.0f", b - a}')
    remaining=$((EXPECTED_TOTAL - SPENT_EXPECTED))
    if ((SPENT_EXPECTED > 0)); then
        eta=$(awk -v r="$remaining" -v e="$elapsed" -v s="$SPENT_EXPECTED" 'BEGIN {printf "%.0f", r * e / s}')
    else
        eta=$remaining
    fi
    printf '[%d/%d] %-22s %-9s rep %d/%d  (elapsed %s, ETA %s)\n' $((i + 1)) "$TOTAL_RUNS" "$label" \
        "$broker" "$rep" "$REPS" "$(fmt_duration "$elapsed")" "$(fmt_duration "$eta")"

    skip=""
    [[ $kind == sweep-idle ]] && skip=$(idle_cap_reason "$arg")
    if [[ -n $skip ]]; then
        echo "  skipped: capped by $skip"
        write_meta "$prefix.meta" "kind=$kind" "label=$label" "arg=$arg" "broker=$broker" \
            "rep=$rep" "rc=skipped" "skip_reason=$skip"
        SPENT_EXPECTED=$((SPENT_EXPECTED + PLAN_EXPECT[i]))
        continue
    fi

    t_start=$EPOCHREALTIME
    rc=0
    CUR_PERSISTENCE=0
    CUR_PERSISTENCE_SYNC=""
    CUR_STORE="$prefix.store"
    if [[ $kind == scenario ]]; then
        CUR_TRANSPORT=$(transport_of "$arg")
        prepare_auth "$(scenario_file "$arg")"
        CUR_PERSISTENCE=${PERSIST[$(scenario_file "$arg")]:-0}
        CUR_PERSISTENCE_SYNC=${PERSIST_SYNC[$(scenario_file "$arg")]:-}
    else
        CUR_TRANSPORT=$TRANSPORT
        prepare_auth "" # the sweeps' clients are anonymous
    fi
    if start_broker "$broker" "$prefix"; then
        sleep 0.2 # let the broker settle before the baseline sample
        case $kind in
        scenario) run_scenario "$i" "$arg" "$broker" "$rep" "$prefix" || rc=$? ;;
        sweep-idle) run_sweep_idle "$arg" "$prefix" || rc=$? ;;
        sweep-fanout) run_sweep_fanout "$arg" "$prefix" || rc=$? ;;
        sweep-subscriptions) run_sweep_subscriptions "$arg" "$prefix" || rc=$? ;;
        esac
        echo "end $(broker_sample "$BROKER_PID")" >"$prefix.end"
        alive=1
        kill -0 "$BROKER_PID" 2>/dev/null || alive=0
        stop_broker
    else
        rc="broker-start-failed"
        alive=0
    fi
    wall=$(awk -v a="$t_start" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.2f", b - a}')
    # The store after the broker stopped (Mosquitto writes its snapshot then).
    store_kib=""
    if ((CUR_PERSISTENCE)) && [[ -d $CUR_STORE ]]; then
        store_kib=$(du -sk -- "$CUR_STORE" | cut -f1)
        ((KEEP_STORES)) || rm -rf -- "$CUR_STORE"
    fi
    write_meta "$prefix.meta" "kind=$kind" "label=$label" "arg=$arg" "broker=$broker" \
        "transport=$CUR_TRANSPORT" "rep=$rep" "rc=$rc" "wall_s=$wall" "broker_alive_at_end=$alive" "broker_mode=$BROKER_MODE" \
        "clk_tck=$CLK_TCK" "password_file=$CUR_PASSWORD_FILE" "acl_file=$CUR_ACL_FILE" \
        "persistence=$CUR_PERSISTENCE" "persistence_sync=$CUR_PERSISTENCE_SYNC" "store_kib=$store_kib"
    SPENT_EXPECTED=$((SPENT_EXPECTED + PLAN_EXPECT[i]))
    if [[ $rc != 0 ]]; then
        FAILED=$((FAILED + 1))
        echo "  FAILED (status $rc)$( ((alive)) || echo ", broker not running at the end"); see $prefix.log"
        [[ -s $prefix.log ]] && tail -n 3 "$prefix.log" | sed 's/^/    /'
    else
        python3 "$REPORT_PY" one-line "$prefix" || true
    fi
done

echo "== done in $(fmt_duration "$(awk -v a="$RUN_START" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.0f", b - a}')")," \
    "$FAILED failed run(s); load average now $(cut -d' ' -f1-3 /proc/loadavg)"
echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.env"
python3 "$REPORT_PY" summarize "$OUT"
