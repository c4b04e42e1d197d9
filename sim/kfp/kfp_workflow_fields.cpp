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

bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size())
    return false;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
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

std::optional<std::int64_t> parseRfc3339Seconds(std::string_view s) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0;
  if (s.size() < 20 || !digits(s, 0, 4, y) || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't') || !digits(s, 11, 2, h) ||
      s[13] != ':' || !digits(s, 14, 2, mi) || s[16] != ':' || !digits(s, 17, 2, se)) {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
    return std::nullopt;
  std::size_t pos = 19;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    const std::size_t start = pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9')
      ++pos;
    if (pos == start)
      return std::nullopt;
  }
  int offset = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh = 0, om = 0;
    if (!digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !digits(s, pos + 4, 2, om)) {
      return std::nullopt;
    }
    offset = (oh * 3600 + om * 60) * (s[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size())
    return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = se;
  return static_cast<std::int64_t>(timegm(&tm)) - offset;
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
