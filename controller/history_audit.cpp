#include "controller/history_audit.h"

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <future>
#include <iomanip>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "common/clock.h"
#include "common/json_text.h"
#include "controller/audit.h"
#include "controller/cli.h"
#include "k8sclient/beast_transport.h"

namespace exitrec {
namespace {

using nlohmann::json;

constexpr std::string_view kDescription =
    "Audits Kubeflow Pipelines' own run history: pages through the runs KFP lists,\n"
    "reads each run's stored Workflow (GET /apis/v1beta1/runs/{id},\n"
    "pipeline_runtime.workflow_manifest) and evaluates it as file audit does. Runs whose\n"
    "Workflow is long gone are covered: KFP keeps the last reported Workflow.\n"
    "\n"
    "Output: one line per run as file audit, plus kfpRunId, kfpState and source\n"
    "\"kfp-history\"; a run whose manifest is missing, offloaded or unreadable gets a line\n"
    "with an `error` key and no verdict.\n"
    "\n"
    "Exit status: 0 no run is mis-reported; 1 at least one is; 2 usage error, or a run\n"
    "or a page that could not be read (the other runs are still audited).";

// Shortens a cell for the streaming table.
std::string cell(std::string_view text, std::size_t width) {
  if (text.size() <= width)
    return std::string(text) + std::string(width - text.size(), ' ');
  return std::string(text.substr(0, width - 1)) + "~";
}

std::string tableRow(const KfpRunSummary& run, const StoredRunEvaluation& e) {
  std::string row = cell(run.runId, 37) + cell(run.state.empty() ? "-" : run.state, 11);
  if (!e.verdict) {
    return row + cell(e.workflow ? e.workflow->namespace_ : "-", 17) +
           cell(e.workflow ? e.workflow->name : "-", 31) + "error: " + e.error;
  }
  const Verdict& v = *e.verdict;
  std::string truePhase(phaseName(v.truePhase));
  return row + cell(v.namespace_.empty() ? "-" : v.namespace_, 17) + cell(v.name, 31) +
         cell(generationName(v.generation), 15) + cell(truePhase.empty() ? "-" : truePhase, 10) +
         cell(v.misreported ? "YES" : "no", 12) + (v.cause ? *v.cause : "-");
}

std::string tableHeader() {
  return cell("KFP RUN ID", 37) + cell("KFP STATE", 11) + cell("NAMESPACE", 17) + cell("NAME", 31) +
         cell("GENERATION", 15) + cell("TRUE", 10) + cell("MISREPORTED", 12) + "CAUSE";
}

// Runs fn(0..n-1) on a fixed set of threads (the caller's included) and
// returns when all are done.
class WorkerPool {
 public:
  explicit WorkerPool(std::size_t threads) {
    for (std::size_t t = 1; t < threads; ++t)
      threads_.emplace_back([this] { loop(); });
  }
  ~WorkerPool() {
    {
      std::lock_guard<std::mutex> g(mu_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_)
      t.join();
  }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void run(std::size_t n, const std::function<void(std::size_t)>& fn) {
    {
      std::lock_guard<std::mutex> g(mu_);
      fn_ = &fn;
      n_ = n;
      next_ = 0;
      active_ = threads_.size();
      ++generation_;
    }
    wake_.notify_all();
    drain(fn, n);
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [&] { return active_ == 0; });
    fn_ = nullptr;
  }

 private:
  void drain(const std::function<void(std::size_t)>& fn, std::size_t n) {
    for (std::size_t i = next_++; i < n; i = next_++)
      fn(i);
  }
  void loop() {
    std::uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_)
        return;
      seen = generation_;
      const auto* fn = fn_;
      const std::size_t n = n_;
      lock.unlock();
      drain(*fn, n);
      lock.lock();
      if (--active_ == 0)
        done_.notify_all();
    }
  }

  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(std::size_t)>* fn_ = nullptr;
  std::size_t n_ = 0;
  std::atomic<std::size_t> next_{0};
  std::size_t active_ = 0;
  std::uint64_t generation_ = 0;
  bool stopping_ = false;
};

}  // namespace

// --- scanning -------------------------------------------------------------

