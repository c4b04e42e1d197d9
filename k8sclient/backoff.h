#pragma once
// Exponential backoff with jitter and a reset after a healthy period, like
// client-go's exponentialBackoffManager used by the reflector: the base delay
// starts at `initial`, doubles per step up to `max`; each returned delay is
// base + jitter*rand*base, clamped to `max`; if more than `resetAfter` passed
// since the previous step, the base restarts at `initial`.
//
// Not thread-safe: one owner (e.g. the reflector thread).

#include <chrono>
#include <functional>
#include <optional>

#include "common/clock.h"

namespace exitrec {

struct BackoffOptions {
  std::chrono::milliseconds initial{800};
  std::chrono::milliseconds max{std::chrono::seconds(30)};
  double factor = 2.0;
  double jitter = 1.0;
  std::chrono::milliseconds resetAfter{std::chrono::minutes(2)};
};

// Returns a uniformly distributed value in [0, 1). Thread-safe default.
double defaultRandom01();

class Backoff {
 public:
  Backoff(Clock& clock, BackoffOptions opts, std::function<double()> random01 = defaultRandom01)
      : clock_(clock), opts_(opts), random01_(std::move(random01)), base_(opts.initial) {}

  std::chrono::milliseconds next() {
    const auto now = clock_.now();
    if (last_ && now - *last_ > opts_.resetAfter)
      base_ = opts_.initial;
    last_ = now;
    const auto base = base_;
    const auto grown = std::chrono::milliseconds(
        static_cast<long long>(static_cast<double>(base_.count()) * opts_.factor));
    base_ = grown > opts_.max ? opts_.max : grown;
    auto d = base + std::chrono::milliseconds(static_cast<long long>(
                        static_cast<double>(base.count()) * opts_.jitter * random01_()));
    return d > opts_.max ? opts_.max : d;
  }
  void reset() {
    base_ = opts_.initial;
    last_.reset();
  }

 private:
  Clock& clock_;
  BackoffOptions opts_;
  std::function<double()> random01_;
  std::chrono::milliseconds base_;
  std::optional<Clock::SteadyTime> last_;
};

}  // namespace exitrec
