// The Kubernetes API simulator's store: objects, their resourceVersions and
// the watch history, and the verbs that read or replace one object (get,
// create, the read-modify-write behind update/patch, delete) plus seeding.
#include <mutex>

#include "sim/kube_sim_internal.h"

namespace exitrec {

using namespace kubesim;  // the simulator's own internals (kube_sim_internal.h)

void KubeApiSimulator::Impl::pushEventLocked(WatchEvent ev) {
  history.push_back(std::move(ev));
  while (history.size() > opts.historySize) {
    compactedRv = history.front().rv;
    history.pop_front();
  }
  cv.notify_all();
}

json KubeApiSimulator::Impl::commitLocked(const ResourceType& t, const std::string& ns,
                                          const std::string& name, json obj, const char* type,
                                          std::optional<Labels> oldLabels,
                                          std::shared_ptr<const std::string>* dataOut) {
  std::shared_ptr<const json> retired;  // these paths are rare: freed under the lock
  commitStoreLocked(t, ns, name, obj, nullptr, type, std::move(oldLabels), dataOut, retired);
  return obj;
}

void KubeApiSimulator::Impl::commitDomLocked(const ResourceType& t, const std::string& ns,
                                             const std::string& name,
                                             const std::shared_ptr<json>& dom,
                                             std::optional<Labels> oldLabels,
                                             std::shared_ptr<const std::string>* dataOut,
                                             std::shared_ptr<const json>& retired) {
  commitStoreLocked(t, ns, name, *dom, dom, "MODIFIED", std::move(oldLabels), dataOut, retired);
}

void KubeApiSimulator::Impl::commitStoreLocked(const ResourceType& t, const std::string& ns,
                                               const std::string& name, json& obj,
                                               std::shared_ptr<json> dom, const char* type,
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

const KubeApiSimulator::Impl::StoredObject* KubeApiSimulator::Impl::getLocked(
    const ResourceType& t, const std::string& ns, const std::string& name) const {
  auto b = store.find(&t);
  if (b == store.end())
    return nullptr;
  auto it = b->second.find({ns, name});
  return it == b->second.end() ? nullptr : &it->second;
}

void KubeApiSimulator::Impl::serveGet(HttpResponseWriter& w, const ResourceType& t,
                                      const std::string& ns, const std::string& name) {
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

void KubeApiSimulator::Impl::serveCreate(const HttpRequest& req, HttpResponseWriter& w,
                                         const ResourceType& t, const std::string& ns,
                                         bool dryRun) {
  std::string ctype = mediaType(req);
  if (!ctype.empty() && ctype != "application/json" && ctype != "application/yaml") {
    return sendError(w, ApiError{415, "UnsupportedMediaType",
                                 "the body of the request was in an unknown format - accepted "
                                 "media types include: application/json, application/yaml",
                                 nullptr});
  }
  json obj;
  if (!parseBody(req, w, obj))
    return;
  ApiError err;
  auto created = doCreate(req, t, ns, std::move(obj), dryRun, err);
  if (!created)
    return sendError(w, err);
  return sendJson(w, 201, created->dump());
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

void KubeApiSimulator::Impl::serveDelete(const HttpRequest& req, HttpResponseWriter& w,
                                         const ResourceType& t, const std::string& ns,
                                         const std::string& name, bool dryRun) {
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
        pre["resourceVersion"].get<std::string>() != strField(cur, "metadata", "resourceVersion")) {
      ApiError e = conflict(t, name);
      e.message = "Operation cannot be fulfilled on " + t.qualifiedResource() + " \"" + name +
                  "\": Precondition failed: ResourceVersion in precondition: " +
                  pre["resourceVersion"].get<std::string>() + ", ResourceVersion in object meta: " +
                  strField(cur, "metadata", "resourceVersion");
      return sendError(w, e);
    }
    if (pre.contains("uid") && pre["uid"].is_string() &&
        pre["uid"].get<std::string>() != strField(cur, "metadata", "uid")) {
      ApiError e = conflict(t, name);
      e.message = "Operation cannot be fulfilled on " + t.qualifiedResource() + " \"" + name +
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

}  // namespace exitrec