Status scanHistory(KfpHistoryClient& client, const HistoryScanOptions& options,
                   const HistoryWork& work, const HistoryEmit& emit,
                   HistoryScanCounters& counters) {
  std::vector<std::string> listings;
  if (options.multiUser) {
    listings = options.namespaces;
  } else {
    listings.emplace_back();  // KFP ignores `namespace` in single-user mode
  }
  long long total = 0;
  bool totalKnown = true;
  // Threads live for the whole scan, so their per-thread buffers (parser,
  // response body) are reused from run to run.
  WorkerPool pool(static_cast<std::size_t>(std::max(1, options.concurrency)));
  for (const std::string& ns : listings) {
    KfpListQuery query;
    query.ns = ns;
    query.filterJson = options.filterJson;
    query.sortBy = "created_at";
    query.pageSize = options.pageSize;
    Result<KfpRunPage> page = client.listPage(query, "");
    bool firstPage = true;
    while (true) {
      if (!page)
        return page.error();
      if (firstPage) {
        firstPage = false;
        if (page->totalSize >= 0 && totalKnown) {
          total += page->totalSize;
          counters.total.store(total);
        } else if (page->runs.empty()) {
          // {} : zero runs
        } else {
          totalKnown = false;
          counters.total.store(-1);
        }
      }
      // Fetch the next page while this one is worked on (only page_token:
      // the filter travels inside it).
      std::future<Result<KfpRunPage>> next;
      if (!page->nextPageToken.empty()) {
        next = std::async(std::launch::async, [&client, query, token = page->nextPageToken] {
          return client.listPage(query, token);
        });
      }
      const std::vector<KfpRunSummary>& runs = page->runs;
      std::vector<HistoryRunResult> results(runs.size());
      pool.run(runs.size(), [&](std::size_t i) {
        results[i] = work(runs[i], ns);
        if (!results[i].skip) {
          counters.scanned.fetch_add(1);
          if (results[i].misreported)
            counters.misreported.fetch_add(1);
          if (results[i].error)
            counters.errors.fetch_add(1);
        }
      });
      for (const auto& r : results) {
        if (!r.skip)
          emit(r);
      }
      if (!next.valid())
        break;
      page = next.get();
    }
  }
  return Status::okStatus();
}

StoredRunEvaluation evaluateStoredRun(KfpHistoryClient& client, const KfpRunSummary& run,
                                      const EvaluateOptions& options,
                                      const std::vector<std::string>& namespaces) {
  StoredRunEvaluation out;
  Result<StoredManifest> manifest = client.getManifest(run.runId);
  if (!manifest) {
    out.error = manifest.error().message;
    return out;
  }
  out.manifest = *manifest;
  int seen = 0;
  Status status = readWorkflows(
      manifest->owner, manifest->text, [&](Result<Workflow> wf, std::string_view origin) {
        if (++seen > 1)
          return;
        if (!wf) {
          out.error = "stored workflow manifest: " +
                      (origin.empty() ? std::string() : std::string(origin) + ": ") +
                      wf.error().message;
          return;
        }
        out.workflow = std::move(*wf);
      });
  if (!status && out.error.empty())
    out.error = "stored workflow manifest: " + status.error().message;
  if (seen != 1 && out.error.empty())
    out.error = "stored workflow manifest does not hold exactly one Workflow";
  if (!out.error.empty()) {
    out.workflow.reset();
    return out;
  }
  const Workflow& wf = *out.workflow;
  if (!wf.kind.empty() && wf.kind != "Workflow") {
    out.error = "stored manifest is a \"" + wf.kind + "\", not a Workflow";
    return out;
  }
  if (!namespaces.empty() &&
      std::find(namespaces.begin(), namespaces.end(), wf.namespace_) == namespaces.end()) {
    out.otherNamespace = true;
    return out;
  }
  Verdict verdict = evaluate(wf, options);
  if (!verdict.evaluable) {
    out.error = "stored workflow cannot be evaluated: " + (verdict.notEvaluableReason.empty()
                                                               ? std::string("not evaluable")
                                                               : verdict.notEvaluableReason);
    if (verdict.cause == "node-status-offloaded" || !wf.offloadNodeStatusVersion.empty()) {
      out.error =
          "node status was offloaded (status.offloadNodeStatusVersion); Argo deletes offloaded "
          "nodes once the Workflow is gone, so this run cannot be audited from KFP";
    }
    return out;
  }
  out.verdict = std::move(verdict);
  return out;
}

