#include "controller/kfp_history_client.h"

#include <simdjson.h>

#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "controller/kfp_client.h"

namespace exitrec {
namespace {

using nlohmann::json;

constexpr std::size_t kPadding = 64;  // SIMDJSON_PADDING

std::string trimSlash(std::string url) {
  while (!url.empty() && url.back() == '/')
    url.pop_back();
  return url;
}

std::string stringField(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::string encodeQueryValue(std::string_view value) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size() * 3);
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Result<std::string> normalizeRfc3339(const std::string& text) {
  auto bad = [&] {
    return makeError(ErrorCode::kInvalidInput,
                     "\"" + text + "\" is not an RFC 3339 time (e.g. 2026-01-31T00:00:00Z)");
  };
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &consumed) !=
          6 ||
      mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) {
    return bad();
  }
  std::string rest = text.substr(static_cast<std::size_t>(consumed));
  if (!rest.empty() && rest[0] == '.') {
    std::size_t i = 1;
    while (i < rest.size() && std::isdigit(static_cast<unsigned char>(rest[i])))
      ++i;
    rest = rest.substr(i);  // sub-second precision: KFP compares Unix seconds
  }
  long offset = 0;
  if (rest == "Z" || rest == "z") {
    offset = 0;
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    int oh = 0, om = 0;
    if (std::sscanf(rest.c_str() + 1, "%2d:%2d", &oh, &om) != 2 || oh > 23 || om > 59)
      return bad();
    offset = (oh * 3600L + om * 60L) * (rest[0] == '-' ? -1 : 1);
  } else {
    return bad();
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  std::time_t t = timegm(&tm) - offset;
  std::tm out{};
  gmtime_r(&t, &out);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &out);
  return std::string(buf);
}

std::string runFilterJson(const std::string& finishedAfter,
                          const std::vector<std::string>& states) {
  json predicates = json::array();
  if (!finishedAfter.empty()) {
    predicates.push_back({{"key", "finished_at"},
                          {"operation", "GREATER_THAN"},
                          {"timestamp_value", finishedAfter}});
  }
  if (states.size() == 1) {
    predicates.push_back({{"key", "state"}, {"operation", "EQUALS"}, {"string_value", states[0]}});
  } else if (!states.empty()) {
    predicates.push_back(
        {{"key", "state"}, {"operation", "IN"}, {"string_values", {{"values", states}}}});
  }
  if (predicates.empty())
    return {};
  return json{{"predicates", predicates}}.dump();
}

KfpHistoryClient::KfpHistoryClient(HttpTransport& transport, const TokenSource& token,
                                   Options options)
    : transport_(transport), token_(token), options_(std::move(options)) {
  options_.baseUrl = trimSlash(options_.baseUrl);
}

Result<HttpResponse> KfpHistoryClient::get(std::string_view operation, const std::string& url,
                                           const ChunkCallback& onChunk) {
  HttpRequest request;
  request.method = "GET";
  request.url = url;
  request.timeout = options_.timeout;
  request.headers.set("Accept", "application/json");
  for (int attempt = 0; attempt < 2; ++attempt) {
    Result<std::string> token = token_.token();
    if (!token)
      return token.error();
    if (!token->empty())
      request.headers.set("Authorization", "Bearer " + *token);
    Result<HttpResponse> response =
        onChunk ? transport_.sendChunked(request, onChunk) : transport_.send(request);
    if (!response)
      return response.error();
    if (response->status == 401 && attempt == 0 && token_.invalidate())
      continue;
    if (response->status < 200 || response->status > 299) {
      return classifyKfpError(std::string(operation) + " GET " + url, response->status,
                              response->headers, response->body);
    }
    if (response->body.size() > options_.maxResponseBytes) {
      return makeError(ErrorCode::kInvalidInput, std::string(operation) + ": response of " +
                                                     std::to_string(response->body.size()) +
                                                     " bytes exceeds the limit");
    }
    return response;
  }
  std::abort();  // unreachable: the second attempt always returns
}

Result<bool> KfpHistoryClient::multiUser() {
  auto r = get("healthz", options_.baseUrl + "/apis/v1beta1/healthz");
  if (!r)
    return r.error();
  json body = json::parse(r->body, nullptr, false);
  if (!body.is_object())
    return makeError(ErrorCode::kInvalidInput, "healthz: KFP answered a non-object body");
  auto it = body.find("multi_user");
  return it != body.end() && it->is_boolean() && it->get<bool>();
}

