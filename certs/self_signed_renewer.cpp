#include "certs/self_signed_renewer.h"

#include <spdlog/spdlog.h>

namespace exitrec {

SelfSignedTlsRenewer::SelfSignedTlsRenewer(KubeClient& client, Clock& clock,
                                           SelfSignedOptions options, RenewerTiming timing)
    : client_(client), clock_(clock), options_(std::move(options)), timing_(timing) {}

Result<std::unique_ptr<SelfSignedTlsRenewer>> SelfSignedTlsRenewer::start(KubeClient& client,
                                                                          Clock& clock,
                                                                          SelfSignedOptions options,
                                                                          RenewerTiming timing) {
  std::unique_ptr<SelfSignedTlsRenewer> r(
      new SelfSignedTlsRenewer(client, clock, std::move(options), timing));
  auto first = syncSelfSignedTls(r->client_, r->clock_, r->options_);
  if (!first.ok())
    return first.error();
  {
    std::lock_guard<std::mutex> g(r->mu_);
    ++r->passes_;
  }
  r->thread_ = std::thread([p = r.get()] { p->loop(); });
  return r;
}

SelfSignedTlsRenewer::~SelfSignedTlsRenewer() {
  stop();
}

void SelfSignedTlsRenewer::stop() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable())
    thread_.join();
}

std::uint64_t SelfSignedTlsRenewer::passes() const {
  std::lock_guard<std::mutex> g(mu_);
  return passes_;
}

std::uint64_t SelfSignedTlsRenewer::failures() const {
  std::lock_guard<std::mutex> g(mu_);
  return failures_;
}

bool SelfSignedTlsRenewer::runPass() {
  auto r = syncSelfSignedTls(client_, clock_, options_);
  if (!r.ok()) {
    spdlog::warn("webhook TLS: sync of Secret {}/{} failed: {} (retrying in {} s)",
                 options_.namespace_, options_.secretName, r.error().describe(),
                 std::chrono::duration_cast<std::chrono::seconds>(timing_.retryInterval).count());
  } else if (r->filesWritten) {
    spdlog::info("webhook TLS: serving certificate files updated from Secret {}/{}",
                 options_.namespace_, options_.secretName);
  }
  return r.ok();
}

void SelfSignedTlsRenewer::loop() {
  bool lastOk = true;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    const auto wait = lastOk ? timing_.resyncInterval : timing_.retryInterval;
    if (clock_.waitUntil(lock, cv_, clock_.now() + wait, [this] { return stopping_; }))
      break;
    lock.unlock();
    lastOk = runPass();
    lock.lock();
    ++passes_;
    if (!lastOk)
      ++failures_;
  }
}

}  // namespace exitrec
