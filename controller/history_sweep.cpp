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
  options_.scan.concurrency = 1;  // one report in flight, paced
}

HistorySweep::~HistorySweep() {
  stop();
}

void HistorySweep::start() {
  if (thread_.joinable())
    return;
  {
    std::lock_guard<std::mutex> g(mu_);
    stopping_ = false;
  }
  stopRequested_ = false;
  thread_ = std::thread([this] { loop(); });
}

void HistorySweep::stop() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stopping_ = true;
  }
  stopRequested_ = true;
  cv_.notify_all();
  if (thread_.joinable())
    thread_.join();
}

Status HistorySweep::sweepOnce() {
  const auto started = clock_.now();
  const std::string after = formatRfc3339(clock_.wallNow() - options_.window);
  HistoryScanOptions scan = options_.scan;
  scan.filterJson = runFilterJson(after, {"SUCCEEDED"});
  // No cluster check means nothing may be corrected: Backfiller skips.
  Backfiller backfiller(history_, kfp_, exists_,
                        exists_ ? std::string() : "no cluster client for the existence check",
                        options_.backfill);
  HistoryScanCounters counters;
  auto work = [&](const KfpRunSummary& run, const std::string&) {
    HistoryRunResult r;
    if (stopRequested_) {
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
