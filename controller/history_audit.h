#pragma once
// Run history: the pieces `audit --kfp-api-url` and `backfill` share, and
// `audit --kfp-api-url` itself.
//
//   exit-reconciler audit --kfp-api-url URL [--kfp-token-file F] [--namespace NS]...
//       [--finished-after RFC3339] [--only-terminal] [--format json|table]
//
// scanHistory pages through KFP's runs (one namespace at a time in
// multi-user mode; once in single-user mode, where KFP ignores `namespace`
// and the stored manifest's namespace is matched instead), runs `work` on
// each run with bounded concurrency, and hands the results to `emit` in list
// order. The next page is fetched while the current one is worked on. Memory
// is bounded by one page of results plus `concurrency` manifests in flight,
// whatever the history's size.
//
// Output (json): the same line as file audit (engine verdictToJson) plus
// kfpRunId, kfpState and source "kfp-history". A run whose manifest is
// missing, offloaded or unreadable gets {"kfpRunId","kfpState","source",
// "error"} and no verdict. Exit status: 0 none mis-reported, 1 some, 2 usage
// error or any run that could not be audited (the others are still printed).
// Progress on stderr: a bar on a TTY, a line every 5 s otherwise.

#include <atomic>
#include <cstdint>
#include <functional>
#include <istream>
#include <memory>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "controller/kfp_history_client.h"
#include "engine/outcome.h"
#include "engine/workflow.h"
#include "k8sclient/token_source.h"

namespace exitrec {

struct HistoryScanOptions {
  std::vector<std::string> namespaces;  // empty: every namespace (single-user only)
  bool multiUser = false;
  std::string filterJson;  // sent on the first page of each listing only
  int concurrency = 8;
  int pageSize = 200;
};

struct HistoryScanCounters {
  std::atomic<std::uint64_t> scanned{0};
  std::atomic<std::uint64_t> misreported{0};
  std::atomic<std::uint64_t> errors{0};
  std::atomic<std::uint64_t> manifestBytes{0};
  std::atomic<long long> total{-1};  // total_size as KFP reports it, -1 unknown
};

struct HistoryRunResult {
  bool skip = false;  // nothing to emit (e.g. another namespace)
  bool misreported = false;
  bool error = false;
  std::string line;  // what emit writes
};

// `listedNamespace` is the namespace the run was listed in ("" single-user).
using HistoryWork =
    std::function<HistoryRunResult(const KfpRunSummary& run, const std::string& listedNamespace)>;
using HistoryEmit = std::function<void(const HistoryRunResult& result)>;

// Errors: the first listing error (classified by KfpHistoryClient); runs
// already emitted stay emitted.
Status scanHistory(KfpHistoryClient& client, const HistoryScanOptions& options,
                   const HistoryWork& work, const HistoryEmit& emit, HistoryScanCounters& counters);

// One stored run, read and evaluated.
struct StoredRunEvaluation {
  std::optional<StoredManifest> manifest;
  std::optional<Workflow> workflow;
  std::optional<Verdict> verdict;  // set iff evaluable
  std::string error;               // set iff no verdict
  bool otherNamespace = false;     // the namespace filter excludes it
};

StoredRunEvaluation evaluateStoredRun(KfpHistoryClient& client, const KfpRunSummary& run,
                                      const EvaluateOptions& options,
                                      const std::vector<std::string>& namespaces);

// The audit line for a run: the verdict's JSON plus kfpRunId, kfpState,
// source; or the error line.
std::string historyAuditLine(const KfpRunSummary& run, const StoredRunEvaluation& evaluation);

// Flags shared by `audit --kfp-api-url` and `backfill`.
namespace cli {
class FlagParser;
class ParsedArgs;
}  // namespace cli
void addHistoryFlags(cli::FlagParser& parser);
// Removes every --namespace NS / --namespace=NS (repeatable) from `args`
// into `namespaces` (comma-separated values split too).
std::vector<char*> takeNamespaces(std::span<char* const> args,
                                  std::vector<std::string>& namespaces);

struct HistoryConnection {
  std::unique_ptr<HttpTransport> transport;
  std::unique_ptr<KfpHistoryClient> client;
  TokenSource token;
  HistoryScanOptions scan;  // namespaces, multi-user (from KFP's healthz), concurrency
  EvaluateOptions evaluate;
};
// Builds the client, reads KFP's mode, checks the namespaces against it.
// `states`: the state filter. Errors name the flag or KFP's answer.
Result<HistoryConnection> connectHistory(const cli::ParsedArgs& parsed,
                                         std::vector<std::string> namespaces,
                                         const std::vector<std::string>& states);

// Subcommand entry (args exclude "audit"); used when --kfp-api-url is given.
int runHistoryAudit(std::span<char* const> args, std::ostream& out, std::ostream& err);

// `audit` in the operator binary: history when --kfp-api-url is among the
// arguments, file audit otherwise.
int runAuditCommand(int argc, char** argv);

// Whether `args` select the history audit (a --kfp-api-url flag).
bool wantsHistoryAudit(std::span<char* const> args);

// Progress on stderr while a scan runs (bar on a TTY, else a line every 5 s).
class HistoryProgress {
 public:
  HistoryProgress(std::ostream& err, const HistoryScanCounters& counters, bool tty,
                  std::string_view what);
  ~HistoryProgress();  // stops and prints the final line
  HistoryProgress(const HistoryProgress&) = delete;
  HistoryProgress& operator=(const HistoryProgress&) = delete;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace exitrec
