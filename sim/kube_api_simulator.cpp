#include "sim/kube_api_simulator.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "common/clock.h"
#include "common/http_server.h"
#include "common/yaml_json.h"
#include "sim/label_selector.h"
#include "sim/sim_tls.h"

namespace exitrec {
namespace {

using json = nlohmann::json;
using Labels = std::map<std::string, std::string>;
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------
// Resource catalogue

struct ResourceType {
  std::string group;
  std::string version;
  std::string plural;
  std::string singular;
  std::string kind;
  bool namespaced = true;
  bool custom = false;  // a CRD: no strategic merge patch, generation on every change
  std::vector<std::string> shortNames;
  std::vector<std::string> categories;

  std::string apiVersion() const { return group.empty() ? version : group + "/" + version; }
  // "workflows.argoproj.io" / "pods", as in API server error messages.
  std::string qualifiedResource() const { return group.empty() ? plural : plural + "." + group; }
  std::string qualifiedKind() const { return group.empty() ? kind : kind + "." + group; }
};

const std::vector<ResourceType>& catalogue() {
  static const std::vector<ResourceType> kTypes = {
      {"argoproj.io", "v1alpha1", "workflows", "workflow", "Workflow", true, true, {"wf"}, {"all"}},
      {"", "v1", "pods", "pod", "Pod", true, false, {"po"}, {"all"}},
      {"", "v1", "events", "event", "Event", true, false, {"ev"}, {}},
      {"", "v1", "namespaces", "namespace", "Namespace", false, false, {"ns"}, {}},
      {"coordination.k8s.io", "v1", "leases", "lease", "Lease", true, false, {}, {}},
  };
  return kTypes;
}

const ResourceType* findType(const std::string& group, const std::string& version,
                             const std::string& plural) {
  for (const auto& t : catalogue()) {
    if (t.group == group && t.version == version && t.plural == plural)
      return &t;
  }
  return nullptr;
}

const ResourceType* findTypeByKind(const std::string& apiVersion, const std::string& kind) {
  for (const auto& t : catalogue()) {
    if (t.apiVersion() == apiVersion && t.kind == kind)
      return &t;
  }
  return nullptr;
}

const ResourceType* namespacesType() {
  static const ResourceType* t = findType("", "v1", "namespaces");
  return t;
}

std::vector<std::string> groupVersions() {
  std::vector<std::string> out;
  for (const auto& t : catalogue()) {
    if (!t.group.empty() && std::find(out.begin(), out.end(), t.apiVersion()) == out.end()) {
      out.push_back(t.apiVersion());
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// API errors as Status bodies

struct ApiError {
  int code = 500;
  std::string reason;
  std::string message;
  json details;  // null when absent
  int retryAfter = 0;
};

json statusJson(const ApiError& e) {
  json s = {{"kind", "Status"},    {"apiVersion", "v1"},   {"metadata", json::object()},
            {"status", "Failure"}, {"message", e.message}, {"reason", e.reason},
            {"code", e.code}};
  if (!e.details.is_null())
    s["details"] = e.details;
  if (e.reason.empty())
    s.erase("reason");
  return s;
}

json resDetails(const ResourceType& t, const std::string& name) {
  json d = {{"name", name}, {"kind", t.plural}};
  if (!t.group.empty())
    d["group"] = t.group;
  return d;
}

ApiError notFound(const ResourceType& t, const std::string& name) {
  return {404, "NotFound", t.qualifiedResource() + " \"" + name + "\" not found",
          resDetails(t, name)};
}
ApiError alreadyExists(const ResourceType& t, const std::string& name) {
  return {409, "AlreadyExists", t.qualifiedResource() + " \"" + name + "\" already exists",
          resDetails(t, name)};
}
ApiError conflict(const ResourceType& t, const std::string& name) {
  return {409, "Conflict",
          "Operation cannot be fulfilled on " + t.qualifiedResource() + " \"" + name +
              "\": the object has been modified; please apply your changes to the latest "
              "version and try again",
          resDetails(t, name)};
}
ApiError invalid(const ResourceType& t, const std::string& name, const std::string& field,
                 const std::string& causeReason, const std::string& causeMessage) {
  json d = {
      {"name", name},
      {"kind", t.kind},
      {"causes",
       json::array({{{"reason", causeReason}, {"message", causeMessage}, {"field", field}}})}};
  if (!t.group.empty())
    d["group"] = t.group;
  return {422, "Invalid",
          t.qualifiedKind() + " \"" + name + "\" is invalid: " + field + ": " + causeMessage, d};
}
ApiError badRequest(const std::string& msg) {
  return {400, "BadRequest", msg, nullptr};
}
ApiError pathNotFound() {
  return {404, "NotFound", "the server could not find the requested resource", json::object()};
}
ApiError methodNotAllowed() {
  return {405, "MethodNotAllowed",
          "the server does not allow this method on the requested resource", json::object()};
}
ApiError expired(const std::string& msg) {
  return {410, "Expired", msg, nullptr};
}

ApiError statusForCode(int code, const std::string& why) {
  ApiError e;
  e.code = code;
  e.message = why;
  switch (code) {
    case 400:
      e.reason = "BadRequest";
      break;
    case 401:
      e.reason = "Unauthorized";
      break;
    case 403:
      e.reason = "Forbidden";
      break;
    case 404:
      e.reason = "NotFound";
      break;
    case 409:
      e.reason = "Conflict";
      break;
    case 410:
      e.reason = "Gone";
      break;
    case 422:
      e.reason = "Invalid";
      break;
    case 429:
      e.reason = "TooManyRequests";
      break;
    case 500:
      e.reason = "InternalError";
      break;
    case 503:
      e.reason = "ServiceUnavailable";
      break;
    case 504:
      e.reason = "Timeout";
      break;
    default:
      e.reason = code >= 500 ? "InternalError" : "BadRequest";
      break;
  }
  return e;
}

// Go strconv.ParseBool.
std::optional<bool> parseGoBool(const std::string& s) {
  if (s == "1" || s == "t" || s == "T" || s == "TRUE" || s == "true" || s == "True")
    return true;
  if (s == "0" || s == "f" || s == "F" || s == "FALSE" || s == "false" || s == "False") {
    return false;
  }
  return std::nullopt;
}

std::string randomSuffix(std::size_t n) {
  static const char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  unsigned char buf[16];
  RAND_bytes(buf, sizeof(buf));
  std::string out;
  for (std::size_t i = 0; i < n; ++i)
    out.push_back(kAlphabet[buf[i % 16] % 27]);
  return out;
}

std::string newUid() {
  unsigned char b[16];
  RAND_bytes(b, sizeof(b));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  char out[37];
  std::snprintf(out, sizeof(out),
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return out;
}

std::string nowRfc3339() {
  return formatRfc3339(std::chrono::system_clock::now());
}

std::string base64(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string> unbase64(const std::string& in) {
  if (in.empty() || in.size() % 4 != 0)
    return std::nullopt;
  std::string out(in.size() / 4 * 3 + 1, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0)
    return std::nullopt;
  std::size_t pad = 0;
  if (in.size() >= 1 && in[in.size() - 1] == '=')
    ++pad;
  if (in.size() >= 2 && in[in.size() - 2] == '=')
    ++pad;
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

bool validName(const std::string& name) {
  if (name.empty() || name.size() > 253)
    return false;
  if (!std::isalnum(static_cast<unsigned char>(name.front())) ||
      !std::isalnum(static_cast<unsigned char>(name.back()))) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
}

Labels labelsOf(const json& obj) {
  Labels out;
  auto m = obj.find("metadata");
  if (m == obj.end() || !m->is_object())
    return out;
  auto l = m->find("labels");
  if (l == m->end() || !l->is_object())
    return out;
  for (auto it = l->begin(); it != l->end(); ++it) {
    if (it.value().is_string())
      out[it.key()] = it.value().get<std::string>();
  }
  return out;
}

std::string strField(const json& obj, const char* a, const char* b = nullptr) {
  auto x = obj.find(a);
  if (x == obj.end())
    return "";
  if (b == nullptr)
    return x->is_string() ? x->get<std::string>() : "";
  if (!x->is_object())
    return "";
  auto y = x->find(b);
  return (y != x->end() && y->is_string()) ? y->get<std::string>() : "";
}

// Value of a dotted field path ("spec.nodeName") as a string, "" if absent.
std::string fieldValue(const json& obj, const std::string& path) {
  const json* cur = &obj;
  std::size_t pos = 0;
  while (pos <= path.size()) {
    std::size_t dot = path.find('.', pos);
    if (dot == std::string::npos)
      dot = path.size();
    std::string part = path.substr(pos, dot - pos);
    if (!cur->is_object())
      return "";
    auto it = cur->find(part);
    if (it == cur->end())
      return "";
    cur = &*it;
    pos = dot + 1;
  }
  if (cur->is_string())
    return cur->get<std::string>();
  if (cur->is_null())
    return "";
  return cur->dump();
}

// ---------------------------------------------------------------------------
// Store and history

struct StoredObject {
  std::shared_ptr<const std::string> data;  // serialized object, resourceVersion included
  Labels labels;
  std::string uid;
  std::uint64_t rv = 0;
  // The parsed object, kept for recently written objects only (see kDomCache):
  // a write then copies it instead of parsing `data` again.
  std::shared_ptr<const json> dom;
};

// Parsed objects kept for the most recently written objects. Updates of large
// objects (Workflows of ~100 KB-1 MB, written many times a second while they
// run) are dominated by parsing the stored text; the DOM costs ~6x the text,
// so only this many are kept (oldest written first out).
constexpr std::size_t kDomCache = 256;

using ObjectKey = std::pair<std::string, std::string>;  // namespace ("" if cluster-scoped), name

struct WatchEvent {
  std::uint64_t rv = 0;
  const char* type = "ADDED";
  const ResourceType* res = nullptr;
  std::string ns;
  std::string name;
  std::shared_ptr<const std::string> data;
  Labels labels;
  std::optional<Labels> oldLabels;  // MODIFIED only: labels before the change
};

struct Selectors {
  LabelSelector labels;
  FieldSelector fields;
};

bool fieldsMatch(const FieldSelector& fs, const std::string& ns, const std::string& name,
                 const std::string& data) {
  if (fs.empty())
    return true;
  std::optional<json> parsed;
  for (const auto& r : fs.requirements()) {
    std::string v;
    if (r.field == "metadata.name") {
      v = name;
    } else if (r.field == "metadata.namespace") {
      v = ns;
    } else {
      if (!parsed)
        parsed = json::parse(data);
      v = fieldValue(*parsed, r.field);
    }
    if ((v == r.value) != r.equals)
      return false;
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------

struct KubeApiSimulator::Impl {
  Options opts;
  std::unique_ptr<HttpServer> server;
  std::string stateDir;
  bool ownsStateDir = false;
  std::string caPath, kubeconfigPath;

  mutable std::mutex mu;
  std::condition_variable cv;
  std::uint64_t rv = 1;           // last issued resourceVersion
  std::uint64_t compactedRv = 1;  // events with rv <= compactedRv are gone
  std::map<const ResourceType*, std::map<ObjectKey, StoredObject>> store;
  struct DomEntry {
    const ResourceType* type;
    ObjectKey key;
    std::uint64_t rv;
  };
  std::deque<DomEntry> domOrder;  // objects with a DOM, in commit order (may be stale)
  std::size_t domCount = 0;
  std::deque<WatchEvent> history;
  std::uint64_t watchGeneration = 0;
  bool abruptDrop = false;  // how the last drop-watches ends streams
  bool stopping = false;
  bool paused = false;
  std::optional<ExpireForm> expireNext;
  std::vector<SimFailRule> failRules;
  std::vector<SimRequestRecord> mutations;  // every mutating request, injected ones too
  std::string token;
  std::size_t watchers = 0;
  std::size_t blockedByPause = 0;

  // ---- helpers (mu held) ----

  void pushEventLocked(WatchEvent ev) {
    history.push_back(std::move(ev));
    while (history.size() > opts.historySize) {
      compactedRv = history.front().rv;
      history.pop_front();
    }
    cv.notify_all();
  }

  // Stores `obj` (metadata complete except resourceVersion) and records the event.
  json commitLocked(const ResourceType& t, const std::string& ns, const std::string& name, json obj,
                    const char* type, std::optional<Labels> oldLabels,
                    std::shared_ptr<const std::string>* dataOut = nullptr) {
    std::shared_ptr<const json> retired;  // these paths are rare: freed under the lock
    commitStoreLocked(t, ns, name, obj, nullptr, type, std::move(oldLabels), dataOut, retired);
    return obj;
  }

  // Like commitLocked, but keeps the parsed object (`dom`, completed with the
  // new resourceVersion) for the next write. The replaced object's DOM is
  // handed to `retired` so that the caller frees it outside the lock.
  void commitDomLocked(const ResourceType& t, const std::string& ns, const std::string& name,
                       const std::shared_ptr<json>& dom, std::optional<Labels> oldLabels,
                       std::shared_ptr<const std::string>* dataOut,
                       std::shared_ptr<const json>& retired) {
    commitStoreLocked(t, ns, name, *dom, dom, "MODIFIED", std::move(oldLabels), dataOut, retired);
  }

  void commitStoreLocked(const ResourceType& t, const std::string& ns, const std::string& name,
                         json& obj, std::shared_ptr<json> dom, const char* type,
                         std::optional<Labels> oldLabels,
                         std::shared_ptr<const std::string>* dataOut,
                         std::shared_ptr<const json>& retired) {
    std::uint64_t next = ++rv;
    obj["metadata"]["resourceVersion"] = std::to_string(next);
    auto data = std::make_shared<const std::string>(obj.dump());
    if (dataOut != nullptr)
      *dataOut = data;
    StoredObject so{data, labelsOf(obj), strField(obj, "metadata", "uid"), next, nullptr};
    Labels labels = so.labels;
    auto& bucket = store[&t];
    auto old = bucket.find({ns, name});
    if (old != bucket.end() && old->second.dom) {
      retired = std::move(old->second.dom);
      --domCount;
    }
    if (std::string_view(type) == "DELETED") {
      bucket.erase({ns, name});
    } else {
      if (dom) {
        so.dom = std::move(dom);
        ++domCount;
        domOrder.push_back({&t, {ns, name}, next});
      }
      bucket[{ns, name}] = std::move(so);
    }
    while (domCount > kDomCache && !domOrder.empty()) {
      auto [rt, key, at] = domOrder.front();
      domOrder.pop_front();
      auto b = store.find(rt);
      if (b == store.end())
        continue;
      auto it = b->second.find(key);
      if (it != b->second.end() && it->second.rv == at && it->second.dom) {
        it->second.dom.reset();  // rare (only past the cap): freed under the lock
        --domCount;
      }
    }
    pushEventLocked(
        WatchEvent{next, type, &t, ns, name, data, std::move(labels), std::move(oldLabels)});
  }

  const StoredObject* getLocked(const ResourceType& t, const std::string& ns,
                                const std::string& name) const {
    auto b = store.find(&t);
    if (b == store.end())
      return nullptr;
    auto it = b->second.find({ns, name});
    return it == b->second.end() ? nullptr : &it->second;
  }

  // ---- control ----

  void writeKubeconfig() {
    std::string serverUrl = server ? server->baseUrl() : "";
    std::ostringstream k;
    k << "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-apisim\n  cluster:\n"
      << "    server: " << serverUrl << "\n";
    if (!caPath.empty())
      k << "    certificate-authority: " << caPath << "\n";
    k << "contexts:\n- name: kube-apisim\n  context:\n    cluster: kube-apisim\n"
      << "    user: kube-apisim\n    namespace: default\ncurrent-context: kube-apisim\n"
      << "preferences: {}\nusers:\n- name: kube-apisim\n  user:";
    std::string tok;
    {
      std::lock_guard<std::mutex> lock(mu);
      tok = token;
    }
    if (tok.empty() && opts.tls) {
      // kubectl prompts for a username when an HTTPS cluster has no credentials;
      // the server checks no token when none is configured, so any value works.
      k << "\n    token: kube-apisim-no-auth\n";
    } else if (tok.empty()) {
      k << " {}\n";
    } else {
      k << "\n    token: " << tok << "\n";
    }
    auto writeAtomic = [](const std::string& path, const std::string& content) {
      std::string tmp = path + ".tmp";
      {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << content;
      }
      fs::rename(tmp, path);
    };
    writeAtomic(kubeconfigPath, k.str());
    if (!opts.kubeconfigOut.empty())
      writeAtomic(opts.kubeconfigOut, k.str());
    writeAtomic(stateDir + "/token", tok);
  }

  // ---- request handling ----

  void handle(const HttpRequest& req, HttpResponseWriter& w);
  // `client`: the name from a /_client/<name>/ path prefix, "" without one.
  void handleRouted(const HttpRequest& req, HttpResponseWriter& w, const std::string& client);
  void handleControl(const HttpRequest& req, HttpResponseWriter& w);
  void handleResource(const HttpRequest& req, HttpResponseWriter& w, const ResourceType& t,
                      const std::string& ns, const std::string& name, const std::string& sub,
                      bool clusterPath, const std::string& client);
  // Serves one request whose RBAC verb is known. Sets `injected` when a
  // failNext() rule answered it.
  void serveVerb(const HttpRequest& req, HttpResponseWriter& w, const ResourceType& t,
                 const std::string& ns, const std::string& name, const std::string& verb,
                 bool& injected);
  void doList(const HttpRequest& req, HttpResponseWriter& w, const ResourceType& t,
              const std::string& ns);
  void doWatch(const HttpRequest& req, HttpResponseWriter& w, const ResourceType& t,
               const std::string& ns);
  Result<json> doCreate(const HttpRequest& req, const ResourceType& t, const std::string& ns,
                        json obj, bool dryRun, ApiError& err);
  // Read-modify-write with optimistic concurrency: the stored object is read
  // under the lock, parsed and mutated outside it, and committed only if it
  // is still the same version (else `mutate` runs again on the newer one), so
  // large objects do not serialize every request behind one parse. `mutate`
  // may therefore run more than once. `outText`, when given, receives the
  // committed object's serialization (the response body); `out` is then left
  // empty on a committed write (copying a large DOM costs as much as parsing).
  bool doWrite(const ResourceType& t, const std::string& ns, const std::string& name,
               const std::function<std::optional<json>(const json& current, ApiError& err)>& mutate,
               bool dryRun, bool createIfMissing, json& out, ApiError& err, int& status,
               std::shared_ptr<const std::string>* outText = nullptr);

  Status seedOne(const json& obj);
};

namespace {

void sendJson(HttpResponseWriter& w, int code, const std::string& body, HttpHeaders extra = {}) {
  extra.emplace_back("Content-Type", "application/json");
  extra.emplace_back("Cache-Control", "no-cache, private");
  w.send(code, extra, body);
}

void sendError(HttpResponseWriter& w, const ApiError& e) {
  HttpHeaders h;
  if (e.retryAfter > 0)
    h.emplace_back("Retry-After", std::to_string(e.retryAfter));
  sendJson(w, e.code, statusJson(e).dump(), std::move(h));
}

std::vector<std::string> splitPath(const std::string& path) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < path.size()) {
    std::size_t slash = path.find('/', pos);
    if (slash == std::string::npos)
      slash = path.size();
    if (slash > pos)
      out.push_back(path.substr(pos, slash - pos));
    pos = slash + 1;
  }
  return out;
}

json apiResourceList(const std::string& groupVersion) {
  json resources = json::array();
  for (const auto& t : catalogue()) {
    if (t.apiVersion() != groupVersion)
      continue;
    json r = {
        {"name", t.plural},
        {"singularName", t.singular},
        {"namespaced", t.namespaced},
        {"kind", t.kind},
        {"verbs",
         {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}}};
    if (!t.shortNames.empty())
      r["shortNames"] = t.shortNames;
    if (!t.categories.empty())
      r["categories"] = t.categories;
    resources.push_back(r);
  }
  return {{"kind", "APIResourceList"},
          {"apiVersion", "v1"},
          {"groupVersion", groupVersion},
          {"resources", resources}};
}

json apiGroup(const std::string& group) {
  json versions = json::array();
  for (const auto& gv : groupVersions()) {
    if (gv.rfind(group + "/", 0) == 0) {
      versions.push_back({{"groupVersion", gv}, {"version", gv.substr(group.size() + 1)}});
    }
  }
  if (versions.empty())
    return nullptr;
  return {{"name", group}, {"versions", versions}, {"preferredVersion", versions[0]}};
}

std::string openApiHash(const std::string& gv) {
  // Stable per group version: the document never changes while the process runs.
  std::size_t h = std::hash<std::string>{}("kube-apisim/" + gv);
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016zX", h);
  return buf;
}

// A minimal OpenAPI v3 document per group version: enough for kubectl to find
// each kind's PATCH operation and see that it takes fieldValidation (so kubectl
// asks for server-side validation), plus a schema per kind that preserves
// unknown fields (the simulator does not validate object schemas).
json openApiV3(const std::string& gv) {
  json paths = json::object();
  json schemas = json::object();
  bool any = false;
  for (const auto& t : catalogue()) {
    if (t.apiVersion() != gv)
      continue;
    any = true;
    json gvk = {{"group", t.group}, {"version", t.version}, {"kind", t.kind}};
    std::string prefix = t.group.empty() ? "/api/v1" : "/apis/" + gv;
    std::string item =
        prefix + (t.namespaced ? "/namespaces/{namespace}/" : "/") + t.plural + "/{name}";
    std::string coll = prefix + (t.namespaced ? "/namespaces/{namespace}/" : "/") + t.plural;
    auto param = [](const char* name) {
      return json{{"name", name}, {"in", "query"}, {"schema", {{"type", "string"}}}};
    };
    std::string schemaName =
        (t.group.empty() ? "io.k8s.api.core.v1." : t.group + "." + t.version + ".") + t.kind;
    json ok = {{"200",
                {{"description", "OK"},
                 {"content",
                  {{"application/json",
                    {{"schema", {{"$ref", "#/components/schemas/" + schemaName}}}}}}}}}};
    json pathParams = json::array(
        {{{"name", "name"}, {"in", "path"}, {"required", true}, {"schema", {{"type", "string"}}}}});
    if (t.namespaced) {
      pathParams.push_back({{"name", "namespace"},
                            {"in", "path"},
                            {"required", true},
                            {"schema", {{"type", "string"}}}});
    }
    auto op = [&](const char* action, const std::vector<const char*>& params) {
      json o = {{"x-kubernetes-action", action},
                {"x-kubernetes-group-version-kind", gvk},
                {"responses", ok},
                {"parameters", json::array()}};
      for (const char* p : params)
        o["parameters"].push_back(param(p));
      return o;
    };
    paths[item] = {{"get", op("get", {"pretty"})},
                   {"put", op("put", {"dryRun", "fieldManager", "fieldValidation"})},
                   {"patch", op("patch", {"dryRun", "fieldManager", "fieldValidation", "force"})},
                   {"delete", op("delete", {"dryRun", "gracePeriodSeconds", "propagationPolicy"})},
                   {"parameters", pathParams}};
    json collParams = json::array();
    if (t.namespaced)
      collParams.push_back(pathParams[1]);
    paths[coll] = {
        {"get", op("list", {"labelSelector", "fieldSelector", "limit", "continue",
                            "resourceVersion", "watch", "allowWatchBookmarks", "timeoutSeconds"})},
        {"post", op("post", {"dryRun", "fieldManager", "fieldValidation"})},
        {"parameters", collParams}};
    schemas[schemaName] = {{"type", "object"},
                           {"x-kubernetes-group-version-kind", json::array({gvk})},
                           {"x-kubernetes-preserve-unknown-fields", true}};
  }
  if (!any)
    return nullptr;
  return {{"openapi", "3.0.0"},
          {"info", {{"title", "Kubernetes"}, {"version", "v1.32.0-kube-apisim"}}},
          {"paths", paths},
          {"components", {{"schemas", schemas}}}};
}

// Deep merge used by server-side apply: maps merge, everything else replaces.
void applyMerge(json& target, const json& patch) {
  if (!patch.is_object() || !target.is_object()) {
    target = patch;
    return;
  }
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    if (it.value().is_null()) {
      target.erase(it.key());
    } else if (it.value().is_object() && target.contains(it.key()) &&
               target[it.key()].is_object()) {
      applyMerge(target[it.key()], it.value());
    } else {
      target[it.key()] = it.value();
    }
  }
}

// FieldsV1 set of the applied configuration: maps become "f:<key>", leaves {}.
json fieldsV1Of(const json& v) {
  json out = json::object();
  if (!v.is_object())
    return out;
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (it.key() == "apiVersion" || it.key() == "kind")
      continue;
    if (it.key() == "metadata") {
      json m = json::object();
      for (const char* k : {"labels", "annotations"}) {
        if (it.value().contains(k))
          m[std::string("f:") + k] = fieldsV1Of(it.value()[k]);
      }
      if (!m.empty())
        out["f:metadata"] = m;
      continue;
    }
    out["f:" + it.key()] = fieldsV1Of(it.value());
  }
  return out;
}

// Removes from a FieldsV1 set every field the applied configuration sets.
void removeOwned(json& owned, const json& applied) {
  if (!owned.is_object() || !applied.is_object())
    return;
  for (auto it = applied.begin(); it != applied.end(); ++it) {
    std::string fk = "f:" + it.key();
    if (!owned.contains(fk))
      continue;
    if (it.value().is_object() && owned[fk].is_object() && !owned[fk].empty()) {
      removeOwned(owned[fk], it.value());
      if (owned[fk].empty())
        owned.erase(fk);
    } else {
      owned.erase(fk);
    }
  }
}

bool containsListOrDirective(const json& v) {
  if (v.is_array())
    return true;
  if (!v.is_object())
    return false;
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!it.key().empty() && it.key()[0] == '$')
      return true;
    if (containsListOrDirective(it.value()))
      return true;
  }
  return false;
}

// Forwards to the real writer and remembers the status answered, for the
// request log.
class StatusRecordingWriter final : public HttpResponseWriter {
 public:
  explicit StatusRecordingWriter(HttpResponseWriter& inner) : inner_(inner) {}
  bool send(int status, const HttpHeaders& headers, std::string_view body) override {
    status_ = status;
    return inner_.send(status, headers, body);
  }
  bool beginChunked(int status, const HttpHeaders& headers) override {
    status_ = status;
    return inner_.beginChunked(status, headers);
  }
  bool writeChunk(std::string_view data) override { return inner_.writeChunk(data); }
  bool endChunked() override { return inner_.endChunked(); }
  bool clientGone() override { return inner_.clientGone(); }
  bool stopRequested() const override { return inner_.stopRequested(); }
  void abortConnection() override { inner_.abortConnection(); }
  // 500 when the handler returned without answering (the server sends that).
  int status() const { return status_ == 0 ? 500 : status_; }

 private:
  HttpResponseWriter& inner_;
  int status_ = 0;
};

bool isMutatingVerb(const std::string& verb) {
  return verb == "create" || verb == "update" || verb == "patch" || verb == "delete" ||
         verb == "deletecollection";
}

}  // namespace

void KubeApiSimulator::Impl::handle(const HttpRequest& req, HttpResponseWriter& w) {
  // A server URL ending in /_client/<name> (e.g. one kubeconfig per process)
  // names the client in the request log; the rest of the path is served as
  // usual. Real API servers behind a path-routing proxy see the same shape.
  constexpr std::string_view kClientPrefix = "/_client/";
  if (req.path.rfind(kClientPrefix, 0) == 0) {
    const std::size_t slash = req.path.find('/', kClientPrefix.size());
    const std::string client = req.path.substr(
        kClientPrefix.size(),
        slash == std::string::npos ? std::string::npos : slash - kClientPrefix.size());
    if (client.empty()) {
      sendError(w, pathNotFound());
      return;
    }
    HttpRequest routed = req;
    routed.path = slash == std::string::npos ? "/" : req.path.substr(slash);
    handleRouted(routed, w, client);
    return;
  }
  handleRouted(req, w, "");
}

void KubeApiSimulator::Impl::handleRouted(const HttpRequest& req, HttpResponseWriter& w,
                                          const std::string& client) {
  if (opts.logRequests) {
    std::cerr << "kube-apisim: " << req.method << " " << req.path
              << (req.rawQuery.empty() ? "" : "?" + req.rawQuery) << "\n";
  }
  {
    std::string expected;
    {
      std::lock_guard<std::mutex> lock(mu);
      expected = token;
    }
    if (!expected.empty()) {
      auto auth = req.header("Authorization");
      if (!auth || *auth != "Bearer " + expected) {
        sendError(w, ApiError{401, "Unauthorized", "Unauthorized", nullptr});
        return;
      }
    }
  }
  if (req.path.rfind("/_sim/", 0) == 0) {
    handleControl(req, w);
    return;
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    ++blockedByPause;
    cv.wait(lock, [&] { return !paused || stopping; });
    --blockedByPause;
    if (stopping) {
      lock.unlock();
      sendError(w, statusForCode(503, "the server is shutting down"));
      return;
    }
  }

  const std::vector<std::string> seg = splitPath(req.path);
  auto sendObj = [&](const json& j) { sendJson(w, 200, j.dump()); };

  if (req.path == "/version" || req.path == "/version/") {
    sendObj({{"major", "1"},
             {"minor", "32"},
             {"gitVersion", "v1.32.0-kube-apisim"},
             {"gitCommit", "0000000000000000000000000000000000000000"},
             {"gitTreeState", "clean"},
             {"buildDate", "2026-01-01T00:00:00Z"},
             {"goVersion", "go1.23.0"},
             {"compiler", "gc"},
             {"platform", "linux/amd64"}});
    return;
  }
  if (req.path == "/openapi/v3" || req.path == "/openapi/v3/") {
    json paths = json::object();
    paths["api/v1"] = {{"serverRelativeURL", "/openapi/v3/api/v1?hash=" + openApiHash("v1")}};
    for (const auto& gv : groupVersions()) {
      paths["apis/" + gv] = {
          {"serverRelativeURL", "/openapi/v3/apis/" + gv + "?hash=" + openApiHash(gv)}};
    }
    sendObj({{"paths", paths}});
    return;
  }
  if (req.path.rfind("/openapi/v3/", 0) == 0) {
    std::string rest = req.path.substr(12);
    std::string gv = rest == "api/v1" ? "v1" : (rest.rfind("apis/", 0) == 0 ? rest.substr(5) : "");
    json doc = openApiV3(gv);
    if (doc.is_null()) {
      sendError(w, pathNotFound());
      return;
    }
    sendObj(doc);
    return;
  }
  if (req.path == "/healthz" || req.path == "/readyz" || req.path == "/livez") {
    w.send(200, {{"Content-Type", "text/plain; charset=utf-8"}}, "ok");
    return;
  }
  if (seg.empty()) {
    json paths = {"/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/version"};
    for (const auto& gv : groupVersions()) {
      paths.push_back("/apis/" + gv);
      paths.push_back("/apis/" + gv.substr(0, gv.find('/')));
    }
    sendObj({{"paths", paths}});
    return;
  }

  std::string group, version;
  std::size_t rest = 0;
  if (seg[0] == "api") {
    if (seg.size() == 1) {
      sendObj(
          {{"kind", "APIVersions"},
           {"versions", {"v1"}},
           {"serverAddressByClientCIDRs",
            json::array({{{"clientCIDR", "0.0.0.0/0"},
                          {"serverAddress", opts.addr + ":" + std::to_string(server->port())}}})}});
      return;
    }
    version = seg[1];
    if (version != "v1") {
      sendError(w, pathNotFound());
      return;
    }
    rest = 2;
  } else if (seg[0] == "apis") {
    if (seg.size() == 1) {
      json groups = json::array();
      std::vector<std::string> seen;
      for (const auto& gv : groupVersions()) {
        std::string g = gv.substr(0, gv.find('/'));
        if (std::find(seen.begin(), seen.end(), g) != seen.end())
          continue;
        seen.push_back(g);
        groups.push_back(apiGroup(g));
      }
      sendObj({{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", groups}});
      return;
    }
    group = seg[1];
    if (seg.size() == 2) {
      json g = apiGroup(group);
      if (g.is_null()) {
        sendError(w, pathNotFound());
        return;
      }
      g["kind"] = "APIGroup";
      g["apiVersion"] = "v1";
      sendObj(g);
      return;
    }
    version = seg[2];
    rest = 3;
  } else {
    w.send(404, {{"Content-Type", "text/plain; charset=utf-8"}}, "404 page not found\n");
    return;
  }

  const std::string gv = group.empty() ? version : group + "/" + version;
  const std::vector<std::string> gvs = groupVersions();
  bool knownGv = gv == "v1" || std::find(gvs.begin(), gvs.end(), gv) != gvs.end();
  if (!knownGv) {
    sendError(w, pathNotFound());
    return;
  }
  if (seg.size() == rest) {
    if (req.method != "GET") {
      sendError(w, methodNotAllowed());
      return;
    }
    sendObj(apiResourceList(gv));
    return;
  }
  // [namespaces/{ns}/]{plural}[/{name}[/{sub}]]
  std::string ns;
  std::size_t i = rest;
  if (seg[i] == "namespaces" && seg.size() >= i + 3) {
    const ResourceType* nsd = findType(group, version, seg[i + 2]);
    if (nsd != nullptr && nsd->namespaced) {
      ns = seg[i + 1];
      i += 2;
    }
  }
  const ResourceType* t = findType(group, version, seg[i]);
  if (t == nullptr || (!ns.empty() && !t->namespaced)) {
    sendError(w, pathNotFound());
    return;
  }
  std::string name = seg.size() > i + 1 ? seg[i + 1] : "";
  std::string sub = seg.size() > i + 2 ? seg[i + 2] : "";
  if (seg.size() > i + 3) {
    sendError(w, pathNotFound());
    return;
  }
  bool clusterPath = t->namespaced && ns.empty();
  handleResource(req, w, *t, ns, name, sub, clusterPath, client);
}

void KubeApiSimulator::Impl::handleResource(const HttpRequest& req, HttpResponseWriter& w,
                                            const ResourceType& t, const std::string& ns,
                                            const std::string& name, const std::string& sub,
                                            bool clusterPath, const std::string& client) {
  if (!sub.empty()) {
    // No subresources are simulated (workflows have none, like the real CRD).
    sendError(w, pathNotFound());
    return;
  }
  // Verb, as RBAC names it.
  std::string verb;
  bool watch = false;
  if (auto wq = req.queryParam("watch")) {
    auto b = parseGoBool(*wq);
    if (!b) {
      sendError(w, badRequest("invalid value for watch: strconv.ParseBool: parsing \"" + *wq +
                              "\": invalid syntax"));
      return;
    }
    watch = *b;
  }
  if (req.method == "GET") {
    verb = name.empty() ? (watch ? "watch" : "list") : "get";
  } else if (req.method == "POST" && name.empty() && !clusterPath) {
    verb = "create";
  } else if (req.method == "PUT" && !name.empty()) {
    verb = "update";
  } else if (req.method == "PATCH" && !name.empty()) {
    verb = "patch";
  } else if (req.method == "DELETE" && !name.empty()) {
    verb = "delete";
  } else if (req.method == "DELETE" && name.empty() && !clusterPath) {
    verb = "deletecollection";
  } else {
    sendError(w, methodNotAllowed());
    return;
  }
  if (clusterPath && !name.empty()) {
    sendError(w, pathNotFound());
    return;
  }
  if (!isMutatingVerb(verb)) {
    bool injected = false;
    serveVerb(req, w, t, ns, name, verb, injected);
    return;
  }
  // Mutating: logged on arrival, completed with the status answered.
  std::size_t index = 0;
  {
    SimRequestRecord rec;
    rec.verb = verb;
    rec.path = req.path;
    rec.contentType = req.header("Content-Type").value_or("");
    rec.body = req.body;
    rec.query = req.rawQuery;
    rec.userAgent = req.header("User-Agent").value_or("");
    rec.client = client;
    rec.at = std::chrono::system_clock::now();
    rec.doneAt = rec.at;
    std::lock_guard<std::mutex> lock(mu);
    rec.seq = mutations.size() + 1;
    index = mutations.size();
    mutations.push_back(std::move(rec));
  }
  StatusRecordingWriter recording(w);
  bool injected = false;
  serveVerb(req, recording, t, ns, name, verb, injected);
  const auto done = std::chrono::system_clock::now();
  std::lock_guard<std::mutex> lock(mu);
  SimRequestRecord& rec = mutations[index];
  rec.status = recording.status();
  rec.injected = injected;
  rec.doneAt = done;
}

void KubeApiSimulator::Impl::serveVerb(const HttpRequest& req, HttpResponseWriter& w,
                                       const ResourceType& t, const std::string& ns,
                                       const std::string& name, const std::string& verb,
                                       bool& injected) {
  // Injected failures.
  {
    std::optional<SimFailRule> hit;
    {
      std::lock_guard<std::mutex> lock(mu);
      for (auto it = failRules.begin(); it != failRules.end(); ++it) {
        if ((it->verb == "*" || it->verb == verb) &&
            (it->resource == "*" || it->resource == t.plural)) {
          hit = *it;
          if (--it->count <= 0)
            failRules.erase(it);
          break;
        }
      }
    }
    if (hit) {
      if (hit->delayMs > 0) {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait_for(lock, std::chrono::milliseconds(hit->delayMs), [&] { return stopping; });
      }
      if (hit->status > 0) {
        injected = true;
        ApiError e = statusForCode(hit->status, "injected failure (kube-apisim)");
        e.retryAfter = hit->retryAfterSeconds;
        if (hit->status == 429 && hit->retryAfterSeconds > 0) {
          e.details = {{"retryAfterSeconds", hit->retryAfterSeconds}};
        }
        sendError(w, e);
        return;
      }
    }
  }

  bool dryRun = false;
  for (const auto& [k, v] : req.query) {
    if (k == "dryRun") {
      if (v != "All") {
        sendError(w, badRequest("Invalid dry run value: \"" + v + "\""));
        return;
      }
      dryRun = true;
    }
  }
  std::string contentType = req.header("Content-Type").value_or("");

  if (verb == "list")
    return doList(req, w, t, ns);
  if (verb == "watch")
    return doWatch(req, w, t, ns);

  if (verb == "get") {
    std::shared_ptr<const std::string> data;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (const StoredObject* so = getLocked(t, ns, name))
        data = so->data;
    }
    if (!data)
      return sendError(w, notFound(t, name));
    return sendJson(w, 200, *data);
  }

  auto parseBody = [&](json& out) -> bool {
    std::string ctype = contentType.substr(0, contentType.find(';'));
    try {
      if (ctype == "application/yaml" || ctype == "application/apply-patch+yaml") {
        auto docs = parseYamlDocuments(req.body);
        if (!docs || docs->size() != 1) {
          sendError(w,
                    badRequest(docs ? "expected exactly one YAML document" : docs.error().message));
          return false;
        }
        out = std::move((*docs)[0]);
      } else {
        out = json::parse(req.body);
      }
    } catch (const json::exception& e) {
      sendError(
          w, badRequest(std::string("the body of the request could not be decoded: ") + e.what()));
      return false;
    }
    return true;
  };

  if (verb == "create") {
    std::string ctype = contentType.substr(0, contentType.find(';'));
    if (!ctype.empty() && ctype != "application/json" && ctype != "application/yaml") {
      return sendError(w, ApiError{415, "UnsupportedMediaType",
                                   "the body of the request was in an unknown format - accepted "
                                   "media types include: application/json, application/yaml",
                                   nullptr});
    }
    json obj;
    if (!parseBody(obj))
      return;
    ApiError err;
    auto created = doCreate(req, t, ns, std::move(obj), dryRun, err);
    if (!created)
      return sendError(w, err);
    return sendJson(w, 201, created->dump());
  }

  if (verb == "update") {
    json obj;
    if (!parseBody(obj))
      return;
    if (!obj.is_object())
      return sendError(w, badRequest("the object provided is not an object"));
    std::string bodyName = strField(obj, "metadata", "name");
    if (bodyName != name) {
      return sendError(w, badRequest("the name of the object (" + bodyName +
                                     ") does not match the name on the URL (" + name + ")"));
    }
    std::string bodyNs = strField(obj, "metadata", "namespace");
    if (t.namespaced && !bodyNs.empty() && bodyNs != ns) {
      return sendError(w, badRequest("the namespace of the provided object does not match the "
                                     "namespace sent on the request"));
    }
    json out;
    std::shared_ptr<const std::string> outText;
    ApiError err;
    int status = 200;
    bool ok = doWrite(
        t, ns, name,
        [&](const json& current, ApiError& e) -> std::optional<json> {
          std::string wantRv = strField(obj, "metadata", "resourceVersion");
          if (wantRv.empty()) {
            if (t.custom) {
              e = invalid(t, name, "metadata.resourceVersion", "FieldValueInvalid",
                          "Invalid value: 0x0: must be specified for an update");
              return std::nullopt;
            }
          } else if (wantRv != strField(current, "metadata", "resourceVersion")) {
            e = conflict(t, name);
            return std::nullopt;
          }
          return obj;
        },
        dryRun, false, out, err, status, &outText);
    if (!ok)
      return sendError(w, err);
    return sendJson(w, status, outText ? *outText : out.dump());
  }

  if (verb == "patch") {
    std::string ctype = contentType.substr(0, contentType.find(';'));
    json patch;
    if (ctype == "application/strategic-merge-patch+json" && t.custom) {
      return sendError(w, ApiError{415, "UnsupportedMediaType",
                                   "the body of the request was in an unknown format - accepted "
                                   "media types include: application/json-patch+json, "
                                   "application/merge-patch+json, application/apply-patch+yaml",
                                   nullptr});
    }
    if (ctype != "application/merge-patch+json" && ctype != "application/json-patch+json" &&
        ctype != "application/strategic-merge-patch+json" &&
        ctype != "application/apply-patch+yaml") {
      return sendError(w, ApiError{415, "UnsupportedMediaType",
                                   "the body of the request was in an unknown format - accepted "
                                   "media types include: application/json-patch+json, "
                                   "application/merge-patch+json, application/apply-patch+yaml, "
                                   "application/strategic-merge-patch+json",
                                   nullptr});
    }
    if (!parseBody(patch))
      return;
    const bool apply = ctype == "application/apply-patch+yaml";
    std::string fieldManager = req.queryParam("fieldManager").value_or("");
    bool force = parseGoBool(req.queryParam("force").value_or("false")).value_or(false);
    if (apply) {
      if (fieldManager.empty()) {
        return sendError(
            w, ApiError{422,
                        "Invalid",
                        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: "
                        "is required for apply patch",
                        {{"group", "meta.k8s.io"},
                         {"kind", "PatchOptions"},
                         {"causes", json::array({{{"reason", "FieldValueRequired"},
                                                  {"message",
                                                   "Required value: is required for "
                                                   "apply patch"},
                                                  {"field", "fieldManager"}}})}}});
      }
      if (!patch.is_object())
        return sendError(w, badRequest("apply patch must be an object"));
      if (strField(patch, "apiVersion") != t.apiVersion() || strField(patch, "kind") != t.kind) {
        return sendError(w, badRequest("apiVersion and kind of the applied object must be " +
                                       t.apiVersion() + " " + t.kind));
      }
      std::string pn = strField(patch, "metadata", "name");
      if (!pn.empty() && pn != name) {
        return sendError(w, badRequest("the name of the object (" + pn +
                                       ") does not match the name on the URL (" + name + ")"));
      }
    } else if (ctype == "application/strategic-merge-patch+json" &&
               containsListOrDirective(patch)) {
      return sendError(w,
                       ApiError{415, "UnsupportedMediaType",
                                "kube-apisim implements strategic merge patch only for patches "
                                "without lists or $-directives; use application/merge-patch+json "
                                "or application/json-patch+json",
                                nullptr});
    }
    json out;
    std::shared_ptr<const std::string> outText;
    ApiError err;
    int status = 200;
    bool ok = doWrite(
        t, ns, name,
        [&](const json& current, ApiError& e) -> std::optional<json> {
          json result = current;
          if (apply) {
            if (current.is_null()) {
              result = json::object();
            }
            // Conflicts: a field set by another Apply manager to a different value.
            if (!force && result.contains("metadata") &&
                result["metadata"].contains("managedFields")) {
              std::vector<std::string> conflicts;
              std::function<void(const json&, const json&, const json&, const std::string&)> walk;
              walk = [&](const json& applied, const json& owned, const json& cur,
                         const std::string& path) {
                if (!applied.is_object())
                  return;
                for (auto it = applied.begin(); it != applied.end(); ++it) {
                  std::string fk = "f:" + it.key();
                  if (!owned.is_object() || !owned.contains(fk))
                    continue;
                  json curV = cur.is_object() && cur.contains(it.key()) ? cur[it.key()] : json();
                  if (it.value().is_object() && owned[fk].is_object() && !owned[fk].empty()) {
                    walk(it.value(), owned[fk], curV, path + "." + it.key());
                  } else if (curV != it.value()) {
                    conflicts.push_back(path + "." + it.key());
                  }
                }
              };
              for (const auto& mf : result["metadata"]["managedFields"]) {
                if (mf.value("manager", "") == fieldManager ||
                    mf.value("operation", "") != "Apply") {
                  continue;
                }
                std::size_t before = conflicts.size();
                walk(patch, mf.value("fieldsV1", json::object()), result, "");
                for (std::size_t k = before; k < conflicts.size(); ++k) {
                  conflicts[k] =
                      "conflict with \"" + mf.value("manager", "") + "\": " + conflicts[k];
                }
              }
              if (!conflicts.empty()) {
                std::string msg = "Apply failed with " + std::to_string(conflicts.size()) +
                                  " conflict" + (conflicts.size() > 1 ? "s" : "") + ": ";
                for (std::size_t k = 0; k < conflicts.size(); ++k) {
                  msg += (k ? "\n" : "") + conflicts[k];
                }
                e = ApiError{409, "Conflict", msg, resDetails(t, name)};
                return std::nullopt;
              }
            }
            json applied = patch;
            if (applied.contains("metadata"))
              applied["metadata"].erase("managedFields");
            applyMerge(result, applied);
            json entry = {{"manager", fieldManager},      {"operation", "Apply"},
                          {"apiVersion", t.apiVersion()}, {"time", nowRfc3339()},
                          {"fieldsType", "FieldsV1"},     {"fieldsV1", fieldsV1Of(patch)}};
            json mfs = json::array();
            if (result["metadata"].contains("managedFields") &&
                result["metadata"]["managedFields"].is_array()) {
              for (const auto& mf : result["metadata"]["managedFields"]) {
                if (mf.value("manager", "") == fieldManager &&
                    mf.value("operation", "") == "Apply") {
                  // Unchanged field set: keep the entry (and its time) as is.
                  if (mf.value("fieldsV1", json()) == entry["fieldsV1"])
                    entry = mf;
                  continue;
                }
                // Fields now set by this manager (forced or equal values) leave
                // the other managers' sets; a manager left with nothing is dropped.
                json other = mf;
                if (other.contains("fieldsV1"))
                  removeOwned(other["fieldsV1"], patch);
                if (!other.contains("fieldsV1") || !other["fieldsV1"].empty()) {
                  mfs.push_back(other);
                }
              }
            }
            mfs.push_back(entry);
            result["metadata"]["managedFields"] = mfs;
            if (current.is_null()) {
              result["metadata"]["name"] = name;
              return result;
            }
          } else if (current.is_null()) {
            e = notFound(t, name);
            return std::nullopt;
          } else if (ctype == "application/json-patch+json") {
            if (!patch.is_array()) {
              e = badRequest("json: cannot unmarshal object into Go value of type jsonpatch.Patch");
              return std::nullopt;
            }
            if (patch.size() > 10000) {
              e = ApiError{413, "RequestEntityTooLarge",
                           "The allowed number of operations in a JSON patch is 10000, got " +
                               std::to_string(patch.size()),
                           nullptr};
              return std::nullopt;
            }
            try {
              result = current.patch(patch);
            } catch (const json::exception& ex) {
              // Same shape as kube-apiserver's NewGenericServerResponse(422, ...).
              std::string why = ex.what();
              if (ex.id == 501) {
                std::string failedPath;
                for (const auto& op : patch) {
                  if (op.value("op", "") != "test")
                    continue;
                  try {
                    if (current.at(json::json_pointer(op.value("path", ""))) == op["value"])
                      continue;
                  } catch (const json::exception&) {
                  }
                  failedPath = op.value("path", "");
                  break;
                }
                why = "testing value " + failedPath + " failed: test failed";
              }
              e = ApiError{
                  422,
                  "Invalid",
                  "the server rejected our request due to an error in our request",
                  {{"causes",
                    json::array({{{"reason", "UnexpectedServerResponse"}, {"message", why}}})}}};
              return std::nullopt;
            }
          } else {
            if (!patch.is_object()) {
              e = badRequest("json: cannot unmarshal " + std::string(patch.type_name()) +
                             " into Go value of type map[string]interface {}");
              return std::nullopt;
            }
            result.merge_patch(patch);
          }
          // A resourceVersion in the patched result is an optimistic-lock precondition.
          std::string wantRv = strField(result, "metadata", "resourceVersion");
          if (!wantRv.empty() && wantRv != strField(current, "metadata", "resourceVersion")) {
            e = conflict(t, name);
            return std::nullopt;
          }
          return result;
        },
        dryRun, apply, out, err, status, &outText);
    if (!ok)
      return sendError(w, err);
    return sendJson(w, status, outText ? *outText : out.dump());
  }

  if (verb == "delete") {
    json delOpts;
    if (!req.body.empty()) {
      try {
        delOpts = json::parse(req.body);
      } catch (const json::exception& e) {
        return sendError(w, badRequest(std::string("invalid DeleteOptions: ") + e.what()));
      }
    }
    std::unique_lock<std::mutex> lock(mu);
    const StoredObject* so = getLocked(t, ns, name);
    if (so == nullptr)
      return sendError(w, notFound(t, name));
    json cur = json::parse(*so->data);
    if (delOpts.is_object() && delOpts.contains("preconditions") &&
        delOpts["preconditions"].is_object()) {
      const json& pre = delOpts["preconditions"];
      if (pre.contains("resourceVersion") && pre["resourceVersion"].is_string() &&
          pre["resourceVersion"].get<std::string>() !=
              strField(cur, "metadata", "resourceVersion")) {
        ApiError e = conflict(t, name);
        e.message =
            "Operation cannot be fulfilled on " + t.qualifiedResource() + " \"" + name +
            "\": Precondition failed: ResourceVersion in precondition: " +
            pre["resourceVersion"].get<std::string>() +
            ", ResourceVersion in object meta: " + strField(cur, "metadata", "resourceVersion");
        return sendError(w, e);
      }
      if (pre.contains("uid") && pre["uid"].is_string() &&
          pre["uid"].get<std::string>() != strField(cur, "metadata", "uid")) {
        ApiError e = conflict(t, name);
        e.message =
            "Operation cannot be fulfilled on " + t.qualifiedResource() + " \"" + name +
            "\": Precondition failed: UID in precondition: " + pre["uid"].get<std::string>() +
            ", UID in object meta: " + strField(cur, "metadata", "uid");
        return sendError(w, e);
      }
    }
    if (dryRun) {
      lock.unlock();
      return sendJson(w, 200, cur.dump());
    }
    bool hasFinalizers = cur["metadata"].contains("finalizers") &&
                         cur["metadata"]["finalizers"].is_array() &&
                         !cur["metadata"]["finalizers"].empty();
    if (hasFinalizers) {
      if (!cur["metadata"].contains("deletionTimestamp")) {
        Labels old = so->labels;
        cur["metadata"]["deletionTimestamp"] = nowRfc3339();
        cur["metadata"]["deletionGracePeriodSeconds"] = 0;
        cur = commitLocked(t, ns, name, std::move(cur), "MODIFIED", old);
      }
      lock.unlock();
      return sendJson(w, 200, cur.dump());
    }
    json done = commitLocked(t, ns, name, std::move(cur), "DELETED", std::nullopt);
    lock.unlock();
    return sendJson(w, 200, done.dump());
  }

  if (verb == "deletecollection") {
    auto ls = LabelSelector::parse(req.queryParam("labelSelector").value_or(""));
    if (!ls)
      return sendError(w, badRequest(ls.error().message));
    auto fsel = FieldSelector::parse(req.queryParam("fieldSelector").value_or(""));
    if (!fsel)
      return sendError(w, badRequest(fsel.error().message));
    std::lock_guard<std::mutex> lock(mu);
    std::vector<ObjectKey> victims;
    for (const auto& [key, so] : store[&t]) {
      if (key.first == ns && ls->matches(so.labels) &&
          fieldsMatch(*fsel, key.first, key.second, *so.data)) {
        victims.push_back(key);
      }
    }
    json items = json::array();
    for (const auto& key : victims) {
      json cur = json::parse(*store[&t][key].data);
      if (!dryRun)
        cur = commitLocked(t, key.first, key.second, std::move(cur), "DELETED", std::nullopt);
      items.push_back(std::move(cur));
    }
    json list = {{"kind", t.kind + "List"},
                 {"apiVersion", t.apiVersion()},
                 {"metadata", {{"resourceVersion", std::to_string(rv)}}},
                 {"items", items}};
    return sendJson(w, 200, list.dump());
  }
}

Result<json> KubeApiSimulator::Impl::doCreate(const HttpRequest& req, const ResourceType& t,
                                              const std::string& ns, json obj, bool dryRun,
                                              ApiError& err) {
  (void)req;
  if (!obj.is_object()) {
    err = badRequest("the object provided is not an object");
    return makeError(ErrorCode::kInvalid, err.message);
  }
  std::string av = strField(obj, "apiVersion");
  std::string kind = strField(obj, "kind");
  if ((!av.empty() && av != t.apiVersion()) || (!kind.empty() && kind != t.kind)) {
    err = badRequest("the API version in the data (" + av +
                     ") does not match the expected API "
                     "version (" +
                     t.apiVersion() + ")");
    if (av == t.apiVersion()) {
      err.message =
          "the kind in the data (" + kind + ") does not match the expected kind (" + t.kind + ")";
    }
    return makeError(ErrorCode::kInvalid, err.message);
  }
  obj["apiVersion"] = t.apiVersion();
  obj["kind"] = t.kind;
  if (!obj.contains("metadata") || !obj["metadata"].is_object())
    obj["metadata"] = json::object();
  json& md = obj["metadata"];
  std::string bodyNs = strField(obj, "metadata", "namespace");
  if (t.namespaced) {
    if (!bodyNs.empty() && bodyNs != ns) {
      err = badRequest(
          "the namespace of the provided object does not match the namespace sent on "
          "the request");
      return makeError(ErrorCode::kInvalid, err.message);
    }
    md["namespace"] = ns;
  } else {
    md.erase("namespace");
  }
  std::string name = strField(obj, "metadata", "name");
  if (name.empty()) {
    std::string gen = strField(obj, "metadata", "generateName");
    if (gen.empty()) {
      err = invalid(t, "", "metadata.name", "FieldValueRequired",
                    "Required value: name or generateName is required");
      return makeError(ErrorCode::kInvalid, err.message);
    }
    name = gen + randomSuffix(5);
    md["name"] = name;
  }
  if (!validName(name)) {
    err = invalid(t, name, "metadata.name", "FieldValueInvalid",
                  "Invalid value: \"" + name +
                      "\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                      "characters, '-' or '.', and must start and end with an alphanumeric "
                      "character");
    return makeError(ErrorCode::kInvalid, err.message);
  }
  md["uid"] = newUid();
  md["creationTimestamp"] = nowRfc3339();
  md.erase("resourceVersion");
  md.erase("deletionTimestamp");
  if (t.custom)
    md["generation"] = 1;
  if (t.kind == "Namespace") {
    if (!obj.contains("status") || !obj["status"].is_object())
      obj["status"] = json::object();
    obj["status"]["phase"] = "Active";
    md["labels"]["kubernetes.io/metadata.name"] = name;
  }
  std::lock_guard<std::mutex> lock(mu);
  // Like the NamespaceLifecycle admission plugin: no objects in missing namespaces.
  if (t.namespaced && getLocked(*namespacesType(), "", ns) == nullptr) {
    err = notFound(*namespacesType(), ns);
    return makeError(ErrorCode::kNotFound, err.message);
  }
  if (getLocked(t, ns, name) != nullptr) {
    err = alreadyExists(t, name);
    return makeError(ErrorCode::kConflict, err.message);
  }
  if (dryRun)
    return obj;
  return commitLocked(t, ns, name, std::move(obj), "ADDED", std::nullopt);
}

// Read-modify-write under the store lock. `mutate` sees the current object (null if
// absent and createIfMissing) and returns the desired one or sets err.
bool KubeApiSimulator::Impl::doWrite(
    const ResourceType& t, const std::string& ns, const std::string& name,
    const std::function<std::optional<json>(const json& current, ApiError& err)>& mutate,
    bool dryRun, bool createIfMissing, json& out, ApiError& err, int& status,
    std::shared_ptr<const std::string>* outText) {
  for (;;) {
    std::shared_ptr<const std::string> base;  // null: the object does not exist
    std::shared_ptr<const json> baseDom;      // its parsed form, when kept
    std::uint64_t baseRv = 0;
    {
      std::lock_guard<std::mutex> lock(mu);
      const StoredObject* so = getLocked(t, ns, name);
      if (so == nullptr && !createIfMissing) {
        err = notFound(t, name);
        return false;
      }
      if (so != nullptr) {
        base = so->data;
        baseDom = so->dom;
        baseRv = so->rv;
      }
    }
    if (base && !baseDom)
      baseDom = std::make_shared<const json>(json::parse(*base));
    static const json kNull;
    const json& current = baseDom ? *baseDom : kNull;
    std::optional<json> next = mutate(current, err);
    if (!next)
      return false;
    json& obj = *next;
    if (!obj.is_object()) {
      err = badRequest("the object provided is not an object");
      return false;
    }
    if (!base) {
      HttpRequest dummy;
      auto created = doCreate(dummy, t, ns, std::move(obj), dryRun, err);
      if (!created)
        return false;
      out = std::move(*created);
      status = 201;
      return true;
    }
    // Identity and system fields are kept from the stored object.
    obj["apiVersion"] = t.apiVersion();
    obj["kind"] = t.kind;
    if (!obj.contains("metadata") || !obj["metadata"].is_object())
      obj["metadata"] = json::object();
    json& md = obj["metadata"];
    const json& cmd = current.at("metadata");
    if (strField(obj, "metadata", "name") != name) {
      err = badRequest("metadata.name cannot be changed (" + name + ")");
      return false;
    }
    for (const char* k : {"uid", "creationTimestamp", "namespace", "deletionTimestamp",
                          "deletionGracePeriodSeconds", "generation"}) {
      if (cmd.contains(k)) {
        md[k] = cmd[k];
      } else {
        md.erase(k);
      }
    }
    md["resourceVersion"] = cmd["resourceVersion"];
    if (obj == current) {  // no-op: real servers write nothing and keep the resourceVersion
      if (outText != nullptr) {
        *outText = base;
      } else {
        out = current;
      }
      status = 200;
      return true;
    }
    if (t.custom) {
      // generation counts changes outside metadata.
      bool changed = obj.size() != current.size();
      for (auto it = obj.begin(); !changed && it != obj.end(); ++it) {
        if (it.key() == "metadata")
          continue;
        auto c = current.find(it.key());
        changed = c == current.end() || *c != it.value();
      }
      if (changed)
        md["generation"] = cmd.value("generation", 0) + 1;
    }
    if (dryRun) {
      out = std::move(obj);
      status = 200;
      return true;
    }
    const bool finalize =
        md.contains("deletionTimestamp") &&
        (!md.contains("finalizers") || !md["finalizers"].is_array() || md["finalizers"].empty());
    std::shared_ptr<const json> retired;  // declared before the lock: freed after unlocking
    std::lock_guard<std::mutex> lock(mu);
    const StoredObject* so = getLocked(t, ns, name);
    if (so == nullptr || so->rv != baseRv)
      continue;  // changed (or deleted) meanwhile: decide again on the newer version
    Labels old = so->labels;
    status = 200;
    if (finalize) {
      out = commitLocked(t, ns, name, std::move(obj), "MODIFIED", old, outText);
      out = commitLocked(t, ns, name, out, "DELETED", std::nullopt, outText);
      return true;
    }
    auto dom = std::make_shared<json>(std::move(obj));
    commitDomLocked(t, ns, name, dom, old, outText, retired);
    if (outText == nullptr)
      out = *dom;
    return true;
  }
}

void KubeApiSimulator::Impl::doList(const HttpRequest& req, HttpResponseWriter& w,
                                    const ResourceType& t, const std::string& ns) {
  auto ls = LabelSelector::parse(req.queryParam("labelSelector").value_or(""));
  if (!ls)
    return sendError(w, badRequest(ls.error().message));
  auto fsel = FieldSelector::parse(req.queryParam("fieldSelector").value_or(""));
  if (!fsel)
    return sendError(w, badRequest(fsel.error().message));
  if (t.custom) {
    for (const auto& r : fsel->requirements()) {
      if (r.field != "metadata.name" && r.field != "metadata.namespace") {
        return sendError(w, badRequest("field label not supported: " + r.field));
      }
    }
  }
  std::string rvParam = req.queryParam("resourceVersion").value_or("");
  long long limit = 0;
  if (auto l = req.queryParam("limit")) {
    try {
      limit = std::stoll(*l);
    } catch (const std::exception&) {
      return sendError(w, badRequest("invalid limit: " + *l));
    }
  }
  // The watch cache serves RV=0 lists whole: it ignores limit (kube-apiserver 1.32).
  if (rvParam == "0")
    limit = 0;
  std::string cont = req.queryParam("continue").value_or("");

  std::vector<std::shared_ptr<const std::string>> items;
  std::uint64_t listRv = 0;
  std::string nextContinue;
  long long remaining = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    listRv = rv;
    ObjectKey after;
    bool hasAfter = false;
    if (!cont.empty()) {
      auto decoded = unbase64(cont);
      json tok;
      try {
        if (decoded)
          tok = json::parse(*decoded);
      } catch (const json::exception&) {
      }
      if (!tok.is_object() || !tok.contains("rv") || !tok.contains("start")) {
        return sendError(w, badRequest("continue key is not valid: incorrect encoded start "
                                       "resourceVersion (version meta.k8s.io/v1)"));
      }
      std::uint64_t tokRv = tok["rv"].get<std::uint64_t>();
      auto issued = std::chrono::system_clock::time_point(
          std::chrono::seconds(tok.value("ts", static_cast<long long>(0))));
      if (tokRv < compactedRv || std::chrono::system_clock::now() - issued > opts.continueTtl) {
        return sendError(
            w, expired("The provided continue parameter is too old to display a consistent list "
                       "result. You can start a new list without the continue parameter, or use "
                       "the continue token in this response to retrieve the remainder of the "
                       "results. Continuing with the provided token results in an inconsistent "
                       "list - objects that were created, modified, or deleted between the time "
                       "the first chunk was returned and now may show up in the list."));
      }
      listRv = tokRv;
      std::string start = tok["start"].get<std::string>();
      std::size_t sep = start.find('\x1f');
      after = {start.substr(0, sep), sep == std::string::npos ? "" : start.substr(sep + 1)};
      hasAfter = true;
    }
    auto& bucket = store[&t];
    auto it = hasAfter ? bucket.upper_bound(after) : bucket.begin();
    ObjectKey last;
    for (; it != bucket.end(); ++it) {
      const auto& [key, so] = *it;
      if (!ns.empty() && key.first != ns)
        continue;
      if (!ls->matches(so.labels) || !fieldsMatch(*fsel, key.first, key.second, *so.data))
        continue;
      if (limit > 0 && static_cast<long long>(items.size()) >= limit) {
        ++remaining;
        continue;
      }
      items.push_back(so.data);
      last = key;
    }
    if (remaining > 0) {
      json tok = {{"v", "meta.k8s.io/v1"},
                  {"rv", listRv},
                  {"start", last.first + '\x1f' + last.second},
                  {"ts", std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count()}};
      nextContinue = base64(tok.dump());
    }
  }
  json meta = {{"resourceVersion", std::to_string(listRv)}};
  if (!nextContinue.empty()) {
    meta["continue"] = nextContinue;
    if (ls->empty() && fsel->empty())
      meta["remainingItemCount"] = remaining;
  }
  std::string head = "{\"apiVersion\":" + json(t.apiVersion()).dump() + ",\"items\":[";
  std::string tail =
      "],\"kind\":" + json(t.kind + "List").dump() + ",\"metadata\":" + meta.dump() + "}";
  std::size_t total = head.size() + tail.size();
  for (const auto& s : items)
    total += s->size() + 1;
  HttpHeaders h = {{"Content-Type", "application/json"}, {"Cache-Control", "no-cache, private"}};
  constexpr std::size_t kStreamAbove = 4u << 20;
  if (total <= kStreamAbove) {
    std::string body;
    body.reserve(total);
    body += head;
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (i)
        body += ',';
      body += *items[i];
    }
    body += tail;
    w.send(200, h, body);
    return;
  }
  // Large lists stream in ~1 MiB chunks: no giant response string.
  if (!w.beginChunked(200, h))
    return;
  std::string buf = head;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i)
      buf += ',';
    if (buf.size() + items[i]->size() > (1u << 20)) {
      if (!buf.empty() && !w.writeChunk(buf))
        return;
      buf.clear();
      if (items[i]->size() > (1u << 20)) {
        if (!w.writeChunk(*items[i]))
          return;
        continue;
      }
    }
    buf += *items[i];
  }
  buf += tail;
  w.writeChunk(buf);
  w.endChunked();
}

void KubeApiSimulator::Impl::doWatch(const HttpRequest& req, HttpResponseWriter& w,
                                     const ResourceType& t, const std::string& ns) {
  auto ls = LabelSelector::parse(req.queryParam("labelSelector").value_or(""));
  if (!ls)
    return sendError(w, badRequest(ls.error().message));
  auto fsel = FieldSelector::parse(req.queryParam("fieldSelector").value_or(""));
  if (!fsel)
    return sendError(w, badRequest(fsel.error().message));
  bool bookmarks = false;
  if (auto b = req.queryParam("allowWatchBookmarks")) {
    auto v = parseGoBool(*b);
    if (!v)
      return sendError(w, badRequest("invalid value for allowWatchBookmarks: " + *b));
    bookmarks = *v;
  }
  std::chrono::steady_clock::duration lifetime;
  if (auto ts = req.queryParam("timeoutSeconds")) {
    try {
      lifetime = std::chrono::seconds(std::stoll(*ts));
    } catch (const std::exception&) {
      return sendError(w, badRequest("invalid timeoutSeconds: " + *ts));
    }
  } else {
    std::mt19937_64 rng(std::random_device{}());
    auto base = opts.minRequestTimeout.count();
    lifetime =
        std::chrono::seconds(base + static_cast<long long>(rng() % std::max<long long>(1, base)));
  }
  const auto deadline = std::chrono::steady_clock::now() + lifetime;
  std::string rvParam = req.queryParam("resourceVersion").value_or("");
  std::uint64_t startRv = 0;
  if (!rvParam.empty() && rvParam != "0") {
    try {
      std::size_t used = 0;
      startRv = std::stoull(rvParam, &used);
      if (used != rvParam.size())
        throw std::invalid_argument("trailing characters");
    } catch (const std::exception&) {
      return sendError(w, badRequest("resourceVersion: Invalid value: \"" + rvParam +
                                     "\": invalid resource version"));
    }
  }

  const std::string listKind = t.kind;
  auto line = [](const char* type, const std::string& obj) {
    std::string s;
    s.reserve(obj.size() + 32);
    s += "{\"type\":\"";
    s += type;
    s += "\",\"object\":";
    s += obj;
    s += "}\n";
    return s;
  };
  auto bookmarkLine = [&](std::uint64_t at) {
    json obj = {
        {"kind", t.kind},
        {"apiVersion", t.apiVersion()},
        {"metadata", {{"resourceVersion", std::to_string(at)}, {"creationTimestamp", nullptr}}}};
    return line("BOOKMARK", obj.dump());
  };
  auto matches = [&](const std::string& ons, const std::string& oname, const Labels& labels,
                     const std::string& data) {
    if (!ns.empty() && ons != ns)
      return false;
    return ls->matches(labels) && fieldsMatch(*fsel, ons, oname, data);
  };
  HttpHeaders h = {{"Content-Type", "application/json"}, {"Cache-Control", "no-cache, private"}};

  std::vector<std::string> initial;
  std::uint64_t pos = 0;
  std::uint64_t generation = 0;
  std::optional<ApiError> tooOld;
  {
    std::unique_lock<std::mutex> lock(mu);
    generation = watchGeneration;
    std::uint64_t tooOldAt = startRv;
    if (expireNext) {
      ExpireForm form = *expireNext;
      expireNext.reset();
      ApiError e = expired("too old resource version: " + rvParam + " (" +
                           std::to_string(compactedRv + 1) + ")");
      if (form == ExpireForm::kHttp410) {
        lock.unlock();
        return sendError(w, e);
      }
      tooOld = e;
    } else if (startRv != 0 && startRv < compactedRv) {
      tooOld = expired("too old resource version: " + std::to_string(tooOldAt) + " (" +
                       std::to_string(compactedRv + 1) + ")");
    } else if (startRv > rv) {
      // kube-apiserver waits ~3 s for its cache to reach the version, then gives up with
      // 504 "Too large resource version"; the simulator is never behind, so it answers at once.
      ApiError e{504,
                 "Timeout",
                 "Too large resource version: " + std::to_string(startRv) +
                     ", current: " + std::to_string(rv),
                 {{"causes", json::array({{{"reason", "ResourceVersionTooLarge"},
                                           {"message", "Too large resource version"}}})},
                  {"retryAfterSeconds", 1}}};
      lock.unlock();
      return sendError(w, e);
    }
    if (!tooOld) {
      if (startRv == 0) {
        for (const auto& [key, so] : store[&t]) {
          if (matches(key.first, key.second, so.labels, *so.data)) {
            initial.push_back(line("ADDED", *so.data));
          }
        }
        pos = rv;
      } else {
        pos = startRv;
      }
      ++watchers;
    }
  }
  if (tooOld) {
    // The watch cache reports a too-old resourceVersion inside a 200 stream.
    if (!w.beginChunked(200, h))
      return;
    w.writeChunk(line("ERROR", statusJson(*tooOld).dump()));
    w.endChunked();
    return;
  }
  struct WatcherCount {
    Impl* self;
    ~WatcherCount() {
      std::lock_guard<std::mutex> lock(self->mu);
      --self->watchers;
    }
  } counted{this};

  if (!w.beginChunked(200, h))
    return;
  for (const auto& l : initial) {
    if (!w.writeChunk(l))
      return;
  }
  initial.clear();
  auto nextBookmark = std::chrono::steady_clock::now() + opts.bookmarkInterval;
  for (;;) {
    std::vector<std::string> out;
    bool expiredNow = false;
    bool end = false;
    {
      std::unique_lock<std::mutex> lock(mu);
      auto wakeAt =
          std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(250));
      if (bookmarks)
        wakeAt = std::min(wakeAt, nextBookmark);
      cv.wait_until(lock, wakeAt, [&] {
        return stopping || watchGeneration != generation ||
               (!history.empty() && history.back().rv > pos);
      });
      if (stopping)
        return;
      if (watchGeneration != generation) {
        if (abruptDrop)
          w.abortConnection();
        return;
      }
      if (pos < compactedRv) {
        expiredNow = true;
      } else {
        auto it = std::upper_bound(history.begin(), history.end(), pos,
                                   [](std::uint64_t v, const WatchEvent& e) { return v < e.rv; });
        std::size_t bytes = 0;
        for (; it != history.end() && bytes < (8u << 20); ++it) {
          const WatchEvent& ev = *it;
          pos = ev.rv;
          if (ev.res != &t)
            continue;
          bool now = matches(ev.ns, ev.name, ev.labels, *ev.data);
          const char* type = ev.type;
          if (ev.oldLabels) {
            bool before = (ns.empty() || ev.ns == ns) && ls->matches(*ev.oldLabels) &&
                          fieldsMatch(*fsel, ev.ns, ev.name, *ev.data);
            if (now && !before)
              type = "ADDED";
            if (!now && before)
              type = "DELETED";
            if (!now && !before)
              continue;
          } else if (!now) {
            continue;
          }
          out.push_back(line(type, *ev.data));
          bytes += out.back().size();
        }
        if (it == history.end())
          pos = std::max(pos, rv);
      }
      end = std::chrono::steady_clock::now() >= deadline;
    }
    if (expiredNow) {
      ApiError e = expired("too old resource version: " + std::to_string(pos) + " (" +
                           std::to_string(compactedRv + 1) + ")");
      w.writeChunk(line("ERROR", statusJson(e).dump()));
      return;
    }
    for (const auto& l : out) {
      if (!w.writeChunk(l))
        return;
    }
    auto now = std::chrono::steady_clock::now();
    if (bookmarks && (now >= nextBookmark || end)) {
      if (!w.writeChunk(bookmarkLine(pos)))
        return;
      nextBookmark = now + opts.bookmarkInterval;
    }
    if (end || w.stopRequested() || w.clientGone())
      return;
  }
}

void KubeApiSimulator::Impl::handleControl(const HttpRequest& req, HttpResponseWriter& w) {
  const std::string op = req.path.substr(6);
  auto ok = [&](const json& j) { sendJson(w, 200, j.dump()); };
  json body;
  if (!req.body.empty()) {
    try {
      body = json::parse(req.body);
    } catch (const json::exception& e) {
      auto docs = parseYamlDocuments(req.body);
      if (!docs)
        return sendError(w, badRequest(std::string("invalid body: ") + e.what()));
      body = docs->size() == 1 ? (*docs)[0] : json{{"kind", "List"}, {"items", *docs}};
    }
  }
  if (req.method == "GET" && op == "requests") {
    // ?since=SEQ: only records after SEQ; ?injected=1: injected failures too;
    // ?maxBody=N: bodies cut to N bytes (bodySize keeps the full size).
    std::uint64_t since = 0;
    std::size_t maxBody = std::string::npos;
    bool withInjected = false;
    try {
      if (auto v = req.queryParam("since"))
        since = std::stoull(*v);
      if (auto v = req.queryParam("maxBody"))
        maxBody = static_cast<std::size_t>(std::stoull(*v));
    } catch (const std::exception&) {
      return sendError(w, badRequest("since and maxBody must be non-negative numbers"));
    }
    if (auto v = req.queryParam("injected"))
      withInjected = parseGoBool(*v).value_or(false);
    auto micros = [](std::chrono::system_clock::time_point tp) {
      return std::chrono::duration_cast<std::chrono::microseconds>(tp.time_since_epoch()).count();
    };
    json arr = json::array();
    std::lock_guard<std::mutex> lock(mu);
    for (std::size_t i = static_cast<std::size_t>(std::min<std::uint64_t>(since, mutations.size()));
         i < mutations.size(); ++i) {
      const SimRequestRecord& m = mutations[i];
      if (m.injected && !withInjected)
        continue;
      json rec = {{"verb", m.verb},
                  {"path", m.path},
                  {"query", m.query},
                  {"contentType", m.contentType},
                  {"body", m.body.substr(0, maxBody)},
                  {"seq", m.seq},
                  {"userAgent", m.userAgent},
                  {"client", m.client},
                  {"atUs", micros(m.at)},
                  {"doneAtUs", micros(m.doneAt)},
                  {"status", m.status},
                  {"injected", m.injected}};
      if (m.body.size() > maxBody)
        rec["bodySize"] = m.body.size();
      arr.push_back(std::move(rec));
    }
    return ok(arr);
  }
  if (req.method == "GET" && op == "state") {
    std::lock_guard<std::mutex> lock(mu);
    return ok({{"resourceVersion", std::to_string(rv)},
               {"compactedResourceVersion", std::to_string(compactedRv)},
               {"watches", watchers},
               {"pausedRequests", blockedByPause},
               {"paused", paused}});
  }
  if (req.method != "POST")
    return sendError(w, methodNotAllowed());
  if (op == "drop-watches") {
    std::string mode = req.queryParam("mode").value_or("clean");
    if (mode != "clean" && mode != "abort")
      return sendError(w, badRequest("mode must be clean or abort"));
    std::lock_guard<std::mutex> lock(mu);
    abruptDrop = mode == "abort";
    ++watchGeneration;
    cv.notify_all();
    return ok({{"dropped", watchers}});
  }
  if (op == "expire-next-watch") {
    std::string form = req.queryParam("form").value_or("http");
    if (form != "http" && form != "event") {
      return sendError(w, badRequest("form must be http or event"));
    }
    std::lock_guard<std::mutex> lock(mu);
    expireNext = form == "http" ? ExpireForm::kHttp410 : ExpireForm::kErrorEvent;
    return ok({{"form", form}});
  }
  if (op == "compact") {
    std::lock_guard<std::mutex> lock(mu);
    history.clear();
    compactedRv = rv;
    cv.notify_all();
    return ok({{"compactedResourceVersion", std::to_string(compactedRv)}});
  }
  if (op == "fail") {
    if (!body.is_object())
      return sendError(w, badRequest("body must be a JSON object"));
    SimFailRule r;
    r.verb = body.value("verb", "*");
    r.resource = body.value("resource", "*");
    r.count = body.value("count", 1);
    r.status = body.value("status", 500);
    r.retryAfterSeconds = body.value("retryAfter", 0);
    r.delayMs = body.value("delayMs", 0);
    static const std::vector<std::string> kVerbs = {"get",    "list",  "watch",  "create",
                                                    "update", "patch", "delete", "*"};
    if (std::find(kVerbs.begin(), kVerbs.end(), r.verb) == kVerbs.end()) {
      return sendError(w, badRequest("unknown verb " + r.verb));
    }
    std::lock_guard<std::mutex> lock(mu);
    failRules.push_back(r);
    return ok({{"queued", r.count}});
  }
  if (op == "pause") {
    bool p = body.is_object() ? body.value("paused", true) : true;
    std::lock_guard<std::mutex> lock(mu);
    paused = p;
    cv.notify_all();
    return ok({{"paused", p}});
  }
  if (op == "seed") {
    Status s = Status::okStatus();
    if (body.is_object() && body.contains("items") && body["items"].is_array()) {
      for (const auto& item : body["items"]) {
        s = seedOne(item);
        if (!s)
          break;
      }
    } else {
      s = seedOne(body);
    }
    if (!s)
      return sendError(w, badRequest(s.error().message));
    std::lock_guard<std::mutex> lock(mu);
    return ok({{"resourceVersion", std::to_string(rv)}});
  }
  if (op == "token") {
    if (!body.is_object() || !body.contains("token") || !body["token"].is_string()) {
      return sendError(w, badRequest("body must be {\"token\":\"...\"}"));
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      token = body["token"].get<std::string>();
    }
    writeKubeconfig();
    return ok(json::object());
  }
  sendError(w, pathNotFound());
}

Status KubeApiSimulator::Impl::seedOne(const json& obj) {
  if (!obj.is_object())
    return makeError(ErrorCode::kInvalidInput, "seed object is not an object");
  std::string av = strField(obj, "apiVersion");
  std::string kind = strField(obj, "kind");
  const ResourceType* t = findTypeByKind(av, kind);
  if (t == nullptr) {
    return makeError(ErrorCode::kInvalidInput,
                     "kube-apisim does not serve " + av + " " + kind + " (seed)");
  }
  std::string name = strField(obj, "metadata", "name");
  if (name.empty())
    return makeError(ErrorCode::kInvalidInput, "seed object without metadata.name");
  std::string ns = t->namespaced ? strField(obj, "metadata", "namespace") : "";
  if (t->namespaced && ns.empty())
    ns = "default";
  json o = obj;
  json& md = o["metadata"];
  md["namespace"] = ns;
  if (!t->namespaced)
    md.erase("namespace");
  if (!md.contains("uid"))
    md["uid"] = newUid();
  if (!md.contains("creationTimestamp"))
    md["creationTimestamp"] = nowRfc3339();
  if (t->custom && !md.contains("generation"))
    md["generation"] = 1;
  std::lock_guard<std::mutex> lock(mu);
  // Seeding creates missing namespaces so seed files need not list them.
  if (t->namespaced && getLocked(*namespacesType(), "", ns) == nullptr) {
    json nsObj = {{"apiVersion", "v1"},
                  {"kind", "Namespace"},
                  {"metadata",
                   {{"name", ns},
                    {"uid", newUid()},
                    {"creationTimestamp", nowRfc3339()},
                    {"labels", {{"kubernetes.io/metadata.name", ns}}}}},
                  {"status", {{"phase", "Active"}}}};
    commitLocked(*namespacesType(), "", ns, std::move(nsObj), "ADDED", std::nullopt);
  }
  const StoredObject* so = getLocked(*t, ns, name);
  std::optional<Labels> old;
  if (so != nullptr)
    old = so->labels;
  commitLocked(*t, ns, name, std::move(o), so != nullptr ? "MODIFIED" : "ADDED", old);
  return Status::okStatus();
}

// ---------------------------------------------------------------------------

KubeApiSimulator::KubeApiSimulator(Options options) : impl_(new Impl) {
  impl_->opts = std::move(options);
  impl_->token = impl_->opts.token;
  // Namespaces every cluster has.
  for (const char* nsName : {"default", "kube-system"}) {
    json nsObj = {
        {"apiVersion", "v1"},
        {"kind", "Namespace"},
        {"metadata", {{"name", nsName}, {"labels", {{"kubernetes.io/metadata.name", nsName}}}}},
        {"status", {{"phase", "Active"}}}};
    Status s = impl_->seedOne(nsObj);
    if (!s)
      std::abort();  // a built-in object must always seed
  }
}

KubeApiSimulator::~KubeApiSimulator() {
  stop();
}

Status KubeApiSimulator::start() {
  Impl& im = *impl_;
  if (im.server)
    return Status::okStatus();
  std::error_code ec;
  if (im.opts.stateDir.empty()) {
    std::string tmpl = (fs::temp_directory_path() / "kube-apisim-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      return makeError(ErrorCode::kTransient, "cannot create a state directory in $TMPDIR");
    }
    im.stateDir = tmpl;
    im.ownsStateDir = true;
  } else {
    im.stateDir = im.opts.stateDir;
    fs::create_directories(im.stateDir, ec);
    if (ec) {
      return makeError(ErrorCode::kInvalidInput,
                       "cannot create state dir " + im.stateDir + ": " + ec.message());
    }
  }
  HttpServer::Options so;
  so.address = im.opts.addr;
  so.port = im.opts.port;
  so.threads = im.opts.threads;
  if (im.opts.tls) {
    std::vector<std::string> ips = {"127.0.0.1", "::1"};
    if (std::find(ips.begin(), ips.end(), im.opts.addr) == ips.end() &&
        im.opts.addr.find_first_not_of("0123456789.:abcdefABCDEF") == std::string::npos &&
        im.opts.addr != "0.0.0.0" && im.opts.addr != "::") {
      ips.push_back(im.opts.addr);
    }
    auto pki = generateSimPki(ips, {"localhost"});
    if (!pki)
      return pki.error();
    auto write = [&](const std::string& name, const std::string& content, fs::perms perms) {
      std::string path = im.stateDir + "/" + name;
      std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
      fs::permissions(path, perms, ec);
      return path;
    };
    im.caPath = write("ca.crt", pki->caCertPem,
                      fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                          fs::perms::others_read);
    so.certFile =
        write("server.crt", pki->serverCertPem, fs::perms::owner_read | fs::perms::owner_write);
    so.keyFile =
        write("server.key", pki->serverKeyPem, fs::perms::owner_read | fs::perms::owner_write);
  }
  {
    std::lock_guard<std::mutex> lock(im.mu);
    im.stopping = false;
    // Namespaces every cluster has.
  }
  im.server = std::make_unique<HttpServer>(so);
  im.server->handle("/",
                    [&im](const HttpRequest& req, HttpResponseWriter& w) { im.handle(req, w); });
  im.server->onStopping([&im] {
    std::lock_guard<std::mutex> lock(im.mu);
    im.stopping = true;
    im.cv.notify_all();
  });
  if (Status s = im.server->start(); !s) {
    im.server.reset();
    return s;
  }
  im.kubeconfigPath = im.stateDir + "/kubeconfig";
  im.writeKubeconfig();
  return Status::okStatus();
}

void KubeApiSimulator::stop() {
  Impl& im = *impl_;
  if (!im.server)
    return;
  im.server->stop();
  im.server.reset();
  if (im.ownsStateDir) {
    std::error_code ec;
    fs::remove_all(im.stateDir, ec);
  }
}

int KubeApiSimulator::port() const {
  return impl_->server ? impl_->server->port() : 0;
}
std::string KubeApiSimulator::baseUrl() const {
  return impl_->server ? impl_->server->baseUrl() : "";
}
std::string KubeApiSimulator::caCertPath() const {
  return impl_->caPath;
}
std::string KubeApiSimulator::kubeconfigPath() const {
  return impl_->kubeconfigPath;
}
std::string KubeApiSimulator::stateDir() const {
  return impl_->stateDir;
}

Status KubeApiSimulator::seed(const json& objectOrList) {
  if (objectOrList.is_object() && objectOrList.contains("items") &&
      objectOrList["items"].is_array()) {
    for (const auto& item : objectOrList["items"]) {
      if (Status s = impl_->seedOne(item); !s)
        return s;
    }
    return Status::okStatus();
  }
  return impl_->seedOne(objectOrList);
}

Status KubeApiSimulator::seedFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return makeError(ErrorCode::kInvalidInput, "cannot read seed file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  try {
    return seed(json::parse(text));
  } catch (const json::exception&) {
    // Not JSON: YAML, possibly several documents.
  }
  auto docs = parseYamlDocuments(text);
  if (!docs)
    return makeError(ErrorCode::kInvalidInput, path + ": " + docs.error().message);
  for (const auto& d : *docs) {
    if (Status s = seed(d); !s) {
      return makeError(ErrorCode::kInvalidInput, path + ": " + s.error().message);
    }
  }
  return Status::okStatus();
}

