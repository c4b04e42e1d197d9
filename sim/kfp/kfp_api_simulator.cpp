#include "sim/kfp/kfp_api_simulator.h"

#include <algorithm>
#include <cctype>
#include <thread>
#include <tuple>

#include "common/clock.h"
#include "common/http_server.h"
#include "common/json_text.h"
#include "sim/kfp/kfp_history_api.h"
#include "sim/kfp/kfp_report_handler.h"
#include "sim/kfp/kfp_workflow_fields.h"

namespace exitrec {
namespace {

using nlohmann::json;

constexpr std::string_view kV1Report = "/apis/v1beta1/workflows";
constexpr std::string_view kV2Report = "/apis/v2beta1/workflows";
constexpr std::string_view kRunsPrefix = "/apis/v2beta1/runs/";
constexpr std::string_view kHealthz = "/apis/v1beta1/healthz";
constexpr std::string_view kControlPrefix = "/_kfp/";

// runtime.HTTPStatusFromCode (grpc-gateway v1.16 and v2 agree on these).
int httpStatusFor(int code) {
  switch (code) {
    case 0:
      return 200;
    case 1:
      return 408;
    case 3:
    case 9:
    case 11:
      return 400;
    case 4:
      return 504;
    case 5:
      return 404;
    case 6:
    case 10:
      return 409;
    case 7:
      return 403;
    case 8:
      return 429;
    case 12:
      return 501;
    case 14:
      return 503;
    case 16:
      return 401;
    default:
      return 500;
  }
}

// The gRPC code an injected HTTP status stands for.
int codeForHttpStatus(int status) {
  switch (status) {
    case 400:
      return grpc_code::kInvalidArgument;
    case 401:
      return grpc_code::kUnauthenticated;
    case 403:
      return 7;
    case 404:
      return grpc_code::kNotFound;
    case 409:
      return 6;
    case 429:
      return 8;
    case 503:
      return grpc_code::kUnavailable;
    default:
      return status >= 500 ? grpc_code::kInternal : grpc_code::kUnknown;
  }
}

KfpApiSimulator::RpcResult rpc(int code, std::string message) {
  KfpApiSimulator::RpcResult r;
  r.code = code;
  r.external = message;
  r.message = std::move(message);
  return r;
}

}  // namespace

KfpApiSimulator::KfpApiSimulator(Options options)
    : options_(std::move(options)), token_(options_.token) {}

KfpApiSimulator::~KfpApiSimulator() {
  stop();
}

Clock& KfpApiSimulator::clock() const {
  return options_.clock != nullptr ? *options_.clock : SystemClock::instance();
}

Status KfpApiSimulator::start() {
  if (Status s = connectKube(); !s)
    return s;
  HttpServer::Options so;
  so.address = options_.address;
  so.port = options_.port;
  so.threads = 8;
  server_ = std::make_unique<HttpServer>(so);
  server_->handle("/", [this](const HttpRequest& req, HttpResponseWriter& w) {
    constexpr std::string_view kClientPrefix = "/_client/";
    std::string path = req.path;
    std::string client;
    if (path.rfind(kClientPrefix, 0) == 0) {
      const std::size_t slash = path.find('/', kClientPrefix.size());
      client = path.substr(kClientPrefix.size(), slash == std::string::npos
                                                     ? std::string::npos
                                                     : slash - kClientPrefix.size());
      path = slash == std::string::npos ? "/" : path.substr(slash);
    }
    if (history_ != nullptr && history_->serves(req.method, path, req.body)) {
      auto h = history_->handle(req.method, path, req.query, req.header("Authorization"), req.body);
      w.send(h.status, {{"Content-Type", "application/json"}}, h.body);
      return;
    }
    Response r = handle(req.method, path, req.header("Authorization"), req.body, client);
    w.send(r.status, {{"Content-Type", r.contentType}}, r.body);
  });
  Status s = server_->start();
  if (!s)
    server_.reset();
  return s;
}

void KfpApiSimulator::stop() {
  if (server_)
    server_->stop();
}

int KfpApiSimulator::port() const {
  return server_ ? server_->port() : 0;
}
std::string KfpApiSimulator::baseUrl() const {
  return server_ ? server_->baseUrl() : "";
}

void KfpApiSimulator::failNext(int count, int status) {
  std::lock_guard<std::mutex> g(mu_);
  failCount_ = count;
  failStatus_ = status;
}

void KfpApiSimulator::setDelay(std::chrono::milliseconds delay) {
  std::lock_guard<std::mutex> g(mu_);
  delay_ = delay;
}

void KfpApiSimulator::setToken(std::string token) {
  std::lock_guard<std::mutex> g(mu_);
  token_ = std::move(token);
}

void KfpApiSimulator::setOutage(bool on) {
  std::lock_guard<std::mutex> g(mu_);
  outage_ = on;
}

std::vector<KfpApiSimulator::Report> KfpApiSimulator::reports() const {
  std::lock_guard<std::mutex> g(mu_);
  return reports_;
}

std::size_t KfpApiSimulator::acceptedReports() const {
  std::lock_guard<std::mutex> g(mu_);
  return static_cast<std::size_t>(std::count_if(reports_.begin(), reports_.end(),
                                                [](const Report& r) { return r.status == 200; }));
}

std::size_t KfpApiSimulator::acceptedReportsFor(const std::string& runId,
                                                const std::string& state) const {
  std::lock_guard<std::mutex> g(mu_);
  return static_cast<std::size_t>(std::count_if(
      reports_.begin(), reports_.end(),
      [&](const Report& r) { return r.status == 200 && r.runId == runId && r.state == state; }));
}

std::vector<KfpApiSimulator::Deletion> KfpApiSimulator::deletions() const {
  std::lock_guard<std::mutex> g(mu_);
  return deletions_;
}

std::optional<KfpApiSimulator::Run> KfpApiSimulator::run(const std::string& runId) const {
  std::lock_guard<std::mutex> g(mu_);
  auto it = runs_.find(runId);
  if (it == runs_.end())
    return std::nullopt;
  return it->second;
}

std::size_t KfpApiSimulator::runGets(const std::string& runId) const {
  std::lock_guard<std::mutex> g(mu_);
  auto it = runGets_.find(runId);
  return it == runGets_.end() ? 0 : it->second;
}

std::size_t KfpApiSimulator::unroutedRequests() const {
  std::lock_guard<std::mutex> g(mu_);
  return unrouted_;
}

void KfpApiSimulator::recordReport(Report rec) {
  std::lock_guard<std::mutex> g(mu_);
  reports_.push_back(std::move(rec));
}

void KfpApiSimulator::recordDeletion(Deletion d) {
  std::lock_guard<std::mutex> g(mu_);
  deletions_.push_back(std::move(d));
}

std::string KfpApiSimulator::stateForPhase(const std::string& phase) {
  // model.RuntimeState.ToV2 (backend/src/apiserver/model/run.go, 2.16.1):
  // upper-cased, legacy spellings folded.
  std::string upper = phase;
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (upper == "PENDING" || upper == "RUNNING" || upper == "SUCCEEDED" || upper == "FAILED" ||
      upper == "SKIPPED" || upper == "CANCELING" || upper == "CANCELED" || upper == "PAUSED") {
    return upper;
  }
  if (upper == "ENABLED" || upper == "READY")
    return "RUNNING";
  if (upper == "DONE")
    return "SUCCEEDED";
  if (upper == "ERROR")
    return "FAILED";
  if (upper == "TERMINATING")
    return "CANCELING";
  if (upper == "DISABLED")
    return "CANCELED";
  return "RUNTIME_STATE_UNSPECIFIED";
}

std::string KfpApiSimulator::runToJson(const Run& run) {
  json j = json::object();
  j["run_id"] = run.runId;
  j["display_name"] = run.displayName;
  j["storage_state"] = "AVAILABLE";
  if (!run.recurringRunId.empty())
    j["recurring_run_id"] = run.recurringRunId;
  if (!run.createdAt.empty())
    j["created_at"] = run.createdAt;
  if (!run.finishedAt.empty())
    j["finished_at"] = run.finishedAt;
  j["state"] = run.state;
  json history = json::array();
  for (const auto& [time, state] : run.stateHistory) {
    history.push_back({{"update_time", time}, {"state", state}});
  }
  if (!history.empty())
    j["state_history"] = history;
  return dumpJson(j);
}

std::string KfpApiSimulator::reportsToJson(const std::vector<Report>& reports) {
  json out = json::array();
  for (const Report& r : reports) {
    json j = {{"api", r.api},
              {"source", r.source},
              {"status", r.status},
              {"grpcCode", r.grpcCode},
              {"namespace", r.ns},
              {"name", r.name},
              {"uid", r.uid},
              {"runId", r.runId},
              {"phase", r.phase},
              {"state", r.state},
              {"persistedFinalState", r.carriedFinalStateLabel},
              {"resourceVersion", r.resourceVersion},
              {"at", formatRfc3339(r.at)},
              {"client", r.client},
              {"atUs",
               std::chrono::duration_cast<std::chrono::microseconds>(r.arrivedAt.time_since_epoch())
                   .count()}};
    if (!r.error.empty())
      j["error"] = r.error;
    out.push_back(std::move(j));
  }
  return dumpJson(out);
}

KfpApiSimulator::Response KfpApiSimulator::errorResponse(const RpcResult& r) const {
  // A UserError's GRPCStatus carries one google.rpc.Status detail
  // (backend/src/common/util/error.go); the gateway marshals either
  // grpc-gateway v1's errorBody or v2's google.rpc.Status (kfp_sim_version.h).
  json detail = {{"@type", "type.googleapis.com/google.rpc.Status"},
                 {"code", r.detailCode < 0 ? r.code : r.detailCode},
                 {"message", r.external}};
  json body;
  if (effectiveGatewayErrors(options_.version, options_.gatewayErrors) == GatewayErrors::kV1) {
    body = {{"error", r.message},
            {"code", r.code},
            {"message", r.message},
            {"details", json::array({detail})}};
  } else {
    body = {{"code", r.code}, {"message", r.message}, {"details", json::array({detail})}};
  }
  return {httpStatusFor(r.code), dumpJson(body)};
}

KfpApiSimulator::Response KfpApiSimulator::handle(const std::string& method,
                                                  const std::string& path,
                                                  const std::optional<std::string>& authorization,
                                                  const std::string& body,
                                                  const std::string& client) {
  const Clock::WallTime arrivedAt = clock().wallNow();
  if (path == kHealthz && method == "GET") {
    return {200, R"({"commit_sha":"simulator","tag_name":"simulator","multi_user":false})"};
  }
  std::chrono::milliseconds delay{0};
  {
    std::lock_guard<std::mutex> g(mu_);
    if (!token_.empty() && authorization != "Bearer " + token_) {
      return errorResponse(
          rpc(grpc_code::kUnauthenticated, "Unauthenticated: missing or invalid bearer token"));
    }
    delay = delay_;
  }
  if (path.rfind(kControlPrefix, 0) == 0)
    return control(method, path, body);

  const bool isReport = method == "POST" && (path == kV1Report || path == kV2Report);
  const bool isRun =
      method == "GET" && path.rfind(kRunsPrefix, 0) == 0 && path.size() > kRunsPrefix.size();
  if (!isReport && !isRun) {
    {
      std::lock_guard<std::mutex> g(mu_);
      ++unrouted_;
    }
    // Outside /apis/: gorilla mux's NotFoundHandler (Go's http.NotFound).
    // Under /apis/: the gateway's mux; v1.16 answers http.Error's text, v2
    // its routing error handler's Status (backend/src/apiserver/main.go
    // startHTTPProxy registers runtimeMux under PathPrefix("/apis/")).
    if (path.rfind("/apis/", 0) != 0)
      return {404, "404 page not found\n", "text/plain; charset=utf-8"};
    if (effectiveGatewayErrors(options_.version, options_.gatewayErrors) == GatewayErrors::kV1)
      return {404, "Not Found\n", "text/plain; charset=utf-8"};
    return {404, R"({"code":5,"message":"Not Found"})"};
  }

  if (delay.count() > 0)
    std::this_thread::sleep_for(delay);
  {
    std::lock_guard<std::mutex> g(mu_);
    if (outage_ || failCount_ > 0) {
      const int status = outage_ ? 503 : failStatus_;
      if (!outage_)
        --failCount_;
      RpcResult fault = rpc(codeForHttpStatus(status),
                            outage_ ? "connection error: desc = \"transport: Error while dialing: "
                                      "dial tcp: connect: connection refused\""
                                    : "injected fault");
      Response r = errorResponse(fault);
      r.status = status;
      if (isReport) {
        Report rec;
        rec.api = path == kV1Report ? "v1beta1" : "v2beta1";
        rec.source = "http";
        rec.status = status;
        rec.grpcCode = fault.code;
        rec.error = outage_ ? "outage" : "injected fault";
        rec.at = clock().wallNow();
        rec.client = client;
        rec.arrivedAt = arrivedAt;
        reports_.push_back(std::move(rec));
      }
      return r;
    }
  }
  if (isReport)
    return report(path == kV1Report ? "v1beta1" : "v2beta1", body, "http", nullptr, client,
                  arrivedAt);
  return getRun(path.substr(kRunsPrefix.size()));
}

KfpApiSimulator::RpcResult KfpApiSimulator::reportFromAgent(const std::string& workflowJson) {
  {
    std::lock_guard<std::mutex> g(mu_);
    if (outage_)
      return rpc(grpc_code::kUnavailable, "connection error: connection refused");
  }
  RpcResult r;
  // The agent's ReportWorkflowV1 request: the Workflow string itself.
  report("v1beta1", dumpJson(json(workflowJson)), "agent", &r);
  return r;
}

KfpApiSimulator::Response KfpApiSimulator::report(const std::string& api, const std::string& body,
                                                  const std::string& source, RpcResult* out,
                                                  const std::string& client,
                                                  std::optional<Clock::WallTime> arrivedAt) {
  std::shared_lock<std::shared_mutex> creating(createMu_);
  Report rec;
  rec.api = api;
  rec.source = source;
  rec.at = clock().wallNow();
  rec.client = client;
  rec.arrivedAt = arrivedAt.value_or(rec.at);
  RpcResult result = [&]() -> RpcResult {
    // grpc-gateway decodes the body into the request's string field.
    json outer = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (outer.is_discarded() || !outer.is_string()) {
      return rpc(grpc_code::kInvalidArgument,
                 "Invalid input error: the request body must be a JSON string holding the "
                 "serialized Workflow");
    }
    // report_server.go validateReportWorkflowRequest, wrapped "Report workflow failed".
    json wf = json::parse(outer.get_ref<const std::string&>(), nullptr, false);
    const std::string problem = wf.is_discarded() ? "not JSON" : kfpsim::decodeProblem(wf);
    if (!problem.empty()) {
      RpcResult r = rpc(
          grpc_code::kInvalidArgument,
          "Report workflow failed: InvalidInputError: Could not unmarshal workflow: " + problem);
      r.external = "Could not unmarshal workflow: " + problem;
      return r;
    }
    rec.name = kfpsim::metaString(wf, "name");
    rec.ns = kfpsim::metaString(wf, "namespace");
    rec.uid = kfpsim::metaString(wf, "uid");
    rec.resourceVersion = kfpsim::metaString(wf, "resourceVersion");
    rec.phase = kfpsim::statusString(wf, "phase");
    rec.runId = kfpsim::metaMapValue(wf, "labels", kfpsim::kLabelRunId).value_or("");
    rec.carriedFinalStateLabel =
        kfpsim::metaMapValue(wf, "labels", kfpsim::kLabelPersistedFinalState).has_value();
    // "The workflow must have a name|namespace|UID: %+v" (the spec follows).
    for (const auto& [field, key, value] : {std::tuple{"name", "name", rec.name},
                                            {"namespace", "namespace", rec.ns},
                                            {"UID", "uid", rec.uid}}) {
      if (value.empty()) {
        const std::string why =
            std::string("The workflow must have a ") + field + ": metadata." + key + " is empty";
        RpcResult r =
            rpc(grpc_code::kInvalidArgument, "Report workflow failed: InvalidInputError: " + why);
        r.external = why;
        return r;
      }
    }
    KfpReportHandler handler(*this);
    RpcResult r = handler.reportWorkflowResource(wf, rec);
    if (!r.ok())
      r.message = "Failed to report workflow: " + r.message;
    return r;
  }();
  rec.status = httpStatusFor(result.code);
  rec.grpcCode = result.code;
  rec.error = result.ok() ? "" : result.message;
  recordReport(rec);
  if (out != nullptr)
    *out = result;
  if (result.ok())
    return {200, "{}"};
  return errorResponse(result);
}

KfpApiSimulator::Response KfpApiSimulator::getRun(const std::string& runId) {
  std::lock_guard<std::mutex> g(mu_);
  ++runGets_[runId];
  auto it = runs_.find(runId);
  if (it == runs_.end()) {
    RpcResult r =
        rpc(grpc_code::kNotFound,
            "Failed to get run " + runId + ": ResourceNotFoundError: Run " + runId + " not found");
    r.external = "Run " + runId + " not found";
    return errorResponse(r);
  }
  return {200, runToJson(it->second)};
}

KfpApiSimulator::Response KfpApiSimulator::control(const std::string& method,
                                                   const std::string& path,
                                                   const std::string& body) {
  json args = body.empty() ? json::object() : json::parse(body, nullptr, false);
  if (args.is_discarded() || !args.is_object())
    return errorResponse(rpc(grpc_code::kInvalidArgument, "body must be an object"));
  try {
    return controlWith(method, path, args);
  } catch (const json::exception& e) {
    return errorResponse(
        rpc(grpc_code::kInvalidArgument, std::string("bad control request: ") + e.what()));
  }
}

}  // namespace exitrec
