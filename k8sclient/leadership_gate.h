#pragma once
// Fencing for leader-only writes.
//
// Kubernetes Leases give no server-side fencing token, so a deposed leader
// must stop itself. client-go bounds each renewal by RenewDeadline, and a
// rival takes over no sooner than LeaseDuration after it last saw our record
// change (tools/leaderelection/leaderelection.go, tryAcquireOrRenew), so a
// renewal sent at time S keeps us safe until S + LeaseDuration on the rival's
// clock. The fence is therefore valid until S + RenewDeadline on OUR clock:
// the margin LeaseDuration - RenewDeadline (5 s by default) absorbs clock-rate
// skew and a write already on the wire. This is stricter than client-go's
// elector, which measures RenewDeadline from the start of the current round
// (a retry period after the last success): the fence may close up to one
// retry period earlier, which is deliberate (client-go itself documents that
// it does not fence).
//
// - LeadershipGate: asked immediately before every leader-only write.
// - LeaseFence: the gate LeaderElector drives. It closes by itself when the
//   clock passes the granted deadline, even while the elector is blocked in a
//   hung lease call, and for good once revoked (leadership lost or given up).
// - FencedTransport: an HttpTransport decorator that refuses every request
//   that is not a read (GET/HEAD) while the gate is closed, so a reconcile
//   already in flight cannot PATCH, report to KFP or record an Event after the
//   lease is lost. Streams (watches) are reads and pass.
//
// A refused write is Error{kCancelled} naming the lease and the request.
// Thread-safety: every method may be called from any thread.

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/result.h"
#include "k8sclient/http_transport.h"

namespace exitrec {

class LeadershipGate {
 public:
  virtual ~LeadershipGate() = default;
  // Ok when this process may write now; else the reason as kCancelled.
  virtual Status mayWrite() const = 0;
};

class LeaseFence final : public LeadershipGate {
 public:
  enum class State {
    kNotLeading,  // never granted
    kValid,       // granted and the deadline is ahead
    kExpired,     // granted, but not renewed in time (the elector may be stuck)
    kRevoked,     // closed for good
  };

  // `clock` must outlive the fence; `lease` names it in errors ("ns/name").
  LeaseFence(const Clock& clock, std::string lease);

  // Opens the fence (or extends it) until `validUntil`; ignored once revoked.
  void grant(Clock::SteadyTime validUntil);
  // Closes the fence for good.
  void revoke();

  State state() const;
  // The granted deadline while granted and not revoked (it may have passed:
  // then state() is kExpired); nullopt otherwise.
  std::optional<Clock::SteadyTime> validUntil() const;
  Status mayWrite() const override;

 private:
  const Clock& clock_;
  std::string lease_;
  mutable std::mutex mu_;
  bool granted_ = false;
  bool revoked_ = false;
  Clock::SteadyTime validUntil_{};
};

class FencedTransport final : public HttpTransport {
 public:
  // `gate` must outlive the transport.
  FencedTransport(std::shared_ptr<HttpTransport> inner, const LeadershipGate& gate)
      : inner_(std::move(inner)), gate_(gate) {}

  Result<HttpResponse> send(const HttpRequest& request) override;
  Result<HttpResponse> sendChunked(const HttpRequest& request,
                                   const ChunkCallback& onChunk) override;
  Result<StreamResult> stream(const HttpRequest& request, const LineCallback& onLine,
                              CancelSource& cancel) override;

 private:
  Status admit(const HttpRequest& request) const;
  std::shared_ptr<HttpTransport> inner_;
  const LeadershipGate& gate_;
};

}  // namespace exitrec
