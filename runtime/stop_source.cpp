#include "runtime/stop_source.h"

namespace exitrec {

void StopSource::requestStop(std::string reason) {
  // Callbacks run under the lock, so unsubscribe() returns only once none of
  // them is still running (the subscriber may then be destroyed).
  std::lock_guard<std::mutex> g(mu_);
  if (requested_)
    return;
  requested_ = true;
  reason_ = std::move(reason);
  for (auto& [id, f] : callbacks_)
    f();
  callbacks_.clear();
}

bool StopSource::stopRequested() const {
  std::lock_guard<std::mutex> g(mu_);
  return requested_;
}

std::string StopSource::reason() const {
  std::lock_guard<std::mutex> g(mu_);
  return reason_;
}

int StopSource::subscribe(std::function<void()> f) {
  std::lock_guard<std::mutex> g(mu_);
  const int id = nextId_++;
  if (requested_)
    f();
  else
    callbacks_.emplace(id, std::move(f));
  return id;
}

void StopSource::unsubscribe(int id) {
  std::lock_guard<std::mutex> g(mu_);
  callbacks_.erase(id);
}

}  // namespace exitrec
