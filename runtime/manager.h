#pragma once
// Manager: runs the operator's components as Runnables, in the shape of
// controller-runtime's manager (pkg/manager/internal.go: runnables grouped as
// always-on and leader-election-only, started in order, leader-only ones once
// elected; lost leadership ends the process without a graceful shutdown).
//
// - add(r, kAlways): started by run(), in the order added, before the election.
// - add(r, kLeaderOnly): started in the order added once this process leads
//   (at once when there is no election).
// - run() then waits on one event queue (stop request, leadership gained,
//   leadership lost) and on the lease's validity deadline, through the
//   injected clock: nothing is polled.
// - A stop request shuts down in reverse: leader-only runnables, the election
//   (which releases the lease), then the always-on ones, all within one
//   shutdown deadline. run() returns kStopped.
// - Leadership lost without a stop request (the elector gave up, or the lease
//   was not renewed by its deadline while the elector hangs) returns
//   kLeadershipLost at once WITHOUT stopping anything: the caller exits the
//   process (the lease fence already refuses every leader-only write).
// - A runnable that fails to start stops the ones already started and
//   returns kStartFailed with its error.
//
// Runnables and the Election must outlive run(). run() is called once, from
// one thread; requestStop() and leading() from any thread.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "runtime/runnable.h"
#include "runtime/stop_source.h"

namespace exitrec {

// What the manager needs of leader election (runtime/lease_election.h adapts
// k8sclient's LeaderElector and LeaseFence).
class Election {
 public:
  virtual ~Election() = default;
  // Starts campaigning on its own thread; the callbacks run on that thread and
  // only post events.
  virtual Status start(std::function<void()> onStartedLeading,
                       std::function<void()> onStoppedLeading) = 0;
  // Gives leadership up (releasing the lease) and joins the thread.
  virtual void stop() = 0;
  // While leading: the time after which leadership must be presumed lost even
  // though no callback came (the renewal hangs). nullopt when not leading.
  virtual std::optional<Clock::SteadyTime> leadingUntil() const = 0;
};

class Manager {
 public:
  enum class Scope { kAlways, kLeaderOnly };

  struct Result {
    enum class Kind { kStopped, kLeadershipLost, kStartFailed };
    Kind kind = Kind::kStopped;
    std::string reason;   // the stop request's reason, or what was lost/failed
    bool drained = true;  // every stop() finished its in-flight work
  };

  // `election` may be null: this process leads from the start.
  Manager(Clock& clock, Election* election, std::chrono::milliseconds shutdownTimeout);
  ~Manager();

  void add(Runnable& runnable, Scope scope);

  // Runs until `stop` is requested or leadership is lost (see above).
  Result run(StopSource& stop);

  // True between the leader-only runnables' start and their stop.
  bool leading() const;

 private:
  enum class Event { kStop, kStartedLeading, kStoppedLeading };

  void post(Event e);
  Status startAll(std::vector<Runnable*>& group, std::vector<Runnable*>& started);
  bool stopAll(std::vector<Runnable*>& started, Clock::SteadyTime deadline);
  Result shutdown(Result result);

  Clock& clock_;
  Election* election_;
  std::chrono::milliseconds shutdownTimeout_;
  std::vector<Runnable*> always_;
  std::vector<Runnable*> leaderOnly_;
  std::vector<Runnable*> startedAlways_;
  std::vector<Runnable*> startedLeaderOnly_;
  bool electionStarted_ = false;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> events_;
  bool leading_ = false;
};

}  // namespace exitrec