std::string historyAuditLine(const KfpRunSummary& run, const StoredRunEvaluation& e) {
  json extra = json::object();
  extra["kfpRunId"] = run.runId;
  extra["kfpState"] = run.state.empty() ? "RUNTIME_STATE_UNSPECIFIED" : run.state;
  extra["source"] = "kfp-history";
  if (!e.verdict) {
    if (e.workflow) {
      extra["namespace"] = e.workflow->namespace_;
      extra["name"] = e.workflow->name;
    }
    extra["error"] = e.error;
    return dumpJson(extra);
  }
  std::string line = verdictToJson(*e.verdict);
  std::string tail = dumpJson(extra);  // {"kfpRunId":...}
  // Same keys as file audit, then ours: splice the two objects.
  if (line.size() >= 2 && line.back() == '}' && tail.size() > 2) {
    line.pop_back();
    line += ",";
    line.append(tail, 1, std::string::npos);
  }
  return line;
}

// --- progress -------------------------------------------------------------

struct HistoryProgress::State {
  std::ostream& err;
  const HistoryScanCounters& counters;
  bool tty;
  std::string what;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::thread thread;

  State(std::ostream& e, const HistoryScanCounters& c, bool t, std::string_view w)
      : err(e), counters(c), tty(t), what(w) {}

  std::string line() const {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const auto scanned = counters.scanned.load();
    const long long total = counters.total.load();
    std::ostringstream s;
    s << what << ": ";
    if (tty && total > 0) {
      constexpr int kWidth = 24;
      const double fraction =
          std::min(1.0, static_cast<double>(scanned) / static_cast<double>(total));
      const int filled = static_cast<int>(fraction * kWidth);
      s << "[" << std::string(static_cast<std::size_t>(filled), '#')
        << std::string(static_cast<std::size_t>(kWidth - filled), '.') << "] ";
    }
    s << scanned;
    if (total >= 0)
      s << "/" << total;
    const double mb = static_cast<double>(counters.manifestBytes.load()) / 1e6;
    s << " runs, " << std::fixed << std::setprecision(1)
      << (seconds > 0 ? static_cast<double>(scanned) / seconds : 0.0) << " runs/s, "
      << (seconds > 0 ? mb / seconds : 0.0) << " MB/s, " << counters.misreported.load()
      << " mis-reported, " << counters.errors.load() << " errors";
    return s.str();
  }

  void loop() {
    const auto period = tty ? std::chrono::milliseconds(250) : std::chrono::milliseconds(5000);
    std::unique_lock<std::mutex> lock(mu);
    while (!cv.wait_for(lock, period, [&] { return done; })) {
      if (tty) {
        err << "\r" << line() << "\033[K" << std::flush;
      } else {
        err << line() << "\n" << std::flush;
      }
    }
  }
};

HistoryProgress::HistoryProgress(std::ostream& err, const HistoryScanCounters& counters, bool tty,
                                 std::string_view what)
    : state_(std::make_unique<State>(err, counters, tty, what)) {
  state_->thread = std::thread([s = state_.get()] { s->loop(); });
}

HistoryProgress::~HistoryProgress() {
  {
    std::lock_guard<std::mutex> g(state_->mu);
    state_->done = true;
  }
  state_->cv.notify_all();
  state_->thread.join();
  state_->err << (state_->tty ? "\r" : "") << state_->line() << (state_->tty ? "\033[K\n" : "\n")
              << std::flush;
}

// --- CLI ------------------------------------------------------------------

