#pragma once
// KfpHistoryApi: KFP's run history as the API server serves it, for tests,
// the history benchmark and the sandbox. A component of the KFP simulator
// that owns its run store (runs with their stored Workflow manifest); it is
// served on its own HttpServer (start()) or through handle() by a host.
//
// Endpoints, each following the upstream function named (kubeflow/pipelines,
// read at tags 2.0.0, 2.4.0, 2.17.0 and master):
// - GET /apis/v2beta1/runs (server/run_server.go ListRuns → listRuns,
//   list/list.go NewOptions/NewOptionsFromToken/Matches/NextPageToken,
//   server/list_request_util.go validatedListOptions/parseAPIFilter,
//   filter/filter.go): page_size default 20, clamped to 200, negative → 400;
//   sort_by "field [asc|desc]" on run_id, display_name, created_at,
//   finished_at, state (default created_at), ties by run_id; filter is v2beta1
//   Filter JSON, URL-decoded a second time as parseAPIFilter does (so a "+"
//   in "+01:00" becomes a space and the timestamp is rejected); the opaque
//   page token is base64(JSON) carrying the first request's sort and filter.
//   A later request that sends a filter or sort_by with a token is compared
//   with the token's copy (Options.Matches, reflect.DeepEqual after the
//   token's JSON round trip): numeric values (timestamps become Unix int64,
//   read back as float64) and value lists never compare equal, so resending
//   such a filter answers 400, as KFP does. An empty page is `{}`.
//   Multi-user: `namespace` is required (400 "A run cannot have an empty
//   namespace in multi-user mode", canAccessRun) and a SubjectAccessReview
//   `list runs` in it (403 otherwise); single-user: `namespace` is ignored
//   (ResourceManager.ReplaceNamespace returns "").
// - GET /apis/v1beta1/runs/{id} (run_server.go GetRunV1,
//   api_converter.go toApiRunDetailV1): RunDetail with
//   pipeline_runtime.workflow_manifest, the stored Workflow as a JSON string;
//   no workflow_manifest key when none is stored.
// - GET /apis/v1beta1/healthz (apiserver/main.go): multi_user, open.
// - GET /apis/v2beta1/runs/{id} (GetRun, toApiRun): state, finished_at,
//   state_history; no manifest.
// - POST /apis/v1beta1/workflows and /apis/v2beta1/workflows for runs of
//   this store (resource/resource_manager.go ReportWorkflowResource,
//   2.0.0–2.16.x; 2.17's resourceVersion fence passes when the CR is gone):
//   missing pipeline/runid → 400; label pipeline/persistedFinalState present
//   → Delete(CR) first: CR gone → 404 before any write; then UpdateRun
//   (state from status.phase, no check of the previous state, state_history
//   appended on change, finished_at from status.finishedAt, manifest
//   replaced) committed; then for a final state addWorkflowLabel: CR gone →
//   404 after the commit. An unknown run without a ScheduledWorkflow owner:
//   Delete(CR), 404, no write.
//
// Auth: with no identities registered every request is accepted. Otherwise
// `Authorization: Bearer <token>` must name a registered identity (401
// otherwise, auth.go getUserIdentity); in multi-user mode each endpoint then
// checks the identity's namespaces (get/list runs) or report permission
// (cluster scope, ReportWorkflowV1 → IsAuthorized) → 403.
//
// Thread-safety: every public method may be called from any thread.
// Memory: one record per run plus its manifest string (or none when a
// ManifestProvider renders manifests on demand, for large histories).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"

namespace exitrec {

inline namespace server {
class HttpServer;
}

class KfpHistoryApi {
 public:
  struct Options {
    bool multiUser = false;
  };

  struct Identity {
    std::set<std::string> namespaces;  // get/list runs here (multi-user)
    bool allNamespaces = false;
    bool mayReport = false;  // `report workflows`, cluster scope
  };

  struct HistoryRun {
    std::string runId;
    std::string displayName;
    std::string ns;
    std::string state;  // v2 RuntimeState name, e.g. "SUCCEEDED"
    std::int64_t createdAt = 0;
    std::int64_t finishedAt = 0;  // 0: not finished (proto omits it)
    // WorkflowRuntimeManifest; nullopt: none stored (a run never reported).
    std::optional<std::string> manifest;
    std::vector<std::pair<std::int64_t, std::string>> stateHistory;
  };

