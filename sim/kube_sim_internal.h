#pragma once
// Internal to the Kubernetes API simulator: what kube_api_simulator.cpp and the
// kube_sim_*.cpp files beside it share. Split along the simulator's seams:
//   kube_sim_catalogue.cpp  the served resource types, discovery, OpenAPI
//   kube_sim_util.cpp       API errors as Status bodies, object helpers
//   kube_sim_store.cpp      the store and its history; get, create, delete
//   kube_sim_watch.cpp      watch streams
//   kube_sim_list.cpp       list, pagination, deletecollection
//   kube_sim_patch.cpp      update and the patch types (merge, JSON, apply)
//   kube_sim_faults.cpp     fault injection and the /_sim/ control endpoints
//   kube_api_simulator.cpp  lifecycle, routing, the request log

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/http_server.h"
#include "common/result.h"
#include "sim/kube_api_simulator.h"
#include "sim/label_selector.h"

namespace exitrec {
namespace kubesim {

using json = nlohmann::json;
using Labels = std::map<std::string, std::string>;

// ---------------------------------------------------------------------------
// Resource catalogue (kube_sim_catalogue.cpp)

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

const std::vector<ResourceType>& catalogue();
const ResourceType* findType(const std::string& group, const std::string& version,
                             const std::string& plural);
const ResourceType* findTypeByKind(const std::string& apiVersion, const std::string& kind);
const ResourceType* namespacesType();
std::vector<std::string> groupVersions();

// Discovery documents: APIResourceList of a group version, APIGroup of a
// group (null when not served), and the OpenAPI v3 document and its hash.
json apiResourceList(const std::string& groupVersion);
json apiGroup(const std::string& group);
std::string openApiHash(const std::string& gv);
json openApiV3(const std::string& gv);

// ---------------------------------------------------------------------------
// API errors as Status bodies

struct ApiError {
  int code = 500;
  std::string reason;
  std::string message;
  json details;  // null when absent
  int retryAfter = 0;
};

json statusJson(const ApiError& e);
json resDetails(const ResourceType& t, const std::string& name);
ApiError notFound(const ResourceType& t, const std::string& name);
ApiError alreadyExists(const ResourceType& t, const std::string& name);
ApiError conflict(const ResourceType& t, const std::string& name);
ApiError invalid(const ResourceType& t, const std::string& name, const std::string& field,
                 const std::string& causeReason, const std::string& causeMessage);
ApiError badRequest(const std::string& msg);
ApiError pathNotFound();
ApiError methodNotAllowed();
ApiError expired(const std::string& msg);
ApiError statusForCode(int code, const std::string& why);

void sendJson(HttpResponseWriter& w, int code, const std::string& body, HttpHeaders extra = {});
void sendError(HttpResponseWriter& w, const ApiError& e);

// ---------------------------------------------------------------------------
// Helpers (kube_sim_util.cpp)

// Go strconv.ParseBool.
std::optional<bool> parseGoBool(const std::string& s);
std::string randomSuffix(std::size_t n);
std::string newUid();
std::string nowRfc3339();
bool validName(const std::string& name);
Labels labelsOf(const json& obj);
std::string strField(const json& obj, const char* a, const char* b = nullptr);
// Value of a dotted field path ("spec.nodeName") as a string, "" if absent.
std::string fieldValue(const json& obj, const std::string& path);
std::vector<std::string> splitPath(const std::string& path);
// The request's media type: Content-Type without parameters.
std::string mediaType(const HttpRequest& req);
// Decodes the request body (YAML for the YAML media types, else JSON) into
// `out`; on failure answers 400 and returns false.
bool parseBody(const HttpRequest& req, HttpResponseWriter& w, json& out);

// ---------------------------------------------------------------------------
// Store and history (kube_sim_store.cpp)

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

bool fieldsMatch(const FieldSelector& fs, const std::string& ns, const std::string& name,
                 const std::string& data);

}  // namespace kubesim

// ---------------------------------------------------------------------------
// The simulator's state, shared by the files above (members below `mu` are
// read and written under it).

struct KubeApiSimulator::Impl {
  using json = kubesim::json;
  using Labels = kubesim::Labels;
  using ResourceType = kubesim::ResourceType;
  using ApiError = kubesim::ApiError;
  using StoredObject = kubesim::StoredObject;
  using ObjectKey = kubesim::ObjectKey;
  using WatchEvent = kubesim::WatchEvent;

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