void addHistoryFlags(cli::FlagParser& parser) {
  parser.add({.name = "kfp-api-url",
              .valueName = "URL",
              .help = "KFP API server, e.g. http://ml-pipeline.kubeflow:8888",
              .envVar = "EXITREC_KFP_API_URL"});
  parser.add(
      {.name = "kfp-token-file",
       .valueName = "PATH",
       .help = "bearer token file (multi-user: a token with audience pipelines.kubeflow.org)",
       .envVar = "EXITREC_KFP_TOKEN_FILE"});
  parser.add({.name = "kfp-ca-file",
              .valueName = "PATH",
              .help = "PEM CA bundle to verify an https KFP API server (default: system store)"});
  parser.add({.name = "namespace",
              .valueName = "NS",
              .help = "only runs of this namespace; repeat for more (multi-user: required)"});
  parser.add({.name = "finished-after",
              .valueName = "RFC3339",
              .help = "only runs that finished after this time, e.g. 2026-01-01T00:00:00Z"});
  parser.add({.name = "exit-task-failure",
              .valueName = "POLICY",
              .help = "whether a failed exit task makes the run's true phase Failed",
              .defaultValue = "ignore",
              .choices = {"ignore", "fail"}});
  parser.add({.name = "concurrency",
              .valueName = "N",
              .help = "manifests fetched and evaluated at once",
              .defaultValue = "8"});
}

std::vector<char*> takeNamespaces(std::span<char* const> args,
                                  std::vector<std::string>& namespaces) {
  std::vector<char*> rest;
  auto addAll = [&](std::string_view value) {
    while (!value.empty()) {
      auto comma = value.find(',');
      std::string_view one = value.substr(0, comma);
      if (!one.empty())
        namespaces.emplace_back(one);
      if (comma == std::string_view::npos)
        break;
      value.remove_prefix(comma + 1);
    }
  };
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view a = args[i] == nullptr ? std::string_view() : std::string_view(args[i]);
    if (a == "--") {
      rest.insert(rest.end(), args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
      break;
    }
    if (a == "--namespace" && i + 1 < args.size() && args[i + 1] != nullptr) {
      addAll(args[++i]);
    } else if (a.starts_with("--namespace=")) {
      addAll(a.substr(12));
    } else {
      rest.push_back(args[i]);
    }
  }
  return rest;
}

bool wantsHistoryAudit(std::span<char* const> args) {
  for (char* a : args) {
    if (a == nullptr)
      continue;
    std::string_view s(a);
    if (s == "--")
      break;
    if (s == "--kfp-api-url" || s.starts_with("--kfp-api-url="))
      return true;
  }
  return false;
}

Result<HistoryConnection> connectHistory(const cli::ParsedArgs& parsed,
                                         std::vector<std::string> namespaces,
                                         const std::vector<std::string>& states) {
  HistoryConnection c;
  const std::string& url = parsed.get("kfp-api-url");
  if (url.empty())
    return makeError(ErrorCode::kInvalidInput, "--kfp-api-url is required");
  if (!url.starts_with("http://") && !url.starts_with("https://")) {
    return makeError(ErrorCode::kInvalidInput,
                     "--kfp-api-url: \"" + url + "\" is not an http(s) URL");
  }
  auto concurrency = parsed.getInt("concurrency", 1, 64);
  if (!concurrency)
    return concurrency.error();
  std::string finishedAfter;
  if (!parsed.get("finished-after").empty()) {
    auto normalized = normalizeRfc3339(parsed.get("finished-after"));
    if (!normalized)
      return makeError(ErrorCode::kInvalidInput, "--finished-after: " + normalized.error().message);
    finishedAfter = *normalized;
  }
  TlsOptions tls;
  tls.caFile = parsed.get("kfp-ca-file");
  // A keep-alive connection per worker, plus the lister's (beast_transport.h):
  // cpprest's thread hand-offs bounded the audit's rate.
  BeastTransportOptions transportOptions;
  transportOptions.maxIdlePerHost = static_cast<std::size_t>(*concurrency) + 1;
  auto transport = makeBeastTransport(tls, transportOptions);
  if (!transport)
    return transport.error();
  c.transport = std::move(*transport);
  if (!parsed.get("kfp-token-file").empty()) {
    c.token = TokenSource::file(parsed.get("kfp-token-file"), SystemClock::instance());
    auto first = c.token.token();
    if (!first)
      return makeError(ErrorCode::kInvalidInput, "--kfp-token-file: " + first.error().message);
  }
  KfpHistoryClient::Options o;
  o.baseUrl = url;
  c.client = std::make_unique<KfpHistoryClient>(*c.transport, c.token, o);
  auto multiUser = c.client->multiUser();
  if (!multiUser) {
    return makeError(multiUser.error().code,
                     "cannot read KFP's mode from " + url +
                         "/apis/v1beta1/healthz: " + multiUser.error().message);
  }
  if (*multiUser && namespaces.empty()) {
    return makeError(ErrorCode::kInvalidInput,
                     "KFP runs in multi-user mode, where listing runs needs a namespace: give "
                     "--namespace NS (repeatable)");
  }
  c.scan.multiUser = *multiUser;
  c.scan.namespaces = std::move(namespaces);
  c.scan.concurrency = static_cast<int>(*concurrency);
  c.scan.filterJson = runFilterJson(finishedAfter, states);
  c.evaluate.exitTaskFailure = parsed.get("exit-task-failure") == "fail"
                                   ? ExitTaskFailurePolicy::kFail
                                   : ExitTaskFailurePolicy::kIgnore;
  return c;
}

