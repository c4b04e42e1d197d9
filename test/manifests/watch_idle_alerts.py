#!/usr/bin/python3
"""The watch alerts on the REAL controller's series: `exit-reconciler run`
(with --pod-annotations, so both the workflows and the pods watch run)
against the kube-apisim binary, with short watch lifetimes (--watch-timeout
2s: each watch lives 2-4 s, stalled 0.4 s past that).

1. Quiet cluster: nothing happens for QUIET seconds. /metrics is scraped
   every second. Bookmarks must be counted (watch_events_total{type=
   "BOOKMARK"} moves for both resources), the activity gauge must keep
   moving, no restart may be `stalled`/`error`, /readyz stays 200.
2. Wedge: the simulator is stopped (SIGSTOP: connections stay open, nothing
   is answered). /readyz on the leader must turn 503 naming the stalled
   watch; scraping goes on.
3. The simulator resumes (SIGCONT): /readyz returns to 200.

Then promtool evaluates the SHIPPED rules on those real series. Time is
dilated by 150 = 600 s / 4 s, the ratio of the production watch lifetime
(--watch-timeout 5m: 5-10 min, stalled 60 s later) to this run's (2-4 s,
0.4 s): one real second is 150 s of series time, and each activity
timestamp keeps its age, scaled the same way. ExitReconcilerWatchStalled and
ExitReconcilerWatchRestarting must stay silent over the quiet phase, and the
stalled expression must hold for longer than the alert's `for` during the
wedge (so the alert fires on a real wedge).

Exit codes: 0 pass, 1 failure, 77 skipped (a binary is missing).
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import yaml

JOB = "kfp-exit-reconciler"
DILATION = 150  # production max watch lifetime (600 s) / this run's (4 s)
QUIET = 24      # seconds of quiet cluster
PAD = 10        # empty samples first, so that every dilated timestamp is positive
RESOURCES = ("workflows", "pods")
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)')


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


def parse(text):
    """{(name, frozenset(labels)): value} from the text exposition format."""
    out = {}
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if not m or line.startswith("#"):
            continue
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(sample, name, **labels):
    want = set(labels.items())
    hits = [v for (n, ls), v in sample.items() if n == name and want <= set(ls)]
    return sum(hits) if hits else None


def wait_for(what, fn, timeout):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last})")


class Run:
    def __init__(self, mport, hport):
        self.mport, self.hport = mport, hport
        self.scrapes = []  # (wall time, parsed sample, /readyz status)

    def scrape(self):
        status, body = get(self.mport, "/metrics")
        assert status == 200, f"/metrics answered {status}: {body[:200]}"
        ready, why = get(self.hport, "/readyz")
        self.scrapes.append((time.time(), parse(body), ready))
        return ready, why


def series_file(run, rules_file, quiet_end, wedge_from, wedge_to):
    """A promtool unit test over the dilated real series."""
    base = {"job": JOB, "namespace": "kubeflow", "instance": "ctl:8080"}

    def labels(name, **extra):
        ls = dict(base, **extra)
        return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(ls.items())) + "}"

    def pos(i):  # series time of scrape i
        return DILATION * (i + PAD)

    def at(i):  # between samples i and i+1: promtool sees sample i
        return f"{pos(i) + DILATION // 2}s"

    times = [t for t, _, _ in run.scrapes]

    def series_time(T):
        """Real wall time -> series time: scrape k's time maps to pos(k),
        linear in between (scrapes are about, not exactly, 1 s apart)."""
        if T <= times[0]:
            return pos(0) - DILATION * (times[0] - T)
        for k in range(1, len(times)):
            if T <= times[k]:
                frac = (T - times[k - 1]) / (times[k] - times[k - 1])
                return pos(k - 1) + frac * DILATION
        return pos(len(times) - 1) + DILATION * (T - times[-1])

    def dilated(i, res):
        """Scrape i's activity timestamp in series time (whole seconds keep
        promtool's comparison exact)."""
        v = value(run.scrapes[i][1], "exit_reconciler_watch_last_activity_timestamp_seconds",
                  resource=res)
        return round(series_time(v)) if v and v > 0 else 0

    pad = ["_"] * PAD
    series = []
    for res in RESOURCES:
        vals = pad + [str(dilated(i, res)) for i in range(len(run.scrapes))]
        series.append({"series": labels("exit_reconciler_watch_last_activity_timestamp_seconds",
                                        resource=res), "values": " ".join(vals)})
        for reason in ("closed", "expired", "error", "stalled"):
            vals = pad + [str(int(value(s, "exit_reconciler_watch_restarts_total", resource=res,
                                        reason=reason) or 0)) for _, s, _ in run.scrapes]
            series.append({"series": labels("exit_reconciler_watch_restarts_total",
                                            resource=res, reason=reason),
                           "values": " ".join(vals)})

    quiet_checks = []
    for i in range(QUIET // 3, quiet_end + 1, 3):
        for name in ("ExitReconcilerWatchStalled", "ExitReconcilerWatchRestarting"):
            quiet_checks.append({"eval_time": at(i), "alertname": name, "exp_alerts": []})
    stalled_expr = None
    with open(rules_file) as f:
        for g in yaml.safe_load(f)["groups"]:
            for r in g["rules"]:
                if r.get("alert") == "ExitReconcilerWatchStalled":
                    stalled_expr, hold = r["expr"], r.get("for", "0s")
    assert stalled_expr, "ExitReconcilerWatchStalled is not in the rules"
    hold_s = int(hold.rstrip("m")) * 60 if hold.endswith("m") else int(hold.rstrip("s"))
    # The wedge: the stalled condition holds (for the workflows watch) from some
    # scrape on, through the end of the wedge, for longer than `for`.
    expr_checks = []
    first = None
    for i in range(wedge_from, wedge_to + 1):
        if pos(i) + DILATION // 2 - dilated(i, "workflows") > 900:
            first = i if first is None else first
    assert first is not None, "the wedge never made the workflows watch look stalled"
    assert DILATION * (wedge_to - first) > hold_s, (
        f"wedge too short: stalled for {DILATION * (wedge_to - first)} s of series time, "
        f"the alert needs more than {hold_s} s")
    for i in (first, wedge_to):
        expr_checks.append({
            "expr": "(" + stalled_expr.strip() + ') and on (resource) '
                    'label_replace(vector(1), "resource", "workflows", "", "")',
            "eval_time": at(i),
            "exp_samples": [{"labels": '{namespace="kubeflow",resource="workflows"}',
                             "value": pos(i) + DILATION // 2 - dilated(i, "workflows")}]})
    return {
        "rule_files": [rules_file],
        "evaluation_interval": "1m",
        "tests": [{"interval": f"{DILATION}s", "input_series": series,
                   "alert_rule_test": quiet_checks, "promql_expr_test": expr_checks}],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--controller", required=True)
    ap.add_argument("--apisim", required=True)
    a = ap.parse_args()
    for b in (a.controller, a.apisim):
        if not os.path.exists(b):
            print(f"SKIPPED: no binary at {b}: the real series were not produced")
            return 77
    tool = os.path.join(a.root, "scripts/prometheus-tools.sh")
    with open(os.path.join(a.root, "manifests/components/monitoring/prometheusrule.yaml")) as f:
        spec = yaml.safe_load(f)["spec"]
    tmp = tempfile.mkdtemp(prefix="exitrec-idle-")
    procs = []
    ok = False
    try:
        seed = os.path.join(tmp, "seed.json")
        with open(seed, "w") as f:
            json.dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kubeflow"}}, f)
        simlog = open(os.path.join(tmp, "sim.log"), "w")
        sim = subprocess.Popen([a.apisim, "--port", "0", "--state-dir", os.path.join(tmp, "state"),
                                "--ready-file", os.path.join(tmp, "ready.json"), "--seed", seed,
                                "--bookmark-interval-ms", "1000"],
                               stdout=simlog, stderr=subprocess.STDOUT)
        procs.append(sim)
        ready = os.path.join(tmp, "ready.json")
        wait_for("simulator ready", lambda: os.path.exists(ready) and os.path.getsize(ready), 20)
        kubeconfig = json.load(open(ready))["kubeconfig"]
        mport, hport = free_port(), free_port()
        ctllog = open(os.path.join(tmp, "controller.log"), "w")
        ctl = subprocess.Popen([a.controller, "run", "--kubeconfig", kubeconfig,
                                "--leader-elect=false", "--kfp-report", "persistence-agent",
                                "--pod-annotations", "--watch-timeout", "2s",
                                "--metrics-addr", f"127.0.0.1:{mport}",
                                "--health-addr", f"127.0.0.1:{hport}"],
                               stdout=ctllog, stderr=subprocess.STDOUT)
        procs.append(ctl)
        run = Run(mport, hport)
        wait_for("/readyz 200", lambda: get(hport, "/readyz")[0] == 200, 30)

        # 1. Quiet.
        for _ in range(QUIET):
            r, why = run.scrape()
            assert r == 200, f"/readyz {r} on a quiet cluster: {why}"
            time.sleep(1)
        quiet_end = len(run.scrapes) - 1
        first, last = run.scrapes[0][1], run.scrapes[quiet_end][1]
        for res in RESOURCES:
            b0 = value(first, "exit_reconciler_watch_events_total", resource=res, type="BOOKMARK")
            b1 = value(last, "exit_reconciler_watch_events_total", resource=res, type="BOOKMARK")
            assert b1 > b0, f"{res}: BOOKMARK events not counted ({b0} -> {b1})"
            for reason in ("stalled", "error", "expired"):
                n = value(last, "exit_reconciler_watch_restarts_total", resource=res, reason=reason)
                assert n == 0, f"{res}: {n} '{reason}' restarts on a quiet cluster"
            closed = value(last, "exit_reconciler_watch_restarts_total", resource=res,
                           reason="closed")
            assert closed >= 3, f"{res}: only {closed} normal watch ends in {QUIET} s"
            print(f"quiet {res}: bookmarks {b0:g} -> {b1:g}, normal ends {closed:g}")

        # 2. Wedge: the API server stops answering.
        sim.send_signal(signal.SIGSTOP)
        wedge_from = len(run.scrapes)
        reason = None
        while reason is None:
            assert len(run.scrapes) - wedge_from < 40, "/readyz never reported the wedged watch"
            r, why = run.scrape()
            if r == 503 and "stalled" in why:
                reason = why.strip()
            time.sleep(1)
        print(f"wedged: /readyz 503: {reason}")
        for _ in range(12):  # long enough for the alert's `for`, dilated
            run.scrape()
            time.sleep(1)
        wedge_to = len(run.scrapes) - 1

        # 3. Recovery.
        sim.send_signal(signal.SIGCONT)
        wait_for("/readyz 200 after the wedge", lambda: get(hport, "/readyz")[0] == 200, 60)
        print("recovered: /readyz 200")

        # promtool on the dilated real series.
        rules = os.path.join(tmp, "rules.yaml")
        with open(rules, "w") as f:
            yaml.safe_dump(spec, f, sort_keys=False)
        test = os.path.join(tmp, "idle-test.yaml")
        with open(test, "w") as f:
            yaml.safe_dump(series_file(run, rules, quiet_end, wedge_from, wedge_to), f,
                           sort_keys=False)
        out = subprocess.run([tool, "promtool", "test", "rules", test], cwd=tmp,
                             capture_output=True, text=True)
        sys.stdout.write(out.stdout + out.stderr)
        assert out.returncode == 0, f"promtool test rules exited {out.returncode}"
        ok = True
    except AssertionError as e:
        print("FAIL:", e)
        for name in ("controller.log", "sim.log"):
            p = os.path.join(tmp, name)
            if os.path.exists(p):
                print(f"--- {name} (tail)")
                sys.stdout.write(open(p).read()[-4000:])
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.terminate()
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
    print("1 passed, 0 failed" if ok else f"0 passed, 1 failed (kept {tmp})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
