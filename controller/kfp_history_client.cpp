#include "controller/kfp_history_client.h"

#include <immintrin.h>
#include <simdjson.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>

#include "common/rfc3339.h"
#include "common/url_encoding.h"
#include "controller/kfp_client.h"

namespace exitrec {
namespace {

using nlohmann::json;

constexpr std::size_t kPadding = 64;  // SIMDJSON_PADDING

std::atomic<bool> fastUnescape{true};

// The manifest is a JSON string of JSON: about one escape in ten bytes, all
// \" (a few \\ and \/). simdjson's unescape restarts its 64-byte block
// at every escape, and that was a fifth of the audit's time. This copies a
// block whose escapes are only those three at once, dropping the escaping
// backslashes by compaction (AVX-512), and hands anything else (\n, \u...)
// from that block on to simdjson. Needs 64 readable bytes past the closing
// quote and room for the output plus 16 bytes at `dst`. Returns the end of
// the output, or nullptr for an invalid string (as simdjson does).
__attribute__((target("avx512f,avx512bw"))) std::uint8_t* unescapeFast(
    simdjson::ondemand::parser& parser, const std::uint8_t* src, std::uint8_t* dst) {
  const __m512i quote = _mm512_set1_epi8('"');
  const __m512i backslash = _mm512_set1_epi8('\\');
  const __m512i slash = _mm512_set1_epi8('/');
  std::uint64_t carry = 0;  // 1: the last block ended with an escaping backslash
  while (true) {
    const __m512i v = _mm512_loadu_si512(src);
    const std::uint64_t bs = _mm512_cmpeq_epi8_mask(v, backslash);
    const std::uint64_t qt = _mm512_cmpeq_epi8_mask(v, quote);
    // Escaping backslashes: in each run of backslashes not itself escaped,
    // the 1st, 3rd, ... escape the byte after them (simdjson's escape
    // scanner, json_escape_scanner.h: the subtraction carries through a run
    // and the odd-bit mask picks the run's parity).
    constexpr std::uint64_t kOddBits = 0xAAAAAAAAAAAAAAAAULL;
    const std::uint64_t potential = bs & ~carry;
    const std::uint64_t code = (((potential << 1) | kOddBits) - potential) ^ kOddBits;
    const std::uint64_t escaped = bs == 0 ? carry : code ^ (bs | carry);
    const std::uint64_t escaping = bs == 0 ? 0 : code & bs;
    const std::uint64_t nextCarry = escaping >> 63;
    const std::uint64_t end = qt & ~escaped;
    const std::uint64_t inside = end == 0 ? ~std::uint64_t{0} : (end & -end) - 1;
    const std::uint64_t simple = qt | bs | _mm512_cmpeq_epi8_mask(v, slash);
    if ((escaped & inside & ~simple) != 0) {
      // Another escape: simdjson from this block on (from its escaping
      // backslash when the escape straddles the blocks).
      uint8_t* out = dst;
      std::string_view rest;
      if (parser.unescape(simdjson::ondemand::raw_json_string(src - carry), out).get(rest) !=
          simdjson::SUCCESS) {
        return nullptr;
      }
      return out;
    }
    const std::uint64_t keep = inside & ~escaping;
    for (int lane = 0; lane < 4; ++lane) {
      const auto mask = static_cast<__mmask16>(keep >> (16 * lane));
      // (maskz forms: GCC 12 warns that the plain ones' undefined source
      // may be used uninitialized.)
      const __m512i wide = _mm512_maskz_cvtepu8_epi32(
          0xFFFF, _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 16 * lane)));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst),
                       _mm512_maskz_cvtepi32_epi8(0xFFFF, _mm512_maskz_compress_epi32(mask, wide)));
      dst += __builtin_popcount(mask);
    }
    if (end != 0)
      return dst;
    carry = nextCarry;
    src += 64;
  }
}

bool haveAvx512() {
  static const bool have = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  return have;
}

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
  return urlEncode(value);
}

Result<std::string> normalizeRfc3339(const std::string& text) {
  auto t = parseRfc3339(text);
  if (!t.ok())
    return t.error();
  return formatRfc3339(t.value());
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

void setManifestUnescapeFastPath(bool enabled) {
  fastUnescape.store(enabled);
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
  simdjson::ondemand::raw_json_string raw;
  auto wm = runtime.find_field_unordered("workflow_manifest");
  if (wm.error() == simdjson::NO_SUCH_FIELD) {
    return makeError(ErrorCode::kNotFound, "KFP stores no workflow manifest for run " + runId +
                                               " (pipeline_runtime.workflow_manifest is absent)");
  }
  if (wm.get_raw_json_string().get(raw) != simdjson::SUCCESS) {
    return makeError(ErrorCode::kInvalidInput,
                     "get_run_v1 " + runId + ": workflow_manifest is not a JSON string");
  }
  // Unescaped straight into this thread's previous manifest buffer once
  // nothing holds it: one pass, no copy through the parser's string buffer.
  // The unescaped text is shorter than the body it lies in; simdjson writes
  // whole blocks, so the buffer has the body's size plus room for those and
  // for the padding the engine needs.
  thread_local std::shared_ptr<std::string> spare;
  if (!spare || spare.use_count() != 1)
    spare = std::make_shared<std::string>();
  std::shared_ptr<std::string> owner = spare;
  if (owner->size() < length + 2 * kPadding)
    owner->resize(length + 2 * kPadding);
  auto* start = reinterpret_cast<std::uint8_t*>(owner->data());
  std::uint8_t* end = start;
  if (haveAvx512() && fastUnescape.load(std::memory_order_relaxed)) {
    end = unescapeFast(parser, reinterpret_cast<const std::uint8_t*>(raw.raw()), start);
  } else {
    std::string_view unescaped;
    if (parser.unescape(raw, end).get(unescaped) != simdjson::SUCCESS)
      end = nullptr;
  }
  if (end == nullptr) {
    return makeError(ErrorCode::kInvalidInput,
                     "get_run_v1 " + runId + ": workflow_manifest is not a valid JSON string");
  }
  const std::string_view manifest(owner->data(), static_cast<std::size_t>(end - start));
  if (manifest.empty()) {
    return makeError(ErrorCode::kNotFound,
                     "KFP stores an empty workflow manifest for run " + runId);
  }
  std::memset(end, 0, kPadding);
  StoredManifest out;
  out.text = std::string_view(owner->data(), manifest.size());
  out.owner = std::move(owner);
  return out;
}

}  // namespace exitrec