  // ---- store (kube_sim_store.cpp; mu held) ----

  void pushEventLocked(WatchEvent ev);
  // Stores `obj` (metadata complete except resourceVersion) and records the event.
  json commitLocked(const ResourceType& t, const std::string& ns, const std::string& name, json obj,
                    const char* type, std::optional<Labels> oldLabels,
                    std::shared_ptr<const std::string>* dataOut = nullptr);
  // Like commitLocked, but keeps the parsed object (`dom`, completed with the
  // new resourceVersion) for the next write. The replaced object's DOM is
  // handed to `retired` so that the caller frees it outside the lock.
  void commitDomLocked(const ResourceType& t, const std::string& ns, const std::string& name,
                       const std::shared_ptr<json>& dom, std::optional<Labels> oldLabels,
                       std::shared_ptr<const std::string>* dataOut,
                       std::shared_ptr<const json>& retired);
  void commitStoreLocked(const ResourceType& t, const std::string& ns, const std::string& name,
                         json& obj, std::shared_ptr<json> dom, const char* type,
                         std::optional<Labels> oldLabels,
                         std::shared_ptr<const std::string>* dataOut,
                         std::shared_ptr<const json>& retired);
  const StoredObject* getLocked(const ResourceType& t, const std::string& ns,
                                const std::string& name) const;

  // ---- control (kube_api_simulator.cpp) ----

  void writeKubeconfig();

  // ---- request handling ----

  void handle(const HttpRequest& req, HttpResponseWriter& w);
  // `client`: the name from a /_client/<name>/ path prefix, "" without one.
  void handleRouted(const HttpRequest& req, HttpResponseWriter& w, const std::string& client);
  // The /_sim/ control endpoints (kube_sim_faults.cpp).
  void handleControl(const HttpRequest& req, HttpResponseWriter& w);
  void handleResource(const HttpRequest& req, HttpResponseWriter& w, const ResourceType& t,
                      const std::string& ns, const std::string& name, const std::string& sub,
                      bool clusterPath, const std::string& client);
  // Serves one request whose RBAC verb is known: an injected failure, else
  // the verb's own function below. Sets `injected` when a failNext() rule
  // answered it.
  void serveVerb(const HttpRequest& req, HttpResponseWriter& w, const ResourceType& t,
                 const std::string& ns, const std::string& name, const std::string& verb,
                 bool& injected);
  // The first failNext() rule matching verb and resource, applied: waits its
  // delay, then answers its status (returns true, sets `injected`) unless it
  // only delays (kube_sim_faults.cpp).
  bool injectFault(HttpResponseWriter& w, const ResourceType& t, const std::string& verb,
                   bool& injected);
  // One function per verb. get, create, delete: kube_sim_store.cpp; update,
  // patch: kube_sim_patch.cpp; list, deletecollection: kube_sim_list.cpp;
  // watch: kube_sim_watch.cpp.
  void serveGet(HttpResponseWriter& w, const ResourceType& t, const std::string& ns,
                const std::string& name);
  void serveCreate(const HttpRequest& req, HttpResponseWriter& w, const ResourceType& t,
                   const std::string& ns, bool dryRun);
  void serveUpdate(const HttpRequest& req, HttpResponseWriter& w, const ResourceType& t,
                   const std::string& ns, const std::string& name, bool dryRun);
  void servePatch(const HttpRequest& req, HttpResponseWriter& w, const ResourceType& t,
                  const std::string& ns, const std::string& name, bool dryRun);
  void serveDelete(const HttpRequest& req, HttpResponseWriter& w, const ResourceType& t,
                   const std::string& ns, const std::string& name, bool dryRun);
  void serveDeleteCollection(const HttpRequest& req, HttpResponseWriter& w, const ResourceType& t,
                             const std::string& ns, bool dryRun);
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

  // Creates or replaces one object (kube_sim_store.cpp).
  Status seedOne(const json& obj);
};

}  // namespace exitrec
