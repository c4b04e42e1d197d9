#include "controller/history_sweep.h"

#include <spdlog/spdlog.h>

namespace exitrec {

HistorySweep::HistorySweep(KfpHistoryClient& history, KfpReporter& kfp, WorkflowExists exists,
                           HistorySweepOptions options, HistorySweepMetrics& metrics, Clock& clock)
    : history_(history),
      kfp_(kfp),
      exists_(std::move(exists)),
      options_(std::move(options)),
      metrics_(metrics),
      clock_(clock) {
  options_.backfill.apply = true;
  options_.backfill.namespaces = options_.scan.namespaces;  // single-user: the manifest's
  options_.scan.concurrency = 1;                            // one report in flight, paced
}

HistorySweep::~HistorySweep() {
  stop();
}

void HistorySweep::start() {
  std::lock_guard<std::mutex> lifecycle(lifecycleMu_);
  if (thread_.joinable()) {
    if (!stopRequested_)
      return;        // already running
    thread_.join();  // after requestStop(): let the old loop finish first
  }
  {
    std::lock_guard<std::mutex> g(mu_);
    stopping_ = false;
  }
  stopRequested_ = false;
  thread_ = std::thread([this] { loop(); });
}

void HistorySweep::requestStop() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stopping_ = true;
  }
  stopRequested_ = true;
  cv_.notify_all();
}

void HistorySweep::stop() {
  std::lock_guard<std::mutex> lifecycle(lifecycleMu_);
  requestStop();
  if (thread_.joinable())
    thread_.join();
}

Status HistorySweep::sweepOnce() {
  if (options_.gate != nullptr) {
    if (Status may = options_.gate->mayWrite(); !may)
      return may;
  }
  const auto started = clock_.now();
  auto failed = [&](Error e) {
    metrics_.sweepDone(false, std::chrono::duration<double>(clock_.now() - started).count());
    spdlog::warn("history sweep: {}", e.message);
    return e;
  };
  // KFP's mode, read each pass (KFP may be upgraded or reconfigured under us).
  auto multiUser = history_.multiUser();
  if (!multiUser) {
    Error e = multiUser.error();
    e.message =
        "cannot read KFP's mode from " + history_.baseUrl() + "/apis/v1beta1/healthz: " + e.message;
    return failed(e);
  }
  if (*multiUser && options_.scan.namespaces.empty()) {
    return failed(Error(ErrorCode::kInvalidInput,
                        "KFP runs in multi-user mode, where listing runs needs a namespace: give "
                        "--kfp-history-namespaces (or --namespace)"));
  }
  const std::string after = formatRfc3339(clock_.wallNow() - options_.window);
  HistoryScanOptions scan = options_.scan;
  scan.multiUser = *multiUser;
  scan.filterJson = runFilterJson(after, {"SUCCEEDED"});
  // No cluster check means nothing may be corrected: Backfiller skips.
  Backfiller backfiller(history_, kfp_, exists_,
                        exists_ ? std::string() : "no cluster client for the existence check",
                        options_.backfill);
  HistoryScanCounters counters;
  std::atomic<bool> fenced{false};
  auto work = [&](const KfpRunSummary& run, const std::string&) {
    HistoryRunResult r;
    if (stopRequested_) {
      r.skip = true;
      return r;
    }
    if (fenced || (options_.gate != nullptr && !options_.gate->mayWrite())) {
      // Lease lost mid-pass: read, check or report nothing more.
      fenced = true;
      r.skip = true;
      return r;
    }
    BackfillOutcome o = backfiller.process(run);
    r.skip = o.skip;
    if (o.skip)
      return r;
    metrics_.runScanned();
    if (o.misreported)
      metrics_.runMisreported(o.generation, o.cause);
    if (o.action == "corrected") {
      metrics_.runCorrected();
      spdlog::info("history sweep: {}", o.line);
    } else if (o.unreadable) {
      metrics_.runUnreadable();
      spdlog::info("history sweep: {}", o.line);
    } else if (o.error) {
      metrics_.runFailed();
      spdlog::warn("history sweep: {}", o.line);
    }
    return r;
  };
  Status status = scanHistory(
      history_, scan, work, [](const HistoryRunResult&) {}, counters);
  const double seconds = std::chrono::duration<double>(clock_.now() - started).count();
  metrics_.sweepDone(status.ok(), seconds);
  if (!status)
    spdlog::warn("history sweep: listing KFP runs failed: {}", status.error().message);
  return status;
}

void HistorySweep::loop() {
  while (true) {
    (void)sweepOnce();
    std::unique_lock<std::mutex> lock(mu_);
    const auto deadline = clock_.now() + options_.period;
    if (clock_.waitUntil(lock, cv_, deadline, [&] { return stopping_; }))
      return;
  }
}

}  // namespace exitrec
