#pragma once
// Rate limiters for the work queue, after client-go's workqueue package.
// when(key) returns how long to wait before the key may be processed again
// and records a failure/reservation; forget(key) clears its history.
// All implementations are thread-safe.

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"

namespace exitrec {

class RateLimiter {
 public:
  virtual ~RateLimiter() = default;
  virtual std::chrono::nanoseconds when(const std::string& key) = 0;
  virtual void forget(const std::string& key) = 0;
  virtual int numRequeues(const std::string& key) = 0;
};

// base * 2^failures, capped at max (client-go default 5 ms .. 1000 s).
class ItemExponentialFailureRateLimiter final : public RateLimiter {
 public:
  ItemExponentialFailureRateLimiter(std::chrono::nanoseconds base, std::chrono::nanoseconds max)
      : base_(base), max_(max) {}
  std::chrono::nanoseconds when(const std::string& key) override;
  void forget(const std::string& key) override;
  int numRequeues(const std::string& key) override;

 private:
  std::mutex mu_;
  std::chrono::nanoseconds base_, max_;
  std::unordered_map<std::string, int> failures_;
};

// Token bucket shared by all keys (client-go default 10 qps, burst 100).
// Each when() reserves one token; the delay is the time until it is covered.
class BucketRateLimiter final : public RateLimiter {
 public:
  BucketRateLimiter(Clock& clock, double qps, int burst);
  std::chrono::nanoseconds when(const std::string& key) override;
  void forget(const std::string&) override {}
  int numRequeues(const std::string&) override { return 0; }

 private:
  std::mutex mu_;
  Clock& clock_;
  double qps_;
  double burst_;
  double tokens_;
  Clock::SteadyTime last_;
};

// The maximum of several limiters.
class MaxOfRateLimiter final : public RateLimiter {
 public:
  explicit MaxOfRateLimiter(std::vector<std::unique_ptr<RateLimiter>> limiters)
      : limiters_(std::move(limiters)) {}
  std::chrono::nanoseconds when(const std::string& key) override;
  void forget(const std::string& key) override;
  int numRequeues(const std::string& key) override;

 private:
  std::vector<std::unique_ptr<RateLimiter>> limiters_;
};

// max(per-item exponential 5 ms .. 1000 s, token bucket 10 qps / burst 100).
std::unique_ptr<RateLimiter> defaultControllerRateLimiter(Clock& clock);

}  // namespace exitrec
