#!/usr/bin/env bash
# Fidelity test: the real kubectl (1.32) against kube-apisim over TLS with a bearer token.
# Usage: kubectl_fidelity.sh <path to kube-apisim>. Exit 77 (ctest: skipped) without kubectl.
set -euo pipefail
SIM_BIN=${1:?usage: kubectl_fidelity.sh <kube-apisim>}
[[ -x "$SIM_BIN" ]] || { echo "FAIL: simulator binary $SIM_BIN not built" >&2; exit 1; }
if ! command -v kubectl >/dev/null 2>&1; then
  echo "SKIP: kubectl not installed: the kubectl fidelity checks did not run" >&2
  exit 77
fi
WORK=$(mktemp -d)
SIM_PID=""
WATCH_PID=""
cleanup() {
  [[ -n "$WATCH_PID" ]] && kill "$WATCH_PID" 2>/dev/null || true
  [[ -n "$SIM_PID" ]] && kill "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; echo "--- simulator log" >&2; tail -50 "$WORK/sim.log" >&2; exit 1; }
check() { # check <description> <haystack> <needle>
  if [[ "$2" != *"$3"* ]]; then fail "$1: expected to find '$3' in: $2"; fi
  echo "ok: $1"
}

"$SIM_BIN" --port 0 --tls --token fidelity-token --state-dir "$WORK/state" \
  --ready-file "$WORK/ready.json" --bookmark-interval-ms 200 --log-requests 2>"$WORK/sim.log" &
SIM_PID=$!
for _ in $(seq 1 100); do [[ -s "$WORK/ready.json" ]] && break; sleep 0.1; done
[[ -s "$WORK/ready.json" ]] || fail "simulator did not become ready"
export KUBECONFIG="$WORK/state/kubeconfig"
export HOME="$WORK"  # kubectl's discovery cache stays inside the test dir

cat >"$WORK/wf.yaml" <<'YAML'
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  name: hello
  namespace: kubeflow
  labels:
    app: demo
spec:
  entrypoint: main
YAML

out=$(kubectl version -o json 2>&1) || fail "kubectl version: $out"
check "version" "$out" '"gitVersion": "v1.32.0-kube-apisim"'

out=$(kubectl create -f "$WORK/wf.yaml" 2>&1) && fail "create in a missing namespace succeeded: $out"
check "create in a missing namespace" "$out" 'namespaces "kubeflow" not found'
# Generator commands (kubectl create namespace, kubectl run) send protobuf, which the simulator
# does not speak; manifests go as JSON.
printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: kubeflow}\n' >"$WORK/ns.yaml"
out=$(kubectl create -f "$WORK/ns.yaml" 2>&1) || fail "create namespace: $out"
check "create namespace" "$out" "namespace/kubeflow created"
out=$(kubectl create -f "$WORK/wf.yaml" 2>&1) || fail "create: $out"
check "create (validation via OpenAPI v3)" "$out" "workflow.argoproj.io/hello created"
for i in 1 2 3 4 5; do
  kubectl create -f - >/dev/null <<YAML || fail "create extra $i"
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: "extra-$i", namespace: default, labels: {app: extra, idx: "$i"}}
spec: {entrypoint: main}
YAML
done

out=$(kubectl get wf -n kubeflow 2>&1) || fail "get -n: $out"
check "get namespaced" "$out" "hello"
out=$(kubectl get workflows -A 2>&1) || fail "get -A: $out"
check "get -A lists kubeflow" "$out" "kubeflow    hello"
check "get -A lists default" "$out" "default     extra-5"
out=$(kubectl get wf -A -l 'app=extra,idx in (2,3)' -o name 2>&1) || fail "get -l: $out"
[[ $(echo "$out" | wc -l) == 2 ]] || fail "label selector: expected 2 names, got: $out"
check "get -l in" "$out" "workflow.argoproj.io/extra-2"
out=$(kubectl get wf -A -l '!idx' -o name 2>&1) || fail "get -l !idx: $out"
[[ "$out" == "workflow.argoproj.io/hello" ]] || fail "!idx selector gave: $out"
echo "ok: get -l !key"
out=$(kubectl get wf --chunk-size=2 -o name 2>&1) || fail "chunked get: $out"
[[ $(echo "$out" | wc -l) == 5 ]] || fail "pagination with --chunk-size=2 lost items: $out"
grep -q "continue=.*limit=2" "$WORK/sim.log" || fail "kubectl did not paginate"
echo "ok: get --chunk-size pages with continue"
out=$(kubectl get wf hello -n kubeflow -o json 2>&1) || fail "get -o json: $out"
uid=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["uid"])')
[[ -n "$uid" ]] || fail "no uid"
echo "ok: get -o json"
out=$(kubectl get wf hello -n kubeflow -o yaml 2>&1) || fail "get -o yaml: $out"
check "get -o yaml" "$out" "entrypoint: main"
out=$(kubectl get wf nope -n kubeflow 2>&1) && fail "get of a missing object succeeded"
check "NotFound message" "$out" 'Error from server (NotFound): workflows.argoproj.io "nope" not found'

