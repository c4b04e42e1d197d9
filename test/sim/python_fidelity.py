#!/usr/bin/python3
"""Fidelity test: Debian's python3-kubernetes against kube-apisim over TLS with a token.

Usage: /usr/bin/python3 python_fidelity.py <path to kube-apisim>
Exit 77 (ctest: skipped) when the kubernetes package is not importable.
"""
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

try:
    from kubernetes import client, config, watch
    from kubernetes.client.rest import ApiException
except ImportError as e:  # not a silent skip: ctest reports it as skipped with this reason
    print(f"SKIP: python3-kubernetes not importable ({e}): python fidelity checks did not run",
          file=sys.stderr)
    sys.exit(77)

GROUP, VERSION, PLURAL = "argoproj.io", "v1alpha1", "workflows"
NS = "kubeflow"


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"ok: {what}")


def expect_api_error(status, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except ApiException as e:
        if e.status != status:
            raise AssertionError(f"expected HTTP {status}, got {e.status}: {e.body}")
        return e
    raise AssertionError(f"expected HTTP {status}, call succeeded")


def workflow(name, labels=None):
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Workflow",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"entrypoint": "main"}}


class Sim:
    def __init__(self, binary, workdir):
        self.workdir = workdir
        ready = os.path.join(workdir, "ready.json")
        self.log = open(os.path.join(workdir, "sim.log"), "w")
        self.proc = subprocess.Popen(
            [binary, "--port", "0", "--tls", "--token", "py-token", "--state-dir",
             os.path.join(workdir, "state"), "--ready-file", ready,
             "--bookmark-interval-ms", "200", "--log-requests"],
            stderr=self.log)
        deadline = time.time() + 10
        while not os.path.exists(ready):
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("simulator did not become ready")
            time.sleep(0.05)
        with open(ready) as f:
            self.info = json.load(f)
        self.token = "py-token"

    def control(self, path, body=None):
        ctx = ssl.create_default_context(cafile=self.info["ca"])
        data = json.dumps(body).encode() if body is not None else b""
        req = urllib.request.Request(self.info["url"] + "/_sim/" + path, data=data, method="POST",
                                     headers={"Authorization": "Bearer " + self.token,
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return json.load(r)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        finally:
            self.log.close()


def main():
    binary = sys.argv[1]
    if not os.access(binary, os.X_OK):
        sys.exit(f"FAIL: simulator binary {binary} not built")
    workdir = tempfile.mkdtemp(prefix="py-fidelity-")
    sim = Sim(binary, workdir)
    try:
        run(sim)
        print("PASS: python3-kubernetes fidelity")
    except Exception:
        with open(os.path.join(workdir, "sim.log")) as f:
            print("--- simulator log (tail)\n" + "".join(f.readlines()[-40:]), file=sys.stderr)
        raise
    finally:
        sim.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def run(sim):
    api_client = config.new_client_from_config(config_file=sim.info["kubeconfig"])
    core = client.CoreV1Api(api_client)
    crd = client.CustomObjectsApi(api_client)
    coord = client.CoordinationV1Api(api_client)

    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    check(NS in [n.metadata.name for n in core.list_namespace().items], "CoreV1Api namespaces")

    # Create and list with pagination and selectors.
    for i in range(5):
        crd.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL,
                                            workflow(f"wf-{i}", {"idx": str(i)}))
    page = crd.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, limit=2)
    check(len(page["items"]) == 2 and page["metadata"].get("continue"), "list limit=2 gives continue")
    names = [w["metadata"]["name"] for w in page["items"]]
    while page["metadata"].get("continue"):
        page = crd.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, limit=2,
                                                 _continue=page["metadata"]["continue"])
        names += [w["metadata"]["name"] for w in page["items"]]
    check(names == [f"wf-{i}" for i in range(5)], "pagination returns every item once, in order")
    sel = crd.list_cluster_custom_object(GROUP, VERSION, PLURAL, label_selector="idx in (1,3)")
    check(sorted(w["metadata"]["name"] for w in sel["items"]) == ["wf-1", "wf-3"],
          "cluster-wide list with a set-based label selector")

    # Patches: dict -> merge patch; list -> JSON patch; stale RV -> 409; failed test -> 422.
    cur = crd.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "wf-0")
    rv = cur["metadata"]["resourceVersion"]
    patched = crd.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "wf-0",
                                                 {"metadata": {"labels": {"phase": "one"}}})
    check(patched["metadata"]["labels"]["phase"] == "one", "merge patch from a dict")
    e = expect_api_error(409, crd.patch_namespaced_custom_object, GROUP, VERSION, NS, PLURAL,
                         "wf-0", {"metadata": {"resourceVersion": rv, "labels": {"x": "y"}}})
    check(json.loads(e.body)["reason"] == "Conflict", "merge patch with a stale resourceVersion: 409")
    # python-kubernetes 22.6 sends every CustomObjectsApi patch as merge-patch+json, so a
    # JSON-patch list is rejected like kube-apiserver does (400); JSON patch is tested on pods.
    e = expect_api_error(400, crd.patch_namespaced_custom_object, GROUP, VERSION, NS, PLURAL,
                         "wf-0", [{"op": "replace", "path": "/spec/entrypoint", "value": "x"}])
    check("cannot unmarshal array" in json.loads(e.body)["message"],
          "array body as merge patch: 400 like kube-apiserver")

    # Watch with bookmarks (python sends allowWatchBookmarks=True, watch=True).
    start_rv = crd.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)["metadata"][
        "resourceVersion"]

    def later():
        time.sleep(0.5)
        crd.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "wf-1",
                                           {"metadata": {"labels": {"watched": "yes"}}})
        crd.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "wf-2")

    t = threading.Thread(target=later)
    t.start()
    seen = []
    w = watch.Watch()
    for ev in w.stream(crd.list_namespaced_custom_object, GROUP, VERSION, NS, PLURAL,
                       resource_version=start_rv, allow_watch_bookmarks=True, timeout_seconds=3):
        seen.append((ev["type"], ev["object"]["metadata"].get("name"),
                     ev["object"]["metadata"]["resourceVersion"]))
        if ev["type"] == "DELETED":
            # keep reading until a bookmark after the delete arrives
            pass
        if any(s[0] == "BOOKMARK" for s in seen) and any(s[0] == "DELETED" for s in seen) and \
                seen[-1][0] == "BOOKMARK":
            w.stop()
    t.join()
    types = [s[0] for s in seen]
    check("MODIFIED" in types and "DELETED" in types, f"watch events arrive: {types}")
    check("BOOKMARK" in types, "bookmarks arrive when allow_watch_bookmarks=True")
    check(seen[-1][2] == crd.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)["metadata"][
        "resourceVersion"], "last bookmark carries the current resourceVersion")
    log = open(os.path.join(sim.workdir, "sim.log")).read()
    check("allowWatchBookmarks=True" in log and "watch=True" in log,
          "python sends capitalised booleans and they are accepted")

    # The in-stream 410 ERROR event raises ApiException(410).
    sim.control("expire-next-watch?form=event")
    try:
        for _ in watch.Watch().stream(crd.list_namespaced_custom_object, GROUP, VERSION, NS, PLURAL,
                                      resource_version=start_rv, timeout_seconds=3):
            pass
        raise AssertionError("expected ApiException(410) from the ERROR event")
    except ApiException as e:
        check(e.status == 410, "in-stream ERROR 410 raises ApiException(410)")
    # So does a genuinely too-old resourceVersion after compaction.
    sim.control("compact")
    try:
        for _ in watch.Watch().stream(crd.list_namespaced_custom_object, GROUP, VERSION, NS, PLURAL,
                                      resource_version=start_rv, timeout_seconds=3):
            pass
        raise AssertionError("expected ApiException(410) after compaction")
    except ApiException as e:
        check(e.status == 410, "watch from a compacted resourceVersion: ApiException(410)")
    # HTTP 410 form.
    sim.control("expire-next-watch?form=http")
    e = expect_api_error(410, crd.list_namespaced_custom_object, GROUP, VERSION, NS, PLURAL,
                         watch=True, resource_version=start_rv, _preload_content=False)
    check(json.loads(e.body)["reason"] == "Expired", "HTTP 410 on the watch request")

    # Core pods: create, list, watch with synthetic ADDED, merge patch, delete.
    core.create_namespaced_pod(NS, {"apiVersion": "v1", "kind": "Pod",
                                    "metadata": {"name": "p1", "labels": {"app": "x"}},
                                    "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    pods = core.list_namespaced_pod(NS, label_selector="app=x")
    check([p.metadata.name for p in pods.items] == ["p1"], "CoreV1Api list pods with a selector")
    added = [ev["object"].metadata.name for ev in
             watch.Watch().stream(core.list_namespaced_pod, NS, timeout_seconds=1)]
    check(added == ["p1"], "pod watch from RV unset sends the current state as ADDED")
    p = core.patch_namespaced_pod("p1", NS, {"metadata": {"annotations": {"a": "b"}}})
    check(p.metadata.annotations == {"a": "b"}, "CoreV1Api patch pod (strategic merge, no lists)")
    prv = p.metadata.resource_version
    p = core.patch_namespaced_pod("p1", NS, [
        {"op": "test", "path": "/metadata/resourceVersion", "value": prv},
        {"op": "add", "path": "/metadata/labels/guarded", "value": "yes"}])
    check(p.metadata.labels.get("guarded") == "yes", "guarded JSON patch on a pod")
    e = expect_api_error(422, core.patch_namespaced_pod, "p1", NS, [
        {"op": "test", "path": "/metadata/resourceVersion", "value": prv},
        {"op": "add", "path": "/metadata/labels/again", "value": "no"}])
    check(json.loads(e.body)["reason"] == "Invalid", "JSON patch with a failing test: 422")
    expect_api_error(404, core.read_namespaced_pod, "missing", NS)
    print("ok: 404 for a missing pod")

    # Leases: optimistic concurrency on PUT.
    lease = coord.create_namespaced_lease(NS, {"apiVersion": "coordination.k8s.io/v1",
                                               "kind": "Lease", "metadata": {"name": "leader"},
                                               "spec": {"holderIdentity": "a"}})
    lease.spec.holder_identity = "b"
    updated = coord.replace_namespaced_lease("leader", NS, lease)
    check(updated.spec.holder_identity == "b", "lease update with the current resourceVersion")
    lease.spec.holder_identity = "c"  # still carries the old resourceVersion
    e = expect_api_error(409, coord.replace_namespaced_lease, "leader", NS, lease)
    check("the object has been modified" in json.loads(e.body)["message"], "stale lease PUT: 409")

    # Injected 429 with Retry-After: urllib3 (under python-kubernetes) honours Retry-After on 429
    # and retries, so the call succeeds after waiting at least the advertised second.
    sim.control("fail", {"verb": "list", "resource": "workflows", "count": 1, "status": 429,
                         "retryAfter": 1})
    t0 = time.monotonic()
    crd.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)
    check(time.monotonic() - t0 >= 0.9, "429 with Retry-After: 1 is honoured by the client")
    # Without Retry-After, a 503 surfaces as ApiException(503).
    sim.control("fail", {"verb": "get", "resource": "workflows", "count": 1, "status": 503})
    e = expect_api_error(503, crd.get_namespaced_custom_object, GROUP, VERSION, NS, PLURAL, "wf-0")
    check(json.loads(e.body)["reason"] == "ServiceUnavailable", "injected 503 with a Status body")

    # Token rotation: the old token is refused with 401.
    sim.control("token", {"token": "rotated"})
    sim.token = "rotated"
    expect_api_error(401, core.list_namespace)
    print("ok: old token refused after rotation")
    fresh = client.CoreV1Api(config.new_client_from_config(config_file=sim.info["kubeconfig"]))
    check(len(fresh.list_namespace().items) >= 3, "rewritten kubeconfig carries the new token")


if __name__ == "__main__":
    main()
