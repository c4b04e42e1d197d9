#include "k8sclient/work_queue.h"

namespace exitrec {

WorkQueue::WorkQueue(std::string name, Clock& clock, std::unique_ptr<RateLimiter> limiter,
                     WorkQueueObserver* observer)
    : name_(std::move(name)),
      clock_(clock),
      limiter_(limiter ? std::move(limiter) : defaultControllerRateLimiter(clock)),
      observer_(observer) {
  delayThread_ = std::thread([this] { delayLoop(); });
}

WorkQueue::~WorkQueue() {
  shutDown();
  {
    std::lock_guard<std::mutex> g(mu_);
    stopDelay_ = true;
  }
  delayCv_.notify_all();
  delayThread_.join();
}

void WorkQueue::addLocked(const std::string& key, std::unique_lock<std::mutex>& lock) {
  if (shuttingDown_)
    return;
  if (!dirty_.insert(key).second)
    return;
  const bool busy = processing_.count(key) != 0;
  if (!busy) {
    addedAt_.emplace(key, clock_.now());
    queue_.push_back(key);
  }
  const std::size_t depth = queue_.size();
  lock.unlock();
  if (observer_) {
    observer_->onAdd(name_);
    observer_->onDepth(name_, depth);
  }
  if (!busy)
    cv_.notify_one();
  lock.lock();
}

void WorkQueue::add(const std::string& key) {
  std::unique_lock<std::mutex> lock(mu_);
  addLocked(key, lock);
}

void WorkQueue::addAfter(const std::string& key, std::chrono::nanoseconds delay) {
  std::unique_lock<std::mutex> lock(mu_);
  if (shuttingDown_)
    return;
  if (delay.count() <= 0) {
    addLocked(key, lock);
    return;
  }
  const auto readyAt =
      clock_.now() + std::chrono::duration_cast<Clock::SteadyTime::duration>(delay);
  auto it = waiting_.find(key);
  if (it != waiting_.end()) {
    if (it->second <= readyAt)
      return;  // already due earlier
    waitingOrder_.erase({it->second, key});
    it->second = readyAt;
  } else {
    waiting_.emplace(key, readyAt);
  }
  waitingOrder_.emplace(readyAt, key);
  lock.unlock();
  delayCv_.notify_all();
}

void WorkQueue::addRateLimited(const std::string& key) {
  if (observer_)
    observer_->onRetry(name_);
  addAfter(key, limiter_->when(key));
}

void WorkQueue::forget(const std::string& key) {
  limiter_->forget(key);
}

int WorkQueue::numRequeues(const std::string& key) {
  return limiter_->numRequeues(key);
}

void WorkQueue::delayLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopDelay_ && !shuttingDown_) {
    if (waitingOrder_.empty()) {
      delayCv_.wait(lock, [this] { return stopDelay_ || shuttingDown_ || !waitingOrder_.empty(); });
      continue;
    }
    const auto [readyAt, key] = *waitingOrder_.begin();
    if (clock_.now() >= readyAt) {
      waitingOrder_.erase(waitingOrder_.begin());
      waiting_.erase(key);
      addLocked(key, lock);
      continue;
    }
    // Wake when due, on shutdown, or when an earlier item arrives.
    clock_.waitUntil(lock, delayCv_, readyAt, [this, readyAt = readyAt] {
      return stopDelay_ || shuttingDown_ ||
             (!waitingOrder_.empty() && waitingOrder_.begin()->first < readyAt);
    });
  }
}

std::optional<std::string> WorkQueue::get() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return !queue_.empty() || shuttingDown_; });
  if (queue_.empty())
    return std::nullopt;
  std::string key = std::move(queue_.front());
  queue_.pop_front();
  dirty_.erase(key);
  const auto now = clock_.now();
  processing_[key] = now;
  std::optional<std::chrono::nanoseconds> waited;
  if (auto it = addedAt_.find(key); it != addedAt_.end()) {
    waited = now - it->second;
    addedAt_.erase(it);
  }
  const std::size_t depth = queue_.size();
  lock.unlock();
  if (observer_) {
    observer_->onDepth(name_, depth);
    if (waited)
      observer_->onQueueLatency(name_, *waited);
  }
  return key;
}

void WorkQueue::done(const std::string& key) {
  std::unique_lock<std::mutex> lock(mu_);
  auto it = processing_.find(key);
  if (it == processing_.end())
    return;
  const auto took = clock_.now() - it->second;
  processing_.erase(it);
  bool requeued = false;
  if (dirty_.count(key) != 0) {
    addedAt_.emplace(key, clock_.now());
    queue_.push_back(key);
    requeued = true;
  }
  const std::size_t depth = queue_.size();
  lock.unlock();
  if (observer_) {
    observer_->onWorkDuration(name_, took);
    if (requeued)
      observer_->onDepth(name_, depth);
  }
  // Wakes a worker for the requeued key, and shutDownWithDrain.
  cv_.notify_all();
}

std::size_t WorkQueue::len() const {
  std::lock_guard<std::mutex> g(mu_);
  return queue_.size();
}

std::size_t WorkQueue::waitingLen() const {
  std::lock_guard<std::mutex> g(mu_);
  return waiting_.size();
}

bool WorkQueue::shuttingDown() const {
  std::lock_guard<std::mutex> g(mu_);
  return shuttingDown_;
}

void WorkQueue::shutDown() {
  {
    std::lock_guard<std::mutex> g(mu_);
    shuttingDown_ = true;
  }
  cv_.notify_all();
  delayCv_.notify_all();
}

void WorkQueue::shutDownWithDrain() {
  shutDown();
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return processing_.empty() && queue_.empty(); });
}

std::chrono::nanoseconds WorkQueue::unfinishedWork() const {
  std::lock_guard<std::mutex> g(mu_);
  const auto now = clock_.now();
  std::chrono::nanoseconds total{0};
  for (const auto& [k, started] : processing_)
    total += now - started;
  return total;
}

std::chrono::nanoseconds WorkQueue::longestRunningProcessor() const {
  std::lock_guard<std::mutex> g(mu_);
  const auto now = clock_.now();
  std::chrono::nanoseconds longest{0};
  for (const auto& [k, started] : processing_)
    longest = std::max<std::chrono::nanoseconds>(longest, now - started);
  return longest;
}

}  // namespace exitrec
