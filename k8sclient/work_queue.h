#pragma once
// WorkQueue: client-go's rate-limited work queue for string keys.
//
// - queue (order) + dirty (needs work) + processing. add() of a dirty key is
//   a no-op; add() of a key being processed marks it dirty and done()
//   re-queues it: a key is never processed by two workers at once and bursts
//   of adds collapse into one reconcile.
// - addAfter(key, d): added when d has elapsed on the injected Clock (if the
//   key is already waiting, the earlier time wins). addRateLimited(key) =
//   addAfter(key, limiter.when(key)); forget(key) resets its failures.
// - shutDown(): stops accepting adds; get() still hands out what is queued,
//   then returns nullopt. shutDownWithDrain() additionally waits until every
//   key handed out has been done(). Delayed adds pending at shutdown are
//   dropped.
//
// Thread-safe. get() blocks the calling worker thread.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "common/clock.h"
#include "k8sclient/rate_limiter.h"

namespace exitrec {

// Metric hooks (wired to Prometheus elsewhere); default no-ops. Called with
// the queue's lock released; must be fast and must not call back into the queue.
class WorkQueueObserver {
 public:
  virtual ~WorkQueueObserver() = default;
  virtual void onAdd(std::string_view /*queue*/) {}
  virtual void onDepth(std::string_view /*queue*/, std::size_t /*depth*/) {}
  virtual void onQueueLatency(std::string_view /*queue*/, std::chrono::nanoseconds /*waited*/) {}
  virtual void onWorkDuration(std::string_view /*queue*/, std::chrono::nanoseconds /*took*/) {}
  virtual void onRetry(std::string_view /*queue*/) {}
};

class WorkQueue {
 public:
  // `clock` and `observer` must outlive the queue. A null limiter means
  // defaultControllerRateLimiter(clock).
  WorkQueue(std::string name, Clock& clock, std::unique_ptr<RateLimiter> limiter = nullptr,
            WorkQueueObserver* observer = nullptr);
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  void add(const std::string& key);
  void addAfter(const std::string& key, std::chrono::nanoseconds delay);
  void addRateLimited(const std::string& key);
  void forget(const std::string& key);
  int numRequeues(const std::string& key);

  // Blocks until a key is available; nullopt once shut down and empty.
  std::optional<std::string> get();
  void done(const std::string& key);

  std::size_t len() const;
  std::size_t waitingLen() const;  // delayed adds not yet due
  bool shuttingDown() const;
  void shutDown();
  void shutDownWithDrain();

  // For the unfinished-work / longest-running gauges.
  std::chrono::nanoseconds unfinishedWork() const;
  std::chrono::nanoseconds longestRunningProcessor() const;

 private:
  void addLocked(const std::string& key, std::unique_lock<std::mutex>& lock);
  void delayLoop();

  const std::string name_;
  Clock& clock_;
  std::unique_ptr<RateLimiter> limiter_;
  WorkQueueObserver* observer_;

  mutable std::mutex mu_;
  std::condition_variable cv_;       // get() waiters and drain
  std::condition_variable delayCv_;  // the delay thread
  std::deque<std::string> queue_;
  std::unordered_set<std::string> dirty_;
  std::unordered_map<std::string, Clock::SteadyTime> processing_;  // key -> started
  std::unordered_map<std::string, Clock::SteadyTime> addedAt_;     // for queue latency
  std::map<std::string, Clock::SteadyTime> waiting_;               // key -> ready at
  std::set<std::pair<Clock::SteadyTime, std::string>> waitingOrder_;
  bool shuttingDown_ = false;
  bool stopDelay_ = false;
  std::thread delayThread_;
};

}  // namespace exitrec
