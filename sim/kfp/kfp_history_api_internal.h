#pragma once
// Private to KfpHistoryApi's files (sim/kfp/kfp_history_api*.cpp): the paths,
// KFP's error bodies, the run JSON and the filter/sort-value helpers shared
// by the list, get and report handlers.
//
//   kfp_history_api.cpp         store, routing, auth, get (v1 with the
//                               rendered manifest, v2), own server
//   kfp_history_api_list.cpp    list: sort, filter, pagination, page tokens
//   kfp_history_api_filter.cpp  filters (parse, match, token round trip)
//   kfp_history_api_report.cpp  report (ReportWorkflowResource)

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "sim/kfp/kfp_history_api.h"

namespace exitrec::kfphistory::detail {

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
KfpHistoryApi::Response rpcError(int httpStatus, int grpcCode, const std::string& message);
// 400 InvalidArgument with KFP's "Invalid input error: " prefix.
KfpHistoryApi::Response invalid(const std::string& message);

// v2beta1 Run as toApiRun writes it (snake_case, unset fields omitted).
json runJson(const KfpHistoryApi::HistoryRun& r);
// j[a][b], or null when either is missing (or j[a] is not an object).
const json* findPath(const json& j, const char* a, const char* b);
// j[a][b] when it is a string, else "".
std::string stringAt(const json& j, const char* a, const char* b);

// model/run.go runAPIToModelFieldMap (the keys this simulator supports).
std::optional<std::string> modelField(const std::string& apiKey);
// A sort or filter value of a run field: Unix seconds or text.
using Value = std::variant<std::int64_t, std::string>;
Value fieldValue(const KfpHistoryApi::HistoryRun& r, const std::string& field);
json valueJson(const Value& v);
std::optional<Value> valueFromJson(const json& j);
// Whether the run passes every predicate (filter.go AddToSelect, in memory).
bool matches(const KfpHistoryApi::HistoryRun& r, const std::vector<Predicate>& filter);
// The filter as list.go's token carries it, and back.
json filterToTokenJson(const std::vector<Predicate>& filter);
std::vector<Predicate> filterFromTokenJson(const json& j);
// Options.Matches of a freshly parsed filter against the token's copy.
bool tokenFilterMatches(const std::vector<Predicate>& fresh, const json& tokenFilter);

}  // namespace exitrec::kfphistory::detail
