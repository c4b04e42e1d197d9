#include "controller/pod_annotations/pod_watch.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "k8sclient/informer.h"
#include "k8sclient/kube_client.h"
#include "k8sclient/work_queue.h"

namespace exitrec {

namespace {

// All the informer keeps per pod.
struct PodBit {
  bool wanted = false;
};

}  // namespace

struct PodWatch::Impl {
  Impl(KubeClient& c, Clock& clk, PodAnnotationChannel& ch, PodWatchOptions o,
       ReflectorObserver* obs)
      : client(c),
        clock(clk),
        channel(ch),
        options(std::move(o)),
        observer(obs),
        queue("pods", clk) {}

  void process(const std::string& key);
  void workerLoop();

  KubeClient& client;
  Clock& clock;
  PodAnnotationChannel& channel;
  PodWatchOptions options;
  ReflectorObserver* observer;
  WorkQueue queue;
  std::unique_ptr<Informer<PodBit>> informer;
  std::vector<std::thread> workers;
  std::atomic<std::uint64_t> handled{0}, injected{0}, failed{0};
};

void PodWatch::Impl::process(const std::string& key) {
  const auto slash = key.find('/');
  const std::string ns = slash == std::string::npos ? std::string() : key.substr(0, slash);
  const std::string name = slash == std::string::npos ? key : key.substr(slash + 1);
  // The pod as it is now: the watch event may be stale, and the informer keeps
  // only one bit of it.
  auto pod = client.get(resources::kPods, ns, name);
  if (!pod.ok()) {
    if (pod.error().code == ErrorCode::kNotFound) {
      queue.forget(key);
      return;
    }
    ++failed;
    spdlog::warn("pod annotations: cannot read pod {}: {}", key, pod.error().describe());
    queue.addRateLimited(key);
    return;
  }
  if (!PodAnnotationChannel::wants(pod.value())) {
    queue.forget(key);
    return;
  }
  ++handled;
  auto r = channel.handle(pod.value());
  if (!r.ok()) {
    ++failed;
    spdlog::warn("pod annotations: pod {}: {} (will retry)", key, r.error().describe());
    queue.addRateLimited(key);
    return;
  }
  if (r.value() == InjectionResult::kInjected)
    ++injected;
  queue.forget(key);
}

void PodWatch::Impl::workerLoop() {
  while (auto key = queue.get()) {
    // The worker's exception barrier: a pod whose handling throws is dropped
    // until its next change (retrying the same object would throw again);
    // the other pods go on.
    try {
      process(*key);
    } catch (const std::exception& e) {
      ++failed;
      queue.forget(*key);
      spdlog::error("pod annotations: pod {}: handling threw ({}); skipped until it changes", *key,
                    e.what());
    } catch (...) {
      ++failed;
      queue.forget(*key);
      spdlog::error("pod annotations: pod {}: handling threw; skipped until it changes", *key);
    }
    queue.done(*key);
  }
}

PodWatch::PodWatch(KubeClient& client, Clock& clock, PodAnnotationChannel& channel,
                   PodWatchOptions options, ReflectorObserver* observer)
    : impl_(std::make_unique<Impl>(client, clock, channel, std::move(options), observer)) {}

PodWatch::~PodWatch() {
  stop();
}

void PodWatch::start() {
  if (impl_->informer)
    return;
  ReflectorOptions ro;
  ro.resource = resources::kPods;
  ro.namespaceName = impl_->options.namespaceName;
  ro.labelSelector = impl_->options.labelSelector;
  ro.pageSize = 200;
  ro.minWatchTimeout = impl_->options.minWatchTimeout;
  ro.maxWatchTimeout = impl_->options.maxWatchTimeout;
  ro.idleTimeoutMargin = impl_->options.idleTimeoutMargin;
  Informer<PodBit>::Transform transform = [](const ObjectMeta&,
                                             std::string_view raw) -> Result<PodBit> {
    // Never throws into the reflector (a throw would fail the whole list).
    try {
      auto pod = nlohmann::json::parse(raw, nullptr, false);
      if (pod.is_discarded())
        return Error(ErrorCode::kInvalidInput, "pod is not valid JSON");
      return PodBit{PodAnnotationChannel::wants(pod)};
    } catch (const std::exception& e) {
      return Error(ErrorCode::kInvalidInput, std::string("pod projection threw: ") + e.what());
    }
  };
  Impl* impl = impl_.get();
  Informer<PodBit>::Handlers handlers;
  handlers.onAdd = [impl](const std::string& key, const Informer<PodBit>::Ptr& bit) {
    if (bit->wanted)
      impl->queue.add(key);
  };
  handlers.onUpdate = [impl](const std::string& key, const Informer<PodBit>::Ptr&,
                             const Informer<PodBit>::Ptr& bit) {
    if (bit->wanted)
      impl->queue.add(key);
  };
  handlers.onDelete = [](const std::string&, const Informer<PodBit>::Ptr&, bool) {};
  impl_->informer = std::make_unique<Informer<PodBit>>(
      impl_->client, impl_->clock, ro, std::move(transform), std::move(handlers), impl_->observer);
  for (int i = 0; i < std::max(1, impl_->options.workers); ++i)
    impl_->workers.emplace_back([impl] { impl->workerLoop(); });
  impl_->informer->start();
}

void PodWatch::stop() {
  if (!impl_->informer)
    return;
  impl_->informer->stop();
  impl_->queue.shutDown();
  for (auto& t : impl_->workers) {
    if (t.joinable())
      t.join();
  }
  impl_->workers.clear();
}

bool PodWatch::hasSynced() const {
  return impl_->informer && impl_->informer->hasSynced();
}

Status PodWatch::watchHealth() const {
  return impl_->informer ? impl_->informer->reflector().health() : Status();
}

PodWatch::Stats PodWatch::stats() const {
  return Stats{impl_->handled.load(), impl_->injected.load(), impl_->failed.load()};
}

PodAnnotationService::PodAnnotationService(KubeClient& client, Clock& clock,
                                           PodAnnotationMetrics* metrics, PodWatchOptions options)
    : provider_(client, clock),
      writer_(client),
      channel_(writer_, provider_, clock, metrics),
      watch_(client, clock, channel_, std::move(options),
             metrics != nullptr ? metrics->watchObserver() : nullptr) {}

PodAnnotationService::~PodAnnotationService() = default;

}  // namespace exitrec
