// KFP's run filters: parseAPIFilter, the in-memory match, and the filter's
// round trip through a page token (kubeflow/pipelines filter/filter.go,
// server/list_request_util.go, list/list.go; see kfp_history_api.h).

#include <chrono>
#include <map>

#include "common/clock.h"
#include "common/rfc3339.h"
#include "common/url_encoding.h"
#include "sim/kfp/kfp_history_api_internal.h"

namespace exitrec::kfphistory {
namespace detail {
namespace {

bool compare(const Value& a, const std::string& op, const Value& b) {
  if (a.index() != b.index())
    return false;
  if (op == "EQUALS")
    return a == b;
  if (op == "NOT_EQUALS")
    return a != b;
  if (op == "GREATER_THAN")
    return a > b;
  if (op == "GREATER_THAN_EQUALS")
    return a >= b;
  if (op == "LESS_THAN")
    return a < b;
  if (op == "LESS_THAN_EQUALS")
    return a <= b;
  if (op == "IS_SUBSTRING") {
    const auto* s = std::get_if<std::string>(&a);
    return s != nullptr && s->find(std::get<std::string>(b)) != std::string::npos;
  }
  return false;
}

}  // namespace

// model/run.go runAPIToModelFieldMap (the keys this simulator supports).
std::optional<std::string> modelField(const std::string& apiKey) {
  static const std::map<std::string, std::string> kMap = {{"run_id", "UUID"},
                                                          {"display_name", "DisplayName"},
                                                          {"created_at", "CreatedAtInSec"},
                                                          {"finished_at", "FinishedAtInSec"},
                                                          {"state", "State"},
                                                          {"namespace", "Namespace"},
                                                          {"storage_state", "StorageState"}};
  auto it = kMap.find(apiKey);
  if (it == kMap.end())
    return std::nullopt;
  return it->second;
}

Value fieldValue(const KfpHistoryApi::HistoryRun& r, const std::string& field) {
  if (field == "UUID")
    return r.runId;
  if (field == "DisplayName")
    return r.displayName;
  if (field == "CreatedAtInSec")
    return r.createdAt;
  if (field == "FinishedAtInSec")
    return r.finishedAt;
  if (field == "State")
    return r.state;
  if (field == "Namespace")
    return r.ns;
  return std::string("AVAILABLE");  // StorageState
}

json valueJson(const Value& v) {
  if (const auto* n = std::get_if<std::int64_t>(&v))
    return *n;
  return std::get<std::string>(v);
}

std::optional<Value> valueFromJson(const json& j) {
  if (j.is_number_integer())
    return Value(j.get<std::int64_t>());
  if (j.is_number())  // Go decodes every JSON number into float64
    return Value(static_cast<std::int64_t>(j.get<double>()));
  if (j.is_string())
    return Value(j.get<std::string>());
  return std::nullopt;
}

bool matches(const KfpHistoryApi::HistoryRun& r, const std::vector<Predicate>& filter) {
  for (const Predicate& p : filter) {
    Value v = fieldValue(r, p.field);
    if (p.isList) {
      bool any = false;
      for (const auto& s : p.strings)
        any = any || v == Value(s);
      for (auto n : p.numbers)
        any = any || v == Value(n);
      if (!any)
        return false;
    } else if (!compare(v, p.op, p.string ? Value(*p.string) : Value(*p.number))) {
      return false;
    }
  }
  return true;
}

// The filter as list.go's token carries it (filter.go MarshalJSON groups
// predicates by operation: EQ, NEQ, GT, GTE, LT, LTE, IN, SUBSTRING).
json filterToTokenJson(const std::vector<Predicate>& filter) {
  static const std::map<std::string, std::string> kGroup = {
      {"EQUALS", "EQ"},       {"NOT_EQUALS", "NEQ"},
      {"GREATER_THAN", "GT"}, {"GREATER_THAN_EQUALS", "GTE"},
      {"LESS_THAN", "LT"},    {"LESS_THAN_EQUALS", "LTE"},
      {"IN", "IN"},           {"IS_SUBSTRING", "SUBSTRING"}};
  json out = json::object();
  for (const Predicate& p : filter) {
    json v;
    if (p.isList) {
      v = p.strings.empty() ? json(p.numbers) : json(p.strings);
    } else {
      v = p.string ? json(*p.string) : json(*p.number);
    }
    out[kGroup.at(p.op)][p.field].push_back(v);
  }
  return out;
}

std::vector<Predicate> filterFromTokenJson(const json& j) {
  static const std::map<std::string, std::string> kOp = {
      {"EQ", "EQUALS"},       {"NEQ", "NOT_EQUALS"},
      {"GT", "GREATER_THAN"}, {"GTE", "GREATER_THAN_EQUALS"},
      {"LT", "LESS_THAN"},    {"LTE", "LESS_THAN_EQUALS"},
      {"IN", "IN"},           {"SUBSTRING", "IS_SUBSTRING"}};
  std::vector<Predicate> out;
  if (!j.is_object())
    return out;
  for (const auto& [group, fields] : j.items()) {
    auto op = kOp.find(group);
    if (op == kOp.end() || !fields.is_object())
      continue;
    for (const auto& [field, values] : fields.items()) {
      if (!values.is_array())
        continue;
      for (const auto& v : values) {
        Predicate p;
        p.field = field;
        p.op = op->second;
        if (v.is_array()) {
          p.isList = true;
          for (const auto& e : v) {
            if (e.is_string())
              p.strings.push_back(e.get<std::string>());
            else if (e.is_number())
              p.numbers.push_back(static_cast<std::int64_t>(e.get<double>()));
          }
        } else if (v.is_string()) {
          p.string = v.get<std::string>();
        } else if (v.is_number()) {
          p.number = static_cast<std::int64_t>(v.get<double>());
        }
        out.push_back(std::move(p));
      }
    }
  }
  return out;
}

// Options.Matches compares the freshly parsed filter with the token's copy by
// reflect.DeepEqual. The copy went through encoding/json: a number (int64
// from toValue) comes back float64 and a value list ([]string) comes back
// []interface{}, so only filters made of scalar strings can compare equal.
bool tokenFilterMatches(const std::vector<Predicate>& fresh, const json& tokenFilter) {
  for (const Predicate& p : fresh) {
    if (p.isList || p.number)
      return false;
  }
  json freshJson = fresh.empty() ? json() : filterToTokenJson(fresh);
  return freshJson == tokenFilter;
}

}  // namespace detail

using detail::json;
using detail::modelField;

Result<std::int64_t> parseTimestamp(const std::string& text) {
  auto seconds = parseRfc3339Seconds(text);
  if (!seconds)
    return makeError(ErrorCode::kInvalidInput, "bad Timestamp: \"" + text + "\"");
  return *seconds;
}

std::string formatTimestamp(std::int64_t seconds) {
  return formatRfc3339(Clock::WallTime(std::chrono::seconds(seconds)));
}

Result<std::vector<Predicate>> parseFilter(const std::string& encoded) {
  auto fail = [&](const std::string& why) {
    return makeError(ErrorCode::kInvalidInput,
                     "failed to parse valid filter from \"" + encoded + "\": " + why);
  };
  auto decoded = queryUnescape(encoded);  // parseAPIFilter: url.QueryUnescape
  if (!decoded)
    return fail(decoded.error().message);
  json f = json::parse(*decoded, nullptr, false);
  if (f.is_discarded() || !f.is_object())
    return fail("not a Filter JSON object");
  std::vector<Predicate> out;
  auto preds = f.find("predicates");
  if (preds == f.end())
    return out;
  if (!preds->is_array())
    return fail("predicates: expected an array");
  for (const json& pj : *preds) {
    if (!pj.is_object())
      return fail("predicate: expected an object");
    Predicate p;
    std::string key = pj.value("key", "");
    auto field = modelField(key);
    if (!field)  // filter.go ReplaceKeys
      return makeError(ErrorCode::kInvalidInput,
                       "no support for filtering on unrecognized field \"" + key + "\"");
    p.field = *field;
    auto op = pj.find("operation");
    p.op = op != pj.end() && op->is_string() ? op->get<std::string>() : "OPERATION_UNSPECIFIED";
    auto get = [&](const char* snake, const char* camel) -> const json* {
      if (auto it = pj.find(snake); it != pj.end())
        return &*it;
      if (auto it = pj.find(camel); it != pj.end())
        return &*it;
      return nullptr;
    };
    if (const json* v = get("string_value", "stringValue"); v != nullptr && v->is_string()) {
      p.string = v->get<std::string>();
    } else if (const json* t = get("timestamp_value", "timestampValue");
               t != nullptr && t->is_string()) {
      auto seconds = parseTimestamp(t->get<std::string>());
      if (!seconds)
        return fail(seconds.error().message);
      p.number = *seconds;  // filter.go toValue: ts.Unix()
    } else if (const json* n = get("long_value", "longValue"); n != nullptr) {
      p.number = n->is_string() ? std::stoll(n->get<std::string>()) : n->get<std::int64_t>();
    } else if (const json* i = get("int_value", "intValue"); i != nullptr && i->is_number()) {
      p.number = i->get<std::int64_t>();
    } else if (const json* l = get("string_values", "stringValues"); l != nullptr) {
      p.isList = true;
      for (const json& e : l->value("values", json::array()))
        if (e.is_string())
          p.strings.push_back(e.get<std::string>());
    } else {
      return fail("predicate on \"" + key + "\" has no supported value");
    }
    if (p.isList != (p.op == "IN"))  // filter.go checks value kind against the operation
      return makeError(ErrorCode::kInvalidInput,
                       "invalid predicate operation " + p.op + " for the value of \"" + key + "\"");
    if (p.op == "OPERATION_UNSPECIFIED")
      return makeError(ErrorCode::kInvalidInput, "invalid predicate operation");
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace exitrec::kfphistory
