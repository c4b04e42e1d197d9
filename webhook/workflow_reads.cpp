#include "webhook/workflow_reads.h"

#include <spdlog/spdlog.h>

namespace exitrec {

WorkflowReads::WorkflowReads(Fetch fetch, Clock& clock, Options options)
    : fetch_(std::move(fetch)), clock_(clock), options_(options) {
  if (options_.maxEntries == 0)
    options_.maxEntries = 1;
  if (options_.backgroundRefresh)
    refresher_ = std::thread([this] { refresherLoop(); });
}

WorkflowReads::~WorkflowReads() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stopping_ = true;
  }
  refreshCv_.notify_all();
  if (refresher_.joinable())
    refresher_.join();
}

WorkflowReads::Stats WorkflowReads::stats() const {
  std::lock_guard<std::mutex> g(mu_);
  Stats s = stats_;
  s.entries = entries_.size();
  return s;
}

void WorkflowReads::dropIdleLocked(Clock::SteadyTime now) {
  for (auto i = entries_.begin(); i != entries_.end();) {
    if (!i->second->inFlight && now - i->second->lastUsed > options_.maxAge) {
      i = entries_.erase(i);
    } else {
      ++i;
    }
  }
}

std::shared_ptr<WorkflowReads::Entry> WorkflowReads::entryLocked(std::string_view ns,
                                                                 std::string_view name) {
  std::string key;
  key.reserve(ns.size() + name.size() + 1);
  key.append(ns).append("/").append(name);
  const auto now = clock_.now();
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    it->second->lastUsed = now;
    return it->second;
  }
  // Make room: drop idle entries past maxAge, then the least recently used.
  // An evicted entry that is still in flight keeps serving its waiters (they
  // hold it); later callers start over with a new entry.
  dropIdleLocked(now);
  while (entries_.size() >= options_.maxEntries) {
    auto oldest = entries_.begin();
    for (auto i = entries_.begin(); i != entries_.end(); ++i) {
      if (i->second->lastUsed < oldest->second->lastUsed)
        oldest = i;
    }
    entries_.erase(oldest);
  }
  auto e = std::make_shared<Entry>();
  e->ns = std::string(ns);
  e->name = std::string(name);
  e->lastUsed = now;
  entries_.emplace(std::move(key), e);
  return e;
}

Result<std::shared_ptr<const Workflow>> WorkflowReads::freshLocked(
    std::unique_lock<std::mutex>& lk, const std::shared_ptr<Entry>& e) {
  // Any GET numbered above this one starts after our arrival.
  const std::uint64_t need = e->started + 1;
  bool waited = false;
  while (e->resultSeq < need) {
    if (!e->inFlight) {
      // Lead the next GET for everyone waiting.
      const std::uint64_t seq = ++e->started;
      e->inFlight = true;
      ++stats_.gets;
      const auto startedAt = clock_.now();
      lk.unlock();
      const auto t0 = std::chrono::steady_clock::now();
      // A throwing fetch must not leave the entry in flight forever (every
      // later reader would wait on it) nor end the refresher thread.
      Result<std::shared_ptr<const Workflow>> r =
          Error(ErrorCode::kTransient, "workflow read failed with an exception");
      try {
        r = fetch_(e->ns, e->name);
      } catch (const std::exception& ex) {
        r = Error(ErrorCode::kTransient, std::string("workflow read threw: ") + ex.what());
      } catch (...) {
      }
      const auto spent = std::chrono::steady_clock::now() - t0;
      lk.lock();
      stats_.fetchTime += std::chrono::duration_cast<std::chrono::nanoseconds>(spent);
      e->inFlight = false;
      e->resultSeq = seq;
      e->result = r;
      if (r.ok()) {
        e->lastGood = r.value();
        e->lastGoodStarted = startedAt;
      }
      e->cv.notify_all();
      return r;
    }
    waited = true;
    e->cv.wait(lk);
  }
  if (waited)
    ++stats_.sharedWaits;
  return e->result;
}

Result<std::shared_ptr<const Workflow>> WorkflowReads::fresh(std::string_view ns,
                                                             std::string_view name) {
  std::unique_lock<std::mutex> lk(mu_);
  ++stats_.calls;
  auto e = entryLocked(ns, name);
  return freshLocked(lk, e);
}

Result<std::shared_ptr<const Workflow>> WorkflowReads::recent(std::string_view ns,
                                                              std::string_view name,
                                                              std::string_view uid) {
  std::unique_lock<std::mutex> lk(mu_);
  ++stats_.calls;
  auto e = entryLocked(ns, name);
  if (e->lastGood && (uid.empty() || e->lastGood->uid == uid)) {
    const auto age = clock_.now() - e->lastGoodStarted;
    if (age <= options_.maxAge) {
      ++stats_.recentHits;
      if (age > options_.refreshAfter && !e->inFlight && refresher_.joinable()) {
        bool queued = false;
        for (const auto& q : refreshQueue_)
          queued = queued || (q.first == e->ns && q.second == e->name);
        if (!queued) {
          refreshQueue_.emplace_back(e->ns, e->name);
          refreshCv_.notify_one();
        }
      }
      return e->lastGood;
    }
  }
  return freshLocked(lk, e);
}

void WorkflowReads::refresherLoop() {
  std::unique_lock<std::mutex> lk(mu_);
  // Wakes at least every maxAge (>= 100 ms) to drop idle copies: a big
  // Workflow is megabytes, and nothing else may come to evict it.
  const auto period =
      std::max<std::chrono::milliseconds>(options_.maxAge, std::chrono::milliseconds(100));
  while (true) {
    clock_.waitUntil(lk, refreshCv_, clock_.now() + period,
                     [&] { return stopping_ || !refreshQueue_.empty(); });
    if (stopping_)
      return;
    dropIdleLocked(clock_.now());
    if (refreshQueue_.empty())
      continue;
    auto [ns, name] = std::move(refreshQueue_.front());
    refreshQueue_.pop_front();
    auto e = entryLocked(ns, name);
    if (e->inFlight)
      continue;  // a GET is under way; its result refreshes the entry
    ++stats_.refreshes;
    auto r = freshLocked(lk, e);
    if (!r.ok()) {
      spdlog::debug("workflow reads: background refresh of {}/{} failed: {}", ns, name,
                    r.error().describe());
    }
  }
}

}  // namespace exitrec
