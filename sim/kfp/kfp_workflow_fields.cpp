#include "sim/kfp/kfp_workflow_fields.h"

#include <charconv>
#include <ctime>

namespace exitrec::kfpsim {
namespace {

using nlohmann::json;

const json* member(const json& j, std::string_view key) {
  if (!j.is_object())
    return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

bool isStringMap(const json& j) {
  if (j.is_null())
    return true;
  if (!j.is_object())
    return false;
  for (const auto& [k, v] : j.items()) {
    (void)k;
    if (!v.is_string())
      return false;
  }
  return true;
}

}  // namespace

std::optional<std::string> metaMapValue(const json& wf, std::string_view field,
                                        std::string_view key) {
  const json* md = member(wf, "metadata");
  const json* m = md == nullptr ? nullptr : member(*md, field);
  const json* v = m == nullptr ? nullptr : member(*m, key);
  if (v == nullptr || !v->is_string())
    return std::nullopt;
  return v->get<std::string>();
}

std::string metaString(const json& wf, std::string_view key) {
  const json* md = member(wf, "metadata");
  const json* v = md == nullptr ? nullptr : member(*md, key);
  return v != nullptr && v->is_string() ? v->get<std::string>() : "";
}

std::string statusString(const json& wf, std::string_view key) {
  const json* st = member(wf, "status");
  const json* v = st == nullptr ? nullptr : member(*st, key);
  return v != nullptr && v->is_string() ? v->get<std::string>() : "";
}

std::string decodeProblem(const json& wf) {
  if (!wf.is_object())
    return "not a JSON object";
  for (const char* part : {"metadata", "spec", "status"}) {
    const json* p = member(wf, part);
    if (p != nullptr && !p->is_null() && !p->is_object())
      return std::string(part) + " is not an object";
  }
  if (const json* md = member(wf, "metadata")) {
    for (const char* field : {"labels", "annotations"}) {
      const json* m = member(*md, field);
      if (m != nullptr && !isStringMap(*m))
        return std::string("metadata.") + field + " is not a map of strings";
    }
    for (const char* field : {"name", "namespace", "uid", "resourceVersion"}) {
      const json* v = member(*md, field);
      if (v != nullptr && !v->is_null() && !v->is_string())
        return std::string("metadata.") + field + " is not a string";
    }
    const json* owners = member(*md, "ownerReferences");
    if (owners != nullptr && !owners->is_null() && !owners->is_array())
      return "metadata.ownerReferences is not an array";
  }
  if (const json* st = member(wf, "status")) {
    for (const char* field : {"phase", "finishedAt", "startedAt"}) {
      const json* v = member(*st, field);
      if (v != nullptr && !v->is_null() && !v->is_string())
        return std::string("status.") + field + " is not a string";
    }
    const json* f = member(*st, "finishedAt");
    if (f != nullptr && f->is_string() && !parseRfc3339Seconds(f->get<std::string>()))
      return "status.finishedAt is not an RFC 3339 time";
  }
  return "";
}

std::string scheduledWorkflowUid(const json& wf) {
  const json* md = member(wf, "metadata");
  const json* owners = md == nullptr ? nullptr : member(*md, "ownerReferences");
  if (owners == nullptr || !owners->is_array())
    return "";
  for (const json& ref : *owners) {
    const json* api = member(ref, "apiVersion");
    const json* kind = member(ref, "kind");
    const json* uid = member(ref, "uid");
    if (api != nullptr && api->is_string() && *api == "kubeflow.org/v1beta1" && kind != nullptr &&
        kind->is_string() && *kind == "ScheduledWorkflow" && uid != nullptr && uid->is_string() &&
        !uid->get_ref<const std::string&>().empty()) {
      return uid->get<std::string>();
    }
  }
  return "";
}

bool isFinalPhase(std::string_view phase) {
  return phase == "Succeeded" || phase == "Failed" || phase == "Error";
}

bool isTerminating(const json& wf) {
  const json* spec = member(wf, "spec");
  const json* ads = spec == nullptr ? nullptr : member(*spec, "activeDeadlineSeconds");
  return ads != nullptr && ads->is_number_integer() && ads->get<std::int64_t>() == 0 &&
         !isFinalPhase(statusString(wf, "phase"));
}

std::int64_t finishedAtSeconds(const json& wf) {
  return parseRfc3339Seconds(statusString(wf, "finishedAt")).value_or(0);
}

std::int64_t retryGeneration(const json& wf) {
  auto raw = metaMapValue(wf, "annotations", kAnnotationRetryGeneration);
  if (!raw)
    return 0;
  std::int64_t v = 0;
  const char* end = raw->data() + raw->size();
  auto [p, ec] = std::from_chars(raw->data(), end, v);
  // strconv.ParseInt(raw, 10, 64): the whole string, optional sign.
  if (ec != std::errc() || p != end)
    return 0;
  return v;
}

}  // namespace exitrec::kfpsim
