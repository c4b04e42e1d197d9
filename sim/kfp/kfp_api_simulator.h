#pragma once
// KfpApiSimulator: the parts of the Kubeflow Pipelines API server the
// controller and KFP's persistence agent talk to, served over
// common/http_server.h, for tests, the sandbox and benchmarks.
//
// Fidelity: the report path follows ReportWorkflowResource
// (backend/src/apiserver/resource/resource_manager.go) and reportWorkflow
// (backend/src/apiserver/server/report_server.go) of the KFP version chosen in
// Options::version (sim/kfp/kfp_sim_version.h); docs/simulator.md lists each
// branch with its upstream source. In short, per version:
// - a reported Workflow carrying the label pipeline/persistedFinalState
//   (presence, not value) makes KFP DELETE the Workflow CR, through the
//   Kubernetes API (Options::kubeApiUrl), before it updates the run; a
//   NotFound there answers NotFound before any write;
// - a run id unknown to the run store, without a ScheduledWorkflow owner:
//   the CR is deleted and the answer is NotFound (2.17+: 503 instead while the
//   Workflow is younger than the grace period);
// - a terminal report labels the CR pipeline/persistedFinalState: "true";
// - 2.17/master fence terminal reports on metadata.resourceVersion (503), master
//   also on the pipelines.kubeflow.org/retry-generation annotation.
// Runs exist only through createRun() (KFP's CreateRun) or, for Workflows owned
// by a known recurring run (addRecurringRun), through a report, as in KFP.
//
// Endpoints (paths as in KFP's swagger):
// - POST /apis/v1beta1/workflows, POST /apis/v2beta1/workflows: the report
//   API. The body is a JSON string literal holding the serialized Workflow
//   (grpc-gateway `body: "workflow"` on a string field).
// - GET /apis/v2beta1/runs/{run_id}: the run (snake_case proto JSON).
// - GET /apis/v1beta1/healthz.
// - Control (same auth): POST /_kfp/fail {"count":N,"status":503},
//   POST /_kfp/delay {"ms":N}, POST /_kfp/token {"token":"..."},
//   POST /_kfp/outage {"on":true}, GET /_kfp/reports, GET /_kfp/deletions,
//   POST /_kfp/runs {"run_id","display_name","namespace","workflow"|"workflow_name"},
//   POST /_kfp/recurring-runs {"id","namespace"}, POST /_kfp/retry {"run_id"}.
// Errors are grpc-gateway shaped (Options::gatewayErrors).
//
// Auth: when a token is set, every API and control request needs
// `Authorization: Bearer <token>` (401 otherwise); healthz is open.
//
// Thread-safety: every public method may be called from any thread while the
// server runs; reports run concurrently, as in KFP (no lock across a report).

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "sim/kfp/kfp_sim_version.h"

namespace exitrec {

inline namespace server {
class HttpServer;  // common/http_server.h, kept out of this header
}
class KfpHistoryApi;  // sim/kfp/kfp_history_api.h
class KubeClient;
class HttpTransport;

// gRPC status codes used on the report path (google.golang.org/grpc/codes).
namespace grpc_code {
inline constexpr int kOk = 0;
inline constexpr int kUnknown = 2;
inline constexpr int kInvalidArgument = 3;
inline constexpr int kNotFound = 5;
inline constexpr int kInternal = 13;
inline constexpr int kUnavailable = 14;
inline constexpr int kUnauthenticated = 16;
}  // namespace grpc_code

class KfpApiSimulator {
 public:
  struct Options {
    std::string address = "127.0.0.1";
    int port = 0;
    std::string token{};  // empty: no authentication
    KfpVersion version = KfpVersion::k2_4To2_16;
    GatewayErrors gatewayErrors = GatewayErrors::kAuto;
    // The Kubernetes API KFP's workflow client talks to (e.g. the kube
    // simulator's baseUrl()). Empty: no cluster; every CR step (delete, get,
    // label) is skipped, for unit tests that have none.
    std::string kubeApiUrl{};
    std::string kubeToken{};
    Clock* clock = nullptr;  // nullptr: the system clock
    // 2.17+: WORKFLOW_GC_GRACE_PERIOD_SECONDS (common/config.go, default 120).
    std::chrono::seconds workflowGcGracePeriod{120};
    // master: storage.RetryClaimGraceSeconds (run_store.go, 600).
    std::chrono::seconds retryClaimGrace{600};
    // KFP's Kubernetes retries (newStandardBackoffPolicy: 100 ms growing x1.5
    // to 5 s, 10 retries; the simulator leaves out the jitter). Tests set 0 to keep the retry count
    // without waiting.
    std::chrono::milliseconds backoffInitial{100};
    std::chrono::milliseconds backoffMax{5000};
  };

