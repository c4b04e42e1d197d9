#!/usr/bin/python3
"""Chaos soak: two exit-reconciler replicas under random faults, then invariants.

Starts, all on 127.0.0.1:
  - kube-apisim (the Kubernetes API simulator),
  - kfp-apisim in its faithful mode for one KFP version, with the persistence-agent emulation
    and its Workflow client pointed at kube-apisim,
  - two `exit-reconciler run` replicas with leader election (short lease timings, so that
    leadership moves often), each with its own kubeconfig whose server URL ends in
    /_client/<replica> (and its own KFP URL with the same suffix), so that the simulators'
    request logs say which replica sent each write.
A driver creates KFP runs continuously (createRun, then a Running Workflow, then its
completion), built from samples/ with fresh names, uids and run ids: a share mis-reported, most
healthy, some hostile (wrong-typed or forged exit-reconciler.io annotations, huge annotations,
a gzip bomb in status.compressedNodes, wrong-typed nodes). Meanwhile a seeded RNG injects
faults: watch drops (clean and abort), 410 in both forms, 409, 429 with Retry-After, 5xx bursts,
KFP outages (errors and stalls), Lease API stalls, and kill -9 of the leader at random moments
and right after its correction PATCH (before its KFP report); killed replicas are restarted.

After --duration seconds the faults stop, the cluster settles, and the invariants are checked:
  I1 every mis-reported run is corrected (status.phase Failed) and FAILED in KFP;
  I2 no run is reported FAILED by a replica after its report was verified;
  I3 no healthy run is touched (no PATCH from a replica, no report from a replica, its KFP state
     never changes after its terminal report);
  I4 no Workflow is deleted (no DELETE on workflows in the kube log, by anyone);
  I5 no write (Workflow PATCH, Event write, KFP report) leaves a replica while it does not hold
     the lease (lease holder timeline from the Lease writes in the kube log);
  plus: hostile runs are never made FAILED and are reported a bounded number of times, and no
  replica dies other than by our kill -9 or by exiting after losing the lease.
Prints a summary with the figures and exits 1 on any violation (2 on a setup failure).

  scripts/chaos-soak.py                  # 10 minutes (the figures in README.md)
  scripts/chaos-soak.py --duration 90    # smoke run
  scripts/chaos-soak.py --seed 1234      # replay a fault schedule (timing still varies)

Python 3 standard library only. Not part of ctest or scripts/test.sh.
"""

from __future__ import annotations

import argparse
import base64
import collections
import ctypes
import heapq
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPLICAS = ("replica-a", "replica-b")
# Each start of a replica is a new incarnation with its own leader-election identity and
# client name "<replica>.<n>" (a restarted pod gets a fresh hostname_<random> identity too).


def is_replica(client: str) -> bool:
    return client.split(".")[0] in REPLICAS
LEASE_NS = "kubeflow"
LEASE_NAME = "kfp-exit-reconciler"
RUN_NAMESPACES = ("team-a", "team-b", "team-c")
ANN = "exit-reconciler.io/"
KFP_REPORTED_AT = ANN + "kfp-reported-at"
KFP_REVERIFIED_AT = ANN + "kfp-reverified-at"
KFP_REPORT_ERROR = ANN + "kfp-report-error"
LBL_RUNID = "pipeline/runid"
LBL_COMPLETED = "workflows.argoproj.io/completed"
LBL_PHASE = "workflows.argoproj.io/phase"
# Most reports a hostile run may get from the replicas over the whole soak (issue 16 item 1:
# garbage in our annotations is reported "a bounded number of times at most").
MAX_HOSTILE_REPORTS = 3

T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[soak {time.monotonic() - T0:7.1f}s] {msg}", flush=True)


def now_us() -> int:
    return time.time_ns() // 1000


def rfc3339(t: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if t is None else t))


class SetupError(Exception):
    pass


# --------------------------------------------------------------------------- HTTP


