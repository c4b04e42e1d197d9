#include "runtime/manager.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace exitrec {
namespace {

// A wait "forever" that stays far from time_point overflow in the clocks.
constexpr std::chrono::hours kNoDeadline{24};

}  // namespace

Manager::Manager(Clock& clock, Election* election, std::chrono::milliseconds shutdownTimeout)
    : clock_(clock), election_(election), shutdownTimeout_(shutdownTimeout) {}

Manager::~Manager() = default;

void Manager::add(Runnable& runnable, Scope scope) {
  (scope == Scope::kAlways ? always_ : leaderOnly_).push_back(&runnable);
}

bool Manager::leading() const {
  std::lock_guard<std::mutex> g(mu_);
  return leading_;
}

void Manager::post(Event e) {
  {
    std::lock_guard<std::mutex> g(mu_);
    events_.push_back(e);
  }
  cv_.notify_all();
}

Status Manager::startAll(std::vector<Runnable*>& group, std::vector<Runnable*>& started) {
  for (Runnable* r : group) {
    if (Status s = r->start(); !s)
      return Error(s.error().code, std::string(r->name()) + ": " + s.error().message);
    spdlog::debug("started {}", r->name());
    started.push_back(r);
  }
  return Status();
}

bool Manager::stopAll(std::vector<Runnable*>& started, Clock::SteadyTime deadline) {
  bool drained = true;
  for (auto it = started.rbegin(); it != started.rend(); ++it) {
    if (!(*it)->stop(deadline)) {
      spdlog::warn("{}: in-flight work handed back unfinished at shutdown", (*it)->name());
      drained = false;
    }
  }
  started.clear();
  return drained;
}

Manager::Result Manager::shutdown(Result result) {
  const Clock::SteadyTime deadline = clock_.now() + shutdownTimeout_;
  {
    std::lock_guard<std::mutex> g(mu_);
    leading_ = false;
  }
  // Leader-only work first, so nothing writes after the lease is released.
  bool drained = stopAll(startedLeaderOnly_, deadline);
  if (electionStarted_) {
    election_->stop();
    electionStarted_ = false;
  }
  drained = stopAll(startedAlways_, deadline) && drained;
  result.drained = drained;
  return result;
}

Manager::Result Manager::run(StopSource& stop) {
  const int subscription = stop.subscribe([this] { post(Event::kStop); });
  struct Unsubscribe {
    StopSource& source;
    int id;
    ~Unsubscribe() { source.unsubscribe(id); }
  } unsubscribe{stop, subscription};

  auto failed = [this](const Error& e) {
    spdlog::error("start failed: {}", e.describe());
    return shutdown({Result::Kind::kStartFailed, e.describe(), true});
  };
  if (Status s = startAll(always_, startedAlways_); !s)
    return failed(s.error());
  if (election_ != nullptr) {
    Status s = election_->start([this] { post(Event::kStartedLeading); },
                                [this] { post(Event::kStoppedLeading); });
    if (!s)
      return failed(Error(s.error().code, "leader election: " + s.error().message));
    electionStarted_ = true;
  } else {
    post(Event::kStartedLeading);
  }

  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    std::optional<Clock::SteadyTime> until;
    if (leading_ && election_ != nullptr)
      until = election_->leadingUntil();
    const Clock::SteadyTime deadline = until.value_or(clock_.now() + kNoDeadline);
    const bool woken = clock_.waitUntil(lock, cv_, deadline, [this] { return !events_.empty(); });
    if (!woken) {
      // Deadline reached: re-read it, a renewal may have moved it on.
      if (leading_ && election_ != nullptr) {
        const auto now = clock_.now();
        const auto current = election_->leadingUntil();
        if (!current || now >= *current) {
          lock.unlock();
          return {Result::Kind::kLeadershipLost, "lease not renewed by its deadline", false};
        }
      }
      continue;
    }
    const Event e = events_.front();
    events_.pop_front();
    switch (e) {
      case Event::kStop:
        lock.unlock();
        spdlog::info("shutting down ({})", stop.reason());
        return shutdown({Result::Kind::kStopped, stop.reason(), true});
      case Event::kStartedLeading: {
        if (leading_)
          break;
        lock.unlock();
        Status s = startAll(leaderOnly_, startedLeaderOnly_);
        if (!s)
          return failed(s.error());
        lock.lock();
        leading_ = true;
        break;
      }
      case Event::kStoppedLeading:
        if (!leading_)
          break;
        lock.unlock();
        return {Result::Kind::kLeadershipLost, "the elector gave the lease up", false};
    }
  }
}

}  // namespace exitrec
