// The Kubernetes API simulator's catalogue: the resource types it serves and
// the discovery and OpenAPI documents that describe them.
#include <algorithm>
#include <cstdio>
#include <functional>

#include "sim/kube_sim_internal.h"

namespace exitrec::kubesim {

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

}  // namespace exitrec::kubesim
