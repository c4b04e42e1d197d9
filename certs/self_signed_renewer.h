#pragma once
// SelfSignedTlsRenewer: runs syncSelfSignedTls (self_signed_bootstrap.h) on
// every replica, once at start() and then every `resyncInterval` (after an
// error, every `retryInterval`), so the serving certificate is renewed while
// the process runs and every replica picks up the pair another one stored.
//
//   auto r = SelfSignedTlsRenewer::start(client, clock, options, {});
//   if (!r.ok()) ...            // the first pass failed: no certificate to serve
//   ...
//   r.value()->stop();          // before the KubeClient goes away
//
// A replica that lags behind serves its previous certificate, which the
// caBundle still trusts (same CA, or the previous CA kept in ca.crt), until
// its next pass. Errors after the first pass are logged and retried; the
// files keep the last good pair.
// Thread-safety: start/stop from the owner thread; passes run on one thread.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

#include "certs/self_signed_bootstrap.h"
#include "common/clock.h"
#include "common/result.h"

namespace exitrec {

class KubeClient;

struct RenewerTiming {
  std::chrono::milliseconds resyncInterval{std::chrono::minutes(1)};
  std::chrono::milliseconds retryInterval{std::chrono::seconds(10)};
};

class SelfSignedTlsRenewer {
 public:
  // Runs the first pass synchronously and returns its error, if any.
  // `client` and `clock` must outlive the renewer.
  static Result<std::unique_ptr<SelfSignedTlsRenewer>> start(KubeClient& client, Clock& clock,
                                                             SelfSignedOptions options,
                                                             RenewerTiming timing);
  ~SelfSignedTlsRenewer();
  SelfSignedTlsRenewer(const SelfSignedTlsRenewer&) = delete;
  SelfSignedTlsRenewer& operator=(const SelfSignedTlsRenewer&) = delete;

  void stop();
  // Passes completed since start (successful or not), for tests.
  std::uint64_t passes() const;
  // Failed passes since start.
  std::uint64_t failures() const;

 private:
  SelfSignedTlsRenewer(KubeClient& client, Clock& clock, SelfSignedOptions options,
                       RenewerTiming timing);
  void loop();
  bool runPass();

  KubeClient& client_;
  Clock& clock_;
  const SelfSignedOptions options_;
  const RenewerTiming timing_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::uint64_t passes_ = 0;
  std::uint64_t failures_ = 0;
  std::thread thread_;
};

}  // namespace exitrec
