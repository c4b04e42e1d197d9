#include "sim/kfp/kfp_api_simulator.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/clock.h"
#include "common/http_server.h"
#include "sim/kfp/kfp_history_api.h"

namespace exitrec {
namespace {

using nlohmann::json;

constexpr std::string_view kV1Report = "/apis/v1beta1/workflows";
constexpr std::string_view kV2Report = "/apis/v2beta1/workflows";
constexpr std::string_view kRunsPrefix = "/apis/v2beta1/runs/";
constexpr std::string_view kHealthz = "/apis/v1beta1/healthz";
constexpr std::string_view kControlPrefix = "/_kfp/";

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// googleRpcStatus, as grpc-gateway answers (KFP adds the legacy "error" key).
KfpApiSimulator::Response rpcError(int httpStatus, int grpcCode, const std::string& message) {
  json body = {
      {"error", message}, {"code", grpcCode}, {"message", message}, {"details", json::array()}};
  return {httpStatus, dump(body)};
}

std::string stringAt(const json& obj, const char* a, const char* b) {
  auto ia = obj.find(a);
  if (ia == obj.end() || !ia->is_object())
    return {};
  auto ib = ia->find(b);
  if (ib == ia->end() || !ib->is_string())
    return {};
  return ib->get<std::string>();
}

std::string nowText() {
  return formatRfc3339(std::chrono::system_clock::now());
}

}  // namespace

KfpApiSimulator::KfpApiSimulator(Options options)
    : options_(std::move(options)), token_(options_.token) {}

KfpApiSimulator::~KfpApiSimulator() {
  stop();
}

Status KfpApiSimulator::start() {
  HttpServer::Options so;
  so.address = options_.address;
  so.port = options_.port;
  so.threads = 8;
  server_ = std::make_unique<HttpServer>(so);
  server_->handle("/", [this](const HttpRequest& req, HttpResponseWriter& w) {
    if (history_ != nullptr && history_->serves(req.method, req.path, req.body)) {
      auto h =
          history_->handle(req.method, req.path, req.query, req.header("Authorization"), req.body);
      w.send(h.status, {{"Content-Type", "application/json"}}, h.body);
      return;
    }
    Response r = handle(req.method, req.path, req.header("Authorization"), req.body);
    w.send(r.status, {{"Content-Type", "application/json"}}, r.body);
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

std::vector<KfpApiSimulator::Report> KfpApiSimulator::reports() const {
  std::lock_guard<std::mutex> g(mu_);
  return reports_;
}

std::size_t KfpApiSimulator::acceptedReports() const {
  std::lock_guard<std::mutex> g(mu_);
  return static_cast<std::size_t>(std::count_if(reports_.begin(), reports_.end(),
                                                [](const Report& r) { return r.status == 200; }));
}

std::optional<KfpApiSimulator::Run> KfpApiSimulator::run(const std::string& runId) const {
  std::lock_guard<std::mutex> g(mu_);
  auto it = runs_.find(runId);
  if (it == runs_.end())
    return std::nullopt;
  return it->second;
}

std::string KfpApiSimulator::stateForPhase(const std::string& phase) {
  std::string upper = phase;
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (upper == "PENDING" || upper == "RUNNING" || upper == "SUCCEEDED" || upper == "FAILED") {
    return upper;
  }
  if (upper == "ERROR")
    return "FAILED";
  if (upper == "TERMINATING")
    return "CANCELING";
  return "RUNTIME_STATE_UNSPECIFIED";
}

std::string KfpApiSimulator::runToJson(const Run& run) {
  json j = json::object();
  j["run_id"] = run.runId;
  j["display_name"] = run.displayName;
  j["storage_state"] = "AVAILABLE";
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
  return dump(j);
}

std::string KfpApiSimulator::reportsToJson(const std::vector<Report>& reports) {
  json out = json::array();
  for (const Report& r : reports) {
    json j = {{"api", r.api},
              {"status", r.status},
              {"namespace", r.ns},
              {"name", r.name},
              {"uid", r.uid},
              {"runId", r.runId},
              {"phase", r.phase},
              {"resourceVersion", r.resourceVersion},
              {"at", formatRfc3339(r.at)}};
    if (!r.error.empty())
      j["error"] = r.error;
    out.push_back(std::move(j));
  }
  return dump(out);
}

KfpApiSimulator::Response KfpApiSimulator::handle(const std::string& method,
                                                  const std::string& path,
                                                  const std::optional<std::string>& authorization,
                                                  const std::string& body) {
  if (path == kHealthz && method == "GET") {
    return {200, R"({"commit_sha":"simulator","tag_name":"simulator","multi_user":false})"};
  }
  std::chrono::milliseconds delay{0};
  {
    std::lock_guard<std::mutex> g(mu_);
    if (!token_.empty() && authorization != "Bearer " + token_) {
      return rpcError(401, 16, "Unauthenticated: missing or invalid bearer token");
    }
    delay = delay_;
  }
  if (path.rfind(kControlPrefix, 0) == 0)
    return control(method, path, body);

  const bool isReport = method == "POST" && (path == kV1Report || path == kV2Report);
  const bool isRun =
      method == "GET" && path.rfind(kRunsPrefix, 0) == 0 && path.size() > kRunsPrefix.size();
  if (!isReport && !isRun)
    return rpcError(404, 5, "Not Found: " + method + " " + path);

  if (delay.count() > 0)
    std::this_thread::sleep_for(delay);
  {
    std::lock_guard<std::mutex> g(mu_);
    if (failCount_ > 0) {
      --failCount_;
      Response r = rpcError(failStatus_, 14, "injected fault: service unavailable");
      if (isReport) {
        Report rec;
        rec.api = path == kV1Report ? "v1beta1" : "v2beta1";
        rec.status = failStatus_;
        rec.error = "injected fault";
        rec.at = std::chrono::system_clock::now();
        reports_.push_back(std::move(rec));
      }
      return r;
    }
  }
  if (isReport)
    return report(path == kV1Report ? "v1beta1" : "v2beta1", body);
  return getRun(path.substr(kRunsPrefix.size()));
}

KfpApiSimulator::Response KfpApiSimulator::report(const std::string& api, const std::string& body) {
  Report rec;
  rec.api = api;
  rec.at = std::chrono::system_clock::now();
  auto reject = [&](const std::string& message) {
    rec.status = 400;
    rec.error = message;
    std::lock_guard<std::mutex> g(mu_);
    reports_.push_back(rec);
    return rpcError(400, 3, message);
  };

  json outer = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (outer.is_discarded() || !outer.is_string()) {
    return reject(
        "Invalid input error: the request body must be a JSON string holding the serialized "
        "Workflow");
  }
  json wf = json::parse(outer.get_ref<const std::string&>(), nullptr, false);
  if (wf.is_discarded() || !wf.is_object()) {
    return reject("Invalid input error: could not unmarshal the workflow: not a JSON object");
  }
  rec.name = stringAt(wf, "metadata", "name");
  rec.ns = stringAt(wf, "metadata", "namespace");
  rec.uid = stringAt(wf, "metadata", "uid");
  rec.resourceVersion = stringAt(wf, "metadata", "resourceVersion");
  rec.phase = stringAt(wf, "status", "phase");
  if (rec.name.empty() || rec.ns.empty() || rec.uid.empty()) {
    return reject(
        "Invalid input error: the workflow must have a non-empty name, namespace and uid");
  }
  const json* labels = nullptr;
  if (auto m = wf.find("metadata"); m != wf.end() && m->is_object()) {
    if (auto l = m->find("labels"); l != m->end() && l->is_object())
      labels = &*l;
  }
  if (labels != nullptr) {
    if (auto r = labels->find("pipeline/runid"); r != labels->end() && r->is_string()) {
      rec.runId = r->get<std::string>();
    }
  }
  if (rec.runId.empty()) {
    return reject("Invalid input error: workflow " + rec.ns + "/" + rec.name +
                  " is missing the Run ID label");
  }

  const std::string state = stateForPhase(rec.phase);
  const std::string now = nowText();
  std::string displayName = rec.name;
  if (auto m = wf.find("metadata"); m != wf.end() && m->is_object()) {
    if (auto a = m->find("annotations"); a != m->end() && a->is_object()) {
      if (auto n = a->find("pipelines.kubeflow.org/run_name"); n != a->end() && n->is_string()) {
        displayName = n->get<std::string>();
      }
    }
  }
  std::string finishedAt = stringAt(wf, "status", "finishedAt");
  std::string startedAt = stringAt(wf, "status", "startedAt");

  rec.status = 200;
  std::lock_guard<std::mutex> g(mu_);
  Run& run = runs_[rec.runId];
  if (run.runId.empty()) {
    run.runId = rec.runId;
    run.createdAt = startedAt.empty() ? now : startedAt;
  }
  run.displayName = displayName;
  run.workflowName = rec.name;
  run.workflowNamespace = rec.ns;
  run.resourceVersion = rec.resourceVersion;
  if (!finishedAt.empty())
    run.finishedAt = finishedAt;
  if (run.state != state)
    run.stateHistory.emplace_back(now, state);
  run.state = state;
  reports_.push_back(std::move(rec));
  return {200, "{}"};
}

KfpApiSimulator::Response KfpApiSimulator::getRun(const std::string& runId) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = runs_.find(runId);
  if (it == runs_.end()) {
    return rpcError(
        404, 5,
        "Failed to get run " + runId + ": ResourceNotFoundError: Run " + runId + " not found");
  }
  return {200, runToJson(it->second)};
}

KfpApiSimulator::Response KfpApiSimulator::control(const std::string& method,
                                                   const std::string& path,
                                                   const std::string& body) {
  json args = body.empty() ? json::object() : json::parse(body, nullptr, false);
  if (args.is_discarded() || !args.is_object())
    return rpcError(400, 3, "body must be an object");
  try {
    return controlWith(method, path, args);
  } catch (const json::exception& e) {
    return rpcError(400, 3, std::string("bad control request: ") + e.what());
  }
}

KfpApiSimulator::Response KfpApiSimulator::controlWith(const std::string& method,
                                                       const std::string& path,
                                                       const nlohmann::json& args) {
  if (method == "POST" && path == "/_kfp/fail") {
    failNext(args.value("count", 1), args.value("status", 503));
    return {200, "{}"};
  }
  if (method == "POST" && path == "/_kfp/delay") {
    setDelay(std::chrono::milliseconds(args.value("ms", 0)));
    return {200, "{}"};
  }
  if (method == "POST" && path == "/_kfp/token") {
    setToken(args.value("token", ""));
    return {200, "{}"};
  }
  if (method == "GET" && path == "/_kfp/reports")
    return {200, reportsToJson(reports())};
  return rpcError(404, 5, "Not Found: " + method + " " + path);
}

}  // namespace exitrec
