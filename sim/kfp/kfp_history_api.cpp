#include "sim/kfp/kfp_history_api.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <nlohmann/json.hpp>
#include <variant>

#include "common/base64.h"
#include "common/http_server.h"
#include "common/json_text.h"
#include "common/rfc3339.h"

namespace exitrec {
namespace {

using kfphistory::Predicate;
using nlohmann::json;

constexpr std::string_view kListPath = "/apis/v2beta1/runs";
constexpr std::string_view kV1RunPrefix = "/apis/v1beta1/runs/";
constexpr std::string_view kV2RunPrefix = "/apis/v2beta1/runs/";
constexpr std::string_view kV1Report = "/apis/v1beta1/workflows";
constexpr std::string_view kV2Report = "/apis/v2beta1/workflows";
constexpr std::string_view kHealthz = "/apis/v1beta1/healthz";
constexpr std::string_view kFinalStateLabel = "pipeline/persistedFinalState";
constexpr std::string_view kRunIdLabel = "pipeline/runid";
// list/list.go: defaultPageSize, maxPageSize.
constexpr long long kDefaultPageSize = 20;
constexpr long long kMaxPageSize = 200;

// grpc-gateway's error body (googleRpcStatus; KFP adds the legacy "error").
KfpHistoryApi::Response rpcError(int httpStatus, int grpcCode, const std::string& message) {
  json body = {
      {"error", message}, {"code", grpcCode}, {"message", message}, {"details", json::array()}};
  return {httpStatus, dumpJson(body)};
}
KfpHistoryApi::Response invalid(const std::string& message) {
  return rpcError(400, 3, "Invalid input error: " + message);
}

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

using Value = std::variant<std::int64_t, std::string>;

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

std::optional<std::string> base64Decode(const std::string& in) {
  auto decoded = ::exitrec::base64Decode(in);  // StdEncoding: padded
  if (!decoded)
    return std::nullopt;
  return std::move(decoded).value();
}

std::optional<std::string> bearer(const std::optional<std::string>& authorization) {
  if (!authorization || authorization->rfind("Bearer ", 0) != 0)
    return std::nullopt;
  return authorization->substr(7);
}

// v2beta1 Run as toApiRun writes it (snake_case, unset fields omitted).
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

// KFP's ToV2(upper(phase)) (util/execution_status.go RuntimeState.ToV2).
std::string stateForPhase(const std::string& phase) {
  if (phase == "Pending")
    return "PENDING";
  if (phase == "Running")
    return "RUNNING";
  if (phase == "Succeeded")
    return "SUCCEEDED";
  if (phase == "Failed" || phase == "Error")
    return "FAILED";
  return "RUNTIME_STATE_UNSPECIFIED";
}

bool isFinalState(const std::string& state) {
  return state == "SUCCEEDED" || state == "FAILED" || state == "SKIPPED" || state == "CANCELED";
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

}  // namespace

namespace kfphistory {

Result<std::string> queryUnescape(const std::string& in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%') {
      if (i + 2 >= in.size() || !std::isxdigit(static_cast<unsigned char>(in[i + 1])) ||
          !std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
        return makeError(ErrorCode::kInvalidInput, "invalid URL escape");
      }
      out += static_cast<char>(std::stoi(in.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

Result<std::int64_t> parseTimestamp(const std::string& text) {
  auto seconds = parseRfc3339Seconds(text);
  if (!seconds)
    return makeError(ErrorCode::kInvalidInput, "bad Timestamp: \"" + text + "\"");
  return *seconds;
}

std::string formatTimestamp(std::int64_t seconds) {
  std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string base64Encode(const std::string& in) {
  return ::exitrec::base64Encode(in);
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

}  // namespace kfphistory

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

KfpHistoryApi::Response KfpHistoryApi::list(
    const Auth& auth, const std::vector<std::pair<std::string, std::string>>& query) {
  auto param = [&](const char* name) -> std::string {
    for (const auto& [k, v] : query)
      if (k == name)
        return v;
    return {};
  };
  const std::string pageToken = param("page_token");
  const std::string sortBy = param("sort_by");
  const std::string filterText = param("filter");
  std::string ns = param("namespace");
  long long pageSize = 0;
  if (std::string ps = param("page_size"); !ps.empty()) {
    try {
      pageSize = std::stoll(ps);
    } catch (const std::exception&) {
      return invalid("page_size: not an integer");
    }
  }
  // list.go validatePageSize.
  if (pageSize < 0)
    return invalid("The page size should be greater than 0. Got " + std::to_string(pageSize));
  if (pageSize == 0)
    pageSize = kDefaultPageSize;
  pageSize = std::min(pageSize, kMaxPageSize);

  // NewOptions: sort and filter from the request (the first page).
  auto freshOptions = [&](std::string& sortField, bool& desc,
                          std::vector<Predicate>& filter) -> std::optional<Response> {
    sortField = "CreatedAtInSec";  // Run.DefaultSortField
    desc = false;
    std::vector<std::string> words;
    std::string word;
    for (char c : sortBy) {
      if (std::isspace(static_cast<unsigned char>(c))) {
        if (!word.empty())
          words.push_back(word);
        word.clear();
      } else {
        word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
    }
    if (!word.empty())
      words.push_back(word);
    if (words.size() > 2 || (words.size() == 2 && words[1] != "desc" && words[1] != "asc")) {
      return invalid("Received invalid sort by format \"" + sortBy +
                     "\". Supported format: \"field_name\", \"field_name desc\", or "
                     "\"field_name asc\"");
    }
    if (!words.empty()) {
      auto f = modelField(words[0]);
      if (!f)
        return invalid("Invalid sorting field: \"" + words[0] + "\" on listable type Run");
      sortField = *f;
    }
    desc = words.size() == 2 && words[1] == "desc";
    if (!filterText.empty()) {
      auto parsed = kfphistory::parseFilter(filterText);
      if (!parsed)
        return invalid(parsed.error().message);
      filter = std::move(*parsed);
    }
    return std::nullopt;
  };

  std::string sortField;
  bool desc = false;
  std::vector<Predicate> filter;
  std::optional<Value> afterSort;
  std::string afterKey;
  if (pageToken.empty()) {
    if (auto bad = freshOptions(sortField, desc, filter))
      return *bad;
  } else {
    // NewOptionsFromToken; then, when sort_by or filter is also sent,
    // validatedListOptions checks Options.Matches.
    auto raw = base64Decode(pageToken);
    json token = raw ? json::parse(*raw, nullptr, false) : json();
    if (!token.is_object())
      return invalid("Invalid page token");
    sortField = token.value("SortByFieldName", "CreatedAtInSec");
    desc = token.value("IsDesc", false);
    json tokenFilter = token.contains("Filter") ? token["Filter"] : json();
    filter = filterFromTokenJson(tokenFilter);
    if (auto v = token.find("SortByFieldValue"); v != token.end())
      afterSort = valueFromJson(*v);
    afterKey = token.value("KeyFieldValue", "");
    if (!sortBy.empty() || !filterText.empty()) {
      std::string freshSort;
      bool freshDesc = false;
      std::vector<Predicate> freshFilter;
      if (auto bad = freshOptions(freshSort, freshDesc, freshFilter))
        return *bad;
      if (freshSort != sortField || freshDesc != desc ||
          !tokenFilterMatches(freshFilter, tokenFilter)) {
        return invalid(
            "page token does not match the supplied sort by and/or filtering criteria. Either "
            "specify the same criteria or leave the latter empty if page token is specified");
      }
    }
  }
  if (options_.multiUser) {
    if (ns.empty())
      return invalid("A run cannot have an empty namespace in multi-user mode");
    if (!mayRead(auth, ns)) {
      return rpcError(403, 7,
                      "PermissionDenied: Failed to list runs due to authorization error. Check if "
                      "you have permission to access namespace " +
                          ns);
    }
  } else {
    ns.clear();  // ReplaceNamespace: ignored in single-user mode
  }

  std::lock_guard<std::mutex> g(mu_);
  ++listRequests_;
  // (sort value, run id) after the cursor, in order; the page plus one to
  // know whether another page follows.
  auto before = [&](const HistoryRun* a, const HistoryRun* b) {
    Value va = fieldValue(*a, sortField);
    Value vb = fieldValue(*b, sortField);
    if (va != vb)
      return desc ? va > vb : va < vb;
    return desc ? a->runId > b->runId : a->runId < b->runId;
  };
  auto afterCursor = [&](const HistoryRun& r) {
    if (!afterSort)
      return true;
    Value v = fieldValue(r, sortField);
    if (v.index() != afterSort->index())
      return true;
    if (v != *afterSort)
      return desc ? v < *afterSort : v > *afterSort;
    return desc ? r.runId <= afterKey : r.runId >= afterKey;  // the cursor row is the next one
  };
  std::vector<const HistoryRun*> page;
  long long total = 0;  // ListRuns total_size: every row the filter selects
  const auto keep = static_cast<std::size_t>(pageSize + 1);
  for (const auto& [id, r] : runs_) {
    if (!ns.empty() && r.ns != ns)
      continue;
    if (!matches(r, filter))
      continue;
    ++total;
    if (!afterCursor(r))
      continue;
    // Full: only a row that sorts before the page's last one gets in (the
    // heap's front), which keeps a list of a large store linear.
    if (page.size() == keep && !before(&r, page.front()))
      continue;
    page.push_back(&r);
    std::push_heap(page.begin(), page.end(), before);
    if (page.size() > keep) {
      std::pop_heap(page.begin(), page.end(), before);
      page.pop_back();
    }
  }
  std::sort_heap(page.begin(), page.end(), before);
  json out = json::object();
  if (page.empty())
    return {200, "{}"};
  json runs = json::array();
  for (std::size_t i = 0; i < page.size() && i < static_cast<std::size_t>(pageSize); ++i)
    runs.push_back(runJson(*page[i]));
  out["runs"] = std::move(runs);
  out["total_size"] = total;
  if (page.size() == keep) {
    // list.go nextPageToken: the sort value and key of the next row.
    const HistoryRun& next = *page.back();
    json token = {{"SortByFieldName", sortField},
                  {"SortByFieldValue", valueJson(fieldValue(next, sortField))},
                  {"SortByFieldPrefix", ""},
                  {"KeyFieldName", "UUID"},
                  {"KeyFieldValue", next.runId},
                  {"KeyFieldPrefix", ""},
                  {"IsDesc", desc},
                  {"ModelName", ""},
                  {"Filter", filter.empty() ? json() : filterToTokenJson(filter)}};
    out["next_page_token"] = kfphistory::base64Encode(dumpJson(token));
  }
  return {200, dumpJson(out)};
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

KfpHistoryApi::Response KfpHistoryApi::report(const Auth& auth, const std::string& body) {
  ReportRecord rec;
  auto finish = [&](Response r) {
    rec.status = r.status;
    std::lock_guard<std::mutex> g(mu_);
    reports_.push_back(rec);
    return r;
  };
  // ReportWorkflowV1 → IsAuthorized(report workflows), cluster scope (2.1.0+).
  if (options_.multiUser && auth.identity != nullptr && !auth.identity->mayReport) {
    return finish(rpcError(403, 7, "PermissionDenied: Failed to report workflow"));
  }
  json outer = json::parse(body, nullptr, false);
  json wf =
      outer.is_string() ? json::parse(outer.get_ref<const std::string&>(), nullptr, false) : json();
  if (!wf.is_object())
    return finish(invalid("Could not unmarshal the workflow"));
  const std::string name = stringAt(wf, "metadata", "name");
  const std::string ns = stringAt(wf, "metadata", "namespace");
  const std::string uid = stringAt(wf, "metadata", "uid");
  if (name.empty() || ns.empty() || uid.empty())  // validateReportWorkflowRequest
    return finish(invalid("The workflow must have a name, a namespace and a uid"));
  const json* labels = findPath(wf, "metadata", "labels");
  if (labels != nullptr && labels->is_object()) {
    if (auto r = labels->find(kRunIdLabel); r != labels->end() && r->is_string())
      rec.runId = r->get<std::string>();
    rec.hadFinalStateLabel = labels->contains(kFinalStateLabel);
  }
  rec.phase = stringAt(wf, "status", "phase");
  if (rec.runId.empty())
    return finish(invalid("Workflow[" + name + "] missing the Run ID label"));

  std::unique_lock<std::mutex> lock(mu_);
  Cluster cluster = cluster_;
  auto exists = [&] { return cluster.exists && cluster.exists(ns, name); };
  auto remove = [&] {
    bool removed = cluster.remove ? cluster.remove(ns, name) : false;
    rec.deletedWorkflow = rec.deletedWorkflow || removed;
    return removed;
  };
  if (rec.hadFinalStateLabel && !remove()) {
    lock.unlock();
    return finish(rpcError(
        404, 5, "Failed to delete the completed workflow for run " + rec.runId + ": NotFound"));
  }
  auto it = runs_.find(rec.runId);
  if (it == runs_.end()) {
    // No ScheduledWorkflow owner in our model: delete the CR, NotFound.
    remove();
    lock.unlock();
    return finish(rpcError(404, 5, "Failed to report a workflow: run " + rec.runId + " not found"));
  }
  HistoryRun& run = it->second;
  const std::string state = stateForPhase(rec.phase);
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  if (run.stateHistory.empty() || run.stateHistory.back().second != state)
    run.stateHistory.emplace_back(now, state);
  run.state = state;
  std::string finishedAt = stringAt(wf, "status", "finishedAt");
  auto finished = finishedAt.empty() ? Result<std::int64_t>(std::int64_t{0})
                                     : kfphistory::parseTimestamp(finishedAt);
  run.finishedAt = finished ? *finished : 0;
  run.manifest = outer.get<std::string>();
  rec.wroteRun = true;
  const bool crExists = exists();
  lock.unlock();
  // addWorkflowLabel on the missing CR: NotFound after the commit.
  if (isFinalState(state) && !crExists) {
    return finish(rpcError(
        404, 5, "Failed to add PersistedFinalState label to workflow " + name + ": NotFound"));
  }
  return finish({200, "{}"});
}

Status KfpHistoryApi::start(const std::string& address, int port, int threads) {
  HttpServer::Options so;
  so.address = address;
  so.port = port;
  so.threads = threads;
  so.inlineHandlers = options_.inlineHandlers;
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