# Watch: kubectl sends no allowWatchBookmarks, so no <unknown> rows may appear.
kubectl get wf -n kubeflow -w --output-watch-events -o json >"$WORK/watch.out" 2>"$WORK/watch.err" &
WATCH_PID=$!
for _ in $(seq 1 50); do grep -q '"ADDED"' "$WORK/watch.out" 2>/dev/null && break; sleep 0.1; done
check "watch initial ADDED" "$(cat "$WORK/watch.out")" '"type":"ADDED"'

out=$(kubectl patch wf hello -n kubeflow --type merge -p '{"metadata":{"labels":{"stage":"merged"}}}' 2>&1) \
  || fail "merge patch: $out"
check "patch --type merge" "$out" "workflow.argoproj.io/hello patched"
for _ in $(seq 1 50); do grep -q '"MODIFIED"' "$WORK/watch.out" && break; sleep 0.1; done
check "watch sees MODIFIED" "$(cat "$WORK/watch.out")" '"stage":"merged"'
sleep 0.5  # > bookmark interval: a bookmark would show up now if one were (wrongly) sent
kill "$WATCH_PID"; wait "$WATCH_PID" 2>/dev/null || true; WATCH_PID=""
if grep -q BOOKMARK "$WORK/watch.out"; then fail "bookmark sent to kubectl, which did not ask for it"; fi
grep -q "watch=true" "$WORK/sim.log" || fail "no watch request seen"
echo "ok: get -w without bookmarks"

rv=$(kubectl get wf hello -n kubeflow -o jsonpath='{.metadata.resourceVersion}')
out=$(kubectl patch wf hello -n kubeflow --type json \
  -p "[{\"op\":\"test\",\"path\":\"/metadata/resourceVersion\",\"value\":\"$rv\"},{\"op\":\"add\",\"path\":\"/metadata/labels/jp\",\"value\":\"1\"}]" 2>&1) \
  || fail "json patch: $out"
check "patch --type json" "$out" "patched"
out=$(kubectl patch wf hello -n kubeflow --type json \
  -p "[{\"op\":\"test\",\"path\":\"/metadata/resourceVersion\",\"value\":\"$rv\"},{\"op\":\"add\",\"path\":\"/metadata/labels/jp\",\"value\":\"2\"}]" 2>&1) \
  && fail "json patch with a failing test op succeeded: $out"
check "failed test op is 422 Invalid" "$out" "The request is invalid"
check "failed test op names the path" "$out" "testing value /metadata/resourceVersion failed"
out=$(kubectl patch wf hello -n kubeflow -p '{"metadata":{"labels":{"s":"1"}}}' 2>&1) \
  && fail "strategic merge patch on a CR succeeded"
check "strategic merge on CR is 415" "$out" "application/strategic-merge-patch+json is not supported"

# Server-side apply, including a conflict between field managers.
sed 's/entrypoint: main/entrypoint: applied/' "$WORK/wf.yaml" >"$WORK/wf2.yaml"
out=$(kubectl apply --server-side -f "$WORK/wf2.yaml" 2>&1) || fail "apply --server-side: $out"
check "apply --server-side" "$out" "workflow.argoproj.io/hello serverside-applied"
grep -q "fieldManager=kubectl&fieldValidation=Strict&force=false" "$WORK/sim.log" || fail "apply query"
sed 's/entrypoint: main/entrypoint: rival/' "$WORK/wf.yaml" >"$WORK/wf3.yaml"
out=$(kubectl apply --server-side --field-manager=rival -f "$WORK/wf3.yaml" 2>&1) \
  && fail "conflicting apply succeeded: $out"
check "apply conflict" "$out" 'conflict with "kubectl"'
out=$(kubectl apply --server-side --field-manager=rival --force-conflicts -f "$WORK/wf3.yaml" 2>&1) \
  || fail "forced apply: $out"
check "apply --force-conflicts" "$out" "serverside-applied"
out=$(kubectl get wf hello -n kubeflow -o jsonpath='{.spec.entrypoint}')
[[ "$out" == "rival" ]] || fail "forced apply did not take effect: $out"

# Dry run on the server changes nothing.
out=$(kubectl apply --server-side --dry-run=server --field-manager=rival -f "$WORK/wf2.yaml" 2>&1) \
  || fail "apply --dry-run=server: $out"