  // One report, accepted or not (HTTP or in-process from the agent emulation).
  struct Report {
    std::string api;     // "v1beta1" | "v2beta1"
    std::string source;  // "http" | "agent"
    int status = 0;      // the HTTP status answered (200 accepted)
    int grpcCode = 0;
    std::string error;
    std::string ns, name, uid, runId, phase, resourceVersion;
    std::string state;                    // the run state the report maps to (KFP's ToV2)
    bool carriedFinalStateLabel = false;  // the body had pipeline/persistedFinalState
    std::chrono::system_clock::time_point at;
    // HTTP reports: the <name> of a /_client/<name>/ URL prefix ("" without
    // one), and when the request arrived (before any injected delay).
    std::string client;
    std::chrono::system_clock::time_point arrivedAt;
  };

  // A Workflow CR the simulated server deleted (KFP's only deletes).
  struct Deletion {
    std::string ns, name, runId;
    std::string reason;   // "persisted-final-state" | "unknown-run"
    bool existed = true;  // false: the delete answered NotFound
    std::chrono::system_clock::time_point at;
  };

  struct Run {
    std::string runId{};
    std::string displayName{};
    std::string state;  // v2 RuntimeState
    std::string createdAt;
    std::string finishedAt;  // "" while FinishedAtInSec is 0
    std::int64_t finishedAtSec = 0;
    std::vector<std::pair<std::string, std::string>> stateHistory;  // {update_time, state}
    std::string workflowName, workflowNamespace, resourceVersion;
    std::string recurringRunId;
    std::string manifest;  // WorkflowRuntimeManifest: the last accepted report's Workflow
    std::int64_t retryGeneration = 0;
    std::int64_t retryClaimedAtSec = 0;
  };

  // What KFP's CreateRun puts in the run store (resource_manager.go CreateRun:
  // the Workflow CR is created first, then the row, state PENDING).
  struct CreateRunRequest {
    std::string runId{};
    std::string displayName{};  // default: the Workflow name
    std::string ns{};           // default: the Workflow's namespace
    // The Workflow to create through the Kubernetes API first (needs a
    // cluster); its metadata.labels["pipeline/runid"] is set to runId.
    std::optional<nlohmann::json> workflow{};
    std::string workflowName{};  // without `workflow`: the CR name (created by the caller)
  };

  // A response computed without the network (unit tests use this directly).
  struct Response {
    int status = 200;
    std::string body;
    std::string contentType = "application/json";
  };

  // The outcome of ReportWorkflowResource: grpc code and message.
  struct RpcResult {
    int code = grpc_code::kOk;
    std::string message;   // the status message (Go's wrapped error chain)
    std::string external;  // the UserError's external message (the detail)
    int detailCode = -1;   // the detail's code; -1: same as `code`
    bool ok() const { return code == grpc_code::kOk; }
  };

  explicit KfpApiSimulator(Options options);
  ~KfpApiSimulator();
  KfpApiSimulator(const KfpApiSimulator&) = delete;
  KfpApiSimulator& operator=(const KfpApiSimulator&) = delete;

  // Binds and serves. Also builds the Kubernetes client (kInvalidInput when
  // kubeApiUrl is not http(s)).
  Status start();
  void stop();
  int port() const;
  std::string baseUrl() const;
  const Options& options() const { return options_; }

  void failNext(int count, int status = 503);
  void setDelay(std::chrono::milliseconds delay);
  void setToken(std::string token);
  // Hands KFP's run history (list, get v1, and the runs it stores) to
  // `history`; call before start(). Not owned.
  void attachHistory(KfpHistoryApi* history) { history_ = history; }
  // While on, every API request answers 503 Unavailable (the gateway with its
  // gRPC backend down).
  void setOutage(bool on);

