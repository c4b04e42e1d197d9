#pragma once
// KfpApiSimulator: the parts of the Kubeflow Pipelines API server the
// controller talks to, served over common/http_server.h, for tests, the
// sandbox and benchmarks.
//
// Endpoints (paths as in KFP's swagger for report.proto and run.proto):
// - POST /apis/v1beta1/workflows, POST /apis/v2beta1/workflows: the report
//   API. The body is a JSON string literal whose content is a serialized
//   Workflow (grpc-gateway `body: "workflow"` on a string field). Validated as
//   the real server does: the string must parse as a Workflow with
//   metadata.name, namespace and uid, and label pipeline/runid; else 400 with
//   a googleRpcStatus body. The run's state becomes KFP's mapping of
//   status.phase (Succeeded→SUCCEEDED, Failed/Error→FAILED, Running→RUNNING,
//   Pending→PENDING, else RUNTIME_STATE_UNSPECIFIED); state_history grows only
//   on change.
// - GET /apis/v2beta1/runs/{run_id}: the run (snake_case proto JSON, unset
//   fields omitted); 404 for a run never reported.
// - GET /apis/v1beta1/healthz.
// - Control (for child-process use, same auth): POST /_kfp/fail
//   {"count":N,"status":503}, POST /_kfp/delay {"ms":N}, POST /_kfp/token
//   {"token":"..."}, GET /_kfp/reports (the report log as a JSON array).
//
// Auth: when a token is set, every API and control request needs
// `Authorization: Bearer <token>` (401 otherwise); healthz is open.
// Faults: failNext(N) makes the next N API requests (reports and run GETs)
// answer `status` (503 by default); setDelay() delays every API request.
//
// Thread-safety: every public method may be called from any thread while the
// server runs. Memory: only a compact record per report and per run is kept,
// never the reported Workflow.

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace exitrec {

inline namespace server {
class HttpServer;  // common/http_server.h, kept out of this header
}
class KfpHistoryApi;  // sim/kfp/kfp_history_api.h

class KfpApiSimulator {
 public:
  struct Options {
    std::string address = "127.0.0.1";
    int port = 0;
    std::string token;  // empty: no authentication
  };

  // One request to a report endpoint, accepted or not.
  struct Report {
    std::string api;  // "v1beta1" | "v2beta1"
    int status = 0;   // the HTTP status answered
    std::string error;
    std::string ns, name, uid, runId, phase, resourceVersion;
    std::chrono::system_clock::time_point at;
  };

  struct Run {
    std::string runId;
    std::string displayName;
    std::string state;
    std::string createdAt;
    std::string finishedAt;
    std::vector<std::pair<std::string, std::string>> stateHistory;  // {update_time, state}
    std::string workflowName, workflowNamespace, resourceVersion;
  };

  // A response computed without the network (unit tests use this directly).
  struct Response {
    int status = 200;
    std::string body;
  };

  explicit KfpApiSimulator(Options options);
  ~KfpApiSimulator();
  KfpApiSimulator(const KfpApiSimulator&) = delete;
  KfpApiSimulator& operator=(const KfpApiSimulator&) = delete;

  Status start();
  void stop();
  int port() const;
  std::string baseUrl() const;

  void failNext(int count, int status = 503);
  void setDelay(std::chrono::milliseconds delay);
  void setToken(std::string token);
  // Hands KFP's run history (list, get v1, and the runs it stores) to
  // `history`; call before start(). Not owned.
  void attachHistory(KfpHistoryApi* history) { history_ = history; }

  std::vector<Report> reports() const;
  // Accepted reports only.
  std::size_t acceptedReports() const;
  std::optional<Run> run(const std::string& runId) const;

  // Handles one request (what the HTTP handler does, minus the transport).
  Response handle(const std::string& method, const std::string& path,
                  const std::optional<std::string>& authorization, const std::string& body);

  // KFP's ToV2(upper(phase)) mapping.
  static std::string stateForPhase(const std::string& phase);
  static std::string runToJson(const Run& run);
  static std::string reportsToJson(const std::vector<Report>& reports);

 private:
  Response report(const std::string& api, const std::string& body);
  Response getRun(const std::string& runId);
  Response control(const std::string& method, const std::string& path, const std::string& body);
  Response controlWith(const std::string& method, const std::string& path,
                       const nlohmann::json& args);

  Options options_;
  std::unique_ptr<HttpServer> server_;
  mutable std::mutex mu_;
  std::string token_;
  int failCount_ = 0;
  int failStatus_ = 503;
  std::chrono::milliseconds delay_{0};
  std::vector<Report> reports_;
  std::map<std::string, Run> runs_;
  KfpHistoryApi* history_ = nullptr;
};

}  // namespace exitrec