check "apply --dry-run=server" "$out" "(server dry run)"
out=$(kubectl get wf hello -n kubeflow -o jsonpath='{.spec.entrypoint}')
[[ "$out" == "rival" ]] || fail "dry run changed the object: $out"
printf 'apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: dry, namespace: kubeflow}\nspec: {entrypoint: main}\n' >"$WORK/dry.yaml"
out=$(kubectl create --dry-run=server -f "$WORK/dry.yaml" 2>&1) || fail "create --dry-run=server: $out"
check "create --dry-run=server" "$out" "created (server dry run)"
kubectl get wf dry -n kubeflow >/dev/null 2>&1 && fail "dry-run create persisted"
echo "ok: dry runs persist nothing"

# Client-side apply: kubectl reads OpenAPI v3 (and tries v2, which is 404) and sends a JSON merge
# patch computed from the last-applied annotation, since Workflow is not a built-in kind.
printf 'apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: csa, namespace: kubeflow}\nspec: {entrypoint: one}\n' >"$WORK/csa.yaml"
out=$(kubectl apply -f "$WORK/csa.yaml" 2>&1) || fail "client-side apply (create): $out"
check "apply (client-side) creates" "$out" "workflow.argoproj.io/csa created"
sed -i 's/entrypoint: one/entrypoint: two/' "$WORK/csa.yaml"
out=$(kubectl apply -f "$WORK/csa.yaml" 2>&1) || fail "client-side apply (update): $out"
check "apply (client-side) updates" "$out" "workflow.argoproj.io/csa configured"
out=$(kubectl get wf csa -n kubeflow -o jsonpath='{.spec.entrypoint}')
[[ "$out" == "two" ]] || fail "client-side apply did not update: $out"
grep -q "PATCH /apis/argoproj.io/v1alpha1/namespaces/kubeflow/workflows/csa?fieldManager=kubectl-client-side-apply" \
  "$WORK/sim.log" || fail "client-side apply did not PATCH"

# Core resources.
printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: pod1, namespace: kubeflow, labels: {app: p}}\nspec:\n  containers: [{name: main, image: busybox}]\n' >"$WORK/pod.yaml"
out=$(kubectl create -f "$WORK/pod.yaml" 2>&1) || fail "create pod: $out"
out=$(kubectl get pods -A -o name 2>&1) || fail "get pods: $out"
check "pods" "$out" "pod/pod1"
out=$(kubectl label pod pod1 -n kubeflow extra=yes 2>&1) || fail "label: $out"
check "label pod" "$out" "pod/pod1 labeled"
out=$(kubectl get pod pod1 -n kubeflow -o jsonpath='{.metadata.labels.extra}')
[[ "$out" == "yes" ]] || fail "label not stored: $out"
out=$(kubectl get ns 2>&1) || fail "get ns: $out"
check "namespaces" "$out" "default"
out=$(kubectl get leases,events -A 2>&1) || fail "get leases,events: $out"
echo "ok: leases and events list"

# Delete.
out=$(kubectl delete wf hello -n kubeflow 2>&1) || fail "delete: $out"
check "delete" "$out" 'workflow.argoproj.io "hello" deleted'
kubectl get wf hello -n kubeflow >/dev/null 2>&1 && fail "deleted object still readable"

# Authentication: a wrong token is refused with 401.
sed 's/token: fidelity-token/token: wrong/' "$KUBECONFIG" >"$WORK/bad-kubeconfig"
out=$(KUBECONFIG="$WORK/bad-kubeconfig" kubectl get wf 2>&1) && fail "wrong token accepted"
check "401 with a wrong token" "$out" "Unauthorized"

# A second simulator: TLS on IPv6 loopback without a token (kubeconfig carries a placeholder
# token so that kubectl does not prompt for a username).
kill "$SIM_PID"; wait "$SIM_PID" 2>/dev/null || true
"$SIM_BIN" --addr ::1 --port 0 --tls --state-dir "$WORK/state6" --ready-file "$WORK/ready6.json" \
  2>"$WORK/sim.log" &
SIM_PID=$!
for _ in $(seq 1 100); do [[ -s "$WORK/ready6.json" ]] && break; sleep 0.1; done
[[ -s "$WORK/ready6.json" ]] || fail "IPv6 simulator did not become ready"
check "IPv6 URL" "$(cat "$WORK/ready6.json")" '"url":"https://[::1]:'
out=$(KUBECONFIG="$WORK/state6/kubeconfig" kubectl get ns </dev/null 2>&1) || fail "IPv6 get ns: $out"
check "kubectl over TLS on ::1 without a token" "$out" "kube-system"

echo "PASS: kubectl fidelity"
