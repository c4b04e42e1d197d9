#pragma once
// Reflector: keeps a local view of one resource collection in step with the
// API server, with client-go's semantics (docs/k8sclient.md):
//   list (paginated, RV="") -> watch from the list's RV with bookmarks and a
//   random timeoutSeconds in [5, 10) min -> on a clean close or idle timeout,
//   re-watch from the last RV -> on 410 (HTTP or in-stream ERROR), relist and
//   let the sink diff (deletes for vanished objects) -> on errors, back off
//   800 ms .. 30 s with jitter (reset after 2 min healthy); a watch that ends
//   at once with no events counts as a failure.
// The RV is opaque: it is only stored and sent back, never compared.
//
// Threading: start() runs the loop on its own std::thread; the sink and the
// observer are called on that thread only. stop() cancels the open watch,
// wakes any backoff wait and joins. All public methods are thread-safe.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "common/clock.h"
#include "common/result.h"
#include "k8sclient/backoff.h"
#include "k8sclient/kube_client.h"

namespace exitrec {

// Receives the reflector's stream of state. Called on the reflector thread.
class ReflectorSink {
 public:
  virtual ~ReflectorSink() = default;
  // A (re)list starts; every listed object is passed to replaceItem, then
  // endReplace (complete: objects not seen are gone) or abortReplace (failed).
  virtual void beginReplace() = 0;
  virtual void replaceItem(const ObjectMeta& meta, std::string_view rawObject) = 0;
  virtual void endReplace() = 0;
  virtual void abortReplace() = 0;
  // ADDED, MODIFIED or DELETED from the watch (bookmarks are not passed on).
  virtual void watchEvent(WatchEventType type, const ObjectMeta& meta,
                          std::string_view rawObject) = 0;
};

// Hooks for metrics and logs (wired to Prometheus elsewhere). Default no-ops.
// Called on the reflector thread; must be fast.
//
// Activity: the API server proves a watch alive by a list, by any event
// (bookmarks included) and by closing a watch normally (it honours the
// timeoutSeconds we asked for). A watch that sends nothing until our idle
// timer fires (timeoutSeconds + idleTimeoutMargin) is "stalled": a healthy
// server would have closed it. Opening a stream proves nothing (a wedged
// server may accept and then stay silent).
class ReflectorObserver {
 public:
  virtual ~ReflectorObserver() = default;
  // Why the watch ended and is being restarted: "closed", "idle_timeout"
  // (stalled: the server never closed it), "short_watch", "gone_http",
  // "gone_event", "error_event", "watch_error", "list_error".
  virtual void onWatchRestart(std::string_view /*resource*/, std::string_view /*reason*/) {}
  // Every watch event: "ADDED", "MODIFIED", "DELETED", "BOOKMARK", or "ERROR"
  // (an in-stream Status, e.g. 410 Expired).
  virtual void onWatchEvent(std::string_view /*resource*/, std::string_view /*type*/) {}
  // The server closed a watch normally: the watch was alive though quiet.
  virtual void onWatchClosedNormally(std::string_view /*resource*/) {}
  virtual void onListed(std::string_view /*resource*/, std::size_t /*items*/,
                        std::chrono::milliseconds /*took*/) {}
  virtual void onBackoff(std::string_view /*resource*/, std::chrono::milliseconds /*delay*/) {}
};

struct ReflectorOptions {
  ResourceRef resource;
  std::string namespaceName;  // "" = all namespaces
  std::string labelSelector;
  std::string fieldSelector;
  int pageSize = 500;
  std::chrono::seconds minWatchTimeout{300};  // server timeoutSeconds, random in [min, max)
  std::chrono::seconds maxWatchTimeout{600};
  // Client idle timeout = timeoutSeconds + margin; past it the watch is stalled.
  std::chrono::milliseconds idleTimeoutMargin{std::chrono::seconds(60)};
  std::chrono::milliseconds shortWatch{1000};  // a watch this short with 0 events is a failure
  BackoffOptions backoff;
  std::function<double()> random01 = defaultRandom01;
};

class Reflector {
 public:
  // `client`, `clock`, `sink` and `observer` must outlive the reflector.
  Reflector(KubeClient& client, Clock& clock, ReflectorOptions opts, ReflectorSink& sink,
            ReflectorObserver* observer = nullptr);
  ~Reflector();
  Reflector(const Reflector&) = delete;
  Reflector& operator=(const Reflector&) = delete;

  void start();
  void stop();

  // True once the first complete list has been delivered to the sink.
  bool hasSynced() const { return synced_.load(); }
  std::string lastSyncResourceVersion() const;
  // Watch restarts by reason (see ReflectorObserver::onWatchRestart).
  std::map<std::string, int> restartCounts() const;
  int listCount() const { return lists_.load(); }
  // Ok while the API server has shown this watch alive recently: synced, and
  // some activity (see ReflectorObserver) within maxWatchTimeout +
  // idleTimeoutMargin, the longest a healthy but quiet watch stays silent.
  // Otherwise the reason (e.g. "pods watch: no activity for 700 s"), for
  // /readyz.
  Status health() const;

 private:
  void run();
  bool listOnce();
  void restart(std::string_view reason);
  void active();
  // Waits for the backoff delay (at least `atLeast`); false if stopped.
  bool backoffWait(std::chrono::milliseconds atLeast = std::chrono::milliseconds(0));

  KubeClient& client_;
  Clock& clock_;
  ReflectorOptions opts_;
  ReflectorSink& sink_;
  ReflectorObserver* observer_;
  Backoff backoff_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
  std::string lastRv_;
  Clock::SteadyTime lastActivity_{};
  std::map<std::string, int> restarts_;
  std::atomic<bool> synced_{false};
  std::atomic<int> lists_{0};
  CancelSource cancel_;
  std::thread thread_;
};

}  // namespace exitrec
