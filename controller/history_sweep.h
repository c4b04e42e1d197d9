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
// here). Thread-safe: start, stop and requestStop may be called from any
// thread (the elector's callbacks and the owner's shutdown race).
//
// Leadership fence: with options.gate set, a pass starts only while the gate
// admits writes, and the gate is asked again before each run: once the lease
// is lost no further run is read, checked or reported (the rest of the pass
// is skipped). The owner should also hand a KfpReporter whose transport is
// fenced (FencedTransport), which refuses a report already under way.

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
#include "k8sclient/leadership_gate.h"

namespace exitrec {

class HistorySweepMetrics {
 public:
  virtual ~HistorySweepMetrics() = default;
  virtual void runScanned() = 0;
  // A historical run found mis-reported, by engine generation and cause.
  virtual void runMisreported(std::string_view generation, std::string_view cause) = 0;
  virtual void runCorrected() = 0;
  // A run that could not be checked (cluster GET), reported or verified:
  // retried on the next pass.
  virtual void runFailed() = 0;
  // A run whose stored manifest is missing, offloaded or unreadable: no
  // verdict, so nothing to correct (offloaded nodes are gone with the CR).
  virtual void runUnreadable() {}
  // One pass ended; ok == false when listing failed.
  virtual void sweepDone(bool ok, double seconds) = 0;
};

struct HistorySweepOptions {
  std::chrono::milliseconds period{std::chrono::hours(1)};
  std::chrono::seconds window{std::chrono::hours(48)};
  // Namespaces (required when KFP is multi-user); the mode (KFP's healthz)
  // and filterJson are set per pass.
  HistoryScanOptions scan;
  BackfillOptions backfill;  // apply is forced on
  // Not owned; null: no fence (no leader election).
  const LeadershipGate* gate = nullptr;
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
  // stop() without waiting (from a callback that must not block, e.g. on a
  // lost lease): no further run starts; stop() or the destructor joins.
  void requestStop();
  // One pass. kCancelled (and no pass counted) when the gate is closed;
  // otherwise the listing's status.
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
  std::mutex lifecycleMu_;                  // start/stop: one at a time (thread_)
  std::thread thread_;
};

}  // namespace exitrec
