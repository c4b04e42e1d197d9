#pragma once
// Leader election on a coordination.k8s.io/v1 Lease with client-go's
// algorithm (tools/leaderelection):
// - tryAcquireOrRenew: a leader whose lease is still valid renews with an
//   optimistic PUT; otherwise GET (NotFound -> create); another holder's
//   lease that has not expired -> give up this round. Expiry is judged on the
//   LOCAL clock: the local time when the record last changed + its
//   leaseDurationSeconds, never the remote renewTime (clock-skew safe).
//   Takeover increments leaseTransitions; renewal keeps acquireTime and
//   leaseTransitions. Every write is guarded by resourceVersion, so racing
//   contenders are safe: the loser gets 409 and retries next round.
// - Acquire retries every RetryPeriod (jittered by 1.2). Once leading,
//   renew every RetryPeriod; if no renewal succeeds within RenewDeadline,
//   leadership is lost: onStoppedLeading runs and run() returns.
// - stop(): graceful; with releaseOnCancel the lease is released (holder ""
//   and leaseDurationSeconds 1) so a successor takes over at once.
// - Fencing (leadership_gate.h): with a LeaseFence in the config, every
//   successful acquire or renew that started at S grants the fence until
//   S + RenewDeadline; the fence is revoked before onStoppedLeading and before
//   the release. Leader-only writes check the fence, so they stop when the
//   deadline passes even if this thread is blocked in a hung lease call.
// - Lease calls: give the LeaseLock a client whose per-request timeout is
//   leaseRequestTimeout() (never the shared client's longer timeout), and an
//   attempt makes no further call once RenewDeadline has passed since it
//   began, so one round stays within the renew deadline plus one request.
//
// Threading: run() blocks the calling thread; callbacks run on it and must
// return promptly (start/stop your work on your own threads). stop(),
// isLeader() and leader() are thread-safe.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/result.h"
#include "k8sclient/kube_client.h"

namespace exitrec {

class LeaseFence;  // k8sclient/leadership_gate.h

struct LeaderElectionRecord {
  std::string holderIdentity;
  int leaseDurationSeconds = 0;
  Clock::WallTime acquireTime{};
  Clock::WallTime renewTime{};
  int leaseTransitions = 0;

  bool operator==(const LeaderElectionRecord&) const = default;
};

struct ObservedLease {
  LeaderElectionRecord record;
  std::string resourceVersion;
};

// Storage for the election record. Errors use common/result.h codes
// (kNotFound from get when absent; kConflict on a stale resourceVersion).
class LeaseLock {
 public:
  virtual ~LeaseLock() = default;
  virtual Result<ObservedLease> get() = 0;
  virtual Result<ObservedLease> create(const LeaderElectionRecord& rec) = 0;
  virtual Result<ObservedLease> update(const LeaderElectionRecord& rec,
                                       const std::string& resourceVersion) = 0;
  virtual std::string describe() const = 0;
};

// A Lease object through the API. Thread-compatible (used by one elector).
class KubeLeaseLock final : public LeaseLock {
 public:
  KubeLeaseLock(KubeClient& client, std::string ns, std::string name)
      : client_(client), ns_(std::move(ns)), name_(std::move(name)) {}
  Result<ObservedLease> get() override;
  Result<ObservedLease> create(const LeaderElectionRecord& rec) override;
  Result<ObservedLease> update(const LeaderElectionRecord& rec,
                               const std::string& resourceVersion) override;
  std::string describe() const override { return "lease " + ns_ + "/" + name_; }

 private:
  KubeClient& client_;
  std::string ns_;
  std::string name_;
  nlohmann::json last_;  // last object seen, so a PUT keeps labels/annotations
};

// Lease JSON <-> record (MicroTime "2026-11-28T13:12:12.123456Z").
nlohmann::json leaseSpecJson(const LeaderElectionRecord& rec);
Result<LeaderElectionRecord> parseLeaseSpec(const nlohmann::json& lease);
std::string formatMicroTime(Clock::WallTime t);
std::optional<Clock::WallTime> parseMicroTime(std::string_view s);

struct LeaderElectionConfig {
  std::string identity;  // unique per process, e.g. the pod name
  std::chrono::milliseconds leaseDuration{std::chrono::seconds(15)};
  std::chrono::milliseconds renewDeadline{std::chrono::seconds(10)};
  std::chrono::milliseconds retryPeriod{std::chrono::seconds(2)};
  bool releaseOnCancel = true;
  // Optional; must outlive the elector (see "Fencing" above).
  LeaseFence* fence = nullptr;
  std::function<void()> onStartedLeading;
  std::function<void()> onStoppedLeading;
  std::function<void(const std::string& identity)> onNewLeader;
};

// LeaseDuration > RenewDeadline > 1.2 x RetryPeriod, all > 0, identity set.
Status validateLeaderElectionConfig(const LeaderElectionConfig& c);

// Per-request timeout for lease calls: controller-runtime's
// max(RenewDeadline / 2, 1 s) (reference: kube-api-client.md section 2.5),
// capped at RenewDeadline.
std::chrono::milliseconds leaseRequestTimeout(std::chrono::milliseconds renewDeadline);

class LeaderElector {
 public:
  // `lock` and `clock` must outlive the elector. The config must be valid.
  LeaderElector(LeaseLock& lock, Clock& clock, LeaderElectionConfig config,
                std::function<double()> random01 = nullptr);

  // Campaigns, leads, and returns when leadership is lost or stop() is called.
  void run();
  void stop();
  // True between onStartedLeading and onStoppedLeading.
  bool isLeader() const;
  std::string leader() const;  // last observed holder ("" if none)

  // One round of the algorithm (exposed for tests). True if we hold the lease.
  bool tryAcquireOrRenew();

 private:
  bool sleepFor(std::chrono::milliseconds d);  // false if stopped
  bool stopped() const;
  void observe(const LeaderElectionRecord& rec, const std::string& rv);
  void release();

  LeaseLock& lock_;
  Clock& clock_;
  LeaderElectionConfig config_;
  std::function<double()> random01_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
  std::optional<LeaderElectionRecord> observed_;
  std::string observedRv_;
  Clock::SteadyTime observedTime_{};
  std::string reportedLeader_;
  std::atomic<bool> leading_{false};
};

}  // namespace exitrec
