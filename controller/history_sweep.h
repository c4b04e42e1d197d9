#pragma once
// HistorySweep: `run --kfp-history-sweep DURATION` (leader only, off by
// default). Every period it runs backfill (--apply) over the recent window of
// KFP's history: runs KFP lists as SUCCEEDED that finished after
// now - window. It catches runs whose Workflow vanished before the controller
// acted (outage longer than the Workflow TTL: 24 h in KFP 2.0–2.16, 1 h in
// 2.17). Runs whose Workflow still exists are the controller's and skipped;
// corrected runs are FAILED and drop out of the next listing.
//
// Self-contained: start() runs sweeps on its own thread until stop(); the
// owner starts it when it becomes leader and stops it when it loses the lease.
// sweepOnce() is one pass (tests, or an owner that schedules it itself).
// Metrics go through the HistorySweepMetrics interface (no metrics library
// here). Thread-safe: start/stop from one owner thread.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "common/clock.h"
#include "controller/backfill.h"
#include "controller/history_audit.h"

namespace exitrec {

class HistorySweepMetrics {
 public:
  virtual ~HistorySweepMetrics() = default;
  virtual void runScanned() = 0;
  // A historical run found mis-reported, by engine generation and cause.
  virtual void runMisreported(std::string_view generation, std::string_view cause) = 0;
  virtual void runCorrected() = 0;
  // A run that could not be read, reported or verified.
  virtual void runFailed() = 0;
  // One pass ended; ok == false when listing failed.
  virtual void sweepDone(bool ok, double seconds) = 0;
};

struct HistorySweepOptions {
  std::chrono::milliseconds period{std::chrono::hours(1)};
  std::chrono::seconds window{std::chrono::hours(48)};
  HistoryScanOptions scan;   // namespaces and mode; filterJson is set per pass
  BackfillOptions backfill;  // apply is forced on
};

class HistorySweep {
 public:
  HistorySweep(KfpHistoryClient& history, KfpReporter& kfp, WorkflowExists exists,
               HistorySweepOptions options, HistorySweepMetrics& metrics, Clock& clock);
  ~HistorySweep();  // stops
  HistorySweep(const HistorySweep&) = delete;
  HistorySweep& operator=(const HistorySweep&) = delete;

  void start();  // first pass at once, then every period
  // Returns once the current run of a pass is done (the rest of it is skipped).
  void stop();
  Status sweepOnce();

 private:
  void loop();

  KfpHistoryClient& history_;
  KfpReporter& kfp_;
  WorkflowExists exists_;
  HistorySweepOptions options_;
  HistorySweepMetrics& metrics_;
  Clock& clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::atomic<bool> stopRequested_{false};  // ends a pass early (lease lost)
  std::thread thread_;
};

}  // namespace exitrec