int runHistoryAudit(std::span<char* const> rawArgs, std::ostream& out, std::ostream& err) {
  cli::FlagParser parser("exit-reconciler audit", "--kfp-api-url URL", std::string(kDescription));
  addHistoryFlags(parser);
  parser.add({.name = "only-terminal",
              .help = "only runs KFP lists as SUCCEEDED, FAILED, SKIPPED or CANCELED",
              .isSwitch = true});
  parser.add({.name = "format",
              .valueName = "FORMAT",
              .help = "json: one JSON object per line; table: aligned, for people",
              .defaultValue = "json",
              .choices = {"json", "table"}});
  std::vector<std::string> namespaces;
  std::vector<char*> args = takeNamespaces(rawArgs, namespaces);
  auto parsed = parser.parse(args, cli::processEnv());
  if (!parsed.ok())
    return cli::usageError(err, parser, parsed.error());
  if (parsed->helpRequested()) {
    out << parser.help();
    return cli::kExitOk;
  }
  if (!parsed->positional().empty()) {
    return cli::usageError(
        err, parser,
        makeError(ErrorCode::kInvalidInput, "PATH operands cannot be combined with --kfp-api-url"));
  }
  std::vector<std::string> states;
  if (parsed->get("only-terminal") == "true")
    states = {"SUCCEEDED", "FAILED", "SKIPPED", "CANCELED"};
  auto connection = connectHistory(*parsed, namespaces, states);
  if (!connection) {
    err << "audit: " << connection.error().message << "\n";
    return cli::kExitUsage;
  }
  HistoryConnection& c = *connection;
  const bool table = parsed->get("format") == "table";
  if (table)
    out << tableHeader() << "\n";
  HistoryScanCounters counters;
  Status status = Status::okStatus();
  {
    HistoryProgress progress(err, counters, ::isatty(STDERR_FILENO) == 1, "audit");
    auto work = [&](const KfpRunSummary& run, const std::string&) {
      HistoryRunResult r;
      StoredRunEvaluation e = evaluateStoredRun(*c.client, run, c.evaluate, c.scan.namespaces);
      if (e.otherNamespace) {
        r.skip = true;
        return r;
      }
      if (e.manifest)
        counters.manifestBytes.fetch_add(e.manifest->text.size());
      r.error = !e.verdict.has_value();
      r.misreported = e.verdict && e.verdict->misreported;
      r.line = table ? tableRow(run, e) : historyAuditLine(run, e);
      return r;
    };
    auto emit = [&](const HistoryRunResult& r) { out << r.line << '\n'; };
    status = scanHistory(*c.client, c.scan, work, emit, counters);
  }
  if (table) {
    out << "\n"
        << counters.scanned.load() << " runs, " << counters.misreported.load() << " mis-reported, "
        << counters.errors.load() << " not auditable\n";
  }
  out.flush();
  if (!status) {
    err << "audit: listing KFP runs failed: " << status.error().message << "\n";
    return cli::kExitUsage;
  }
  if (counters.errors.load() > 0)
    return cli::kExitUsage;
  return counters.misreported.load() > 0 ? cli::kExitFindings : cli::kExitOk;
}

int runAuditCommand(int argc, char** argv) {
  std::span<char* const> args(argv, static_cast<std::size_t>(argc));
  if (wantsHistoryAudit(args.subspan(1))) {
    std::ios::sync_with_stdio(false);
    return runHistoryAudit(args.subspan(1), std::cout, std::cerr);
  }
  return runAudit(argc, argv);
}

}  // namespace exitrec
