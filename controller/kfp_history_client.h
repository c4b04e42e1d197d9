#pragma once
// KfpHistoryClient: KFP's run-history read APIs over the project's
// HttpTransport (k8sclient/http_transport.h), for `audit --kfp-api-url` and
// `backfill`. Reports and run-state GETs go through KfpClient.
//
// - healthz: GET {kfp}/apis/v1beta1/healthz → multi_user (apiserver/main.go).
// - listPage: GET {kfp}/apis/v2beta1/runs. The FIRST page carries filter and
//   sort_by; every later page carries only page_token (and namespace,
//   page_size): KFP compares a resent filter with the token's copy after a
//   JSON round trip in which timestamps do not survive, and answers 400
//   (list/list.go Options.Matches; server/list_request_util.go).
// - getManifest: GET {kfp}/apis/v1beta1/runs/{id} →
//   pipeline_runtime.workflow_manifest (a JSON string, api_converter.go
//   toApiRunDetailV1), unescaped into a padded buffer the engine reads in
//   place. A response larger than maxResponseBytes is refused.
//
// Errors: KFP statuses are classified by classifyKfpError (kfp_client.h);
// a run without a stored manifest is kNotFound with a message saying so; a
// body that is not what KFP sends is kInvalidInput. Thread-safe.

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "k8sclient/http_transport.h"
#include "k8sclient/token_source.h"

namespace exitrec {

struct KfpRunSummary {
  std::string runId;
  std::string displayName;
  std::string state;       // "" when KFP omits it (RUNTIME_STATE_UNSPECIFIED)
  std::string finishedAt;  // RFC 3339, "" when unset
};

struct KfpRunPage {
  std::vector<KfpRunSummary> runs;
  std::string nextPageToken;  // "" on the last page
  long long totalSize = -1;   // total_size, -1 when absent
};

struct KfpListQuery {
  std::string ns;          // multi-user: required by KFP
  std::string filterJson;  // v2beta1 Filter JSON, "" for none
  std::string sortBy;      // e.g. "created_at"
  int pageSize = 200;      // KFP clamps to 200
};

// A stored Workflow manifest: `text` lies in `owner`, followed by at least 64
// zero bytes (simdjson padding), ready for readWorkflows(owner, text, ...).
struct StoredManifest {
  std::shared_ptr<const std::string> owner;
  std::string_view text;
};

class KfpHistoryClient {
 public:
  struct Options {
    std::string baseUrl;
    std::chrono::milliseconds timeout{std::chrono::seconds(60)};
    std::size_t maxResponseBytes = std::size_t{512} << 20;
  };

  KfpHistoryClient(HttpTransport& transport, const TokenSource& token, Options options);

  Result<bool> multiUser();
  Result<KfpRunPage> listPage(const KfpListQuery& query, const std::string& pageToken);
  Result<StoredManifest> getManifest(const std::string& runId);

  const std::string& baseUrl() const { return options_.baseUrl; }

 private:
  // `onChunk`: receive a 2xx body piece by piece (the response body is then
  // empty); nullptr: collect it.
  Result<HttpResponse> get(std::string_view operation, const std::string& url,
                           const ChunkCallback& onChunk = nullptr);

  HttpTransport& transport_;
  TokenSource token_;
  Options options_;
};

// A v2beta1 Filter: finished_at > `finishedAfter` (RFC 3339 with Z; "" for
// none) and state IN `states` (empty for any).
std::string runFilterJson(const std::string& finishedAfter, const std::vector<std::string>& states);

// Normalizes an RFC 3339 time to UTC with Z ("2024-01-01T02:00:00+02:00" →
// "2024-01-01T00:00:00Z"): KFP URL-decodes the filter twice, so a "+" would
// turn into a space. kInvalidInput names the text otherwise.
Result<std::string> normalizeRfc3339(const std::string& text);

// getManifest unescapes the manifest string with an AVX-512 fast path when
// the CPU has it, simdjson's unescape otherwise; both give the same text.
// Process-wide, default on; tests turn it off to compare.
void setManifestUnescapeFastPath(bool enabled);

// Percent-encodes a query value (RFC 3986 unreserved kept).
std::string encodeQueryValue(std::string_view value);

}  // namespace exitrec
