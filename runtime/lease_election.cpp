#include "runtime/lease_election.h"

namespace exitrec {

LeaseElection::LeaseElection(LeaseLock& lock, Clock& clock, LeaseFence& fence,
                             LeaderElectionConfig config)
    : lock_(lock), clock_(clock), fence_(fence), config_(std::move(config)) {
  config_.fence = &fence_;
}

LeaseElection::~LeaseElection() {
  stop();
}

Status LeaseElection::start(std::function<void()> onStartedLeading,
                            std::function<void()> onStoppedLeading) {
  config_.onStartedLeading = std::move(onStartedLeading);
  config_.onStoppedLeading = std::move(onStoppedLeading);
  if (Status v = validateLeaderElectionConfig(config_); !v)
    return v;
  elector_ = std::make_unique<LeaderElector>(lock_, clock_, config_);
  thread_ = std::thread([this] { elector_->run(); });
  return Status();
}

void LeaseElection::stop() {
  if (elector_)
    elector_->stop();  // releases the lease when config.releaseOnCancel
  if (thread_.joinable())
    thread_.join();
}

std::optional<Clock::SteadyTime> LeaseElection::leadingUntil() const {
  return fence_.validUntil();
}

}  // namespace exitrec
