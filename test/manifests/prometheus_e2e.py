#!/usr/bin/python3
"""End to end with a real Prometheus server (Debian's 2.42, unpacked by
scripts/prometheus-tools.sh, on 127.0.0.1 with a temporary data dir):
Prometheus scrapes a metrics target every second and evaluates the shipped
PrometheusRule. The test asserts through Prometheus's HTTP API that
- the target is up and the standby/leader gauge is read,
- ExitReconcilerMisreportedRuns is inactive, then goes pending/firing once a
  mis-reported run is recorded, with its generation and cause labels,
- the correction counters moved,
- ExitReconcilerAbsent goes pending once the target is gone.

--target BIN: a program that prints "port N", then applies stdin commands
(see test/metrics/metrics_e2e_target_main.cpp).

--sandbox BIN: instead, scrape the real controller in the development
sandbox, BIN = exit-reconciler-sandbox (build/sandbox/; both simulators,
sample runs, one run that completes mis-reported a few seconds after start).
Prometheus scrapes from before the controller starts, so the completing
run's correction shows as counter increases, and the test asserts that
ExitReconcilerMisreportedRuns goes pending or firing and that the KFP report
and verify counters moved.
Exit codes: 0 pass, 1 failure, 77 skipped (the sandbox binary was not built).
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import yaml

JOB = "kfp-exit-reconciler"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prom:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path, **params):
        url = self.base + path + ("?" + urllib.parse.urlencode(params) if params else "")
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.loads(r.read())

    def query(self, q):
        res = self.get("/api/v1/query", query=q)["data"]["result"]
        return [(s["metric"], float(s["value"][1])) for s in res]

    def alerts(self, name):
        return [a for a in self.get("/api/v1/alerts")["data"]["alerts"]
                if a["labels"].get("alertname") == name]


def wait_for(what, fn, timeout=40):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except (OSError, ValueError, KeyError) as e:
            last = e
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last})")


def start_prometheus(prom_bin, tmp, rules, target_port):
    with open(os.path.join(tmp, "rules.yaml"), "w") as f:
        yaml.safe_dump(rules, f)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "900ms"},
        "rule_files": [os.path.join(tmp, "rules.yaml")],
        "scrape_configs": [{
            "job_name": JOB,
            "static_configs": [{"targets": [f"127.0.0.1:{target_port}"],
                                "labels": {"namespace": "kubeflow", "pod": "kfp-exit-reconciler-0"}}],
        }],
    }
    with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
        yaml.safe_dump(config, f)
    pport = free_port()
    log = open(os.path.join(tmp, "prometheus.log"), "w")
    proc = subprocess.Popen([prom_bin, f"--config.file={tmp}/prometheus.yml",
                             f"--storage.tsdb.path={tmp}/data",
                             f"--web.listen-address=127.0.0.1:{pport}", "--log.level=warn"],
                            stdout=log, stderr=subprocess.STDOUT)
    p = Prom(pport)
    wait_for("Prometheus ready", lambda: urllib.request.urlopen(p.base + "/-/ready", timeout=2).status == 200)
    return proc, p


def run_sandbox(binary, prom_bin, rules, tmp, procs):
    helptext = subprocess.run([binary, "--help"], capture_output=True, text=True)
    assert helptext.returncode == 0 and "--metrics-addr" in helptext.stdout, \
        f"{binary} --help: exit {helptext.returncode}: {helptext.stdout}{helptext.stderr}"
    mport = free_port()
    prom, p = start_prometheus(prom_bin, tmp, rules, mport)
    procs.append(prom)
    out = open(os.path.join(tmp, "sandbox.log"), "w")
    sandbox = subprocess.Popen([binary, f"--metrics-addr=127.0.0.1:{mport}",
                                "--complete-after=8s"], stdin=subprocess.DEVNULL,
                               stdout=out, stderr=subprocess.STDOUT)
    procs.append(sandbox)
    checks = 0
    wait_for("controller scraped", lambda: p.query(f'up{{job="{JOB}"}} == 1'))
    checks += 1
    alerts = wait_for("ExitReconcilerMisreportedRuns pending or firing",
                      lambda: [x for x in p.alerts("ExitReconcilerMisreportedRuns")
                               if x["state"] in ("pending", "firing")], timeout=60)
    print("ExitReconcilerMisreportedRuns", alerts[0]["state"], alerts[0]["labels"])
    checks += 1
    for step in ("workflow_patch", "kfp_report", "kfp_verify"):
        v = wait_for(f"{step} successes counted",
                     lambda: p.query(f'sum(exit_reconciler_correction_steps_total{{job="{JOB}",step="{step}",result="success"}}) > 0'))
        print(f"correction step {step}: {v[0][1]:g} successful")
    checks += 1
    moved = wait_for("correction counters moved while scraped",
                     lambda: p.query(f'sum(increase(exit_reconciler_correction_steps_total{{job="{JOB}",step="kfp_verify",result="success"}}[5m])) > 0'))
    print(f"kfp_verify increase while scraped: {moved[0][1]:g}")
    checks += 1
    return checks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--target")
    mode.add_argument("--sandbox", metavar="EXIT_RECONCILER_SANDBOX")
    a = ap.parse_args()
    tool = os.path.join(a.root, "scripts/prometheus-tools.sh")
    prom_bin = subprocess.run([tool, "path", "prometheus"], capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(a.root, "manifests/components/monitoring/prometheusrule.yaml")) as f:
        rules = yaml.safe_load(f)["spec"]
    if a.sandbox:
        if not os.path.exists(a.sandbox):
            print(f"SKIPPED: no sandbox binary at {a.sandbox}: the controller was not scraped")
            return 77
        tmp = tempfile.mkdtemp(prefix="exitrec-prom-")
        procs = []
        try:
            checks = run_sandbox(a.sandbox, prom_bin, rules, tmp, procs)
            if checks == 77:
                return 77
        except AssertionError as e:
            print("FAIL:", e)
            for name in ("sandbox.log", "prometheus.log"):
                path = os.path.join(tmp, name)
                if os.path.exists(path):
                    print(f"--- {name} (tail)")
                    sys.stdout.write(open(path).read()[-3000:])
            print("0 passed, 1 failed")
            return 1
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(timeout=15)
                    except subprocess.TimeoutExpired:
                        proc.kill()
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"{checks} passed, 0 failed")
        return 0

    tmp = tempfile.mkdtemp(prefix="exitrec-prom-")
    procs = []
    checks = 0
    try:
        target = subprocess.Popen([a.target], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(target)
        first = target.stdout.readline().split()
        assert first[:1] == ["port"], f"target printed {first}"
        tport = int(first[1])

        def send(cmd):
            target.stdin.write(cmd + "\n")
            target.stdin.flush()
            if cmd != "quit":
                assert target.stdout.readline().strip() == "ok", f"target rejected {cmd!r}"

        prom, p = start_prometheus(prom_bin, tmp, rules, tport)
        procs.append(prom)

        # Standby first: leader status 0 is scraped.
        wait_for("target up", lambda: p.query(f'up{{job="{JOB}"}} == 1'))
        st = wait_for("leader status", lambda: p.query(f'leader_election_master_status{{job="{JOB}"}}'))
        assert st[0][1] == 0.0, st
        checks += 1
        send("leader 1")
        wait_for("leader status 1", lambda: p.query(f'leader_election_master_status{{job="{JOB}"}} == 1'))
        # A few evaluations with data and nothing mis-reported: the alert stays quiet.
        wait_for("two scrapes of the counters",
                 lambda: p.query(f'count_over_time(exit_reconciler_misreported_runs_total{{job="{JOB}",cause="hooked-task-failed",generation="kfp-v2-hook"}}[1m]) >= 3'))
        assert p.alerts("ExitReconcilerMisreportedRuns") == [], p.alerts("ExitReconcilerMisreportedRuns")
        checks += 1

        send("misreport kfp-v2-hook hooked-task-failed")
        alerts = wait_for("ExitReconcilerMisreportedRuns pending or firing",
                          lambda: [x for x in p.alerts("ExitReconcilerMisreportedRuns")
                                   if x["state"] in ("pending", "firing")])
        lab = alerts[0]["labels"]
        assert lab.get("cause") == "hooked-task-failed" and lab.get("generation") == "kfp-v2-hook" \
            and lab.get("namespace") == "kubeflow" and lab.get("severity") == "warning", lab
        print(f"ExitReconcilerMisreportedRuns {alerts[0]['state']}: {lab}")
        checks += 1
        for step in ("workflow_patch", "kfp_report", "kfp_verify", "event"):
            v = p.query(f'exit_reconciler_correction_steps_total{{job="{JOB}",step="{step}",result="success"}}')
            assert len(v) == 1 and v[0][1] == 1.0, (step, v)
        v = p.query(f'exit_reconciler_correction_latency_seconds_count{{job="{JOB}"}}')
        assert v and v[0][1] == 1.0, v
        checks += 1
        for name in ("ExitReconcilerCorrectionsFailing", "ExitReconcilerKfpReportsFailing", "ExitReconcilerNoLeader"):
            assert p.alerts(name) == [], (name, p.alerts(name))
        checks += 1

        # The controller disappears: ExitReconcilerAbsent goes pending (for: 10m).
        send("quit")
        target.wait(timeout=10)
        absent = wait_for("ExitReconcilerAbsent pending",
                          lambda: [x for x in p.alerts("ExitReconcilerAbsent") if x["state"] == "pending"])
        print(f"ExitReconcilerAbsent {absent[0]['state']}")
        checks += 1
    except AssertionError as e:
        print("FAIL:", e)
        logf = os.path.join(tmp, "prometheus.log")
        if os.path.exists(logf):
            sys.stdout.write(open(logf).read()[-3000:])
        print(f"{checks} passed, 1 failed")
        return 1
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{checks} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
