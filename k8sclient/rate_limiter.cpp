#include "k8sclient/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace exitrec {

std::chrono::nanoseconds ItemExponentialFailureRateLimiter::when(const std::string& key) {
  std::lock_guard<std::mutex> g(mu_);
  const int exp = failures_[key]++;
  const double backoff = static_cast<double>(base_.count()) * std::pow(2.0, exp);
  if (backoff >= static_cast<double>(max_.count()))
    return max_;
  return std::chrono::nanoseconds(static_cast<long long>(backoff));
}

void ItemExponentialFailureRateLimiter::forget(const std::string& key) {
  std::lock_guard<std::mutex> g(mu_);
  failures_.erase(key);
}

int ItemExponentialFailureRateLimiter::numRequeues(const std::string& key) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

BucketRateLimiter::BucketRateLimiter(Clock& clock, double qps, int burst)
    : clock_(clock), qps_(qps), burst_(burst), tokens_(burst), last_(clock.now()) {}

std::chrono::nanoseconds BucketRateLimiter::when(const std::string&) {
  std::lock_guard<std::mutex> g(mu_);
  const auto now = clock_.now();
  if (now > last_) {
    const double elapsed = std::chrono::duration<double>(now - last_).count();
    tokens_ = std::min(burst_, tokens_ + elapsed * qps_);
    last_ = now;
  }
  tokens_ -= 1.0;
  if (tokens_ >= 0)
    return std::chrono::nanoseconds(0);
  return std::chrono::nanoseconds(static_cast<long long>(-tokens_ / qps_ * 1e9));
}

std::chrono::nanoseconds MaxOfRateLimiter::when(const std::string& key) {
  std::chrono::nanoseconds out{0};
  for (auto& l : limiters_)
    out = std::max(out, l->when(key));
  return out;
}

void MaxOfRateLimiter::forget(const std::string& key) {
  for (auto& l : limiters_)
    l->forget(key);
}

int MaxOfRateLimiter::numRequeues(const std::string& key) {
  int out = 0;
  for (auto& l : limiters_)
    out = std::max(out, l->numRequeues(key));
  return out;
}

std::unique_ptr<RateLimiter> defaultControllerRateLimiter(Clock& clock) {
  std::vector<std::unique_ptr<RateLimiter>> v;
  v.push_back(std::make_unique<ItemExponentialFailureRateLimiter>(std::chrono::milliseconds(5),
                                                                  std::chrono::seconds(1000)));
  v.push_back(std::make_unique<BucketRateLimiter>(clock, 10.0, 100));
  return std::make_unique<MaxOfRateLimiter>(std::move(v));
}

}  // namespace exitrec
