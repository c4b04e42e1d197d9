#pragma once
// FakeClock: a Clock for tests. Time moves only when advance() is called;
// advance() wakes every waiter whose deadline has passed. Thread-safe.

#include <list>

#include "common/clock.h"

namespace exitrec {

class FakeClock final : public Clock {
 public:
  FakeClock()
      : steady_(std::chrono::steady_clock::time_point(std::chrono::hours(1000))),
        wall_(std::chrono::system_clock::time_point(std::chrono::seconds(1798000000))) {}

  SteadyTime now() const override {
    std::lock_guard<std::mutex> g(mu_);
    return steady_;
  }
  WallTime wallNow() const override {
    std::lock_guard<std::mutex> g(mu_);
    return wall_;
  }

  bool waitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 SteadyTime deadline, const std::function<bool()>& wake) override {
    {
      std::lock_guard<std::mutex> g(mu_);
      waiters_.push_back({&cv, deadline});
      ++waitsStarted_;
    }
    bool result = false;
    while (true) {
      if (wake()) {
        result = true;
        break;
      }
      if (now() >= deadline)
        break;
      // Short real-time wait so a missed notify cannot hang a test.
      cv.wait_for(lock, std::chrono::milliseconds(5));
    }
    std::lock_guard<std::mutex> g(mu_);
    for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
      if (it->cv == &cv && it->deadline == deadline) {
        waiters_.erase(it);
        break;
      }
    }
    return result;
  }

  void advance(std::chrono::nanoseconds d) {
    std::list<std::condition_variable*> toWake;
    {
      std::lock_guard<std::mutex> g(mu_);
      steady_ += std::chrono::duration_cast<std::chrono::steady_clock::duration>(d);
      wall_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(d);
      for (const auto& w : waiters_)
        toWake.push_back(w.cv);
    }
    for (auto* cv : toWake)
      cv->notify_all();
  }

  // Number of threads currently blocked in waitUntil (lets tests wait until a
  // component has reached its wait before advancing time).
  std::size_t waiterCount() const {
    std::lock_guard<std::mutex> g(mu_);
    return waiters_.size();
  }

  // Total number of waitUntil calls so far. A waiter stays registered until
  // it has woken and re-checked, so tests that advance time step by step
  // wait for this to grow (a new wait has begun) before advancing again.
  // Number of waiters whose deadline has passed but which have not yet woken
  // up and left waitUntil. Together with waiterCount() this tells a test that
  // every component is parked on a future deadline ("quiescent").
  std::size_t dueWaiters() const {
    std::lock_guard<std::mutex> g(mu_);
    std::size_t n = 0;
    for (const auto& w : waiters_)
      n += w.deadline <= steady_ ? 1 : 0;
    return n;
  }

  std::size_t waitsStarted() const {
    std::lock_guard<std::mutex> g(mu_);
    return waitsStarted_;
  }

 private:
  mutable std::mutex mu_;
  SteadyTime steady_;
  WallTime wall_;
  struct Waiter {
    std::condition_variable* cv;
    SteadyTime deadline;
  };
  std::list<Waiter> waiters_;
  std::size_t waitsStarted_ = 0;
};

}  // namespace exitrec
