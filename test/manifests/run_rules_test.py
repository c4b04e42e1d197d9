#!/usr/bin/python3
"""Alert rules: extracts the rule groups from the PrometheusRule custom resource
(promtool rejects the CR itself), then runs `promtool check rules` and
`promtool test rules` on rules-test.yaml. Also requires that rules-test.yaml
makes every alert fire and clear again, so a new alert cannot ship untested.

promtool comes from Debian's `prometheus` package, unpacked by
scripts/prometheus-tools.sh (downloaded with apt-get on first use).
Exit codes: 0 pass, 1 failure.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import yaml


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    a = ap.parse_args()
    rule_cr = os.path.join(a.root, "manifests/components/monitoring/prometheusrule.yaml")
    tests = os.path.join(a.root, "test/manifests/rules-test.yaml")
    tool = os.path.join(a.root, "scripts/prometheus-tools.sh")
    with open(rule_cr) as f:
        cr = yaml.safe_load(f)
    assert cr["kind"] == "PrometheusRule", cr["kind"]
    alerts = {r["alert"] for g in cr["spec"]["groups"] for r in g["rules"] if "alert" in r}

    errors = []
    with open(tests) as f:
        t = yaml.safe_load(f)
    fired, cleared = set(), set()
    for case in t["tests"]:
        # Order by eval time: an alert is "cleared" when an empty expectation
        # follows a firing one within the same test.
        checks = sorted(case.get("alert_rule_test", []),
                        key=lambda c: int(str(c["eval_time"]).rstrip("m")))
        seen_firing = set()
        for c in checks:
            name = c["alertname"]
            if c.get("exp_alerts"):
                fired.add(name)
                seen_firing.add(name)
            elif name in seen_firing:
                cleared.add(name)
    for name in sorted(alerts - fired):
        errors.append(f"rules-test.yaml never makes {name} fire")
    for name in sorted(alerts - cleared):
        errors.append(f"rules-test.yaml never checks that {name} clears after firing")
    for name in sorted((fired | cleared) - alerts):
        errors.append(f"rules-test.yaml tests {name}, which the PrometheusRule does not define")

    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "rules.yaml"), "w") as f:
            yaml.safe_dump(cr["spec"], f, sort_keys=False)
        shutil.copy(tests, os.path.join(tmp, "rules-test.yaml"))
        for args in (["check", "rules", "rules.yaml"], ["test", "rules", "rules-test.yaml"]):
            out = subprocess.run([tool, "promtool", *args], cwd=tmp, capture_output=True, text=True)
            sys.stdout.write(out.stdout + out.stderr)
            if out.returncode != 0:
                errors.append(f"promtool {' '.join(args)} exited {out.returncode}")
    for e in errors:
        print("FAIL:", e)
    print(f"{len(alerts)} alerts; {2 - sum(e.startswith('promtool') for e in errors)} of 2 promtool "
          f"runs ok; {len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
