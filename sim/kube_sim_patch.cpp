// The Kubernetes API simulator's writes of one existing object: update (PUT)
// and the patch types, JSON merge patch, JSON patch, strategic merge patch
// (without lists or directives) and server-side apply with field managers.
#include <functional>
#include <mutex>

#include "sim/kube_sim_internal.h"

namespace exitrec {

using namespace kubesim;  // the simulator's own internals (kube_sim_internal.h)

namespace {

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

// Server-side apply of `patch` by `fieldManager` onto `current` (null: the
// object does not exist yet, and is created with `name`). A field another
// Apply manager set to a different value is a conflict unless `force`.
std::optional<json> serverSideApply(const ResourceType& t, const std::string& name,
                                    const json& current, const json& patch,
                                    const std::string& fieldManager, bool force, ApiError& e) {
  json result = current;
  if (current.is_null()) {
    result = json::object();
  }
  // Conflicts: a field set by another Apply manager to a different value.
  if (!force && result.contains("metadata") && result["metadata"].contains("managedFields")) {
    std::vector<std::string> conflicts;
    std::function<void(const json&, const json&, const json&, const std::string&)> walk;
    walk = [&](const json& applied, const json& owned, const json& cur, const std::string& path) {
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
      if (mf.value("manager", "") == fieldManager || mf.value("operation", "") != "Apply") {
        continue;
      }
      std::size_t before = conflicts.size();
      walk(patch, mf.value("fieldsV1", json::object()), result, "");
      for (std::size_t k = before; k < conflicts.size(); ++k) {
        conflicts[k] = "conflict with \"" + mf.value("manager", "") + "\": " + conflicts[k];
      }
    }
    if (!conflicts.empty()) {
      std::string msg = "Apply failed with " + std::to_string(conflicts.size()) + " conflict" +
                        (conflicts.size() > 1 ? "s" : "") + ": ";
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
      if (mf.value("manager", "") == fieldManager && mf.value("operation", "") == "Apply") {
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
  return result;
}

// RFC 6902 JSON patch (application/json-patch+json).
std::optional<json> jsonPatch(const json& current, const json& patch, ApiError& e) {
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
    return current.patch(patch);
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
        {{"causes", json::array({{{"reason", "UnexpectedServerResponse"}, {"message", why}}})}}};
    return std::nullopt;
  }
}

// RFC 7386 JSON merge patch; also strategic merge patch without lists or
// directives, where the two agree.
std::optional<json> mergePatch(const json& current, const json& patch, ApiError& e) {
  if (!patch.is_object()) {
    e = badRequest("json: cannot unmarshal " + std::string(patch.type_name()) +
                   " into Go value of type map[string]interface {}");
    return std::nullopt;
  }
  json result = current;
  result.merge_patch(patch);
  return result;
}

}  // namespace

void KubeApiSimulator::Impl::serveUpdate(const HttpRequest& req, HttpResponseWriter& w,
                                         const ResourceType& t, const std::string& ns,
                                         const std::string& name, bool dryRun) {
  json obj;
  if (!parseBody(req, w, obj))
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

void KubeApiSimulator::Impl::servePatch(const HttpRequest& req, HttpResponseWriter& w,
                                        const ResourceType& t, const std::string& ns,
                                        const std::string& name, bool dryRun) {
  std::string ctype = mediaType(req);
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
  if (!parseBody(req, w, patch))
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
  } else if (ctype == "application/strategic-merge-patch+json" && containsListOrDirective(patch)) {
    return sendError(w, ApiError{415, "UnsupportedMediaType",
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
        std::optional<json> result;
        if (apply) {
          result = serverSideApply(t, name, current, patch, fieldManager, force, e);
          if (!result || current.is_null())
            return result;
        } else if (current.is_null()) {
          e = notFound(t, name);
          return std::nullopt;
        } else if (ctype == "application/json-patch+json") {
          result = jsonPatch(current, patch, e);
        } else {
          result = mergePatch(current, patch, e);
        }
        if (!result)
          return result;
        // A resourceVersion in the patched result is an optimistic-lock precondition.
        std::string wantRv = strField(*result, "metadata", "resourceVersion");
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

}  // namespace exitrec