  // KFP's CreateRun. Errors: kInvalidInput (no run id / name / namespace, a
  // run id that exists), kUnsupported (a workflow without a cluster), or the
  // Kubernetes create's error (then no row is written, as in KFP).
  Result<Run> createRun(const CreateRunRequest& request);
  // A recurring run (job) known to KFP: reports of Workflows owned by a
  // ScheduledWorkflow with this uid create their run, as in KFP.
  void addRecurringRun(const std::string& jobId, const std::string& ns);

  // KFP's RetryRun: rebuilds the Workflow from the stored manifest (the last
  // accepted report) as GenerateRetryExecution does, updates (or creates) the
  // CR and sets the run RUNNING; at master it first claims the run (PENDING,
  // retry generation + 1) and stamps pipelines.kubeflow.org/retry-generation.
  // Needs a cluster. kInvalid when the stored phase is not Failed/Error.
  Status retryRun(const std::string& runId);

  // KFP's ReportWorkflowV1 called in-process, as the persistence agent does
  // over gRPC. Logged with source "agent".
  RpcResult reportFromAgent(const std::string& workflowJson);

  std::vector<Report> reports() const;
  std::size_t acceptedReports() const;  // status 200 only
  // Accepted reports for a run whose mapped state is `state` (e.g. "FAILED").
  std::size_t acceptedReportsFor(const std::string& runId, const std::string& state) const;
  std::vector<Deletion> deletions() const;
  std::optional<Run> run(const std::string& runId) const;
  // GET /apis/v2beta1/runs/{id} requests answered (any status), for a run id.
  std::size_t runGets(const std::string& runId) const;
  // Requests to paths the server does not route (answered 404).
  std::size_t unroutedRequests() const;

  // Handles one request (what the HTTP handler does, minus the transport).
  // `client`: the name of a /_client/<name>/ prefix the HTTP handler took
  // off the path (a caller's base URL may end in one, to be told apart in the
  // report log, e.g. several controller replicas in the chaos soak).
  Response handle(const std::string& method, const std::string& path,
                  const std::optional<std::string>& authorization, const std::string& body,
                  const std::string& client = "");

  // KFP's RuntimeState(phase).ToV2() (backend/src/apiserver/model/run.go).
  static std::string stateForPhase(const std::string& phase);
  static std::string runToJson(const Run& run);
  static std::string reportsToJson(const std::vector<Report>& reports);

  // Builds the grpc-gateway error body for this simulator's version.
  Response errorResponse(const RpcResult& r) const;

 private:
  friend class KfpReportHandler;  // sim/kfp/kfp_report_workflow.cpp

  Response report(const std::string& api, const std::string& body, const std::string& source,
                  RpcResult* out, const std::string& client = "",
                  std::optional<Clock::WallTime> arrivedAt = std::nullopt);
  Response getRun(const std::string& runId);
  Response control(const std::string& method, const std::string& path, const std::string& body);
  Response controlWith(const std::string& method, const std::string& path,
                       const nlohmann::json& args);
  void recordReport(Report rec);
  void recordDeletion(Deletion d);
  Clock& clock() const;
  Status connectKube();  // sim/kfp/kfp_sim_runs.cpp

  Options options_;
  std::unique_ptr<HttpServer> server_;
  std::shared_ptr<HttpTransport> kubeTransport_;
  std::shared_ptr<KubeClient> kube_;  // null: no cluster
  // createRun holds it exclusively from the CR create to the row insert, and
  // each report shares it: KFP has no such lock (its window is what 2.17's
  // grace period covers); the simulator closes it so tests are deterministic.
  mutable std::shared_mutex createMu_;
  mutable std::mutex mu_;
  std::string token_;
  int failCount_ = 0;
  int failStatus_ = 503;
  bool outage_ = false;
  std::chrono::milliseconds delay_{0};
  std::vector<Report> reports_;
  std::vector<Deletion> deletions_;
  std::map<std::string, Run> runs_;
  KfpHistoryApi* history_ = nullptr;
  std::map<std::string, std::string> jobs_;  // recurring run id -> namespace
  std::map<std::string, std::size_t> runGets_;
  std::size_t unrouted_ = 0;
};

}  // namespace exitrec
