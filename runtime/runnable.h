#pragma once
// Runnable: one component of the operator process, run by the Manager
// (runtime/manager.h): the metrics and health servers, the webhook, the
// informer, the workers, the pod-annotation channel, the history sweep.
//
// Contract:
// - start() is called once. It starts the component's own threads and returns
//   once the component runs (ports bound, watches started). An error means the
//   component did not start and will not be stopped.
// - stop() is called once, only after a successful start(), from the thread
//   that called start(). It waits for in-flight work until `deadline` at most
//   and returns false when some work was handed back unfinished.
// - Neither blocks on anything but the component's own work and I/O.

#include <functional>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/result.h"

namespace exitrec {

class Runnable {
 public:
  virtual ~Runnable() = default;
  virtual std::string_view name() const = 0;
  virtual Status start() = 0;
  virtual bool stop(Clock::SteadyTime deadline) = 0;
};

// A Runnable from two functions, for components whose start/stop are plain
// member calls. `stop` may be empty (nothing to stop).
class FunctionRunnable final : public Runnable {
 public:
  using StartFn = std::function<Status()>;
  using StopFn = std::function<bool(Clock::SteadyTime deadline)>;
  FunctionRunnable(std::string name, StartFn start, StopFn stop)
      : name_(std::move(name)), start_(std::move(start)), stop_(std::move(stop)) {}

  std::string_view name() const override { return name_; }
  Status start() override { return start_ ? start_() : Status(); }
  bool stop(Clock::SteadyTime deadline) override { return stop_ ? stop_(deadline) : true; }

 private:
  std::string name_;
  StartFn start_;
  StopFn stop_;
};

}  // namespace exitrec
