#include "k8sclient/reflector.h"

#include <spdlog/spdlog.h>

#include <random>

namespace exitrec {

double defaultRandom01() {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard<std::mutex> g(mu);
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

Reflector::Reflector(KubeClient& client, Clock& clock, ReflectorOptions opts, ReflectorSink& sink,
                     ReflectorObserver* observer)
    : client_(client),
      clock_(clock),
      opts_(std::move(opts)),
      sink_(sink),
      observer_(observer),
      backoff_(clock, opts_.backoff, opts_.random01) {}

Reflector::~Reflector() {
  stop();
}

void Reflector::start() {
  std::lock_guard<std::mutex> g(mu_);
  if (thread_.joinable() || stopped_)
    return;
  thread_ = std::thread([this] { run(); });
}

void Reflector::stop() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stopped_ = true;
  }
  cv_.notify_all();
  cancel_.cancel();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id())
    thread_.join();
}

std::string Reflector::lastSyncResourceVersion() const {
  std::lock_guard<std::mutex> g(mu_);
  return lastRv_;
}

std::map<std::string, int> Reflector::restartCounts() const {
  std::lock_guard<std::mutex> g(mu_);
  return restarts_;
}

void Reflector::active() {
  std::lock_guard<std::mutex> g(mu_);
  lastActivity_ = clock_.now();
}

Status Reflector::health() const {
  const std::string what = opts_.resource.plural + " watch";
  if (!synced_)
    return Error(ErrorCode::kTransient, what + ": not synced yet");
  Clock::SteadyTime last;
  {
    std::lock_guard<std::mutex> g(mu_);
    last = lastActivity_;
  }
  const auto silent = clock_.now() - last;
  if (silent > opts_.maxWatchTimeout + opts_.idleTimeoutMargin) {
    return Error(
        ErrorCode::kTransient,
        what + ": no list, event, bookmark or normal close for " +
            std::to_string(std::chrono::duration_cast<std::chrono::seconds>(silent).count()) +
            " s (stalled)");
  }
  return Status();
}

void Reflector::restart(std::string_view reason) {
  {
    std::lock_guard<std::mutex> g(mu_);
    ++restarts_[std::string(reason)];
  }
  if (observer_)
    observer_->onWatchRestart(opts_.resource.plural, reason);
}

bool Reflector::backoffWait(std::chrono::milliseconds atLeast) {
  auto d = backoff_.next();
  if (d < atLeast)
    d = atLeast;
  if (observer_)
    observer_->onBackoff(opts_.resource.plural, d);
  std::unique_lock<std::mutex> lock(mu_);
  clock_.waitUntil(lock, cv_, clock_.now() + d, [this] { return stopped_; });
  return !stopped_;
}

bool Reflector::listOnce() {
  const auto started = clock_.now();
  ListOptions lo;
  lo.labelSelector = opts_.labelSelector;
  lo.fieldSelector = opts_.fieldSelector;
  lo.limit = opts_.pageSize;
  lo.resourceVersion = "";  // consistent read; honours limit/continue
  sink_.beginReplace();
  auto res = client_.list(opts_.resource, opts_.namespaceName, lo, [&](std::string_view raw) {
    auto meta = readObjectMeta(raw);
    if (!meta)
      return Status(meta.error());
    sink_.replaceItem(*meta, raw);
    return Status();
  });
  if (!res) {
    sink_.abortReplace();
    spdlog::warn("k8sclient: list {} failed: {}", opts_.resource.plural, res.error().describe());
    return false;
  }
  sink_.endReplace();
  {
    std::lock_guard<std::mutex> g(mu_);
    lastRv_ = res->resourceVersion;
  }
  active();
  ++lists_;
  synced_ = true;
  if (observer_) {
    observer_->onListed(
        opts_.resource.plural, res->items,
        std::chrono::duration_cast<std::chrono::milliseconds>(clock_.now() - started));
  }
  return true;
}

