#include "sim/kfp/persistence_agent_sim.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "k8sclient/cpprest_transport.h"
#include "k8sclient/informer.h"
#include "k8sclient/kube_client.h"
#include "k8sclient/rate_limiter.h"
#include "k8sclient/work_queue.h"
#include "sim/kfp/kfp_workflow_fields.h"

namespace exitrec {

using nlohmann::json;

PersistenceAgentSim::PersistenceAgentSim(Options options, ReportFn report)
    : options_(std::move(options)), report_(std::move(report)) {}

PersistenceAgentSim::~PersistenceAgentSim() {
  stop();
}

Clock& PersistenceAgentSim::clock() const {
  return options_.clock != nullptr ? *options_.clock : SystemClock::instance();
}

Status PersistenceAgentSim::start() {
  if (started_)
    return Status::okStatus();
  const std::string& url = options_.kubeApiUrl;
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
    return makeError(
        ErrorCode::kInvalidInput,
        "persistence agent: the Kubernetes API URL must be http(s), got \"" + url + "\"");
  }
  if (!report_)
    return makeError(ErrorCode::kInvalidInput, "persistence agent: no report function");
  auto transport = makeCpprestTransport(TlsOptions{});
  if (!transport)
    return transport.error();
  transport_ = std::shared_ptr<HttpTransport>(std::move(transport).value());
  KubeClientOptions ko;
  ko.userAgent = "persistence_agent/sim";
  client_ = std::make_unique<KubeClient>(
      transport_, url,
      options_.kubeToken.empty() ? TokenSource() : TokenSource::fixed(options_.kubeToken), ko);
  // persistence_worker.go: workqueue.NewItemExponentialFailureRateLimiter(
  // DefaultJobBackOff = 1 s, MaxJobBackOff = 360 s).
  queue_ = std::make_unique<WorkQueue>("Workflow", clock(),
                                       std::make_unique<ItemExponentialFailureRateLimiter>(
                                           options_.defaultJobBackOff, options_.maxJobBackOff));
  ReflectorOptions ro;
  ro.resource = resources::kWorkflows;
  ro.namespaceName = options_.namespaceName;
  Informer<Cached>::Handlers handlers;
  // AddFunc: enqueue; UpdateFunc: enqueue(new); DeleteFunc: enqueueForDelete (Add).
  handlers.onAdd = [this](const std::string& key, const Informer<Cached>::Ptr&) { enqueue(key); };
  handlers.onUpdate = [this](const std::string& key, const Informer<Cached>::Ptr&,
                             const Informer<Cached>::Ptr&) { enqueue(key); };
  handlers.onDelete = [this](const std::string& key, const Informer<Cached>::Ptr&, bool) {
    queue_->add(key);
  };
  informer_ = std::make_unique<Informer<Cached>>(
      *client_, clock(), ro,
      [](const ObjectMeta&, std::string_view raw) -> Result<Cached> { return Cached(raw); },
      std::move(handlers));
  {
    std::lock_guard<std::mutex> g(mu_);
    stopping_ = false;
  }
  informer_->start();
  worker_ = std::thread([this] { workerLoop(); });
  resync_ = std::thread([this] { resyncLoop(); });
  started_ = true;
  return Status::okStatus();
}

void PersistenceAgentSim::stop() {
  if (!started_)
    return;
  {
    std::lock_guard<std::mutex> g(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  informer_->stop();
  queue_->shutDown();
  if (worker_.joinable())
    worker_.join();
  if (resync_.joinable())
    resync_.join();
  started_ = false;
}

bool PersistenceAgentSim::hasSynced() const {
  return informer_ && informer_->hasSynced();
}

PersistenceAgentSim::Stats PersistenceAgentSim::stats() const {
  std::lock_guard<std::mutex> g(statsMu_);
  return stats_;
}

std::size_t PersistenceAgentSim::pending() const {
  if (!queue_)
    return 0;
  return queue_->len() + queue_->waitingLen() + inFlight_.load();
}

void PersistenceAgentSim::enqueue(const std::string& key) {
  // persistence_worker.go enqueue: AddRateLimited (exponential backoff per
  // key until Forget), or Add when requeue delays are not enforced.
  if (options_.enforceRequeueDelays)
    queue_->addRateLimited(key);
  else
    queue_->add(key);
}

void PersistenceAgentSim::resyncLoop() {
  // SharedInformerFactory resync (30 s): UpdateFunc for every cached object.
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    const auto deadline = clock().now() + options_.resyncPeriod;
    clock().waitUntil(lock, cv_, deadline, [this] { return stopping_; });
    if (stopping_)
      break;
    lock.unlock();
    for (const std::string& key : informer_->keys())
      enqueue(key);
    lock.lock();
  }
}

void PersistenceAgentSim::workerLoop() {
  // persistence_worker.go processNextWorkItem.
  while (true) {
    auto key = queue_->get();
    if (!key)
      return;
    ++inFlight_;
    bool transient = false;
    const bool ok = save(*key, transient);
    if (!ok && transient) {
      if (options_.enforceRequeueDelays)
        queue_->addRateLimited(*key);
      else
        queue_->add(*key);
    } else {
      queue_->forget(*key);
    }
    queue_->done(*key);
    --inFlight_;
    std::lock_guard<std::mutex> g(statsMu_);
    ++stats_.saves;
    if (!ok)
      ++(transient ? stats_.transientFailures : stats_.permanentFailures);
  }
}

bool PersistenceAgentSim::save(const std::string& key, bool& transient) {
  transient = false;
  // s.client.Get(namespace, name): the informer's cache; not found is permanent.
  auto cached = informer_->get(key);
  if (!cached)
    return false;
  const json wf = json::parse(*cached, nullptr, /*allow_exceptions=*/false);
  if (wf.is_discarded())
    return false;
  if (!kfpsim::metaMapValue(wf, "labels", kfpsim::kLabelRunId)) {
    std::lock_guard<std::mutex> g(statsMu_);
    ++stats_.skippedNoRunId;
    return true;  // "Skip syncing Workflow: workflow does not have a Run ID label"
  }
  const bool persisted =
      kfpsim::metaMapValue(wf, "labels", kfpsim::kLabelPersistedFinalState).has_value();
  const auto now =
      std::chrono::duration_cast<std::chrono::seconds>(clock().wallNow().time_since_epoch())
          .count();
  if (persisted &&
      now - kfpsim::finishedAtSeconds(wf) < options_.ttlSecondsAfterWorkflowFinish.count()) {
    std::lock_guard<std::mutex> g(statsMu_);
    ++stats_.skippedPersisted;
    return true;  // "Skip syncing Workflow: workflow marked as persisted"
  }
  // pipelineClient.ReportWorkflow(wf): the whole Workflow (ToStringForStore).
  const KfpApiSimulator::RpcResult r = report_(*cached);
  {
    std::lock_guard<std::mutex> g(statsMu_);
    ++stats_.reports;
    stats_.reportedOk += r.ok() ? 1 : 0;
  }
  if (r.ok())
    return true;
  transient = r.code != grpc_code::kInvalidArgument && r.code != grpc_code::kNotFound;
  spdlog::debug("persistence agent (sim): syncing Workflow {}: {} failure: {}", key,
                transient ? "transient" : "permanent", r.message);
  return false;
}

}  // namespace exitrec
