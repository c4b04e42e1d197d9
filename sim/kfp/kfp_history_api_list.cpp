// KfpHistoryApi::list: ListRuns with KFP's sort, filter and pagination
// (server/run_server.go ListRuns, list/list.go NewOptions/
// NewOptionsFromToken/Matches/NextPageToken; see kfp_history_api.h).

#include <algorithm>
#include <cctype>

#include "common/base64.h"
#include "common/json_text.h"
#include "sim/kfp/kfp_history_api_internal.h"

namespace exitrec {

using kfphistory::Predicate;
using kfphistory::detail::fieldValue;
using kfphistory::detail::filterFromTokenJson;
using kfphistory::detail::filterToTokenJson;
using kfphistory::detail::invalid;
using kfphistory::detail::json;
using kfphistory::detail::kDefaultPageSize;
using kfphistory::detail::kMaxPageSize;
using kfphistory::detail::matches;
using kfphistory::detail::modelField;
using kfphistory::detail::rpcError;
using kfphistory::detail::runJson;
using kfphistory::detail::tokenFilterMatches;
using kfphistory::detail::Value;
using kfphistory::detail::valueFromJson;
using kfphistory::detail::valueJson;

namespace {

std::optional<std::string> base64Decode(const std::string& in) {
  auto decoded = ::exitrec::base64Decode(in);  // StdEncoding: padded
  if (!decoded)
    return std::nullopt;
  return std::move(decoded).value();
}

}  // namespace

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
    out["next_page_token"] = base64Encode(dumpJson(token));
  }
  return {200, dumpJson(out)};
}

}  // namespace exitrec
