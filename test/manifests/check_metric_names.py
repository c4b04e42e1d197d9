#!/usr/bin/python3
"""Every PromQL expression in the Grafana dashboard and in the alert rules may
only use metrics that the controller really exports, with label names that
exist on them and label values that it really produces.

The reference is the exposition of a freshly constructed `Metrics` (the real
class in metrics/), printed by exit-reconciler-metrics-dump: every family with
zero-valued series for all closed label sets.

Exit codes: 0 pass, 1 failure.
"""
import argparse
import json
import os
import re
import subprocess
import sys

import yaml

# Labels Prometheus attaches at scrape time (ServiceMonitor) and synthetic series.
TARGET_LABELS = {"job", "namespace", "pod", "instance", "service", "endpoint", "container"}
SYNTHETIC = {"up"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
            "unless", "offset", "inf", "nan"}
IDENT = r"[a-zA-Z_:][a-zA-Z0-9_:]*"


def parse_exposition(text):
    """sample name -> {label -> set(values)}"""
    series = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(rf"^({IDENT})(?:\{{(.*)\}})?\s+\S+", line)
        if not m:
            raise ValueError(f"unparsable exposition line: {line!r}")
        labels = series.setdefault(m.group(1), {})
        for k, v in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""):
            labels.setdefault(k, set()).add(v)
    return series


def exprs_from_dashboard(dash):
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((f"dashboard panel {p.get('title')!r}", t["expr"]))
            walk(p.get("panels", []))

    walk(dash.get("panels", []))
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if v.get("type") == "query" and q:
            out.append((f"dashboard variable {v.get('name')!r}", q))
    return out


def exprs_from_rules(cr):
    return [(f"rule {r.get('alert') or r.get('record')!r}", r["expr"])
            for g in cr["spec"]["groups"] for r in g["rules"]]


def check_expr(where, expr, series, errors):
    text = re.sub(r"\$__\w+|\$\{?\w+\}?", "x", expr)  # Grafana variables
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    used_labels = set()
    selectors = []
    # metric{matchers}, or {matchers} alone (then the name comes from __name__).
    for m in re.finditer(rf"({IDENT})?\s*\{{([^}}]*)\}}", text):
        selectors.append((m.group(1), m.group(2)))
    names = set()
    for name, matchers in selectors:
        if name is None:
            errors.append(f"{where}: selector without a metric name: {{{matchers}}}")
            continue
        names.add(name)
        for lname, op, value in re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', matchers):
            used_labels.add(lname)
            if name in SYNTHETIC or lname in TARGET_LABELS:
                continue
            have = series.get(name, {})
            if lname not in have:
                errors.append(f"{where}: {name} has no label {lname!r} (has {sorted(have)})")
                continue
            if lname == "le":
                continue
            values = value.split("|") if op in ("=~", "!~") else [value]
            for v in values:
                if op in ("=~", "!~") and not re.fullmatch(r"[\w.+-]*", v):
                    continue  # a real regex; only plain alternatives are checked
                if v not in have[lname]:
                    errors.append(f"{where}: {name}{{{lname}{op}\"{value}\"}}: value {v!r} is never "
                                  f"exported (known: {sorted(have[lname])})")
    rest = re.sub(rf"({IDENT})?\s*\{{[^}}]*\}}", lambda m: f" {m.group(1) or ''} ", text)
    rest = re.sub(r'"(?:[^"\\]|\\.)*"', " ", rest)
    grouping = re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", rest)
    rest = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", rest)
    # label_values(metric, label): the second argument is a label.
    for metric, label in re.findall(rf"label_values\(\s*({IDENT})\s*,\s*({IDENT})\s*\)", rest):
        grouping.append(label)
        rest = rest.replace(label + ")", ")")
    for m in re.finditer(rf"({IDENT})(\s*\()?", rest):
        tok, call = m.group(1), m.group(2)
        if call or tok.lower() in KEYWORDS or re.fullmatch(r"[0-9.e+-]+", tok):
            continue
        names.add(tok)
    for name in names:
        if name not in series and name not in SYNTHETIC:
            errors.append(f"{where}: metric {name} is not exported by the controller")
    known = set(TARGET_LABELS) | {"le"}
    for name in names:
        known |= set(series.get(name, {}))
    for group in grouping:
        for lname in re.findall(r"\w+", group):
            if lname not in known:
                errors.append(f"{where}: groups by {lname!r}, which none of {sorted(names)} has")
    return names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--dump", required=True, help="path of exit-reconciler-metrics-dump")
    a = ap.parse_args()
    out = subprocess.run([a.dump], capture_output=True, text=True, check=True)
    series = parse_exposition(out.stdout)
    mon = os.path.join(a.root, "manifests/components/monitoring")
    with open(os.path.join(mon, "dashboard.json")) as f:
        dash = json.load(f)
    with open(os.path.join(mon, "prometheusrule.yaml")) as f:
        cr = yaml.safe_load(f)
    exprs = exprs_from_dashboard(dash) + exprs_from_rules(cr)
    errors = []
    used = set()
    for where, expr in exprs:
        used |= check_expr(where, expr, series, errors)
    for e in errors:
        print("FAIL:", e)
    print(f"{len(exprs)} expressions use {len(used)} metric names; the controller exports "
          f"{len(series)} sample names; {len(errors)} problems")
    print(f"{len(exprs) - len({e.split(':')[0] for e in errors})} passed, "
          f"{len({e.split(':')[0] for e in errors})} failed")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
