#include "sim/kfp/kfp_history_api.h"

#include <nlohmann/json.hpp>

#include "common/http_server.h"
#include "common/json_text.h"
#include "sim/kfp/kfp_history_api_internal.h"

namespace exitrec {

namespace kfphistory::detail {

KfpHistoryApi::Response rpcError(int httpStatus, int grpcCode, const std::string& message) {
  json body = {
      {"error", message}, {"code", grpcCode}, {"message", message}, {"details", json::array()}};
  return {httpStatus, dumpJson(body)};
}
KfpHistoryApi::Response invalid(const std::string& message) {
  return rpcError(400, 3, "Invalid input error: " + message);
}

json runJson(const KfpHistoryApi::HistoryRun& r) {
  json j = json::object();
  j["run_id"] = r.runId;
  j["display_name"] = r.displayName;
  j["storage_state"] = "AVAILABLE";
  j["created_at"] = kfphistory::formatTimestamp(r.createdAt);
  if (r.finishedAt > 0)
    j["finished_at"] = kfphistory::formatTimestamp(r.finishedAt);
  j["state"] = r.state;
  json history = json::array();
  for (const auto& [t, s] : r.stateHistory)
    history.push_back({{"update_time", kfphistory::formatTimestamp(t)}, {"state", s}});
  if (!history.empty())
    j["state_history"] = std::move(history);
  return j;
}

const json* findPath(const json& j, const char* a, const char* b) {
  auto ia = j.find(a);
  if (ia == j.end() || !ia->is_object())
    return nullptr;
  auto ib = ia->find(b);
  return ib == ia->end() ? nullptr : &*ib;
}

std::string stringAt(const json& j, const char* a, const char* b) {
  const json* v = findPath(j, a, b);
  return v != nullptr && v->is_string() ? v->get<std::string>() : std::string();
}

}  // namespace kfphistory::detail

using kfphistory::detail::findPath;
using kfphistory::detail::json;
using kfphistory::detail::kHealthz;
using kfphistory::detail::kListPath;
using kfphistory::detail::kRunIdLabel;
using kfphistory::detail::kV1Report;
using kfphistory::detail::kV1RunPrefix;
using kfphistory::detail::kV2Report;
using kfphistory::detail::kV2RunPrefix;
using kfphistory::detail::rpcError;
using kfphistory::detail::runJson;

namespace {

std::optional<std::string> bearer(const std::optional<std::string>& authorization) {
  if (!authorization || authorization->rfind("Bearer ", 0) != 0)
    return std::nullopt;
  return authorization->substr(7);
}

}  // namespace

KfpHistoryApi::KfpHistoryApi(Options options) : options_(options) {}

KfpHistoryApi::~KfpHistoryApi() {
  stop();
}

void KfpHistoryApi::addRun(HistoryRun run) {
  if (run.stateHistory.empty())
    run.stateHistory.emplace_back(run.finishedAt > 0 ? run.finishedAt : run.createdAt, run.state);
  std::lock_guard<std::mutex> g(mu_);
  std::string id = run.runId;
  runs_[id] = std::move(run);
}

void KfpHistoryApi::setEncodedManifestProvider(ManifestProvider provider) {
  std::lock_guard<std::mutex> g(mu_);
  provider_ = std::move(provider);
}

void KfpHistoryApi::setCluster(Cluster cluster) {
  std::lock_guard<std::mutex> g(mu_);
  cluster_ = std::move(cluster);
}

void KfpHistoryApi::addIdentity(const std::string& token, Identity identity) {
  std::lock_guard<std::mutex> g(mu_);
  identities_[token] = std::move(identity);
}

std::optional<KfpHistoryApi::HistoryRun> KfpHistoryApi::run(const std::string& runId) const {
  std::lock_guard<std::mutex> g(mu_);
  auto it = runs_.find(runId);
  if (it == runs_.end())
    return std::nullopt;
  return it->second;
}

std::vector<KfpHistoryApi::ReportRecord> KfpHistoryApi::reports() const {
  std::lock_guard<std::mutex> g(mu_);
  return reports_;
}

std::size_t KfpHistoryApi::listRequests() const {
  std::lock_guard<std::mutex> g(mu_);
  return listRequests_;
}

bool KfpHistoryApi::claims(const std::string& method, const std::string& path) {
  if (method == "GET") {
    return path == kListPath || path == kHealthz ||
           (path.rfind(kV1RunPrefix, 0) == 0 && path.size() > kV1RunPrefix.size()) ||
           (path.rfind(kV2RunPrefix, 0) == 0 && path.size() > kV2RunPrefix.size());
  }
  return method == "POST" && (path == kV1Report || path == kV2Report);
}

bool KfpHistoryApi::serves(const std::string& method, const std::string& path,
                           const std::string& body) const {
  if (!claims(method, path))
    return false;
  std::string runId;
  if (method == "GET") {
    if (path.rfind(kV2RunPrefix, 0) != 0)
      return true;
    runId = path.substr(kV2RunPrefix.size());
  } else {
    json outer = json::parse(body, nullptr, false);
    json wf = outer.is_string() ? json::parse(outer.get_ref<const std::string&>(), nullptr, false)
                                : json();
    const json* labels = wf.is_object() ? findPath(wf, "metadata", "labels") : nullptr;
    if (labels == nullptr || !labels->is_object())
      return false;
    auto r = labels->find(kRunIdLabel);
    if (r == labels->end() || !r->is_string())
      return false;
    runId = r->get<std::string>();
  }
  std::lock_guard<std::mutex> g(mu_);
  return runs_.count(runId) > 0;
}

bool KfpHistoryApi::mayRead(const Auth& auth, const std::string& ns) const {
  if (!options_.multiUser || auth.identity == nullptr)
    return true;
  return auth.identity->allNamespaces || auth.identity->namespaces.count(ns) > 0;
}

KfpHistoryApi::Response KfpHistoryApi::handle(
    const std::string& method, const std::string& path,
    const std::vector<std::pair<std::string, std::string>>& query,
    const std::optional<std::string>& authorization, const std::string& body) {
  if (!claims(method, path))
    return rpcError(404, 5, "Not Found: " + method + " " + path);
  if (path == kHealthz) {  // apiserver/main.go: the healthz handler, unauthenticated
    return {200, std::string(R"({"commit_sha":"simulator","tag_name":"simulator","multi_user":)") +
                     (options_.multiUser ? "true" : "false") + "}"};
  }
  Auth auth;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (!identities_.empty()) {
      auto token = bearer(authorization);
      auto it = token ? identities_.find(*token) : identities_.end();
      if (it == identities_.end()) {
        return rpcError(401, 16,
                        "Unauthenticated: Request header error: there is no user identity header.");
      }
      auth.identity = &it->second;  // identities are never removed
    }
  }
  if (path == kListPath)
    return list(auth, query);
  if (method == "POST")
    return report(auth, body);
  if (path.rfind(kV1RunPrefix, 0) == 0)
    return getV1(auth, path.substr(kV1RunPrefix.size()));
  return getV2(auth, path.substr(kV2RunPrefix.size()));
}

