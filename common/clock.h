#pragma once
// Injected time. Everything that waits, backs off, expires or timestamps takes
// a Clock&, so tests drive time with FakeClock instead of sleeping.
//
// Thread-safety: all methods of SystemClock and FakeClock are safe to call
// concurrently.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>

namespace exitrec {

class Clock {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;
  using WallTime = std::chrono::system_clock::time_point;
  virtual ~Clock() = default;

  // Monotonic time, for durations, deadlines and backoff.
  virtual SteadyTime now() const = 0;
  // Wall-clock time, for timestamps written to the API (annotations, leases).
  virtual WallTime wallNow() const = 0;

  // Blocks until `deadline` (in this clock's steady time) or until `wake`
  // returns true; `wake` is evaluated under `lock`, like a condition variable
  // predicate. Returns wake()'s final value. Callers notify `cv` when the
  // predicate may have changed.
  virtual bool waitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                         SteadyTime deadline, const std::function<bool()>& wake) = 0;
};

class SystemClock final : public Clock {
 public:
  SteadyTime now() const override { return std::chrono::steady_clock::now(); }
  WallTime wallNow() const override { return std::chrono::system_clock::now(); }
  bool waitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 SteadyTime deadline, const std::function<bool()>& wake) override {
    return cv.wait_until(lock, deadline, wake);
  }
  static SystemClock& instance();
};

// RFC 3339 UTC with second precision, e.g. "2026-11-28T13:12:12Z".
std::string formatRfc3339(Clock::WallTime t);

}  // namespace exitrec
