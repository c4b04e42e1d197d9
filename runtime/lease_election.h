#pragma once
// LeaseElection: the Manager's Election over k8sclient's LeaderElector, with
// the LeaseFence that leader-only writes check (k8sclient/leadership_gate.h).
// leadingUntil() is the fence's deadline, so the manager notices a renewal
// that hangs past the renew deadline without polling.

#include <memory>
#include <thread>

#include "k8sclient/leader_election.h"
#include "k8sclient/leadership_gate.h"
#include "runtime/manager.h"

namespace exitrec {

class LeaseElection final : public Election {
 public:
  // `lock`, `clock` and `fence` must outlive this object. The config's fence
  // and leadership callbacks are set here; onNewLeader is kept.
  LeaseElection(LeaseLock& lock, Clock& clock, LeaseFence& fence, LeaderElectionConfig config);
  ~LeaseElection() override;

  Status start(std::function<void()> onStartedLeading,
               std::function<void()> onStoppedLeading) override;
  void stop() override;
  std::optional<Clock::SteadyTime> leadingUntil() const override;

 private:
  LeaseLock& lock_;
  Clock& clock_;
  LeaseFence& fence_;
  LeaderElectionConfig config_;
  std::unique_ptr<LeaderElector> elector_;
  std::thread thread_;
};

}  // namespace exitrec
