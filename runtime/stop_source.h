#pragma once
// StopSource: a one-shot stop request that wakes whoever subscribed (the
// Manager's event loop) instead of being polled.
//
// Thread-safety: every method may be called from any thread. Callbacks run on
// the thread that calls requestStop() (or in subscribe() when the stop was
// already requested), under the source's lock: they must be short and must not
// call back into the StopSource. unsubscribe() returns once the callback is no
// longer running, so the subscriber may be destroyed right after.

#include <functional>
#include <map>
#include <mutex>
#include <string>

namespace exitrec {

class StopSource {
 public:
  // Idempotent: the first call records `reason` and runs the callbacks.
  void requestStop(std::string reason);
  bool stopRequested() const;
  std::string reason() const;

  // Runs `f` once on the stop request (at once if already requested). The
  // returned id unsubscribes.
  int subscribe(std::function<void()> f);
  void unsubscribe(int id);

 private:
  mutable std::mutex mu_;
  bool requested_ = false;
  std::string reason_;
  int nextId_ = 0;
  std::map<int, std::function<void()>> callbacks_;
};

}  // namespace exitrec
