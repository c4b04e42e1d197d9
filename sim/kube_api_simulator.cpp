// Lifecycle, routing and the request log of the Kubernetes API simulator; the
// rest lives in the kube_sim_*.cpp files along its seams (see
// kube_sim_internal.h).
#include "sim/kube_api_simulator.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>

#include "common/http_server.h"
#include "common/yaml_json.h"
#include "sim/kube_sim_internal.h"
#include "sim/sim_tls.h"

namespace exitrec {

using namespace kubesim;  // the simulator's own internals (kube_sim_internal.h)

namespace {

namespace fs = std::filesystem;

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

void KubeApiSimulator::Impl::writeKubeconfig() {
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
  if (injectFault(w, t, verb, injected))
    return;
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
  if (verb == "list")
    return doList(req, w, t, ns);
  if (verb == "watch")
    return doWatch(req, w, t, ns);
  if (verb == "get")
    return serveGet(w, t, ns, name);
  if (verb == "create")
    return serveCreate(req, w, t, ns, dryRun);
  if (verb == "update")
    return serveUpdate(req, w, t, ns, name, dryRun);
  if (verb == "patch")
    return servePatch(req, w, t, ns, name, dryRun);
  if (verb == "delete")
    return serveDelete(req, w, t, ns, name, dryRun);
  if (verb == "deletecollection")
    return serveDeleteCollection(req, w, t, ns, dryRun);
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
