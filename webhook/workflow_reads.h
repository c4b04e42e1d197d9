#pragma once
// WorkflowReads: coalesced, briefly cached reads of whole Workflows.
//
// A 10k-node Workflow is megabytes of JSON; reading it for every admission
// review of a burst of exit-task pods would queue the reviews behind each
// other. This class shares reads:
//
// - fresh(ns, name): a copy read by a GET that *started after the call*
//   (single-flight). A caller arriving while a GET is in flight waits for it
//   to end and then shares the next one, which exactly one of the waiting
//   callers starts; everyone who arrived during the earlier GET gets that
//   next result. So a result is never older than the call that receives it.
//   Errors are shared the same way (not cached).
// - recent(ns, name, uid): the last successful copy when its GET started at
//   most Options::maxAge ago (and its uid matches, when `uid` is given); else
//   fresh(). A hit older than Options::refreshAfter also asks the background
//   refresher to re-read the Workflow, so a steady stream of reviews keeps
//   finding a recent copy without waiting for a GET.
//
// At most Options::maxEntries workflows are kept (least recently used one
// evicted); entries unused for longer than maxAge are dropped on the next
// insertion and, with the background refresher, within about maxAge.
//
// Thread-safety: all methods may be called concurrently. `fetch` is called
// without locks held, at most once at a time per workflow (plus none from
// evicted entries). The destructor stops and joins the refresher; callers
// must not be inside fresh()/recent() then.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "common/clock.h"
#include "common/result.h"
#include "engine/workflow.h"

namespace exitrec {

class WorkflowReads {
 public:
  using Fetch = std::function<Result<std::shared_ptr<const Workflow>>(std::string_view ns,
                                                                      std::string_view name)>;
  struct Options {
    std::size_t maxEntries = 8;
    std::chrono::milliseconds maxAge{1000};
    std::chrono::milliseconds refreshAfter{250};
    bool backgroundRefresh = true;  // false: no refresher thread (tests)
  };
  struct Stats {
    std::uint64_t calls = 0;                // fresh() and recent() calls
    std::uint64_t entries = 0;              // workflows held now
    std::uint64_t gets = 0;                 // fetch calls
    std::uint64_t sharedWaits = 0;          // callers served by a GET another caller started
    std::uint64_t recentHits = 0;           // recent() answered from the cache
    std::uint64_t refreshes = 0;            // background re-reads started
    std::chrono::nanoseconds fetchTime{0};  // total time inside fetch
  };

  // `clock` must outlive this object.
  WorkflowReads(Fetch fetch, Clock& clock, Options options);
  ~WorkflowReads();
  WorkflowReads(const WorkflowReads&) = delete;
  WorkflowReads& operator=(const WorkflowReads&) = delete;

  Result<std::shared_ptr<const Workflow>> fresh(std::string_view ns, std::string_view name);
  Result<std::shared_ptr<const Workflow>> recent(std::string_view ns, std::string_view name,
                                                 std::string_view uid);
  Stats stats() const;

 private:
  struct Entry {
    std::string ns, name;
    std::uint64_t started = 0;  // GETs started for this workflow
    bool inFlight = false;
    std::uint64_t resultSeq = 0;  // which GET `result` came from (0 = none)
    Result<std::shared_ptr<const Workflow>> result{Error(ErrorCode::kNotFound, "not read yet")};
    std::shared_ptr<const Workflow> lastGood;
    Clock::SteadyTime lastGoodStarted{};
    Clock::SteadyTime lastUsed{};
    std::condition_variable cv;
  };
  std::shared_ptr<Entry> entryLocked(std::string_view ns, std::string_view name);
  void dropIdleLocked(Clock::SteadyTime now);
  Result<std::shared_ptr<const Workflow>> freshLocked(std::unique_lock<std::mutex>& lk,
                                                      const std::shared_ptr<Entry>& e);
  void refresherLoop();

  Fetch fetch_;
  Clock& clock_;
  Options options_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<Entry>> entries_;
  Stats stats_;
  std::deque<std::pair<std::string, std::string>> refreshQueue_;
  std::condition_variable refreshCv_;
  bool stopping_ = false;
  std::thread refresher_;
};

}  // namespace exitrec
