#!/usr/bin/env python3
"""Smoke tests of tern-bench against a real Mosquitto 2.0 (label `bench`).

Each case starts its own broker on a free 127.0.0.1 port with a generated configuration,
runs tern-bench, checks the exit status, the messages on stderr and the --json result
document, and stops the broker. Every wait is bounded.

Usage: smoke_test.py --bench TERN_BENCH --mosquitto MOSQUITTO --scenarios DIR CASE
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """Mosquitto on a free loopback port; retried if another process takes the port first."""

    def __init__(self, mosquitto, workdir, extra="", anonymous=True):
        self.log_path = os.path.join(workdir, "mosquitto.log")
        for _ in range(5):
            self.port = free_port()
            conf = os.path.join(workdir, "mosquitto.conf")
            with open(conf, "w") as f:
                f.write(f"listener {self.port} 127.0.0.1\n")
                f.write(f"allow_anonymous {'true' if anonymous else 'false'}\n")
                f.write(f"log_dest file {self.log_path}\nlog_type all\n")
                if os.geteuid() == 0:
                    f.write("user root\n")  # do not drop to 'mosquitto': it owns no file here
                f.write(extra)
            self.proc = subprocess.Popen([mosquitto, "-c", conf], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                    return
                except OSError:
                    time.sleep(0.05)
            self.stop()
        raise Failure("mosquitto did not start")

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_log(self, text, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            time.sleep(0.05)
        raise Failure(f"mosquitto log never showed {text!r}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run(bench, *args, timeout=40):
    p = subprocess.run([bench, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def run_json(bench, *args, expect_rc=0, timeout=40):
    rc, out, err = run(bench, *args, "--json", timeout=timeout)
    check(rc == expect_rc, f"exit {rc}, expected {expect_rc}; stderr: {err.strip()}")
    try:
        doc = json.loads(out)
    except json.JSONDecodeError as e:
        raise Failure(f"--json output does not parse: {e}: {out[:500]}")
    return doc, err


LATENCY_FIELDS = ("count", "min", "mean", "p50", "p90", "p99", "p999", "max")


def check_latency(doc, key):
    check(key in doc, f"{key} missing")
    lat = doc[key]
    for f in LATENCY_FIELDS:
        check(f in lat, f"{key}.{f} missing")
    check(lat["count"] > 0, f"{key}.count is 0")
    check(lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["max"],
          f"{key} percentiles out of order: {lat}")


def check_document(doc, mode):
    """The contract with the HTML report (bench/README.md, "Result document")."""
    for key in ("tool", "version", "mode", "scenario", "target", "started_at", "duration_s",
                "warmup_s", "totals", "histogram", "timeline"):
        check(key in doc, f"document lacks {key}")
    check(doc["tool"] == "tern-bench", "tool")
    check(doc["mode"] == mode, f"mode {doc['mode']} != {mode}")
    for key in ("host", "port", "tls", "protocol"):
        check(key in doc["target"], f"target lacks {key}")
    for key in ("connections_ok", "connections_failed", "failures_by_reason", "sent", "acked",
                "received", "lost", "duplicates", "reordered", "foreign", "send_rate",
                "recv_rate", "bytes_sent", "bytes_received"):
        check(key in doc["totals"], f"totals lack {key}")
    check(doc["started_at"].endswith("Z"), "started_at is not UTC ISO-8601")
    last = 0
    for upper, n in doc["histogram"]:
        check(upper > last and n > 0, "histogram buckets not ascending / empty bucket")
        last = upper
    for row in doc["timeline"]:
        for key in ("t", "connections", "send_rate", "recv_rate", "errors", "warmup"):
            check(key in row, f"timeline row lacks {key}")


def case_conn(a, tmp):
    broker = Broker(a.mosquitto, tmp)
    try:
        doc, _ = run_json(a.bench, "conn", "--port", broker.port, "--clients", 30,
                          "--connect-rate", 300, "--duration", 1, "--protocol", 5)
        check_document(doc, "conn")
        t = doc["totals"]
        check(t["connections_ok"] == 30 and t["connections_failed"] == 0, f"connections: {t}")
        check_latency(doc, "connack_latency_us")
        check("latency_us" not in doc, "latency_us present without messages")
        check(any(r["connections"] == 30 for r in doc["timeline"]), "timeline never shows 30")
    finally:
        broker.stop()


def case_pub(a, tmp):
    broker = Broker(a.mosquitto, tmp)
    try:
        for qos in (0, 1, 2):
            doc, _ = run_json(a.bench, "pub", "--port", broker.port, "--clients", 2, "--qos", qos,
                              "--count", 300, "--size", 100, "--topic", "smoke/pub/%i")
            check_document(doc, "pub")
            t = doc["totals"]
            check(t["sent"] == 600 and t["acked"] == 600, f"QoS {qos}: {t}")
            check(t["bytes_sent"] > 600 * 100, "bytes_sent too small")
            if qos > 0:
                check_latency(doc, "ack_latency_us")
    finally:
        broker.stop()


def case_sub(a, tmp):
    broker = Broker(a.mosquitto, tmp)
    try:
        sub = subprocess.Popen([a.bench, "sub", "--port", str(broker.port), "--filter",
                                "smoke/sub/#", "--qos", "1", "--count", "400", "--duration",
                                "20", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
        try:
            broker.wait_log("Received SUBSCRIBE")
            rc, _, err = run(a.bench, "pub", "--port", broker.port, "--clients", 2, "--qos", 1,
                             "--count", 200, "--rate", 2000, "--topic", "smoke/sub/%i")
            check(rc == 0, f"publisher exit {rc}: {err}")
            out, err = sub.communicate(timeout=30)
        finally:
            if sub.poll() is None:
                sub.kill()
        check(sub.returncode == 0, f"subscriber exit {sub.returncode}: {err}")
        doc = json.loads(out)
        check_document(doc, "sub")
        t = doc["totals"]
        check(t["received"] == 400, f"received {t['received']} of 400")
        check(t["lost"] == 0 and t["duplicates"] == 0, f"loss/dup: {t}")
        check_latency(doc, "latency_us")
    finally:
        broker.stop()


def run_scenario(a, tmp, name, *extra, protocol=None):
    broker = Broker(a.mosquitto, tmp)
    try:
        args = ["run", os.path.join(a.scenarios, name), "--port", broker.port, "--warmup", 1,
                "--duration", 2, "--drain", 1.5, *extra]
        if protocol:
            args += ["--protocol", protocol]
        doc, err = run_json(a.bench, *args)
        check_document(doc, "run")
        return doc
    finally:
        broker.stop()


def check_exact_delivery(doc, expected_received=None):
    t = doc["totals"]
    check(t["connections_failed"] == 0, f"connection failures: {t['failures_by_reason']}")
    check(t["sent"] > 0, "nothing sent")
    check(t["acked"] == t["sent"], f"acked {t['acked']} != sent {t['sent']}")
    want = t["sent"] if expected_received is None else expected_received
    check(t["received"] == want, f"received {t['received']} != {want}")
    check(t["lost"] == 0, f"lost {t['lost']}")
    check(t["duplicates"] == 0, f"duplicates {t['duplicates']}")
    check(t["send_rate"] > 0 and t["recv_rate"] > 0, "rates are 0")
    check_latency(doc, "latency_us")


def case_run_qos1(a, tmp):
    for protocol in (4, 5):
        doc = run_scenario(a, tmp, "fan-in.json", protocol=protocol)
        check(doc["target"]["protocol"] == protocol, "protocol override ignored")
        check_exact_delivery(doc)
        check(any(r["warmup"] for r in doc["timeline"]), "no warm-up row flagged")


def case_run_shared(a, tmp):
    doc = run_scenario(a, tmp, "shared-balance.json", "--ramp", 0.5)
    check_exact_delivery(doc)
    groups = doc.get("groups", [])
    check(len(groups) == 1 and len(groups[0]["members"]) == 4, f"groups: {groups}")
    members = groups[0]["members"]
    check(sum(m["received"] for m in members) == doc["totals"]["received"], "member sum")
    check(abs(sum(m["share"] for m in members) - 1.0) < 1e-6, "shares do not add up to 1")
    check(all(m["received"] > 0 for m in members), "a member received nothing")


def case_run_reply(a, tmp):
    doc = run_scenario(a, tmp, "migration-rehearsal.json", "--ramp", 0.5)
    check_exact_delivery(doc)
    t = doc["totals"]
    # Every telemetry message is answered by one command: half the messages are replies.
    check(t["sent"] % 2 == 0, f"sent {t['sent']} is not telemetry + one reply each")


def case_json(a, tmp):
    broker = Broker(a.mosquitto, tmp)
    try:
        report = os.path.join(tmp, "report.html")
        rc, out, err = run(a.bench, "conn", "--port", broker.port, "--clients", 3, "--duration",
                           0.5, "--json", "--report", report)
        check(rc == 0, f"exit {rc}: {err}")
        p = subprocess.run([sys.executable, "-m", "json.tool"], input=out, capture_output=True,
                           text=True)
        check(p.returncode == 0, f"python3 -m json.tool rejects the output: {p.stderr}")
        check_document(json.loads(out), "conn")
        check(os.path.getsize(report) > 0, "empty HTML report")
        # Without --json: the table on stdout.
        rc, out, err = run(a.bench, "conn", "--port", broker.port, "--clients", 3, "--duration",
                           0.5)
        check(rc == 0 and "connections" in out and "connack" in out, f"no summary table: {out}")
    finally:
        broker.stop()


def case_unreachable(a, tmp):
    port = free_port()  # nothing listens here
    for args in (["pub", "--port", port],
                 ["conn", "--port", port, "--clients", 5],
                 ["run", os.path.join(a.scenarios, "fan-in.json"), "--port", port]):
        start = time.monotonic()
        rc, out, err = run(a.bench, *args)
        check(rc == 1, f"{args[0]}: exit {rc}, expected 1")
        check(f"127.0.0.1:{port}" in err, f"{args[0]}: stderr does not name host:port: {err}")
        check("refused" in err.lower(), f"{args[0]}: stderr does not say refused: {err}")
        check(len(err.strip().splitlines()) == 1, f"{args[0]}: not one line: {err}")
        check(time.monotonic() - start < 10, f"{args[0]}: took too long")


def case_bad_scenario(a, tmp):
    cases = [
        ('{"roles": [{"name": "a", "publish": {"topic": "t", "qos": 3}}]}',
         "roles[0].publish.qos"),
        ('{"roles": [{"name": "a", "publish": {"topic": "t", "rate": -1}}]}',
         "roles[0].publish.rate"),
        ('{"roles": [{"name": "a", "subscribe": {"filter": "a/#/b"}}]}',
         "roles[0].subscribe.filter"),
        ('{"roles": [{"name": "a", "publsh": {}}]}', "unknown field"),
        ('{"name": "x"}', "roles"),
        ('{"roles": [ {"name": "a",} ]}', "not valid JSON"),
    ]
    for i, (text, needle) in enumerate(cases):
        path = os.path.join(tmp, f"bad{i}.json")
        with open(path, "w") as f:
            f.write(text)
        # No broker needed: the scenario is rejected before connecting (port 1 is never used).
        rc, out, err = run(a.bench, "run", path, "--port", 1)
        check(rc == 2, f"{text}: exit {rc}, expected 2")
        check(needle in err and path in err, f"{text}: message lacks {needle!r}/path: {err}")
    rc, _, err = run(a.bench, "run", os.path.join(tmp, "missing.json"))
    check(rc == 2 and "cannot open" in err, f"missing file: exit {rc}: {err}")


def case_usage(a, tmp):
    rc, out, _ = run(a.bench, "--help")
    check(rc == 0 and "--connect-rate" in out, "--help")
    for args, needle in ((["pub", "--frobnicate"], "unknown option"),
                         (["pub", "--qos", "7"], "--qos"),
                         (["pub", "--size", "8"], "--size"),
                         (["teleport"], "unknown mode"),
                         ([], "missing MODE")):
        rc, _, err = run(a.bench, *args)
        check(rc == 2 and needle in err, f"{args}: exit {rc}: {err}")


def case_tls(a, tmp):
    openssl = shutil.which("openssl")
    if not openssl:
        print("openssl not found: skipped")
        return
    def ossl(*args):
        subprocess.run([openssl, *args], check=True, capture_output=True, cwd=tmp)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
         "-days", "2", "-subj", "/CN=tern-bench smoke CA")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
         "-subj", "/CN=localhost")
    with open(os.path.join(tmp, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf")
    extra = (f"cafile {tmp}/ca.crt\ncertfile {tmp}/server.crt\nkeyfile {tmp}/server.key\n")
    broker = Broker(a.mosquitto, tmp, extra)
    try:
        doc, _ = run_json(a.bench, "pub", "--tls", "--cafile", os.path.join(tmp, "ca.crt"),
                          "--port", broker.port, "--qos", 1, "--count", 200)
        check(doc["target"]["tls"] is True, "target.tls")
        check(doc["totals"]["acked"] == 200, f"TLS publish: {doc['totals']}")
        # A name the certificate does not carry: verification fails, every connection fails.
        rc, out, err = run(a.bench, "conn", "--tls", "--cafile", os.path.join(tmp, "ca.crt"),
                           "--sni", "wrong.example", "--port", broker.port, "--clients", 2,
                           "--duration", 0.5)
        check(rc == 1 and "certificate verify failed" in err, f"bad name: exit {rc}: {err}")
        rc, out, err = run(a.bench, "conn", "--tls", "--insecure", "--sni", "wrong.example",
                           "--port", broker.port, "--clients", 2, "--duration", 0.5)
        check(rc == 0, f"--insecure: exit {rc}: {err}")
    finally:
        broker.stop()


def case_run_auth(a, tmp):
    """fan-in-acl's credentials and ACL, as bench/compare.sh gives them: every client logs in,
    every message passes the ACL; a wrong password is refused and reported."""
    passwd_tool = shutil.which("mosquitto_passwd") or os.path.join(
        os.path.dirname(a.mosquitto), "mosquitto_passwd")
    if not os.access(passwd_tool, os.X_OK):
        print("mosquitto_passwd not found: skipped")
        return
    scenario = os.path.join(a.scenarios, "fan-in-acl.json")
    auth_py = os.path.join(os.path.dirname(a.scenarios), "compare", "auth.py")
    passwd = os.path.join(tmp, "users.passwd")
    with open(passwd, "w") as f:
        subprocess.run([sys.executable, auth_py, "credentials", scenario], stdout=f, check=True)
    subprocess.run([passwd_tool, "-U", passwd], check=True, capture_output=True)
    extra = f"password_file {passwd}\nacl_file {os.path.join(a.scenarios, 'acl-50.acl')}\n"
    broker = Broker(a.mosquitto, tmp, extra, anonymous=False)
    try:
        doc, _ = run_json(a.bench, "run", scenario, "--port", broker.port, "--warmup", 0.5,
                          "--duration", 1, "--drain", 1)
        check(doc["totals"]["connections_ok"] == 11, f"logins: {doc['totals']}")
        check_exact_delivery(doc)
        # The command line's credentials, wrong: every CONNECT refused, named in the reasons.
        rc, out, err = run(a.bench, "conn", "--port", broker.port, "--clients", 2,
                           "--duration", 0.5, "--username", "collector", "--password", "wrong")
        check(rc == 1 and "every connection failed" in err and "connack: " in err,
              f"wrong password: exit {rc}: {err}")
    finally:
        broker.stop()


CASES = {
    "conn": case_conn, "pub": case_pub, "sub": case_sub, "run-qos1": case_run_qos1,
    "run-shared": case_run_shared, "run-reply": case_run_reply, "json": case_json,
    "unreachable": case_unreachable, "bad-scenario": case_bad_scenario, "usage": case_usage,
    "tls": case_tls, "run-auth": case_run_auth,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--mosquitto", required=True)
    ap.add_argument("--scenarios", required=True)
    ap.add_argument("case", choices=sorted(CASES))
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="tern-bench-smoke-")
    try:
        CASES[a.case](a, tmp)
    except Failure as e:
        print(f"FAIL ({a.case}): {e}", file=sys.stderr)
        log = os.path.join(tmp, "mosquitto.log")
        if os.path.exists(log):
            with open(log, errors="replace") as f:
                print("--- mosquitto log (tail)\n" + "".join(f.readlines()[-30:]), file=sys.stderr)
        return 1
    except subprocess.TimeoutExpired as e:
        print(f"FAIL ({a.case}): timed out: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"ok ({a.case})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