void KubeApiSimulator::dropAllWatches(bool abrupt) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->abruptDrop = abrupt;
  ++impl_->watchGeneration;
  impl_->cv.notify_all();
}

void KubeApiSimulator::expireNextWatch(ExpireForm form) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->expireNext = form;
}

void KubeApiSimulator::compactHistory() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->history.clear();
  impl_->compactedRv = impl_->rv;
  impl_->cv.notify_all();
}

void KubeApiSimulator::failNext(const SimFailRule& rule) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->failRules.push_back(rule);
}

void KubeApiSimulator::pause(bool paused) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->paused = paused;
  impl_->cv.notify_all();
}

void KubeApiSimulator::setToken(const std::string& token) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->token = token;
  }
  if (impl_->server)
    impl_->writeKubeconfig();
}

std::vector<SimRequestRecord> KubeApiSimulator::mutationLog() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<SimRequestRecord> served;
  for (const auto& m : impl_->mutations) {
    if (!m.injected)
      served.push_back(m);
  }
  return served;
}

std::vector<SimRequestRecord> KubeApiSimulator::requestLog() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->mutations;
}

std::string KubeApiSimulator::currentResourceVersion() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return std::to_string(impl_->rv);
}

std::size_t KubeApiSimulator::pausedRequests() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->blockedByPause;
}

std::size_t KubeApiSimulator::openWatches() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->watchers;
}

}  // namespace exitrec