  // The Workflow CRs as KFP's workflow client sees them.
  struct Cluster {
    std::function<bool(const std::string& ns, const std::string& name)> exists;
    // Returns false when the CR did not exist (NotFound).
    std::function<bool(const std::string& ns, const std::string& name)> remove;
  };

  // Renders a run's manifest on demand (runs seeded without one): appends it
  // to `out` already encoded as the JSON string literal KFP sends (quotes
  // included) and returns true, or returns false for none stored. Large
  // histories render from pre-encoded templates instead of escaping per GET.
  // Called without the store's lock, from any server thread.
  using ManifestProvider = std::function<bool(const HistoryRun& run, std::string& out)>;

  struct Response {
    int status = 200;
    std::string body;
  };

  struct ReportRecord {
    int status = 0;
    std::string runId;
    std::string phase;
    bool hadFinalStateLabel = false;
    bool wroteRun = false;
    bool deletedWorkflow = false;
  };

  KfpHistoryApi() : KfpHistoryApi(Options{}) {}
  explicit KfpHistoryApi(Options options);
  ~KfpHistoryApi();
  KfpHistoryApi(const KfpHistoryApi&) = delete;
  KfpHistoryApi& operator=(const KfpHistoryApi&) = delete;

  // Seeding. The history starts with a state_history entry for the state.
  void addRun(HistoryRun run);
  void setEncodedManifestProvider(ManifestProvider provider);
  void setCluster(Cluster cluster);
  void addIdentity(const std::string& token, Identity identity);

  std::optional<HistoryRun> run(const std::string& runId) const;
  std::vector<ReportRecord> reports() const;
  std::size_t listRequests() const;

  // Whether handle() serves this request path (the own server).
  static bool claims(const std::string& method, const std::string& path);
  // Whether a host simulator (kfp_api_simulator.cpp) should hand this request
  // over: the list, get-v1 and healthz always; get-v2 and reports only for
  // runs of this store (the host keeps its own live runs).
  bool serves(const std::string& method, const std::string& path, const std::string& body) const;
  // query: URL-decoded once, as the HTTP layer delivers it.
  Response handle(const std::string& method, const std::string& path,
                  const std::vector<std::pair<std::string, std::string>>& query,
                  const std::optional<std::string>& authorization, const std::string& body);

  // Own server (tests, kfp-history-sim).
  // `threads` handler workers (common/http_server.h); idle keep-alive
  // connections hold none.
  Status start(const std::string& address = "127.0.0.1", int port = 0, int threads = 32);
  void stop();
  std::string baseUrl() const;

 private:
  struct Auth {
    bool ok = true;
    const Identity* identity = nullptr;  // null: no identities registered
  };
  Response list(const Auth& auth, const std::vector<std::pair<std::string, std::string>>& query);
  Response getV1(const Auth& auth, const std::string& runId);
  Response getV2(const Auth& auth, const std::string& runId);
  Response report(const Auth& auth, const std::string& body);
  bool mayRead(const Auth& auth, const std::string& ns) const;

  Options options_;
  std::unique_ptr<HttpServer> server_;
  mutable std::mutex mu_;
  std::map<std::string, HistoryRun> runs_;
  std::map<std::string, Identity> identities_;
  ManifestProvider provider_;
  Cluster cluster_;
  std::vector<ReportRecord> reports_;
  std::size_t listRequests_ = 0;
};

// KFP's page-token and filter handling, exposed for unit tests.
namespace kfphistory {

struct Predicate {
  std::string field;  // model field, e.g. "FinishedAtInSec"
  std::string op;     // "EQUALS", ..., "IN", "IS_SUBSTRING"
  // Scalars: exactly one of these; lists: `strings` or `numbers` (isList).
  std::optional<std::string> string;
  std::optional<std::int64_t> number;
  std::vector<std::string> strings;
  std::vector<std::int64_t> numbers;
  bool isList = false;
};

// Parses a v2beta1 Filter as parseAPIFilter does (a second QueryUnescape,
// then proto JSON). Errors are kInvalidInput with KFP's wording.
Result<std::vector<Predicate>> parseFilter(const std::string& encoded);
// RFC 3339 with Z or ±hh:mm → Unix seconds.
Result<std::int64_t> parseTimestamp(const std::string& text);
// Unix seconds as RFC 3339 (UTC, "Z"), as KFP's Timestamp JSON writes them.
std::string formatTimestamp(std::int64_t seconds);

}  // namespace kfphistory

}  // namespace exitrec