Result<KfpRunPage> KfpHistoryClient::listPage(const KfpListQuery& query,
                                              const std::string& pageToken) {
  std::string url =
      options_.baseUrl + "/apis/v2beta1/runs?page_size=" + std::to_string(query.pageSize);
  if (!query.ns.empty())
    url += "&namespace=" + encodeQueryValue(query.ns);
  if (pageToken.empty()) {
    if (!query.filterJson.empty())
      url += "&filter=" + encodeQueryValue(query.filterJson);
    if (!query.sortBy.empty())
      url += "&sort_by=" + encodeQueryValue(query.sortBy);
  } else {
    url += "&page_token=" + encodeQueryValue(pageToken);
  }
  auto r = get("list_runs", url);
  if (!r)
    return r.error();
  json body = json::parse(r->body, nullptr, false);
  if (!body.is_object())
    return makeError(ErrorCode::kInvalidInput, "list_runs: KFP answered a non-object body");
  KfpRunPage page;
  page.nextPageToken = stringField(body, "next_page_token");
  if (auto total = body.find("total_size"); total != body.end() && total->is_number_integer())
    page.totalSize = total->get<long long>();
  auto runs = body.find("runs");
  if (runs == body.end())
    return page;  // an empty page is {}
  if (!runs->is_array())
    return makeError(ErrorCode::kInvalidInput, "list_runs: `runs` is not an array");
  page.runs.reserve(runs->size());
  for (const json& run : *runs) {
    if (!run.is_object())
      return makeError(ErrorCode::kInvalidInput, "list_runs: a run is not an object");
    KfpRunSummary s;
    s.runId = stringField(run, "run_id");
    s.displayName = stringField(run, "display_name");
    s.state = stringField(run, "state");
    s.finishedAt = stringField(run, "finished_at");
    if (s.runId.empty())
      return makeError(ErrorCode::kInvalidInput, "list_runs: a run has no run_id");
    page.runs.push_back(std::move(s));
  }
  return page;
}

Result<StoredManifest> KfpHistoryClient::getManifest(const std::string& runId) {
  // The body goes straight into one buffer with room for simdjson's padding,
  // kept per thread (its capacity is reused from run to run).
  thread_local std::string body;
  body.clear();
  bool tooLarge = false;
  auto r =
      get("get_run_v1", options_.baseUrl + "/apis/v1beta1/runs/" + encodeQueryValue(runId),
          [&](std::string_view piece) {
            if (body.size() + piece.size() > options_.maxResponseBytes) {
              tooLarge = true;
              return false;
            }
            if (body.capacity() < body.size() + piece.size() + kPadding)
              body.reserve(std::max(body.capacity() * 2, body.size() + piece.size() + kPadding));
            body.append(piece);
            return true;
          });
  if (!r)
    return r.error();
  if (tooLarge) {
    return makeError(ErrorCode::kInvalidInput, "get_run_v1 " + runId + ": response exceeds " +
                                                   std::to_string(options_.maxResponseBytes) +
                                                   " bytes");
  }
  const std::size_t length = body.size();
  body.append(kPadding, '\0');
  // One parser per thread: its buffers are reused across runs.
  thread_local simdjson::ondemand::parser parser;
  simdjson::padded_string_view view(body.data(), length, body.size());
  auto doc = parser.iterate(view);
  simdjson::ondemand::object root;
  if (doc.get_object().get(root) != simdjson::SUCCESS)
    return makeError(ErrorCode::kInvalidInput, "get_run_v1 " + runId + ": body is not an object");
  simdjson::ondemand::object runtime;
  auto rt = root.find_field_unordered("pipeline_runtime");
  if (rt.error() == simdjson::NO_SUCH_FIELD) {
    return makeError(ErrorCode::kNotFound, "run " + runId + " has no pipeline_runtime");
  }
  if (rt.get_object().get(runtime) != simdjson::SUCCESS) {
    return makeError(ErrorCode::kInvalidInput,
                     "get_run_v1 " + runId + ": pipeline_runtime is not an object");
  }
  std::string_view manifest;
  auto wm = runtime.find_field_unordered("workflow_manifest");
  if (wm.error() == simdjson::NO_SUCH_FIELD) {
    return makeError(ErrorCode::kNotFound, "KFP stores no workflow manifest for run " + runId +
                                               " (pipeline_runtime.workflow_manifest is absent)");
  }
  if (wm.get_string().get(manifest) != simdjson::SUCCESS) {
    return makeError(ErrorCode::kInvalidInput,
                     "get_run_v1 " + runId + ": workflow_manifest is not a JSON string");
  }
  if (manifest.empty()) {
    return makeError(ErrorCode::kNotFound,
                     "KFP stores an empty workflow manifest for run " + runId);
  }
  // Reuse this thread's previous manifest buffer once nothing holds it.
  thread_local std::shared_ptr<std::string> spare;
  if (!spare || spare.use_count() != 1)
    spare = std::make_shared<std::string>();
  std::shared_ptr<std::string> owner = spare;
  owner->clear();
  owner->reserve(manifest.size() + kPadding);
  owner->append(manifest);
  owner->append(kPadding, '\0');
  StoredManifest out;
  out.text = std::string_view(owner->data(), manifest.size());
  out.owner = std::move(owner);
  return out;
}

}  // namespace exitrec
