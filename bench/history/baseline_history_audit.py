#!/usr/bin/python3
"""Baseline for the run-history benchmark: the obvious script a platform team
would write. Lists KFP runs (GET /apis/v2beta1/runs, page_token paging) and,
for each, GETs /apis/v1beta1/runs/{id} and parses
pipeline_runtime.workflow_manifest, counting nodes that failed while the run
is reported Succeeded. Standard library only (urllib + json), one connection
per request as urllib does.

usage: baseline_history_audit.py URL
"""
import json
import sys
import time
import urllib.parse
import urllib.request


def get(url):
    with urllib.request.urlopen(url) as r:
        return r.read()


def main():
    base = sys.argv[1].rstrip("/")
    token = ""
    runs = mis = nbytes = 0
    start = time.monotonic()
    while True:
        q = {"page_size": "200"}
        if token:
            q["page_token"] = token
        page = json.loads(get(base + "/apis/v2beta1/runs?" + urllib.parse.urlencode(q)))
        for run in page.get("runs", []):
            detail = json.loads(get(base + "/apis/v1beta1/runs/" + run["run_id"]))
            text = detail.get("pipeline_runtime", {}).get("workflow_manifest", "")
            nbytes += len(text)
            wf = json.loads(text)
            nodes = wf.get("status", {}).get("nodes", {})
            failed = any(n.get("phase") in ("Failed", "Error") and n.get("type") == "Pod"
                         for n in nodes.values())
            if wf.get("status", {}).get("phase") == "Succeeded" and failed:
                mis += 1
            runs += 1
        token = page.get("next_page_token", "")
        if not token:
            break
    seconds = time.monotonic() - start
    print(json.dumps({"runs": runs, "misreported": mis, "seconds": seconds,
                      "runsPerSecond": runs / seconds, "mbPerSecond": nbytes / seconds / 1e6}))


if __name__ == "__main__":
    main()
