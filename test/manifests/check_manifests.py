#!/usr/bin/python3
"""Renders every kustomize overlay in manifests/overlays with `kubectl kustomize`
and checks the result offline: kinds and apiVersions, required fields, the
hardened Deployment, ports against the flags, Service / ServiceMonitor / webhook
wiring, RBAC against manifests/rbac-calls.txt (exactly, no more, no less), pod
patch only with --pod-annotations (also for the base alone and an overlay
without that component), the cert-manager CA chain, the NetworkPolicies, and
no CPU limit where the webhook is served.

With --binary PATH it instead checks that every flag the overlays pass to the
controller is one `exit-reconciler run --help` lists.

Exit codes: 0 pass, 1 failures (each printed), 77 skipped (reason printed).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys

import yaml

OVERLAYS = ["standalone", "multi-user", "webhook-cert-manager", "webhook-self-signed"]
NAMESPACE = "kubeflow"
APP = "kfp-exit-reconciler"
SA = APP
UID = 65532
KFP_AUDIENCE = "pipelines.kubeflow.org"

# kind -> apiVersion, and whether it is namespaced.
KINDS = {
    "ServiceAccount": ("v1", True),
    "Service": ("v1", True),
    "ConfigMap": ("v1", True),
    "Secret": ("v1", True),
    "Deployment": ("apps/v1", True),
    "PodDisruptionBudget": ("policy/v1", True),
    "ClusterRole": ("rbac.authorization.k8s.io/v1", False),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io/v1", False),
    "Role": ("rbac.authorization.k8s.io/v1", True),
    "RoleBinding": ("rbac.authorization.k8s.io/v1", True),
    "ServiceMonitor": ("monitoring.coreos.com/v1", True),
    "PrometheusRule": ("monitoring.coreos.com/v1", True),
    "MutatingWebhookConfiguration": ("admissionregistration.k8s.io/v1", False),
    "NetworkPolicy": ("networking.k8s.io/v1", True),
    "AuthorizationPolicy": ("security.istio.io/v1beta1", True),
    "Issuer": ("cert-manager.io/v1", True),
    "Certificate": ("cert-manager.io/v1", True),
}

BASE_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
              "Deployment", "PodDisruptionBudget", "Service", "ServiceMonitor", "PrometheusRule",
              "ConfigMap", "NetworkPolicy"}
EXTRA_KINDS = {
    "standalone": set(),
    "multi-user": {"AuthorizationPolicy"},
    "webhook-cert-manager": {"MutatingWebhookConfiguration", "Issuer", "Certificate"},
    "webhook-self-signed": {"MutatingWebhookConfiguration", "Secret"},
}


class Checker:
    def __init__(self, overlay):
        self.overlay = overlay
        self.errors = []

    def check(self, cond, msg):
        if not cond:
            self.errors.append(f"{self.overlay}: {msg}")
        return cond


def render(root, overlay, kubectl):
    path = os.path.join(root, "manifests", "overlays", overlay)
    out = subprocess.run([kubectl, "kustomize", path], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {path} failed:\n{out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def components_of(root, overlay):
    with open(os.path.join(root, "manifests", "overlays", overlay, "kustomization.yaml")) as f:
        k = yaml.safe_load(f)
    return {os.path.basename(c.rstrip("/")) for c in k.get("components", [])}


def parse_flags(args):
    flags = {}
    for a in args:
        m = re.match(r"^--([a-z0-9-]+)(?:=(.*))?$", a)
        if m:
            flags[m.group(1)] = m.group(2) if m.group(2) is not None else "true"
    return flags


def port_of(addr):
    m = re.match(r"^(?:\[[^\]]*\]|[^:]*):(\d+)$", addr or "")
    return int(m.group(1)) if m else None


def one(c, objs, kind, name=None):
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    c.check(len(found) == 1, f"expected exactly one {kind}{' ' + name if name else ''}, found {len(found)}")
    return found[0] if found else None


def load_rbac_calls(root):
    calls = []
    with open(os.path.join(root, "manifests", "rbac-calls.txt")) as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            cols = line.split()
            if len(cols) not in (5, 6) or cols[1] not in ("cluster", "namespace"):
                raise ValueError(f"rbac-calls.txt:{n}: expected 'component scope group resource verb [name]'")
            comp, scope, group, resource, verb = cols[:5]
            calls.append((comp, (scope, "" if group == "core" else group, resource, verb,
                                 cols[5] if len(cols) == 6 else "")))
    return calls


def granted_permissions(c, objs):
    """(scope, group, resource, verb, resourceName) granted to our ServiceAccount."""
    roles = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o
             for o in objs if o["kind"] in ("Role", "ClusterRole")}
    perms = set()
    for b in objs:
        if b["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        subjects = b.get("subjects") or []
        ours = [s for s in subjects if s.get("kind") == "ServiceAccount" and s.get("name") == SA]
        if not ours:
            continue
        c.check(len(subjects) == 1, f"{b['kind']} {b['metadata']['name']} binds more than our ServiceAccount")
        c.check(ours[0].get("namespace") == NAMESPACE,
                f"{b['kind']} {b['metadata']['name']} subject namespace {ours[0].get('namespace')!r}")
        ref = b["roleRef"]
        if b["kind"] == "RoleBinding":
            c.check(b["metadata"].get("namespace") == NAMESPACE,
                    f"RoleBinding {b['metadata']['name']} outside the controller namespace")
            scope = "namespace"
            key = (ref["kind"], NAMESPACE if ref["kind"] == "Role" else None, ref["name"])
        else:
            scope = "cluster"
            c.check(ref["kind"] == "ClusterRole", f"ClusterRoleBinding {b['metadata']['name']} refs {ref['kind']}")
            key = ("ClusterRole", None, ref["name"])
        role = roles.get(key)
        if not c.check(role is not None, f"{b['kind']} {b['metadata']['name']} refers to missing {key}"):
            continue
        for rule in role.get("rules") or []:
            c.check("nonResourceURLs" not in rule, f"{key[2]}: nonResourceURLs granted")
            names = rule.get("resourceNames") or [""]
            for g in rule.get("apiGroups", []):
                for r in rule.get("resources", []):
                    for v in rule.get("verbs", []):
                        for n in names:
                            perms.add((scope, g, r, v, n))
    return perms


def check_rbac(c, objs, root):
    comps = {"base"} | components_of(root, c.overlay)
    expected = {p for comp, p in load_rbac_calls(root) if comp in comps}
    granted = granted_permissions(c, objs)
    for p in sorted(granted - expected):
        c.check(False, f"RBAC grants {p}, which manifests/rbac-calls.txt does not list")
    for p in sorted(expected - granted):
        c.check(False, f"RBAC lacks {p}, listed in manifests/rbac-calls.txt")
    for (scope, g, r, v, n) in granted:
        c.check("*" not in (g, r, v), f"wildcard in RBAC: {(scope, g, r, v)}")
        c.check(v not in ("delete", "deletecollection", "escalate", "bind", "impersonate"),
                f"forbidden verb {v} on {r}")
        if r == "secrets":
            c.check(n != "" and scope == "namespace",
                    f"secrets must be namespaced and scoped by resourceName, got {(scope, v, n)}")
    # Every role/binding in the output belongs to us (nothing unbound lying around).
    for o in objs:
        if o["kind"] in ("Role", "ClusterRole"):
            bound = any(b["kind"].endswith("Binding") and b["roleRef"]["name"] == o["metadata"]["name"]
                        for b in objs)
            c.check(bound, f"{o['kind']} {o['metadata']['name']} is not bound")


def _lost_fields(orig, back, path=""):
    """Paths present in `orig` but missing or different in `back`."""
    out = []
    if isinstance(orig, dict):
        for k, v in orig.items():
            if not isinstance(back, dict) or k not in back:
                out.append(f"{path}/{k}")
            else:
                out += _lost_fields(v, back[k], f"{path}/{k}")
    elif isinstance(orig, list):
        if not isinstance(back, list) or len(orig) != len(back):
            out.append(path)
        else:
            for i, (x, y) in enumerate(zip(orig, back)):
                out += _lost_fields(x, y, f"{path}[{i}]")
    elif orig != back and str(orig) != str(back):
        out.append(f"{path}: {orig!r} became {back!r}")
    return out


def check_schemas(c, objs):
    """Built-in kinds must survive a round trip through the typed models of
    Debian's python3-kubernetes: a misspelt or misplaced field is dropped by the
    model (and would be dropped, or rejected, by the API server)."""
    try:
        import kubernetes.client as kc
        api = kc.ApiClient()
    except ImportError:
        c.check(False, "python3-kubernetes is required for the schema check")
        return
    for o in objs:
        if o.get("apiVersion") not in ("v1", "apps/v1", "policy/v1", "rbac.authorization.k8s.io/v1",
                                       "admissionregistration.k8s.io/v1", "networking.k8s.io/v1"):
            continue  # custom resources: checked field by field elsewhere
        model = getattr(kc, "V1" + o["kind"], None)
        if model is None:
            continue
        try:
            typed = api._ApiClient__deserialize(o, "V1" + o["kind"])
        except (ValueError, TypeError) as e:
            c.check(False, f"{o['kind']} {o['metadata'].get('name')}: invalid: {e}")
            continue
        back = api.sanitize_for_serialization(typed)
        for p in _lost_fields(o, back):
            c.check(False, f"{o['kind']} {o['metadata'].get('name')}: field {p} is not in the schema")


def check_objects(c, objs):
    kinds = {o["kind"] for o in objs}
    c.check(kinds == BASE_KINDS | EXTRA_KINDS[c.overlay],
            f"kinds {sorted(kinds)} != expected {sorted(BASE_KINDS | EXTRA_KINDS[c.overlay])}")
    seen = set()
    for o in objs:
        kind, md = o.get("kind"), o.get("metadata") or {}
        c.check(kind in KINDS, f"unexpected kind {kind}")
        if kind not in KINDS:
            continue
        api, namespaced = KINDS[kind]
        c.check(o.get("apiVersion") == api, f"{kind} {md.get('name')}: apiVersion {o.get('apiVersion')} != {api}")
        c.check(bool(md.get("name")), f"{kind} without metadata.name")
        if namespaced:
            c.check(md.get("namespace") == NAMESPACE, f"{kind} {md.get('name')}: namespace {md.get('namespace')!r}")
        else:
            c.check("namespace" not in md, f"cluster-scoped {kind} {md.get('name')} has a namespace")
        key = (kind, md.get("namespace"), md.get("name"))
        c.check(key not in seen, f"duplicate {key}")
        seen.add(key)
        if kind in ("Deployment", "Service", "ServiceMonitor", "PodDisruptionBudget"):
            c.check("spec" in o, f"{kind} {md.get('name')} without spec")
        if kind == "ClusterRole" or kind == "Role":
            c.check(bool(o.get("rules")), f"{kind} {md.get('name')} has no rules")


def check_deployment(c, objs, root):
    d = one(c, objs, "Deployment", APP)
    if d is None:
        return None, {}
    spec = d["spec"]
    pod = spec["template"]["spec"]
    c.check(spec.get("replicas") == 2, "replicas must be 2 (leader election, one standby)")
    sel = spec["selector"]["matchLabels"]
    tmpl_labels = spec["template"]["metadata"].get("labels", {})
    c.check(all(tmpl_labels.get(k) == v for k, v in sel.items()), "selector does not match pod labels")
    c.check(pod.get("serviceAccountName") == SA, "serviceAccountName")
    c.check(pod.get("terminationGracePeriodSeconds", 30) >= 30, "grace period below 30 s")
    psc = pod.get("securityContext", {})
    c.check(psc.get("runAsNonRoot") is True, "pod runAsNonRoot")
    c.check(psc.get("runAsUser") == UID and isinstance(psc.get("runAsUser"), int), "pod runAsUser must be numeric 65532")
    c.check(psc.get("runAsGroup") == UID, "pod runAsGroup 65532")
    c.check((psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault", "pod seccomp RuntimeDefault")
    c.check(not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC"), "host namespaces")
    conts = pod["containers"]
    c.check(len(conts) == 1, "exactly one container")
    ct = conts[0]
    with open(os.path.join(root, "CMakeLists.txt")) as f:
        version = re.search(r"project\([^)]*VERSION\s+([0-9.]+)", f.read()).group(1)
    c.check(ct["image"] == f"ghcr.io/kfp-exit-reconciler/controller:{version}",
            f"image {ct['image']} (expected the project version {version})")
    sc = ct.get("securityContext", {})
    c.check(sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem")
    c.check(sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation false")
    c.check(sc.get("privileged") in (None, False), "privileged")
    c.check((sc.get("capabilities") or {}).get("drop") == ["ALL"], "capabilities.drop [ALL]")
    c.check(not (sc.get("capabilities") or {}).get("add"), "no added capabilities")
    c.check(sc.get("runAsNonRoot") is not False and sc.get("runAsUser", UID) == UID, "container user")
    c.check((sc.get("seccompProfile") or {}).get("type", "RuntimeDefault") == "RuntimeDefault", "container seccomp")
    res = ct.get("resources", {})
    for kind in ("requests", "limits"):
        c.check("memory" in res.get(kind, {}), f"resources.{kind}.memory missing")
    c.check("cpu" in res.get("requests", {}), "resources.requests.cpu missing")
    # The container that answers admissions has no CPU limit (CFS throttling
    # would push reviews past the API server's timeout); the others keep one.
    serves_webhook = any(o["kind"] == "MutatingWebhookConfiguration" for o in objs)
    c.check(("cpu" in res.get("limits", {})) != serves_webhook,
            f"resources.limits.cpu must be {'absent' if serves_webhook else 'set'} "
            f"{'with' if serves_webhook else 'without'} the webhook: {res.get('limits')}")
    args = ct.get("args", [])
    c.check(args[:1] == ["run"], f"args must start with the `run` subcommand, got {args[:1]}")
    flags = parse_flags(args)
    env = {e["name"]: e for e in ct.get("env", [])}
    for flag, want in (("leader-elect", "true"), ("log-format", "json"),
                       ("leader-election-name", APP),
                       ("leader-election-namespace", "$(POD_NAMESPACE)"),
                       ("leader-election-identity", "$(POD_NAME)"),
                       ("kfp-api-url", "http://ml-pipeline.kubeflow:8888")):
        c.check(flags.get(flag) == want, f"--{flag}={flags.get(flag)!r}, expected {want!r}")
    for var, field in (("POD_NAMESPACE", "metadata.namespace"), ("POD_NAME", "metadata.name")):
        got = (((env.get(var) or {}).get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
        c.check(got == field, f"env {var} must come from the downward API {field}, got {got}")
    # Every $(VAR) used in args is defined in env (else the kubelet passes it literally).
    for a in args:
        for var in re.findall(r"\$\(([A-Z_]+)\)", a):
            c.check(var in env, f"arg {a} uses undefined env {var}")
    # Probes on the health port.
    ports = {p["name"]: p for p in ct.get("ports", [])}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        hg = (ct.get(probe) or {}).get("httpGet") or {}
        c.check(hg.get("path") == path, f"{probe} path {hg.get('path')}")
        c.check(hg.get("port") in ("health", ports.get("health", {}).get("containerPort")),
                f"{probe} must use the health port, got {hg.get('port')}")
    # Ports consistent with the flags, both ways.
    flag_ports = {"metrics": "metrics-addr", "health": "health-addr", "webhook": "webhook-addr"}
    for name, flag in flag_ports.items():
        if flag in flags or name in ports:
            c.check(name in ports, f"--{flag} set but no container port named {name}")
            c.check(flag in flags, f"container port {name} but no --{flag}")
            if name in ports and flag in flags:
                c.check(ports[name]["containerPort"] == port_of(flags[flag]),
                        f"container port {name}={ports[name]['containerPort']} but --{flag}={flags[flag]}")
    c.check({"metrics", "health"} <= set(ports), "metrics and health ports required")
    c.check(set(ports) <= set(flag_ports), f"unexpected container ports {sorted(set(ports) - set(flag_ports))}")
    c.check(("webhook" in ports) == ("MutatingWebhookConfiguration" in {o["kind"] for o in objs}),
            "webhook port iff the webhook is installed")
    # Projected KFP token where --kfp-token-file points.
    mounts = {m["mountPath"]: m for m in ct.get("volumeMounts", [])}
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    tf = flags.get("kfp-token-file", "")
    m = mounts.get(os.path.dirname(tf))
    if c.check(m is not None, f"--kfp-token-file={tf}: no volume mounted at {os.path.dirname(tf)}"):
        c.check(m.get("readOnly") is True, "token mount must be read-only")
        srcs = ((vols.get(m["name"]) or {}).get("projected") or {}).get("sources", [])
        tok = [s["serviceAccountToken"] for s in srcs if "serviceAccountToken" in s]
        c.check(len(tok) == 1 and tok[0].get("audience") == KFP_AUDIENCE
                and tok[0].get("path") == os.path.basename(tf),
                f"projected token must have audience {KFP_AUDIENCE} and path {os.path.basename(tf)}: {tok}")
        c.check(len(tok) == 1 and 600 <= tok[0].get("expirationSeconds", 3600) <= 86400, "token expiry")
    # Files the controller writes must be on a writable volume.
    for flag in ("webhook-cert-file", "webhook-key-file"):
        if flag in flags:
            fdir = os.path.dirname(flags[flag])
            owner = [mp for mp in mounts if fdir == mp or fdir.startswith(mp.rstrip("/") + "/")]
            c.check(owner, f"--{flag}={flags[flag]} is not on a mounted volume (root fs is read-only)")
    # PodDisruptionBudget keeps one replica.
    pdb = one(c, objs, "PodDisruptionBudget", APP)
    if pdb:
        c.check(pdb["spec"].get("selector", {}).get("matchLabels") == sel, "PDB selector != Deployment selector")
        c.check(pdb["spec"].get("minAvailable") == 1, "PDB minAvailable 1")
    return d, flags


def check_service_and_monitoring(c, objs, d, root):
    svc = one(c, objs, "Service", APP)
    if svc is None or d is None:
        return
    ct = d["spec"]["template"]["spec"]["containers"][0]
    cports = {p["name"]: p["containerPort"] for p in ct.get("ports", [])}
    labels = d["spec"]["template"]["metadata"]["labels"]
    c.check(all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()), "Service selector misses the pods")
    sports = {}
    for p in svc["spec"]["ports"]:
        c.check(bool(p.get("name")), f"Service port {p.get('port')} is not named")
        c.check(p.get("targetPort") in cports, f"Service port {p.get('name')} targets {p.get('targetPort')}, not a named container port")
        sports[p["name"]] = p
    c.check(set(sports) == set(cports), f"Service ports {sorted(sports)} != container ports {sorted(cports)}")
    sm = one(c, objs, "ServiceMonitor", APP)
    if sm:
        c.check(bool(sm["metadata"].get("labels", {}).get("release")),
                "ServiceMonitor needs the `release` label kube-prometheus-stack selects on")
        sel = sm["spec"]["selector"]["matchLabels"]
        c.check(all(svc["metadata"].get("labels", {}).get(k) == v for k, v in sel.items()),
                "ServiceMonitor selector does not match the Service labels")
        eps = sm["spec"]["endpoints"]
        c.check(len(eps) == 1 and eps[0].get("port") == "metrics" and eps[0].get("path") == "/metrics",
                f"ServiceMonitor endpoint must scrape port `metrics` path /metrics: {eps}")
        c.check(eps[0].get("port") in sports, "ServiceMonitor port is not a Service port name")
        # job label = the value of the jobLabel label on the Service; rules select job="kfp-exit-reconciler".
        c.check(svc["metadata"]["labels"].get(sm["spec"].get("jobLabel")) == APP,
                "ServiceMonitor jobLabel must yield job=\"kfp-exit-reconciler\"")
    pr = one(c, objs, "PrometheusRule", APP)
    if pr:
        c.check(bool(pr["metadata"].get("labels", {}).get("release")), "PrometheusRule needs the `release` label")
        with open(os.path.join(root, "docs", "operations.md")) as f:
            ops = f.read()
        anchors = {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
                   for h in re.findall(r"^#+\s+(.*)$", ops, re.M)}
        alerts = [r for g in pr["spec"]["groups"] for r in g["rules"] if "alert" in r]
        c.check(len(alerts) >= 8, "at least the eight alerts of the issue")
        for r in alerts:
            a = r.get("annotations", {})
            for k in ("summary", "description", "runbook_url"):
                c.check(bool(a.get(k)), f"alert {r['alert']} lacks {k}")
            c.check(r.get("labels", {}).get("severity") in ("critical", "warning", "info"), f"alert {r['alert']} severity")
            anchor = a.get("runbook_url", "").rsplit("#", 1)[-1]
            c.check(anchor == r["alert"].lower() and anchor in anchors,
                    f"alert {r['alert']}: runbook anchor #{anchor} not a heading in docs/operations.md")
    cm = one(c, objs, "ConfigMap", "kfp-exit-reconciler-dashboard")
    if cm:
        c.check(cm["metadata"].get("labels", {}).get("grafana_dashboard") == "1", "dashboard label grafana_dashboard: \"1\"")
        c.check(len(cm.get("data", {})) == 1, "one dashboard per ConfigMap")
        for name, text in cm.get("data", {}).items():
            dash = json.loads(text)
            for k in ("uid", "title", "schemaVersion", "panels"):
                c.check(k in dash, f"dashboard lacks {k}")
            tl = dash.get("templating", {}).get("list", [])
            c.check(any(v.get("type") == "datasource" and v.get("query") == "prometheus" for v in tl),
                    "dashboard needs a prometheus datasource variable")
            titles = " | ".join(p.get("title", "").lower() for p in dash.get("panels", []))
            for want in ("exit handlers by body phase", "mis-reports by cause", "correction latency",
                         "injection results", "kubernetes api", "kfp api", "work queue"):
                c.check(want in titles, f"dashboard has no panel about {want!r}")
            for p in dash.get("panels", []):
                if p.get("type") == "row":
                    continue
                c.check((p.get("datasource") or {}).get("uid") == "${datasource}",
                        f"panel {p.get('title')} does not use the datasource variable")
                c.check(bool(p.get("targets")), f"panel {p.get('title')} has no query")


def check_webhook(c, objs, d, flags, root):
    mwcs = [o for o in objs if o["kind"] == "MutatingWebhookConfiguration"]
    if not mwcs:
        c.check(not any(f.startswith("webhook-") for f in flags), "webhook flags without the webhook")
        return
    mwc = mwcs[0]
    svc = one(c, objs, "Service", APP)
    whs = mwc.get("webhooks", [])
    c.check(len(whs) == 1, "one webhook")
    for wh in whs:
        c.check(wh.get("sideEffects") == "None", "sideEffects None")
        c.check(wh.get("admissionReviewVersions") == ["v1"], "admissionReviewVersions [v1]")
        c.check(wh.get("failurePolicy") == "Ignore", "failurePolicy Ignore (never block a pod)")
        c.check(2 < wh.get("timeoutSeconds", 10) <= 10, "timeoutSeconds above the 2 s handler deadline, at most 10")
        rules = wh.get("rules", [])
        c.check(rules == [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                           "resources": ["pods"], "scope": "Namespaced"}], f"rules: {rules}")
        exprs = (wh.get("objectSelector") or {}).get("matchExpressions", [])
        c.check({"key": "pipeline/runid", "operator": "Exists"} in exprs, "objectSelector on pipeline/runid")
        ns_exprs = (wh.get("namespaceSelector") or {}).get("matchExpressions", [])
        c.check(any(e.get("key") == "kubernetes.io/metadata.name" and e.get("operator") == "NotIn"
                    and "kube-system" in e.get("values", []) for e in ns_exprs), "namespaceSelector excludes kube-system")
        s = (wh.get("clientConfig") or {}).get("service") or {}
        c.check(s.get("name") == APP and s.get("namespace") == NAMESPACE, f"clientConfig.service {s}")
        sp = {p["name"]: p for p in svc["spec"]["ports"]} if svc else {}
        c.check("webhook" in sp and sp["webhook"]["port"] == s.get("port"),
                f"clientConfig port {s.get('port')} != Service port `webhook`")
        c.check(bool(s.get("path")), "clientConfig.service.path")
        # The path the webhook server serves (webhook/admission_webhook.h), when present.
        src = os.path.join(root, "webhook", "admission_webhook.h")
        if os.path.exists(src):
            with open(src) as f:
                m = re.search(r'kMutatePodsPath\s*=\s*"([^"]+)"', f.read())
            c.check(m is not None and m.group(1) == s.get("path"),
                    f"clientConfig.service.path {s.get('path')} != kMutatePodsPath in webhook/admission_webhook.h")
    dns = {f"{APP}.{NAMESPACE}.svc", f"{APP}.{NAMESPACE}.svc.cluster.local"}
    if c.overlay == "webhook-cert-manager":
        cert = check_ca_chain(c, objs, mwc)
        if cert:
            c.check(set(cert["spec"].get("dnsNames", [])) == dns, f"Certificate dnsNames {cert['spec'].get('dnsNames')}")
            pod = d["spec"]["template"]["spec"]
            vols = {v["name"]: v for v in pod["volumes"]}
            mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
            m = mounts.get(os.path.dirname(flags.get("webhook-cert-file", "")))
            c.check(m is not None and (vols[m["name"]].get("secret") or {}).get("secretName") == cert["spec"]["secretName"],
                    "--webhook-cert-file must point into the mounted Certificate Secret")
            c.check(os.path.dirname(flags.get("webhook-key-file", "")) == os.path.dirname(flags.get("webhook-cert-file", "")),
                    "key and cert in the same Secret mount")
    if c.overlay == "webhook-self-signed":
        sec = one(c, objs, "Secret")
        if sec:
            c.check(flags.get("webhook-secret-name") == sec["metadata"]["name"], "--webhook-secret-name != shipped Secret")
            c.check(not sec.get("data") and not sec.get("stringData"), "the shipped Secret must be empty")
        c.check(flags.get("webhook-configuration-name") == mwc["metadata"]["name"],
                "--webhook-configuration-name != MutatingWebhookConfiguration name")
        c.check(flags.get("webhook-service-name") == APP, "--webhook-service-name")
        c.check(flags.get("webhook-self-signed") == "true", "--webhook-self-signed=true")


def check_ca_chain(c, objs, mwc):
    """cert-manager: self-signed Issuer -> CA Certificate (isCA, key kept) -> CA
    Issuer -> serving Certificate, caBundle injected from the CA certificate, so
    renewing the serving certificate leaves caBundle unchanged. Returns the
    serving Certificate."""
    issuers = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Issuer"}
    certs = [o for o in objs if o["kind"] == "Certificate"]
    c.check(len(issuers) == 2 and len(certs) == 2,
            f"expected 2 Issuers and 2 Certificates, got {sorted(issuers)} / {[x['metadata']['name'] for x in certs]}")
    for x in certs:
        ref = x["spec"].get("issuerRef", {})
        c.check(ref.get("kind", "Issuer") == "Issuer" and ref.get("name") in issuers,
                f"Certificate {x['metadata']['name']}: issuerRef {ref} is not an Issuer of this overlay")
    ca = [x for x in certs if x["spec"].get("isCA") is True]
    serving = [x for x in certs if not x["spec"].get("isCA")]
    if not (c.check(len(ca) == 1, "exactly one CA Certificate (spec.isCA: true)")
            and c.check(len(serving) == 1, "exactly one serving Certificate")):
        return None
    ca, serving = ca[0], serving[0]
    ca_issuer = issuers.get(ca["spec"]["issuerRef"].get("name"), {})
    c.check("selfSigned" in ca_issuer.get("spec", {}), "the CA Certificate must come from the self-signed Issuer")
    c.check((ca["spec"].get("privateKey") or {}).get("rotationPolicy") == "Never",
            "CA privateKey.rotationPolicy must be Never (a CA renewal keeps the key that signed the serving certificates)")
    sv_issuer = issuers.get(serving["spec"]["issuerRef"].get("name"), {})
    c.check((sv_issuer.get("spec", {}).get("ca") or {}).get("secretName") == ca["spec"].get("secretName"),
            f"the serving Certificate's Issuer must be a CA Issuer over Secret {ca['spec'].get('secretName')}: "
            f"{sv_issuer.get('spec')}")
    c.check(serving["spec"].get("secretName") != ca["spec"].get("secretName"), "CA and serving Secrets differ")
    c.check(ca["spec"].get("duration") and serving["spec"].get("duration")
            and _hours(ca["spec"]["duration"]) > 4 * _hours(serving["spec"]["duration"]),
            "the CA must outlive many serving certificates")
    ann = mwc["metadata"].get("annotations", {}).get("cert-manager.io/inject-ca-from")
    c.check(ann == f"{NAMESPACE}/{ca['metadata']['name']}",
            f"inject-ca-from {ann}: must name the CA Certificate {NAMESPACE}/{ca['metadata']['name']}")
    return serving


def _hours(duration):
    m = re.fullmatch(r"(\d+)h", str(duration))
    return int(m.group(1)) if m else 0


def check_network_policies(c, objs, d):
    """Ingress only. metrics and health: from the monitoring namespace by label
    (the kubelet's probes are node-local, always allowed); the webhook port
    (iff the webhook is installed): from anywhere, and no other port open to
    anywhere."""
    if d is None:
        return
    labels = d["spec"]["template"]["metadata"]["labels"]
    ct = d["spec"]["template"]["spec"]["containers"][0]
    cports = {p["name"]: p["containerPort"] for p in ct.get("ports", [])}
    ours = []
    for np in (o for o in objs if o["kind"] == "NetworkPolicy"):
        sel = np["spec"].get("podSelector", {})
        c.check(not sel.get("matchExpressions"), f"NetworkPolicy {np['metadata']['name']}: matchLabels only")
        if all(labels.get(k) == v for k, v in (sel.get("matchLabels") or {}).items()) and sel.get("matchLabels"):
            ours.append(np)
        c.check(np["spec"].get("policyTypes") == ["Ingress"],
                f"NetworkPolicy {np['metadata']['name']}: policyTypes must be [Ingress] (egress to the API server and KFP is cluster-specific)")
    c.check(bool(ours), "no NetworkPolicy selects the controller pods")
    open_to_all, from_monitoring = set(), set()
    for np in ours:
        for rule in np["spec"].get("ingress", []):
            ports = [p.get("port") for p in rule.get("ports", [])]
            c.check(bool(ports), f"NetworkPolicy {np['metadata']['name']}: an ingress rule without ports opens every port")
            for p in ports:
                c.check(p in cports, f"NetworkPolicy {np['metadata']['name']}: port {p!r} is not a named container port")
            peers = rule.get("from")
            if not peers:
                open_to_all.update(ports)
                continue
            for peer in peers:
                c.check("ipBlock" not in peer, f"NetworkPolicy {np['metadata']['name']}: ipBlock peer")
                ns = (peer.get("namespaceSelector") or {}).get("matchLabels") or {}
                if c.check(bool(ns), f"NetworkPolicy {np['metadata']['name']}: peer without a namespace label: {peer}"):
                    from_monitoring.update(ports)
    webhook = "webhook" in cports
    c.check(open_to_all == ({"webhook"} if webhook else set()),
            f"ports open to every source: {sorted(open_to_all)} (only the webhook's, the API server's source is not selectable)")
    c.check({"metrics", "health"} <= from_monitoring,
            f"metrics and health must be reachable from the monitoring namespace: {sorted(from_monitoring)}")


def check_pod_patch_split(c, objs, d, flags):
    """Cluster-wide pod patch is granted iff the controller runs with
    --pod-annotations (components/pod-annotations brings both)."""
    perms = granted_permissions(c, objs)
    patch = any(r == "pods" and v in ("patch", "update") for (_, g, r, v, _) in perms)
    on = "pod-annotations" in flags
    c.check(patch == on, f"pods patch granted: {patch}, --pod-annotations: {on} (they must go together)")
    if not on:
        c.check(not any(r == "pods" and v in ("get", "watch") for (_, g, r, v, _) in perms),
                "pods get/watch granted without --pod-annotations")


def check_pod_patch_split_without_component(root, kubectl):
    """The base alone, and a webhook overlay without components/pod-annotations:
    no --pod-annotations and no pod patch."""
    import tempfile
    errors = []
    with tempfile.TemporaryDirectory(dir=os.path.join(root, "manifests", "overlays")) as tmp:
        with open(os.path.join(tmp, "kustomization.yaml"), "w") as f:
            yaml.safe_dump({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                            "namespace": NAMESPACE, "resources": ["../../base"],
                            "components": ["../../components/webhook",
                                           "../../components/webhook-self-signed"]}, f)
        for name, path in (("base", os.path.join(root, "manifests", "base")), ("webhook-without-pod-annotations", tmp)):
            c = Checker(name)
            out = subprocess.run([kubectl, "kustomize", path], capture_output=True, text=True)
            if not c.check(out.returncode == 0, f"kubectl kustomize failed: {out.stderr}"):
                errors += c.errors
                continue
            objs = [o for o in yaml.safe_load_all(out.stdout) if o]
            d = one(c, objs, "Deployment", APP)
            if d:
                flags = parse_flags(d["spec"]["template"]["spec"]["containers"][0].get("args", []))
                c.check("pod-annotations" not in flags, "--pod-annotations set without its component")
                check_pod_patch_split(c, objs, d, flags)
            errors += c.errors
    return errors


def check_overlay(root, overlay, kubectl):
    c = Checker(overlay)
    objs = render(root, overlay, kubectl)
    check_objects(c, objs)
    check_schemas(c, objs)
    d, flags = check_deployment(c, objs, root)
    check_service_and_monitoring(c, objs, d, root)
    check_webhook(c, objs, d, flags, root)
    check_rbac(c, objs, root)
    check_pod_patch_split(c, objs, d, flags)
    check_network_policies(c, objs, d)
    if overlay == "multi-user":
        ap = one(c, objs, "AuthorizationPolicy")
        if ap:
            principals = [p for r in ap["spec"]["rules"] for f in r.get("from", [])
                          for p in f["source"].get("principals", [])]
            c.check(principals == [f"cluster.local/ns/{NAMESPACE}/sa/{SA}"], f"principals {principals}")
        labels = d["spec"]["template"]["metadata"]["labels"] if d else {}
        c.check(labels.get("sidecar.istio.io/inject") == "true", "multi-user pods join the mesh")
    return c.errors, objs


def check_binary_flags(root, binary, kubectl):
    if not os.path.exists(binary):
        print(f"SKIPPED: controller binary not built at {binary}: flag names in manifests/ "
              "not compared with `exit-reconciler run --help`")
        return 77
    out = subprocess.run([binary, "run", "--help"], capture_output=True, text=True, timeout=30)
    text = out.stdout + out.stderr
    known = set(re.findall(r"--([a-z0-9][a-z0-9-]*)", text))
    errors = []
    if out.returncode != 0:
        errors.append(f"`{binary} run --help` exited {out.returncode}")
    # Until the webhook server is part of `run` (no --webhook-* flag at all),
    # the webhook overlays cannot be checked against the binary: say so.
    has_webhook = any(f.startswith("webhook-") for f in known)
    checked = 0
    for overlay in OVERLAYS:
        if overlay.startswith("webhook-") and not has_webhook:
            print(f"SKIPPED {overlay}: `exit-reconciler run --help` has no --webhook-* flags yet "
                  "(webhook server not wired into `run`); this overlay needs a binary that has them")
            continue
        checked += 1
        objs = render(root, overlay, kubectl)
        for d in (o for o in objs if o["kind"] == "Deployment"):
            for flag in parse_flags(d["spec"]["template"]["spec"]["containers"][0]["args"]):
                if flag not in known:
                    errors.append(f"{overlay}: --{flag} is not a flag of `exit-reconciler run` (see --help)")
    for e in errors:
        print("FAIL:", e)
    failed = len({e.split(":")[0] for e in errors})
    print(f"{checked - failed} passed, {failed} failed")
    return 1 if errors else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--binary", help="check overlay flags against this exit-reconciler binary")
    ap.add_argument("--dump", metavar="DIR", help="also write each rendered overlay to DIR/<overlay>.yaml")
    a = ap.parse_args()
    kubectl = shutil.which("kubectl")
    if not kubectl:
        print("SKIPPED: kubectl not found on PATH: manifests not rendered or checked")
        return 77
    if a.binary:
        return check_binary_flags(a.root, a.binary, kubectl)
    failed = 0
    for overlay in OVERLAYS:
        errors, objs = check_overlay(a.root, overlay, kubectl)
        if a.dump:
            os.makedirs(a.dump, exist_ok=True)
            with open(os.path.join(a.dump, overlay + ".yaml"), "w") as f:
                yaml.safe_dump_all(objs, f)
        for e in errors:
            print("FAIL:", e)
        print(f"{overlay}: {len(objs)} objects, {'ok' if not errors else str(len(errors)) + ' problems'}")
        failed += bool(errors)
    errors = check_pod_patch_split_without_component(a.root, kubectl)
    for e in errors:
        print("FAIL:", e)
    print(f"base and an overlay without pod-annotations: {'ok' if not errors else str(len(errors)) + ' problems'}")
    failed += bool(errors)
    print(f"{len(OVERLAYS) + 1 - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