class Http:
    """Plain HTTP/1.1 to 127.0.0.1:port, one connection per call (simple and fault-proof)."""

    def __init__(self, port: int, token: str = "", ua: str = "chaos-soak", prefix: str = ""):
        self.port = port
        self.token = token
        self.ua = ua
        self.prefix = prefix  # e.g. /_client/argo: names this client in the simulator's log

    def call(self, method: str, path: str, body=None, ctype: str = "application/json",
             timeout: float = 30.0) -> tuple[int, bytes, dict]:
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            if isinstance(data, str):
                data = data.encode()
        headers = {"User-Agent": self.ua, "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = ctype
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, self.prefix + path, body=data, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
            return resp.status, payload, {k.lower(): v for k, v in resp.getheaders()}
        except (OSError, http.client.HTTPException) as e:
            return 0, str(e).encode(), {}
        finally:
            conn.close()

    def json(self, method: str, path: str, body=None, ctype: str = "application/json",
             timeout: float = 30.0):
        status, payload, _ = self.call(method, path, body, ctype, timeout)
        try:
            return status, json.loads(payload) if payload else None
        except ValueError:
            return status, None

    def retry(self, method: str, path: str, body=None, ctype: str = "application/json",
              ok=(200, 201), deadline_s: float = 60.0, retry_conflict: bool = True):
        """Retries 0/409/429/5xx (injected faults hit the driver too) until ok or the deadline."""
        end = time.monotonic() + deadline_s
        delay = 0.05
        while True:
            status, payload, headers = self.call(method, path, body, ctype)
            if status in ok:
                return status, payload
            retryable = (0, 429, 500, 502, 503, 504) + ((409,) if retry_conflict else ())
            if status not in retryable or time.monotonic() > end:
                return status, payload
            wait = delay
            if headers.get("retry-after", "").isdigit():
                wait = max(wait, float(headers["retry-after"]))
            time.sleep(min(wait, 2.0))
            delay = min(delay * 2, 1.0)


# --------------------------------------------------------------------------- processes


def _die_with_parent() -> None:
    """In the child: SIGKILL when the soak dies, even by kill -9 (Linux PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


class Procs:
    """Every child we start, by pid; stopped (TERM, then KILL) on any exit of the soak."""

    def __init__(self):
        self.lock = threading.Lock()
        self.children: dict[int, subprocess.Popen] = {}
        self.closed = False

    def spawn(self, argv: list[str], log_path: str) -> subprocess.Popen:
        with self.lock:
            if self.closed:
                raise SetupError("stopping: no new processes")
            with open(log_path, "ab") as out:
                p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=_die_with_parent)
            self.children[p.pid] = p
        return p

    def stop_all(self) -> None:
        with self.lock:
            self.closed = True
            procs = [p for p in self.children.values() if p.poll() is None]
        for p in procs:
            try:
                os.kill(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        end = time.monotonic() + 5
        for p in procs:
            try:
                p.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()


def wait_ready_file(path: str, proc: subprocess.Popen, what: str, log_path: str) -> dict:
    end = time.monotonic() + 30
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SetupError(f"{what} exited with {proc.returncode}; see {log_path}")
        if os.path.exists(path):
            with open(path) as f:
                return json.load(f)
        time.sleep(0.05)
    raise SetupError(f"{what} did not become ready in 30 s; see {log_path}")


def peak_rss_kib(pid: int) -> int:
    """VmHWM: the most resident memory the process has had since it started."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Replica:
    def __init__(self, name: str, argv, procs: Procs, workdir: str):
        self.name = name
        self.argv = argv  # incarnation name -> argv
        self.procs = procs
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.proc: subprocess.Popen | None = None
        self.identity = ""
        self.starts = 0
        self.our_kills: set[int] = set()
        self.exits: list[dict] = []
        self.restart_at: float | None = None
        self.max_rss_kib = 0
        self.lock = threading.Lock()

    def start(self) -> None:
        with self.lock:
            self.identity = f"{self.name}.{self.starts + 1}"
            with open(self.log_path, "a") as f:
                f.write(f"===== soak: start of {self.identity} at {rfc3339()}\n")
            self.proc = self.procs.spawn(self.argv(self.identity), self.log_path)
            self.starts += 1
            self.restart_at = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> int | None:
        """kill -9; returns the kill time (us) or None when not running."""
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                return None
            self.our_kills.add(self.proc.pid)
            t = now_us()
            os.kill(self.proc.pid, signal.SIGKILL)
            return t

    def check(self, rng: random.Random, restart: bool) -> None:
        """Notes an exit, classifies it and schedules (or performs) the restart."""
        with self.lock:
            p = self.proc
            if p is None:
                return
            if p.poll() is None:
                self.max_rss_kib = max(self.max_rss_kib, peak_rss_kib(p.pid))
                return
            if self.restart_at is None:
                code = p.returncode
                if code == -signal.SIGKILL and p.pid in self.our_kills:
                    kind = "killed"
                elif code == 1:
                    kind = "exited-1"  # e.g. "lost leadership ...; stopping" (a pod restarts)
                elif code == 0:
                    kind = "exited-0"
                else:
                    kind = "crash"
                self.exits.append({"pid": p.pid, "identity": self.identity, "code": code,
                                   "kind": kind, "atUs": now_us()})
                if kind == "crash":
                    log(f"{self.name}: pid {p.pid} died with {code} (not our kill)")
                self.restart_at = time.monotonic() + rng.uniform(0.5, 2.0)
        if restart and self.restart_at is not None and time.monotonic() >= self.restart_at:
            self.start()


# --------------------------------------------------------------------------- samples


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def deployment_memory_limit_mib() -> int:
    """resources.limits.memory of the controller in manifests/base/deployment.yaml (Mi)."""
    try:
        with open(os.path.join(ROOT, "manifests", "base", "deployment.yaml")) as f:
            text = f.read()
        limits = text[text.index("limits:"):]
        value = limits[limits.index("memory:") + len("memory:"):].split()[0]
        if value.endswith("Mi"):
            return int(value[:-2])
        if value.endswith("Gi"):
            return int(value[:-2]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def load_samples() -> dict:
    def load(name):
        with open(os.path.join(ROOT, "samples", name)) as f:
            return json.load(f)

    return {
        "misreported": [load("kfp-v2.3-sibling-masked-failure.json"),
                        load("kfp-v2.3-sibling-masked-failure-compressed.json"),
                        load("kfp-v2.4-ignore-upstream-hooked-task-failed.json")],
        # Correctly reported runs: succeeded, or failed and reported Failed.
        "healthy": [load("kfp-v2.3-sibling-healthy.json"), load("kfp-v2.4-nested-healthy.json"),
                    load("kfp-v2-parallelfor-retry-succeeded.json"),
                    load("kfp-v2.4-hook-body-failed.json")],
        # Recorded as exit-task-ignored (a PATCH of our annotations), never re-phased or reported.
        "exit-ignored": [load("kfp-v2.4-hook-exit-task-failed.json")],
        "running": [load("kfp-v2.4-running.json")],
    }


def gzip_bomb(decompressed_mib: int) -> str:
    """base64(gzip(JSON nodes with one huge string)): tiny on the wire, `decompressed_mib` inflated."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [c.compress(b'{"bomb":{"id":"bomb","displayName":"')]
    chunk = b"A" * (1 << 20)
    for _ in range(decompressed_mib):
        parts.append(c.compress(chunk))
    parts.append(c.compress(b'","type":"Pod","phase":"Failed"}}'))
    parts.append(c.flush())
    return base64.b64encode(b"".join(parts)).decode()


def renamed(sample: dict, name: str) -> dict:
    """The sample with every occurrence of its name (node names and ids) replaced, compressed
    nodes included."""
    old = sample["metadata"]["name"]
    wf = json.loads(json.dumps(sample).replace(old, name))
    cn = wf.get("status", {}).get("compressedNodes")
    if isinstance(cn, str):
        raw = zlib.decompress(base64.b64decode(cn), 47)
        raw = raw.replace(old.encode(), name.encode())
        c = zlib.compressobj(9, zlib.DEFLATED, 31)
        wf["status"]["compressedNodes"] = base64.b64encode(c.compress(raw) + c.flush()).decode()
    return wf


# --------------------------------------------------------------------------- KFP simulator


class Kfp:
    """kfp-apisim: its control endpoints and logs, whichever build is at hand.

    Capabilities are read from `kfp-apisim --help`: the faithful build (--kfp-version,
    --kube-api-url, the persistence-agent emulation, createRun) is what the soak is for. With an
    older build the driver stands in for the persistence agent and says so in the summary."""

    def __init__(self, binary: str):
        out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10)
        self.usage = out.stdout + out.stderr
        self.faithful = "--kube-api-url" in self.usage
        self.versions = "--kfp-version" in self.usage
        self.agent_flag = next((f for f in ("--persistence-agent", "--agent") if f in self.usage), "")
        self.http: Http | None = None
        self.client_prefix = False  # /_client/<name>/ prefixes are honoured
        self.create_run_path = ""
        self.outage_endpoint = False

    def argv(self, binary: str, ready: str, token_file: str, kube_url: str, version: str) -> list[str]:
        argv = [binary, "--addr", "127.0.0.1", "--port", "0", "--ready-file", ready,
                "--token-file", token_file]
        if self.versions:
            argv += ["--kfp-version", version]
        if self.faithful:
            argv += ["--kube-api-url", kube_url]
            if self.agent_flag:
                argv.append(self.agent_flag)
        return argv

    def probe(self) -> None:
        """What this build serves (probes that change nothing)."""
        st, _, _ = self.http.call("GET", "/_client/soak-probe/apis/v1beta1/healthz")
        self.client_prefix = st == 200
        st, _, _ = self.http.call("POST", "/_kfp/runs", {})  # no run id: 400 when served
        self.create_run_path = "/_kfp/runs" if st not in (0, 404) else ""
        st, _, _ = self.http.call("POST", "/_kfp/outage", {"on": False})
        self.outage_endpoint = st == 200

    @property
    def agent_emulated(self) -> bool:
        return self.faithful and bool(self.agent_flag)

    @property
    def creates_workflows(self) -> bool:
        """KFP's CreateRun creates the Workflow CR (through kube-apisim), as the real server."""
        return self.faithful and bool(self.create_run_path)

    def create_run(self, run_id: str, ns: str, display: str, wf: dict) -> tuple[bool, dict | None]:
        """KFP's CreateRun; with a cluster it creates `wf` too. Returns (ok, created Workflow)."""
        if not self.create_run_path:
            return True, None
        req = {"run_id": run_id, "namespace": ns, "display_name": display}
        if self.creates_workflows:
            req["workflow"] = wf
        end = time.monotonic() + 60
        while True:
            st, body = self.http.json("POST", self.create_run_path, req)
            if st == 200:
                return True, wf
            # A failed Kubernetes create writes no row: the same request may be sent again.
            if time.monotonic() > end or st in (401, 404):
                log(f"createRun {run_id}: {st} {str(body)[:300]}")
                return False, None
            time.sleep(0.3)

    def driver_report(self, wf: dict) -> None:
        """Stand-in for the persistence agent with a simulator that has none."""
        self.http.retry("POST", "/apis/v1beta1/workflows", json.dumps(json.dumps(wf)), ok=(200,),
                        deadline_s=20)

    def outage(self, on: bool, status: int) -> None:
        if self.outage_endpoint:
            self.http.call("POST", "/_kfp/outage", {"on": on})
        else:
            self.fail(100000 if on else 0, status)

    def fail(self, count: int, status: int) -> None:
        self.http.call("POST", "/_kfp/fail", {"count": count, "status": status})

    def delay(self, ms: int) -> None:
        self.http.call("POST", "/_kfp/delay", {"ms": ms})

    def reports(self) -> list[dict]:
        st, body = self.http.json("GET", "/_kfp/reports", timeout=120)
        if st != 200 or not isinstance(body, list):
            raise SetupError(f"GET /_kfp/reports: {st}")
        return body

    def run(self, run_id: str) -> dict | None:
        st, body = self.http.json("GET", f"/apis/v2beta1/runs/{run_id}")
        return body if st == 200 and isinstance(body, dict) else None


def report_client(r: dict) -> str:
    return r.get("client") or ""


def report_at_us(r: dict) -> int | None:
    for key in ("atUs", "arrivedAtUs"):
        if isinstance(r.get(key), int):
            return r[key]
    return None


# --------------------------------------------------------------------------- request log


class KubeLog:
    """Polls /_sim/requests incrementally (injected failures included)."""

    def __init__(self, http: Http):
        self.http = http
        self.lock = threading.Lock()  # records
        self.poll_lock = threading.Lock()  # one poll at a time
        self.records: list[dict] = []
        self.since = 0

    def poll(self) -> None:
        with self.poll_lock:
            st, body = self.http.json(
                "GET", f"/_sim/requests?since={self.since}&injected=1&maxBody=65536", timeout=60)
            if st != 200 or not isinstance(body, list):
                return
            self._append(body)

    def _append(self, body: list) -> None:
        with self.lock:
            for r in body:
                if not is_replica(r.get("client", "")):  # only the replicas' bodies are read
                    r["body"] = ""
                self.records.append(r)
            if body:
                self.since = body[-1]["seq"]

    def full(self) -> list[dict]:
        st, body = self.http.json("GET", "/_sim/requests?injected=1&maxBody=65536", timeout=300)
        if st != 200 or not isinstance(body, list):
            raise SetupError(f"GET /_sim/requests: {st}")
        return body


def sets_annotation(patch_body: str, key: str) -> bool:
    """Whether a merge patch sets annotation `key` to a value (null removes it)."""
    try:
        ann = ((json.loads(patch_body) or {}).get("metadata") or {}).get("annotations") or {}
    except (ValueError, AttributeError):
        return False
    return isinstance(ann, dict) and isinstance(ann.get(key), str)


def parse_path(path: str) -> tuple[str, str, str]:
    """(resource, namespace, name) of an API path such as
    /apis/argoproj.io/v1alpha1/namespaces/ns/workflows/name or /api/v1/namespaces/ns/events."""
    seg = [x for x in path.split("/") if x]
    rest = seg[2:] if seg[:1] == ["api"] else seg[3:]
    if len(rest) >= 3 and rest[0] == "namespaces":
        return rest[2], rest[1], rest[3] if len(rest) > 3 else ""
    return (rest[0] if rest else ""), "", (rest[1] if len(rest) > 1 else "")


# --------------------------------------------------------------------------- the soak


class Soak:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.procs = Procs()
        self.stop_faults = threading.Event()
        self.stop_driver = threading.Event()
        self.stop_all = threading.Event()
        self.runs: dict[str, dict] = {}  # run id -> run
        self.runs_lock = threading.Lock()
        self.faults = collections.Counter()
        self.kills: list[dict] = []
        self.notes: list[str] = []
        self.replicas: dict[str, Replica] = {}
        self.workdir = args.workdir or tempfile.mkdtemp(prefix="chaos-soak-")
        os.makedirs(self.workdir, exist_ok=True)

    # ----- setup

    def binary(self, rel: str) -> str:
        path = os.path.join(self.args.build_dir, rel)
        if not os.access(path, os.X_OK):
            raise SetupError(f"{path} missing: cmake --build {self.args.build_dir} --target "
                             "kube-apisim kfp-apisim exit-reconciler")
        return path

    def setup(self) -> None:
        kube_bin = self.binary("sim/kube-apisim")
        kfp_bin = self.binary("sim/kfp/kfp-apisim")
        ctl_bin = self.binary("controller/exit-reconciler")
        w = self.workdir

        ready = os.path.join(w, "kube-ready.json")
        log_path = os.path.join(w, "kube-apisim.log")
        p = self.procs.spawn([kube_bin, "--addr", "127.0.0.1", "--port", "0", "--ready-file", ready,
                              "--state-dir", os.path.join(w, "kube-state"), "--history", "50000"],
                             log_path)
        self.kube_port = wait_ready_file(ready, p, "kube-apisim", log_path)["port"]
        self.kube = Http(self.kube_port, ua="chaos-soak-driver")
        # The driver's Workflow writes stand for Argo's workflow controller.
        self.argo = Http(self.kube_port, ua="chaos-soak-driver", prefix="/_client/argo-controller")
        self.kube_log = KubeLog(self.kube)
        for ns in (LEASE_NS,) + RUN_NAMESPACES:
            st, _ = self.kube.retry("POST", "/api/v1/namespaces",
                                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
                                    ok=(201, 409))
            if st not in (201, 409):
                raise SetupError(f"create namespace {ns}: {st}")

        token = uuid.uuid4().hex
        token_file = os.path.join(w, "kfp-token")
        with open(token_file, "w") as f:
            f.write(token + "\n")
        self.kfp = Kfp(kfp_bin)
        ready = os.path.join(w, "kfp-ready.json")
        log_path = os.path.join(w, "kfp-apisim.log")
        kube_url = f"http://127.0.0.1:{self.kube_port}/_client/kfp-apiserver"
        p = self.procs.spawn(self.kfp.argv(kfp_bin, ready, token_file, kube_url, self.args.kfp_version),
                             log_path)
        self.kfp_port = wait_ready_file(ready, p, "kfp-apisim", log_path)["port"]
        self.kfp.http = Http(self.kfp_port, token=token, ua="chaos-soak-driver")
        self.kfp.probe()
        if not self.kfp.faithful:
            self.notes.append("kfp-apisim has no faithful mode (--kube-api-url): it never labels or "
                              "deletes Workflows, and I4 only sees the replicas' and driver's writes")
        if not self.kfp.agent_emulated:
            self.notes.append("kfp-apisim has no persistence-agent emulation: the driver reports "
                              "each run to KFP (Running, then its final phase) in its place")
        if self.kfp.agent_emulated:
            # kfp-apisim sleeps in its HTTP handler (/_kfp/delay); the agent emulation calls
            # the report handler in-process (KfpApiSimulator::reportFromAgent).
            self.notes.append("the KFP stall fault slows only HTTP requests (the replicas'): the "
                              "persistence-agent emulation reports in-process, so none of its "
                              "reports is held in flight by a stall (KFP outages do reach it)")
        if not self.kfp.client_prefix:
            self.notes.append("kfp-apisim does not name the client of a report: KFP reports are "
                              "not attributed, so I2, I3 (reports) and I5 (reports) are unchecked")
        if not self.kfp.create_run_path:
            self.notes.append("kfp-apisim has no createRun endpoint: runs exist from their first "
                              "report")

        for name in REPLICAS:
            self.replicas[name] = Replica(name, lambda ident: self.replica_argv(ctl_bin, ident, token_file),
                                          self.procs, w)
        for r in self.replicas.values():
            r.start()
        end = time.monotonic() + 30
        while not self.lease_holder():
            if time.monotonic() > end:
                raise SetupError(f"no replica took the lease in 30 s; see {w}/replica-*.log")
            time.sleep(0.2)
        log(f"ready: kube-apisim :{self.kube_port}, kfp-apisim :{self.kfp_port} "
            f"(faithful={self.kfp.faithful}, agent={self.kfp.agent_emulated}, "
            f"version={self.args.kfp_version}), leader {self.lease_holder()}")

    def replica_argv(self, ctl_bin: str, ident: str, token_file: str) -> list[str]:
        """argv of one incarnation: its own kubeconfig (server URL .../_client/<ident>)."""
        kubeconfig = os.path.join(self.workdir, f"{ident}.kubeconfig")
        with open(kubeconfig, "w") as f:
            f.write(f"""apiVersion: v1
kind: Config
clusters:
- name: sim
  cluster:
    server: http://127.0.0.1:{self.kube_port}/_client/{ident}
users:
- name: soak
  user:
    token: unused
contexts:
- name: sim
  context: {{cluster: sim, user: soak, namespace: {LEASE_NS}}}
current-context: sim
""")
        kfp_url = f"http://127.0.0.1:{self.kfp_port}"
        if self.kfp.client_prefix:
            kfp_url += f"/_client/{ident}"
        return [ctl_bin, "run", "--kubeconfig", kubeconfig, "--leader-elect",
                "--leader-election-identity", ident, "--leader-election-namespace", LEASE_NS,
                "--leader-election-lease-duration", f"{self.args.lease_duration}s",
                "--leader-election-renew-deadline", f"{self.args.renew_deadline}s",
                "--leader-election-retry-period", f"{self.args.retry_period}s",
                "--health-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0",
                "--kfp-api-url", kfp_url, "--kfp-token-file", token_file,
                "--max-retry-delay", "5s", "--shutdown-timeout", "2s", "--workers", "2"]

    def lease_holder(self) -> str:
        st, body = self.kube.json(
            "GET", f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NS}/leases/{LEASE_NAME}", timeout=5)
        if st != 200 or not isinstance(body, dict):
            return ""
        return (body.get("spec") or {}).get("holderIdentity") or ""

    def leader(self) -> Replica | None:
        holder = self.lease_holder()
        for r in self.replicas.values():
            if r.identity == holder and r.alive():
                return r
        return None

    # ----- driver

    def new_run(self, n: int, kind: str, hostile: str, sample: dict) -> dict:
        run_id = str(uuid.uuid4())
        ns = self.rng.choice(RUN_NAMESPACES)
        name = f"soak-{kind[:4]}-{n:05d}-{run_id[:5]}"
        wf = renamed(sample, name)
        meta = wf["metadata"]
        for k in ("resourceVersion", "creationTimestamp", "generateName", "managedFields"):
            meta.pop(k, None)
        meta["namespace"] = ns
        meta["uid"] = str(uuid.uuid4())
        labels = meta.setdefault("labels", {})
        labels[LBL_RUNID] = run_id
        meta.setdefault("annotations", {})["pipelines.kubeflow.org/run_name"] = f"soak run {n}"
        final_status = wf.get("status", {})
        final_phase = final_status.get("phase", "")
        return {"n": n, "runId": run_id, "ns": ns, "name": name, "kind": kind, "hostile": hostile,
                "sample": sample["metadata"]["name"], "wf": wf, "finalPhase": final_phase,
                "completes": kind != "running", "created": False, "completed": False}

    def hostile_patch(self, run: dict) -> dict:
        """Annotations (and status) a tenant writes on a completed run."""
        h = run["hostile"]
        if h == "bad-failures":  # issue 16: stopped the whole controller
            return {"metadata": {"annotations": {
                ANN + "failures": '[{"displayName": 5}]', ANN + "action": "observed",
                ANN + "true-phase": "Failed", ANN + "reported-phase": "Succeeded",
                ANN + "cause": "exit-task-masked-failure", ANN + "recorded-at": rfc3339()}}}
        if h == "forged":  # issue 16: re-reported 14 times a minute
            return {"metadata": {"annotations": {ANN + "true-phase": "Bogus",
                                                 ANN + "action": "corrected"}}}
        if h == "huge":
            blob = "".join(self.rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(4096))
            return {"metadata": {"annotations": {"soak.example.com/blob": blob * 50,
                                                 ANN + "cause": blob * 8,
                                                 ANN + "failures": json.dumps([{"displayName": blob}] * 40)}},
                    "status": {"message": blob * 16}}
        if h == "bomb":
            return {"status": {"nodes": None, "compressedNodes": self.bomb}}
        if h == "bad-nodes":
            nodes = {k: v for k, v in run["wf"]["status"].get("nodes", {}).items()}
            first = sorted(nodes)[:2]
            if first:
                nodes[first[0]] = {"id": 7, "phase": ["Failed"], "children": "nope", "type": {}}
            if len(first) > 1:
                nodes[first[1]] = "not an object"
            return {"status": {"nodes": nodes}}
        return {}

    def pick(self, n: int) -> dict:
        x = self.rng.random()
        s = self.samples
        if x < self.args.misreported_share:
            return self.new_run(n, "misreported", "", self.rng.choice(s["misreported"]))
        x -= self.args.misreported_share
        if x < self.args.hostile_share:
            hostile = self.rng.choice(("bad-failures", "forged", "huge", "bomb", "bad-nodes"))
            return self.new_run(n, "hostile", hostile, self.rng.choice(s["healthy"][:3]))
        x -= self.args.hostile_share
        if x < 0.05:
            return self.new_run(n, "exit-ignored", "", s["exit-ignored"][0])
        if x < 0.08:
            return self.new_run(n, "running", "", s["running"][0])
        return self.new_run(n, "healthy", "", self.rng.choice(s["healthy"]))

    def running_object(self, run: dict) -> dict:
        wf = json.loads(json.dumps(run["wf"]))
        labels = wf["metadata"]["labels"]
        labels.pop(LBL_COMPLETED, None)
        labels[LBL_PHASE] = "Running"
        wf["status"] = {"phase": "Running", "startedAt": rfc3339(), "progress": "0/1"}
        return wf

    def create(self, run: dict) -> None:
        wf = self.running_object(run)
        ok, _ = self.kfp.create_run(run["runId"], run["ns"], f"soak run {run['n']}", wf)
        if not ok:
            log(f"createRun {run['runId']} failed; the run is left out")
            return
        if not self.kfp.creates_workflows:
            st, payload = self.argo.retry(
                "POST", f"/apis/argoproj.io/v1alpha1/namespaces/{run['ns']}/workflows", wf, ok=(201,))
            if st != 201:
                log(f"create {run['name']}: {st} {payload[:200]!r}; the run is left out")
                return
        run["created"] = True
        run["uid"] = wf["metadata"]["uid"]
        if not self.kfp.agent_emulated:
            self.kfp.driver_report(wf)
        with self.runs_lock:
            self.runs[run["runId"]] = run

    def final_object(self, current: dict, run: dict) -> dict:
        """The completed Workflow as Argo writes it, plus what a hostile tenant adds."""
        wf = json.loads(json.dumps(current))
        status = json.loads(json.dumps(run["wf"].get("status", {})))
        status["startedAt"] = (current.get("status") or {}).get("startedAt", rfc3339())
        status["finishedAt"] = rfc3339()
        wf["status"] = status
        labels = wf["metadata"].setdefault("labels", {})
        labels[LBL_COMPLETED] = "true"
        labels[LBL_PHASE] = run["finalPhase"]
        for key, value in self.hostile_patch(run).items():
            target = wf["metadata"] if key == "metadata" else wf.setdefault(key, {})
            for k2, v2 in value.items():
                if isinstance(v2, dict):
                    target.setdefault(k2, {}).update(v2)
                elif v2 is None:
                    target.pop(k2, None)
                else:
                    target[k2] = v2
        return wf

    def complete(self, run: dict) -> None:
        """GET + PUT, as Argo's workflow controller updates a Workflow (409: read again)."""
        path = f"/apis/argoproj.io/v1alpha1/namespaces/{run['ns']}/workflows/{run['name']}"
        end = time.monotonic() + 60
        while time.monotonic() < end:
            st, current = self.argo.json("GET", path)
            if st != 200 or not isinstance(current, dict):
                time.sleep(0.2)
                continue
            wf = self.final_object(current, run)
            if not self.kfp.agent_emulated and not run.get("reported"):
                # The stand-in agent reports first, so that it never overwrites a correction.
                self.kfp.driver_report(wf)
                run["reported"] = True
            st, _ = self.argo.retry("PUT", path, wf, ok=(200,), deadline_s=10, retry_conflict=False)
            if st == 200:
                run["completed"] = True
                run["completedAtUs"] = now_us()
                return
            if st != 409:
                time.sleep(0.2)
        log(f"complete {run['name']}: gave up")

    def driver(self) -> None:
        n = 0
        pending: list[tuple[float, int, dict]] = []
        next_create = time.monotonic()
        while True:
            t = time.monotonic()
            if pending and pending[0][0] <= t:
                _, _, run = heapq.heappop(pending)
                self.complete(run)
                continue
            if self.stop_driver.is_set():
                if not pending or self.stop_all.is_set():
                    return
            elif t >= next_create:
                n += 1
                run = self.pick(n)
                self.create(run)
                if run["created"] and run["completes"]:
                    heapq.heappush(pending, (time.monotonic() + self.rng.uniform(0.3, 3.0), n, run))
                next_create = t + self.rng.expovariate(self.args.rate)
            wake = min([next_create] + [pending[0][0]] if pending else [next_create])
            time.sleep(max(0.0, min(0.2, wake - time.monotonic())))

    # ----- faults

    def kube_fail(self, rule: dict) -> None:
        self.kube.call("POST", "/_sim/fail", rule)

    def kill_leader(self, why: str) -> None:
        r = self.leader()
        if r is None:
            self.faults["kill skipped (no live leader)"] += 1
            return
        ident = r.identity
        t = r.kill9()
        if t is not None:
            self.kills.append({"replica": ident, "atUs": t, "why": why})
            self.faults["kill -9 leader (random)"] += 1
            log(f"kill -9 {ident} ({why})")

    def patch_kill(self, held: str) -> None:
        """Arms a kill -9 of the leader at its next correction PATCH, before its KFP report:
        held=kfp: KFP answers slowly (the report waits); held=patch: the PATCH itself is held in
        kube-apisim (it lands after the kill)."""
        r = self.leader()
        if r is None:
            self.faults["kill skipped (no live leader)"] += 1
            return
        if held == "kfp":
            self.kfp.delay(4000)
        else:
            self.kube_fail({"verb": "patch", "resource": "workflows", "count": 4, "status": 0,
                            "delayMs": 2500})
        with self.kube_log.lock:
            seen = len(self.kube_log.records)
        try:
            end = time.monotonic() + 25
            while time.monotonic() < end and not self.stop_faults.is_set() and r.alive():
                self.kube_log.poll()
                with self.kube_log.lock:
                    new = self.kube_log.records[seen:]
                    seen = len(self.kube_log.records)
                for rec in new:
                    if rec.get("client") != r.identity or rec.get("verb") != "patch":
                        continue
                    if parse_path(rec["path"])[0] != "workflows":
                        continue
                    body = rec.get("body", "")
                    if ANN + "true-phase" not in body or '"Failed"' not in body:
                        continue
                    if held == "patch" and rec.get("status") != 0:
                        continue  # only a PATCH still held in the simulator
                    if held == "kfp" and not 200 <= rec.get("status", 0) < 300:
                        continue
                    ident = r.identity
                    t = r.kill9()
                    if t is None:
                        return
                    _, ns, name = parse_path(rec["path"])
                    self.kills.append({"replica": ident, "atUs": t, "why": f"patch-{held}",
                                       "ns": ns, "name": name, "patchSeq": rec["seq"]})
                    self.faults[f"kill -9 leader after its correction PATCH ({held} held)"] += 1
                    log(f"kill -9 {ident} right after its correction PATCH of {ns}/{name} "
                        f"(seq {rec['seq']}, {held} held)")
                    return
                time.sleep(0.02)
            self.faults[f"patch-kill armed, no correction PATCH seen ({held} held)"] += 1
        finally:
            if held == "kfp":
                self.kfp.delay(0)

    def fault_once(self) -> None:
        choices = [
            ("watch drop (clean)", 3), ("watch drop (abort)", 3), ("410 (http)", 2),
            ("410 (event)", 2), ("409 on workflow PATCH", 3), ("429 with Retry-After", 3),
            ("5xx burst", 3), ("KFP outage (503)", 2), ("KFP stall (slow)", 1),
            ("lease API stall", 2), ("kill -9 leader", 2), ("kill after PATCH", 3),
        ]
        kind = self.rng.choices([c[0] for c in choices], weights=[c[1] for c in choices])[0]
        if kind == "watch drop (clean)":
            self.kube.call("POST", "/_sim/drop-watches")
        elif kind == "watch drop (abort)":
            self.kube.call("POST", "/_sim/drop-watches?mode=abort")
        elif kind in ("410 (http)", "410 (event)"):
            form = "http" if "http" in kind else "event"
            self.kube.call("POST", f"/_sim/expire-next-watch?form={form}")
            self.kube.call("POST", "/_sim/drop-watches")  # so that a re-watch meets it now
        elif kind == "409 on workflow PATCH":
            self.kube_fail({"verb": "patch", "resource": "workflows",
                            "count": self.rng.randint(1, 4), "status": 409})
        elif kind == "429 with Retry-After":
            self.kube_fail({"verb": "*", "resource": self.rng.choice(["workflows", "events", "*"]),
                            "count": self.rng.randint(2, 8), "status": 429,
                            "retryAfter": self.rng.randint(1, 2)})
        elif kind == "5xx burst":
            self.kube_fail({"verb": "*", "resource": "*", "count": self.rng.randint(5, 25),
                            "status": self.rng.choice([500, 502, 503, 504])})
        elif kind == "KFP outage (503)":
            self.kfp.outage(True, self.rng.choice([503, 500, 502]))
            self.stop_faults.wait(self.rng.uniform(3, 12))
            self.kfp.outage(False, 503)
        elif kind == "KFP stall (slow)":
            self.kfp.delay(self.rng.randint(2000, 8000))
            self.stop_faults.wait(self.rng.uniform(3, 10))
            self.kfp.delay(0)
        elif kind == "lease API stall":
            self.kube_fail({"verb": "*", "resource": "leases", "count": self.rng.randint(1, 3),
                            "status": 0, "delayMs": self.rng.randint(2500, 6000)})
        elif kind == "kill -9 leader":
            self.kill_leader("random")
            return
        elif kind == "kill after PATCH":
            self.patch_kill(self.rng.choice(["kfp", "patch"]))
            return
        self.faults[kind] += 1

    def fault_loop(self) -> None:
        while not self.stop_faults.wait(self.rng.uniform(1.5, 5.0)):
            try:
                self.fault_once()
            except Exception as e:  # a fault must never end the soak early
                log(f"fault injection error: {e!r}")

    def supervise(self) -> None:
        # This thread starts the restarted replicas: it must outlive them (PR_SET_PDEATHSIG).
        while not self.stop_all.is_set():
            for r in self.replicas.values():
                try:
                    r.check(self.rng, restart=True)
                except Exception as e:  # noqa: BLE001 - keep supervising whatever happens
                    if not self.stop_all.is_set():
                        log(f"supervisor: {r.name}: {e!r}")
            self.stop_all.wait(0.1)

    def poll_log(self) -> None:
        while not self.stop_all.wait(0.5):
            self.kube_log.poll()

    # ----- settle

    def controller_writes_since(self, seq: int) -> int:
        with self.kube_log.lock:
            return sum(1 for r in self.kube_log.records
                       if r["seq"] > seq and is_replica(r.get("client", "")) and "/leases" not in r["path"])

    def settled(self, run: dict) -> bool:
        """A mis-reported run is verified FAILED and that verification re-verified (the
        controller reads KFP's state again a minute later and re-reports a run a late stale
        report put back) or given up on; a healthy one has its final state in KFP (the
        persistence agent's report may be in its backoff after a KFP outage)."""
        kfp_run = self.kfp.run(run["runId"]) or {}
        if run["kind"] != "misreported":
            return kfp_run.get("state") == {"Failed": "FAILED"}.get(run["finalPhase"], "SUCCEEDED")
        st, wf = self.kube.json(
            "GET", f"/apis/argoproj.io/v1alpha1/namespaces/{run['ns']}/workflows/{run['name']}")
        ann = ((wf or {}).get("metadata") or {}).get("annotations") or {}
        if KFP_REPORT_ERROR in ann:
            return True  # the controller gave up: I1 judges the outcome
        return (KFP_REPORTED_AT in ann and KFP_REVERIFIED_AT in ann
                and kfp_run.get("state") == "FAILED")

    def settle(self) -> float:
        """Waits until every mis-reported run is verified and the replicas are quiet."""
        self.kfp.delay(0)
        self.kfp.outage(False, 503)
        self.kfp.fail(0, 503)
        start = time.monotonic()
        deadline = start + self.args.settle
        for r in self.replicas.values():
            r.check(self.rng, restart=False)
            if not r.alive():
                r.start()
        with self.runs_lock:
            pending = [r for r in self.runs.values()
                       if r["completed"] and r["kind"] in ("misreported", "healthy", "exit-ignored")]
        while pending and time.monotonic() < deadline:
            pending = [run for run in pending if not self.settled(run)]
            if pending:
                time.sleep(2)
        if pending:
            log(f"{len(pending)} runs not settled after {self.args.settle} s")
        quiet_from = self.kube_log.since
        quiet_start = time.monotonic()
        while time.monotonic() < deadline + 30:
            self.kube_log.poll()
            if self.controller_writes_since(quiet_from):
                quiet_from = self.kube_log.since
                quiet_start = time.monotonic()
            elif time.monotonic() - quiet_start >= self.args.quiet:
                break
            time.sleep(0.5)
        return time.monotonic() - start

    def measure_idle_cpu(self, seconds: float = 5.0) -> dict:
        """CPU use of each live replica once everything is done: a spinning replica shows."""
        hz = os.sysconf("SC_CLK_TCK")
        before = {r.name: (r.proc.pid, cpu_ticks(r.proc.pid)) for r in self.replicas.values() if r.alive()}
        time.sleep(seconds)
        return {name: round(100.0 * (cpu_ticks(pid) - t) / hz / seconds, 1)
                for name, (pid, t) in before.items() if cpu_ticks(pid)}

    # ----- run

    def run(self) -> int:
        log(f"seed {self.args.seed}; duration {self.args.duration} s; workdir {self.workdir}")
        self.samples = load_samples()
        self.bomb = gzip_bomb(self.args.bomb_mib)
        self.setup()
        threads = [threading.Thread(target=self.supervise, daemon=True),
                   threading.Thread(target=self.poll_log, daemon=True)]
        driver = threading.Thread(target=self.driver, daemon=True)
        faults = threading.Thread(target=self.fault_loop, daemon=True)
        for t in threads + [driver, faults]:
            t.start()
        end = time.monotonic() + self.args.duration
        next_note = time.monotonic() + 30
        while time.monotonic() < end:
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
            if time.monotonic() >= next_note:
                next_note += 30
                with self.runs_lock:
                    n = len(self.runs)
                log(f"{n} runs, {sum(self.faults.values())} faults, {len(self.kills)} kills, "
                    f"leader {self.lease_holder() or '-'}")
        log("duration over: faults stop, the driver completes its last runs")
        self.stop_faults.set()
        faults.join(timeout=60)
        self.stop_driver.set()
        driver.join(timeout=60)
        waited = self.settle()
        self.idle_cpu = self.measure_idle_cpu()
        log(f"settled in {waited:.0f} s; idle CPU {self.idle_cpu}; checking invariants")
        result = Checker(self).check()
        self.stop_all.set()
        return result


# --------------------------------------------------------------------------- invariants


class Checker:
    def __init__(self, soak: Soak):
        self.s = soak
        self.violations: list[str] = []

    def bad(self, msg: str) -> None:
        self.violations.append(msg)

    def lease_intervals(self, log_records: list[dict]) -> tuple[dict, int, list]:
        """Holder intervals [start, end) in us from the committed Lease writes."""
        writes = []
        for r in log_records:
            if parse_path(r["path"])[0] != "leases" or not 200 <= r.get("status", 0) < 300:
                continue
            if r["verb"] not in ("create", "update", "patch"):
                continue
            try:
                spec = json.loads(r["body"]).get("spec") or {}
            except ValueError:
                continue
            dur = int(spec.get("leaseDurationSeconds") or self.s.args.lease_duration) * 1_000_000
            writes.append((r["doneAtUs"], r["seq"], spec.get("holderIdentity") or "", dur))
        writes.sort()
        intervals: dict[str, list[tuple[int, int]]] = collections.defaultdict(list)
        holder, start, expiry = "", 0, 0
        failovers = 0
        timeline = []  # (time, identity) of each acquisition
        for t, _, who, dur in writes:
            if who and who == holder and t <= expiry:
                expiry = t + dur  # a renewal
                continue
            if holder:
                intervals[holder].append((start, min(t, expiry)))
            if who:
                if timeline and timeline[-1][1] != who:
                    failovers += 1
                timeline.append((t, who))
            holder, start, expiry = who, t, t + dur
        if holder:
            intervals[holder].append((start, expiry))
        return intervals, failovers, timeline

    def check(self) -> int:
        s = self.s
        records = s.kube_log.full()
        reports = s.kfp.reports()
        attributed = s.kfp.client_prefix
        with s.runs_lock:
            runs = dict(s.runs)
        by_name = {(r["ns"], r["name"]): r for r in runs.values()}

        # Controller writes on the kube side, per workflow.
        patches = collections.defaultdict(list)
        ctl_writes = []
        for r in records:
            resource, ns, name = parse_path(r["path"])
            if r["verb"] in ("delete", "deletecollection") and resource == "workflows":
                self.bad(f"I4: {r['verb']} {r['path']} by {r.get('client') or r.get('userAgent')} "
                         f"(seq {r['seq']}, status {r['status']})")
            if not is_replica(r.get("client", "")):
                continue
            if resource in ("workflows", "events", "pods"):
                ctl_writes.append((r["atUs"], r["client"], f"{r['verb']} {r['path']} (seq {r['seq']})"))
            if resource == "workflows" and r["verb"] == "patch":
                patches[(ns, name)].append(r)

        ctl_reports = collections.defaultdict(list)
        reports_by_run = collections.defaultdict(list)  # everyone's, the agent's included
        for rep in reports:
            reports_by_run[rep.get("runId", "")].append(rep)
            c = report_client(rep)
            if is_replica(c):
                ctl_reports[rep.get("runId", "")].append(rep)
                at = report_at_us(rep)
                if at is not None:
                    ctl_writes.append((at, c, f"KFP report of run {rep.get('runId')} "
                                              f"phase {rep.get('phase')}"))

        # I5: every write inside one of its replica's lease intervals.
        intervals, failovers, timeline = self.lease_intervals(records)
        fenced = 0
        for at, who, what in ctl_writes:
            if any(a <= at < b for a, b in intervals.get(who, [])):
                continue
            fenced += 1
            self.bad(f"I5: {who} wrote without holding the lease: {what} at {at} us")

        kfp_runs = {}
        for run_id, run in runs.items():
            kfp_runs[run_id] = s.kfp.run(run_id)
        # The raw evidence, for diagnosing a violation after the simulators are gone.
        for fname, data in (("kfp-reports.json", reports), ("kfp-runs.json", kfp_runs),
                            ("kube-requests.json", records), ("kills.json", s.kills)):
            with open(os.path.join(s.workdir, fname), "w") as f:
                json.dump(data, f)

        counts = collections.Counter()
        refailed = 0
        for run_id, run in runs.items():
            key = (run["ns"], run["name"])
            kind = run["kind"]
            counts[kind] += 1
            if run["hostile"]:
                counts["hostile: " + run["hostile"]] += 1
            kr = kfp_runs.get(run_id) or {}
            state = kr.get("state", "")
            history = [h.get("state") for h in kr.get("state_history", [])]
            p = patches.get(key, [])
            reps = ctl_reports.get(run_id, [])
            failed_reps = [x for x in reps if str(x.get("phase", "")).lower() in ("failed", "error")]
            label = f"{kind}{'/' + run['hostile'] if run['hostile'] else ''} {run['ns']}/{run['name']}"
            if kind == "misreported" and run["completed"]:
                st, wf = s.kube.json(
                    "GET", f"/apis/argoproj.io/v1alpha1/namespaces/{run['ns']}/workflows/{run['name']}")
                phase = ((wf or {}).get("status") or {}).get("phase")
                if st != 200 or phase != "Failed":
                    self.bad(f"I1: {label} has status.phase {phase!r} (GET {st})")
                if state != "FAILED":
                    self.bad(f"I1: {label} is {state or 'missing'} in KFP (run {run_id})")
                verified = [x["doneAtUs"] for x in p if 200 <= x["status"] < 300
                            and sets_annotation(x.get("body", ""), KFP_REPORTED_AT)]
                if verified and attributed:
                    # I2: a FAILED report from a replica while the run stands verified is a
                    # duplicate. The run stops standing verified only when KFP stored another
                    # state after the verification (a late report of an older snapshot, which
                    # KFP 2.0-2.16 accept): then the controller may report again, and must
                    # verify again. Events in time order: verifications (the kfp-reported-at
                    # PATCHes), regressions (accepted non-FAILED reports after the first
                    # verification) and the replicas' FAILED reports.
                    first = min(verified)
                    regressions = [report_at_us(x) or 0 for x in reports_by_run.get(run_id, [])
                                   if x.get("status") == 200 and x.get("state") != "FAILED"
                                   and (report_at_us(x) or 0) > first]
                    counts["misreported: KFP state went back after verification"] += len(regressions)
                    timeline = sorted([(t, "verified") for t in verified]
                                      + [(t, "regressed") for t in regressions]
                                      + [(report_at_us(x) or 0, "report") for x in failed_reps])
                    standing = False
                    for t, what in timeline:
                        if what == "verified":
                            standing = True
                        elif what == "regressed":
                            standing = False
                        elif standing:
                            refailed += 1
                            self.bad(f"I2: {label} reported FAILED by a replica at {t} us while "
                                     f"its report stood verified")
                        else:
                            after_regression = any(r < t for r in regressions)
                            counts["misreported FAILED re-reports after a regression"] += (
                                1 if after_regression else 0)
                counts["misreported FAILED reports"] += len(failed_reps)
            elif kind in ("healthy", "running"):
                for x in p:
                    self.bad(f"I3: {label} PATCHed by {x['client']} (seq {x['seq']}): {x['body'][:200]}")
                for x in reps:
                    self.bad(f"I3: {label} reported {x.get('phase')} to KFP by {report_client(x)}")
                expect = {"Succeeded": "SUCCEEDED", "Failed": "FAILED"}.get(run["finalPhase"], "")
                if kind == "healthy" and run["completed"]:
                    if state != expect:
                        self.bad(f"I3: {label} is {state or 'missing'} in KFP, expected {expect}")
                    if expect in history and history[history.index(expect):] != [expect]:
                        self.bad(f"I3: {label} KFP state changed after {expect}: {history}")
            elif kind == "exit-ignored":
                for x in p:
                    if '"phase"' in x.get("body", ""):
                        self.bad(f"I3: {label} phase PATCHed by {x['client']} (seq {x['seq']})")
                for x in reps:
                    self.bad(f"I3: {label} reported {x.get('phase')} to KFP by {report_client(x)}")
                if run["completed"] and state != "SUCCEEDED":
                    self.bad(f"I3: {label} is {state or 'missing'} in KFP, expected SUCCEEDED")
            elif kind == "hostile":
                for x in p:
                    body = x.get("body", "")
                    if '"phase":"Failed"' in body.replace(" ", ""):
                        self.bad(f"hostile: {label} re-phased Failed by {x['client']} (seq {x['seq']})")
                if failed_reps or state == "FAILED" or "FAILED" in history:
                    self.bad(f"hostile: {label} became FAILED in KFP ({history})")
                if len(reps) > MAX_HOSTILE_REPORTS:
                    self.bad(f"hostile: {label} reported {len(reps)} times (> {MAX_HOSTILE_REPORTS})")
                counts["hostile reports"] += len(reps)
                counts["hostile PATCHes"] += len(p)

        # Nothing deleted: every created Workflow still exists.
        present = set()
        for ns in RUN_NAMESPACES:
            st, lst = s.kube.json("GET", f"/apis/argoproj.io/v1alpha1/namespaces/{ns}/workflows", timeout=300)
            for item in (lst or {}).get("items", []):
                present.add((ns, item["metadata"]["name"]))
        missing = [k for k in by_name if k not in present]
        for ns, name in missing[:20]:
            self.bad(f"I4: {ns}/{name} no longer exists")

        # Replicas: alive, and no death other than ours or a lost-lease exit.
        exits = collections.Counter()
        max_rss = 0
        for r in s.replicas.values():
            r.check(s.rng, restart=False)
            max_rss = max(max_rss, r.max_rss_kib)
            for e in r.exits:
                exits[e["kind"]] += 1
                if e["kind"] == "crash":
                    self.bad(f"{r.name}: pid {e['pid']} died with status {e['code']} "
                             f"(see {r.log_path})")

        for name, pct in getattr(s, "idle_cpu", {}).items():
            if pct > 50:
                self.bad(f"spin: {name} used {pct}% of a core with nothing to do")
        limit = s.args.memory_limit_mib
        if limit and max_rss > limit * 1024:
            self.bad(f"memory: a replica reached {max_rss / 1024:.0f} MiB resident, over the "
                     f"Deployment's limit of {limit} MiB (it would be OOM-killed)")

        # Kills between the correction PATCH and the KFP report.
        patch_kills = collections.Counter()
        for k in s.kills:
            if "name" not in k:
                continue
            run = by_name.get((k["ns"], k["name"]))
            if not attributed:
                patch_kills["report unattributed"] += 1
                continue
            before = [x for x in ctl_reports.get(run["runId"], []) if report_client(x) == k["replica"]
                      and (report_at_us(x) or 0) < k["atUs"]] if run else []
            patch_kills["report already sent" if before else "no report sent yet"] += 1

        summary = {
            "seed": s.args.seed, "duration_s": s.args.duration, "kfp_version": s.args.kfp_version,
            "runs": {"total": len(runs), **{k: v for k, v in sorted(counts.items())}},
            "faults": dict(sorted(s.faults.items())),
            "kills": len(s.kills), "kills_after_patch": dict(patch_kills),
            "failovers": failovers, "leader_acquisitions": len(timeline),
            "replica_exits": dict(exits),
            "replica_starts": {r.name: r.starts for r in s.replicas.values()},
            "max_replica_rss_mib": round(max_rss / 1024, 1),
            "memory_limit_mib": s.args.memory_limit_mib,
            "idle_cpu_percent": getattr(s, "idle_cpu", {}),
            "kube_writes_by_replicas": len([w for w in ctl_writes if not w[2].startswith("KFP")]),
            "kfp_reports_by_replicas": sum(len(v) for v in ctl_reports.values()),
            "kfp_reports_total": len(reports),
            "failed_reports_after_verification": refailed,
            "writes_outside_lease": fenced,
            "violations": len(self.violations),
            "notes": s.notes,
        }
        with open(os.path.join(s.workdir, "summary.json"), "w") as f:
            json.dump({**summary, "violation_list": self.violations}, f, indent=1)
        self.print_summary(summary)
        return 1 if self.violations else 0

    def print_summary(self, summary: dict) -> None:
        print("\n===== chaos soak summary =====")
        print(f"seed {summary['seed']}, {summary['duration_s']} s of faults, KFP {summary['kfp_version']}")
        runs = summary["runs"]
        print("runs: " + ", ".join(f"{k} {v}" for k, v in runs.items()))
        print("faults: " + ", ".join(f"{k} {v}" for k, v in summary["faults"].items()))
        print(f"kills: {summary['kills']} (after a correction PATCH: {summary['kills_after_patch']}); "
              f"failovers: {summary['failovers']}; replica exits: {summary['replica_exits']}; "
              f"starts: {summary['replica_starts']}; max replica RSS {summary['max_replica_rss_mib']} MiB "
              f"(limit {summary['memory_limit_mib']} MiB); idle CPU % {summary['idle_cpu_percent']}")
        print(f"replica writes: kube {summary['kube_writes_by_replicas']}, KFP reports "
              f"{summary['kfp_reports_by_replicas']} (all reports {summary['kfp_reports_total']})")
        for note in summary["notes"]:
            print("not exercised: " + note)
        for v in self.violations[:50]:
            print("VIOLATION " + v)
        if len(self.violations) > 50:
            print(f"... and {len(self.violations) - 50} more (summary.json)")
        print(f"violations: {summary['violations']}")


# --------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=600, help="seconds of faults (default 600)")
    ap.add_argument("--seed", type=int, default=None, help="RNG seed (default: random, printed)")
    ap.add_argument("--build-dir", default=os.environ.get("BUILD_DIR", os.path.join(ROOT, "build")))
    ap.add_argument("--workdir", default="", help="logs and state (default: a new temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the workdir even when all is well")
    ap.add_argument("--kfp-version", default="2.4-2.16", help="kfp-apisim --kfp-version")
    ap.add_argument("--rate", type=float, default=1.0, help="runs created per second (default 1)")
    ap.add_argument("--misreported-share", type=float, default=0.3)
    ap.add_argument("--hostile-share", type=float, default=0.1)
    ap.add_argument("--lease-duration", type=int, default=4)
    ap.add_argument("--renew-deadline", type=int, default=3)
    ap.add_argument("--retry-period", type=int, default=1)
    ap.add_argument("--settle", type=int, default=180, help="most seconds to wait for corrections")
    ap.add_argument("--quiet", type=int, default=10, help="seconds without replica writes to end")
    ap.add_argument("--bomb-mib", type=int, default=1024, help="gzip bomb inflated size (MiB)")
    ap.add_argument("--memory-limit-mib", type=int, default=deployment_memory_limit_mib(),
                    help="peak RSS allowed per replica (default: the Deployment's memory limit)")
    args = ap.parse_args()
    if args.duration < 1 or args.duration > 24 * 3600:
        ap.error("--duration must be within 1..86400 s")
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 2**31)

    soak = Soak(args)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    code = 2
    try:
        code = soak.run()
    except SetupError as e:
        log(f"setup failed: {e}")
        code = 2
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}); stopping")
        code = 130
    finally:
        soak.stop_all.set()
        soak.stop_faults.set()
        soak.stop_driver.set()
        soak.procs.stop_all()
        if code == 0 and not args.keep and not args.workdir:
            shutil.rmtree(soak.workdir, ignore_errors=True)
        else:
            log(f"logs kept in {soak.workdir}")
    return code


if __name__ == "__main__":
    sys.exit(main())