void Reflector::run() {
  bool needList = true;
  while (true) {
    {
      std::lock_guard<std::mutex> g(mu_);
      if (stopped_)
        return;
    }
    if (needList) {
      if (!listOnce()) {
        restart("list_error");
        if (!backoffWait())
          return;
        continue;
      }
      needList = false;
    }

    WatchOptions wo;
    wo.resourceVersion = lastSyncResourceVersion();
    wo.labelSelector = opts_.labelSelector;
    wo.fieldSelector = opts_.fieldSelector;
    wo.allowWatchBookmarks = true;
    const auto span = (opts_.maxWatchTimeout - opts_.minWatchTimeout).count();
    wo.timeoutSeconds =
        opts_.minWatchTimeout +
        std::chrono::seconds(static_cast<long long>(static_cast<double>(span) * opts_.random01()));
    wo.idleTimeout = std::chrono::milliseconds(wo.timeoutSeconds + opts_.idleTimeoutMargin);

    const auto started = clock_.now();
    auto res = client_.watch(
        opts_.resource, opts_.namespaceName, wo,
        [&](WatchEventType type, std::string_view raw) {
          active();
          if (observer_)
            observer_->onWatchEvent(opts_.resource.plural, watchEventTypeName(type));
          auto meta = readObjectMeta(raw);
          if (!meta) {
            spdlog::warn("k8sclient: watch {}: skipping event without metadata: {}",
                         opts_.resource.plural, meta.error().message);
            return true;
          }
          if (type != WatchEventType::kBookmark)
            sink_.watchEvent(type, *meta, raw);
          if (!meta->resourceVersion.empty()) {
            std::lock_guard<std::mutex> g(mu_);
            lastRv_ = meta->resourceVersion;
          }
          return true;
        },
        cancel_);

    if (!res) {
      const Error& e = res.error();
      if (e.code == ErrorCode::kCancelled)
        return;
      if (e.code == ErrorCode::kGone) {
        spdlog::info("k8sclient: watch {} from RV {}: 410 Gone; relisting", opts_.resource.plural,
                     wo.resourceVersion);
        restart("gone_http");
        needList = true;
      } else {
        spdlog::warn("k8sclient: watch {} failed: {}", opts_.resource.plural, e.describe());
        restart("watch_error");
        // Auth and validation failures may mean our view is wrong: relist.
        needList = !(e.code == ErrorCode::kTransient || e.code == ErrorCode::kTooManyRequests);
      }
      if (!backoffWait(e.retryAfter.value_or(std::chrono::seconds(0))))
        return;
      continue;
    }

    const WatchEnd& end = *res;
    if (end.end == StreamEnd::kCancelled)
      return;
    if (end.errorEvent && observer_)
      observer_->onWatchEvent(opts_.resource.plural, "ERROR");
    if (end.streamError) {
      const Error& e = *end.streamError;
      if (e.code == ErrorCode::kGone) {
        spdlog::info("k8sclient: watch {}: ERROR event 410; relisting", opts_.resource.plural);
        restart("gone_event");
        needList = true;
      } else {
        spdlog::warn("k8sclient: watch {} ended with an error: {}", opts_.resource.plural,
                     e.describe());
        restart("error_event");
        needList = !(e.code == ErrorCode::kTransient || e.code == ErrorCode::kTooManyRequests);
      }
      if (!backoffWait(e.retryAfter.value_or(std::chrono::seconds(0))))
        return;
      continue;
    }
    if (end.end == StreamEnd::kIdleTimeout) {
      // Silent past the timeoutSeconds the server promised to honour.
      spdlog::warn("k8sclient: watch {}: no data for {} ms; the server never closed it (stalled)",
                   opts_.resource.plural, wo.idleTimeout.count());
      restart("idle_timeout");
      continue;
    }
    if (end.events == 0 && clock_.now() - started < opts_.shortWatch) {
      // Closed at once with nothing: reconnecting without a pause would hammer the server.
      restart("short_watch");
      if (!backoffWait())
        return;
      continue;
    }
    active();
    if (observer_)
      observer_->onWatchClosedNormally(opts_.resource.plural);
    restart("closed");
  }
}

}  // namespace exitrec
