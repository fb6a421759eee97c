#!/bin/sh
# Black-box test of `tern` with the mosquitto command-line clients: retained + live messages at
# QoS 0/1/2 in MQTT 3.1.1 and 5, a 1 MiB payload, and the exit codes of the command line.
# Usage: cli_test.sh TERN MOSQUITTO_PUB MOSQUITTO_SUB
# Every wait is a bounded loop; mosquitto_sub -W bounds each subscriber.
set -eu

TERN=$1
PUB=$2
SUB=$3
DIR=$(mktemp -d /tmp/tern-cli-test-XXXXXX)
BROKER_PID=
cleanup() {
    if [ -n "$BROKER_PID" ]; then
        kill "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
    fi
    rm -rf "$DIR"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    echo "--- broker log" >&2
    cat "$DIR/broker.log" >&2 || true
    exit 1
}

# Command line: --help exits 0, unknown options exit 2.
"$TERN" --help >"$DIR/help.txt" || fail "--help did not exit 0"
grep -q -- "--port-file" "$DIR/help.txt" || fail "--help does not list --port-file"
set +e
"$TERN" --no-such-option 2>"$DIR/usage.txt"
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "unknown option exited $rc, expected 2"
grep -q "unknown option" "$DIR/usage.txt" || fail "unknown option not reported"

"$TERN" --port 0 --port-file "$DIR/port" --threads 2 2>"$DIR/broker.log" &
BROKER_PID=$!
i=0
while [ ! -s "$DIR/port" ]; do
    i=$((i + 1))
    [ "$i" -le 500 ] || fail "broker did not write its port file"
    kill -0 "$BROKER_PID" 2>/dev/null || fail "broker exited at start-up"
    sleep 0.01
done
PORT=$(cat "$DIR/port")
grep -q "listening on 127.0.0.1:$PORT" "$DIR/broker.log" || fail "no 'listening on' log line"

# wait_lines FILE N: bounded wait until FILE has at least N lines.
wait_lines() {
    i=0
    while [ "$(wc -l <"$1" 2>/dev/null || echo 0)" -lt "$2" ]; do
        i=$((i + 1))
        [ "$i" -le 500 ] || fail "timed out waiting for $2 line(s) in $1"
        sleep 0.01
    done
}

for V in mqttv311 mqttv5; do
    # The retained message tells us the subscription is active; then live messages follow.
    "$PUB" -p "$PORT" -V "$V" -t "cli/$V/retained" -m "kept" -q 1 -r
    "$SUB" -p "$PORT" -V "$V" -t "cli/$V/#" -q 2 -C 4 -W 10 -v >"$DIR/sub-$V.txt" &
    SUB_PID=$!
    wait_lines "$DIR/sub-$V.txt" 1
    "$PUB" -p "$PORT" -V "$V" -t "cli/$V/q0" -m "zero" -q 0
    "$PUB" -p "$PORT" -V "$V" -t "cli/$V/q1" -m "one" -q 1
    "$PUB" -p "$PORT" -V "$V" -t "cli/$V/q2" -m "two" -q 2
    wait "$SUB_PID" || fail "mosquitto_sub ($V) failed or timed out"
    # The retained message comes first; the three live ones come from three publishers, which
    # MQTT does not order among themselves (each mosquitto_pub exits once it has written, so the
    # next may be delivered first when they land on different workers): compared sorted.
    printf 'cli/%s/q0 zero\ncli/%s/q1 one\ncli/%s/q2 two\n' "$V" "$V" "$V" >"$DIR/expected-$V.txt"
    [ "$(head -n 1 "$DIR/sub-$V.txt")" = "cli/$V/retained kept" ] ||
        fail "the retained message did not come first for $V: $(cat "$DIR/sub-$V.txt")"
    tail -n +2 "$DIR/sub-$V.txt" | sort >"$DIR/live-$V.txt"
    cmp "$DIR/expected-$V.txt" "$DIR/live-$V.txt" || fail "unexpected messages for $V: $(cat "$DIR/sub-$V.txt")"
done

# 1 MiB payload at QoS 2; a retained copy synchronises with the subscriber.
head -c 786432 /dev/urandom | base64 -w 0 >"$DIR/big.txt"
[ "$(wc -c <"$DIR/big.txt")" -eq 1048576 ] || fail "test payload is not 1 MiB"
"$PUB" -p "$PORT" -V mqttv5 -t cli/big -f "$DIR/big.txt" -q 2 -r
"$SUB" -p "$PORT" -V mqttv5 -t cli/big -q 2 -C 1 -W 10 -N >"$DIR/big-received.txt" \
    || fail "did not receive the 1 MiB message"
cmp "$DIR/big.txt" "$DIR/big-received.txt" || fail "1 MiB payload corrupted"

# SIGTERM: graceful stop, exit code 0.
kill -TERM "$BROKER_PID"
i=0
while kill -0 "$BROKER_PID" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -le 1000 ] || fail "broker still running 10 s after SIGTERM"
    sleep 0.01
done
set +e
wait "$BROKER_PID"
rc=$?
set -e
BROKER_PID=
[ "$rc" -eq 0 ] || fail "broker exited $rc after SIGTERM"
echo "cli_test: OK"
