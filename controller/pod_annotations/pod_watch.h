#pragma once
// PodWatch: drives the pod-annotation channel from a pod informer.
//
// Watches pods of KFP runs (label selector, default
// "pipeline/runid,workflows.argoproj.io/workflow") through k8sclient's
// Informer with a one-bit projection (PodAnnotationChannel::wants(): Pending,
// not injected, may be an exit task): no pod is kept beyond that bit. Keys
// of wanted pods go to a rate-limited work queue; a worker GETs the pod
// (its current state), re-checks wants() and calls PodAnnotationChannel::
// handle(). Errors (state unreadable, patch failed) re-queue the pod with
// backoff; a pod that is gone or no longer wanted is dropped.
//
// Runs on the leader only in `exit-reconciler run --pod-annotations`, so
// replicas do not patch the same pod twice.
//
// Thread-safety: start/stop from one owner thread; stats() from any thread.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "common/clock.h"
#include "controller/pod_annotations/pod_annotation_channel.h"
#include "webhook/state_provider.h"

namespace exitrec {

class KubeClient;
class ReflectorObserver;

struct PodWatchOptions {
  std::string namespaceName;  // "" = all namespaces
  std::string labelSelector = "pipeline/runid,workflows.argoproj.io/workflow";
  int workers = 2;
  // Watch lifetime (k8sclient ReflectorOptions; tests shorten them).
  std::chrono::seconds minWatchTimeout{300};
  std::chrono::seconds maxWatchTimeout{600};
  std::chrono::milliseconds idleTimeoutMargin{std::chrono::seconds(60)};
};

class PodWatch {
 public:
  struct Stats {
    std::uint64_t handled = 0;   // handle() calls
    std::uint64_t injected = 0;  // pods annotated
    std::uint64_t failed = 0;    // handle() or the pod GET failed (re-queued)
  };
  // `client`, `clock` and `channel` must outlive the watch.
  // `observer` (nullable) gets the watch's events (metrics); it must outlive
  // the watch.
  PodWatch(KubeClient& client, Clock& clock, PodAnnotationChannel& channel, PodWatchOptions options,
           ReflectorObserver* observer = nullptr);
  ~PodWatch();  // stop()
  PodWatch(const PodWatch&) = delete;
  PodWatch& operator=(const PodWatch&) = delete;

  void start();  // informer and workers; idempotent
  void stop();   // idempotent; waits for the workers' current pod
  bool hasSynced() const;
  // The pod watch's health (k8sclient Reflector::health); ok when not started.
  Status watchHealth() const;
  Stats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// What `exit-reconciler run --pod-annotations` starts: the production state
// provider and annotation writer over `client`, the channel, and the watch.
// `client`, `clock` and `metrics` (nullable) must outlive it.
class PodAnnotationService {
 public:
  PodAnnotationService(KubeClient& client, Clock& clock, PodAnnotationMetrics* metrics,
                       PodWatchOptions options);
  ~PodAnnotationService();
  void start() { watch_.start(); }
  void stop() { watch_.stop(); }
  PodWatch& watch() { return watch_; }

 private:
  KubeRunStateProvider provider_;
  KubeAnnotationWriter writer_;
  PodAnnotationChannel channel_;
  PodWatch watch_;
};

}  // namespace exitrec