KfpHistoryApi::Response KfpHistoryApi::getV1(const Auth& auth, const std::string& runId) {
  std::optional<std::string> manifest;
  HistoryRun rendered;  // the record the provider renders from (no manifest)
  ManifestProvider provider;
  json run;
  std::string ns;
  {
    std::lock_guard<std::mutex> g(mu_);
    auto it = runs_.find(runId);
    if (it == runs_.end()) {
      return rpcError(404, 5,
                      "Failed to get a v1beta1 run: Failed to get run " + runId +
                          ": ResourceNotFoundError: Run " + runId + " not found");
    }
    const HistoryRun& r = it->second;
    ns = r.ns;
    if (!mayRead(auth, ns)) {
      return rpcError(403, 7,
                      "PermissionDenied: Failed to access run " + runId +
                          ". Check if you have access to namespace " + ns);
    }
    manifest = r.manifest;
    if (!manifest && provider_) {
      // Rendered after the lock is released: a template copy per GET must
      // not serialize the server's threads.
      provider = provider_;
      rendered.runId = r.runId;
      rendered.displayName = r.displayName;
      rendered.ns = r.ns;
      rendered.state = r.state;
      rendered.createdAt = r.createdAt;
      rendered.finishedAt = r.finishedAt;
    }
    // toApiRunV1: id, name, status (conditions), times, namespace reference.
    run = {{"id", r.runId},
           {"name", r.displayName},
           {"storage_state", "STORAGESTATE_AVAILABLE"},
           {"created_at", kfphistory::formatTimestamp(r.createdAt)},
           {"resource_references", json::array({{{"key", {{"type", "NAMESPACE"}, {"id", r.ns}}},
                                                 {"relationship", "OWNER"}}})}};
    if (r.finishedAt > 0)
      run["finished_at"] = kfphistory::formatTimestamp(r.finishedAt);
  }
  // toApiRunDetailV1: workflow_manifest only when one is stored.
  std::string body = "{\"run\":" + dumpJson(run) + ",\"pipeline_runtime\":{";
  if (manifest) {
    body += "\"workflow_manifest\":" + dumpJson(json(std::move(*manifest)));
  } else if (provider) {
    const std::size_t mark = body.size();
    body += "\"workflow_manifest\":";
    if (!provider(rendered, body))
      body.resize(mark);  // none stored: no key
  }
  body += "}}";
  return {200, std::move(body)};
}

KfpHistoryApi::Response KfpHistoryApi::getV2(const Auth& auth, const std::string& runId) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = runs_.find(runId);
  if (it == runs_.end()) {
    return rpcError(404, 5,
                    "Failed to get a run: Failed to get run " + runId +
                        ": ResourceNotFoundError: Run " + runId + " not found");
  }
  if (!mayRead(auth, it->second.ns))
    return rpcError(403, 7, "PermissionDenied: Failed to access run " + runId);
  return {200, dumpJson(runJson(it->second))};
}

Status KfpHistoryApi::start(const std::string& address, int port, int threads) {
  HttpServer::Options so;
  so.address = address;
  so.port = port;
  so.threads = threads;
  server_ = std::make_unique<HttpServer>(so);
  server_->handle("/", [this](const HttpRequest& req, HttpResponseWriter& w) {
    Response r = handle(req.method, req.path, req.query, req.header("Authorization"), req.body);
    w.send(r.status, {{"Content-Type", "application/json"}}, r.body);
  });
  Status s = server_->start();
  if (!s)
    server_.reset();
  return s;
}

void KfpHistoryApi::stop() {
  if (server_)
    server_->stop();
}

std::string KfpHistoryApi::baseUrl() const {
  return server_ ? server_->baseUrl() : "";
}

}  // namespace exitrec
