#include "controller/run_command.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <random>

#include "common/clock.h"
#include "controller/controller.h"
#include "controller/controller_metrics.h"
#include "controller/health_server.h"
#include "controller/history_sweep.h"
#include "controller/kfp_client.h"
#include "controller/kfp_history_client.h"
#include "controller/logging.h"
#include "controller/pod_annotations/pod_watch.h"
#include "k8sclient/cpprest_transport.h"
#include "k8sclient/event_recorder.h"
#include "k8sclient/kube_config.h"
#include "k8sclient/leader_election.h"
#include "k8sclient/leadership_gate.h"
#include "k8sclient/metered_transport.h"
#include "runtime/lease_election.h"
#include "runtime/manager.h"
#include "runtime/signals.h"
#include "webhook/webhook_runtime.h"

namespace exitrec {
namespace {

std::string defaultIdentity() {
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0)
    std::snprintf(host, sizeof(host), "unknown");
  std::random_device rd;
  char suffix[17];
  std::snprintf(suffix, sizeof(suffix), "%08x%08x", rd(), rd());
  return std::string(host) + "_" + suffix;
}

std::string leaseNamespace(const RunConfig& config, const RestConfig& rest) {
  if (!config.leaseNamespace.empty())
    return config.leaseNamespace;
  return rest.namespaceName.empty() ? "default" : rest.namespaceName;
}

std::chrono::milliseconds remaining(Clock& clock, Clock::SteadyTime deadline) {
  return std::max(std::chrono::milliseconds(0),
                  std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock.now()));
}

}  // namespace

int runController(const RunConfig& config, StopSource& stop, const RunHooks& hooks) {
  Clock& clock = SystemClock::instance();
  // Every Workflow read in this process (informer, workers, webhook) obeys it.
  setMaxDecompressedNodeBytes(config.maxNodeStatusBytes);

  auto rest = loadRestConfig(config.kubeconfig);
  if (!rest) {
    spdlog::error("Kubernetes configuration: {}", rest.error().describe());
    return 1;
  }
  spdlog::info("API server {} (from {})", rest->server, rest->source);

  // The registry exists before anything that records into it; its server is
  // the first runnable.
  auto metricsEndpoint =
      MetricsEndpoint::create({config.metricsAddr, config.leaseName, config.metricsNamespaceLabel,
                               config.correction.exitTaskFailure});
  ControllerMetrics& metrics = metricsEndpoint->metrics();
  metrics.leader(false);

  auto kubeTransport = makeCpprestTransport(rest->tls);
  if (!kubeTransport) {
    spdlog::error("Kubernetes transport: {}", kubeTransport.error().describe());
    return 1;
  }
  auto metered = std::make_shared<MeteredTransport>(
      std::shared_ptr<HttpTransport>(std::move(kubeTransport).value()),
      &metricsEndpoint->transportObserver());
  TokenSource kubeToken;
  if (!rest->token.empty()) {
    kubeToken = TokenSource::fixed(rest->token);
  } else if (!rest->tokenFile.empty()) {
    kubeToken = TokenSource::file(rest->tokenFile, clock);
  }
  // Every replica reads (informer) and serves the webhook through `kube`.
  KubeClient kube(metered, rest->server, kubeToken);

  // Leader-only writes (Workflow patches, Events, pod annotations, KFP
  // reports) go through the lease fence: none leaves this process once the
  // lease is not renewed in time (k8sclient/leadership_gate.h).
  const std::string leaseNs = leaseNamespace(config, *rest);
  std::unique_ptr<LeaseFence> fence;
  std::shared_ptr<HttpTransport> leaderTransport = metered;
  if (config.leaderElect) {
    fence = std::make_unique<LeaseFence>(clock, leaseNs + "/" + config.leaseName);
    leaderTransport = std::make_shared<FencedTransport>(metered, *fence);
  }
  KubeClient leaderKube(leaderTransport, rest->server, kubeToken);

  // Watch lifetimes: [d, 2d) asked of the server; silent past that plus the
  // margin = stalled (k8sclient/reflector.h).
  const auto watchMin = std::chrono::duration_cast<std::chrono::seconds>(config.watchTimeout);
  const auto idleMargin =
      std::min<std::chrono::milliseconds>(std::chrono::seconds(60), config.watchTimeout / 5);
  // Pod-annotation channel (issue 5): leader-only.
  std::unique_ptr<PodAnnotationService> podAnnotations;
  if (config.podAnnotations) {
    PodWatchOptions po;
    po.namespaceName = config.namespaceName;
    po.minWatchTimeout = watchMin;
    po.maxWatchTimeout = 2 * watchMin;
    po.idleTimeoutMargin = idleMargin;
    podAnnotations = std::make_unique<PodAnnotationService>(
        leaderKube, clock, &metricsEndpoint->podAnnotationMetrics(), po);
  }

  // KFP client: direct reporting, or (persistence-agent mode with
  // --kfp-api-url) checking the run state after the agent's re-report.
  std::shared_ptr<HttpTransport> kfpTransport;
  TokenSource kfpToken;
  std::unique_ptr<KfpClient> kfp;
  if (!config.kfpApiUrl.empty()) {
    auto t = makeCpprestTransport(TlsOptions{});
    if (!t) {
      spdlog::error("KFP transport: {}", t.error().describe());
      return 1;
    }
    kfpTransport = std::shared_ptr<HttpTransport>(std::move(t).value());
    if (fence)
      kfpTransport = std::make_shared<FencedTransport>(kfpTransport, *fence);
    kfpToken = config.kfpTokenFile.empty()
                   ? TokenSource()
                   : TokenSource::file(config.kfpTokenFile, clock, std::chrono::seconds(30));
    kfp = std::make_unique<KfpClient>(
        *kfpTransport, kfpToken, KfpClient::Options{config.kfpApiUrl, std::chrono::seconds(30)},
        [&metrics](std::string_view op, int status, double seconds) {
          metrics.kfpRequest(op, status, seconds);
        });
  }

  // Run-history sweep (--kfp-history-sweep): leader only. Reads go through
  // the KFP transport (reads pass the fence); its reports through `kfp`,
  // whose transport is fenced, and the sweep asks the fence before each run.
  std::unique_ptr<KfpHistoryClient> history;
  std::unique_ptr<HistorySweep> sweep;
  if (config.historySweepPeriod.count() > 0 && kfp) {
    history = std::make_unique<KfpHistoryClient>(
        *kfpTransport, kfpToken, KfpHistoryClient::Options{.baseUrl = config.kfpApiUrl});
    HistorySweepOptions so;
    so.period = config.historySweepPeriod;
    so.window = std::chrono::duration_cast<std::chrono::seconds>(config.historySweepWindow);
    so.scan.namespaces = config.historySweepNamespaces;
    so.backfill.evaluate.exitTaskFailure = config.correction.exitTaskFailure;
    so.gate = fence.get();
    // A Workflow still in the cluster is the controller's to correct.
    WorkflowExists exists = [&kube](const std::string& ns,
                                    const std::string& name) -> Result<bool> {
      auto wf = kube.get(resources::kWorkflows, ns, name);
      if (wf)
        return true;
      if (wf.error().code == ErrorCode::kNotFound)
        return false;
      return wf.error();
    };
    sweep = std::make_unique<HistorySweep>(*history, *kfp, std::move(exists), so,
                                           metricsEndpoint->historySweepMetrics(), clock);
  }

  const std::string identity =
      config.leaderIdentity.empty() ? defaultIdentity() : config.leaderIdentity;
  EventRecorder recorder(leaderKube, clock, "exit-reconciler", identity);
  RecorderEventSink events(recorder);
  KubeWorkflowApi workflowApi(leaderKube);

  Controller::Options co;
  co.namespaceName = config.namespaceName;
  co.labelSelector = config.labelSelector();
  co.workers = config.workers;
  co.correction = config.correction;
  co.maxRetryDelay = config.maxRetryDelay;
  co.minWatchTimeout = watchMin;
  co.maxWatchTimeout = 2 * watchMin;
  co.idleTimeoutMargin = idleMargin;
  Controller controller(co, leaderKube, workflowApi, kfp.get(), events, clock, &metrics);

  // Leader election: the lease calls get their own client, with a
  // per-request timeout inside the renew deadline (not the shared 30 s).
  std::unique_ptr<KubeClient> leaseKube;
  std::unique_ptr<KubeLeaseLock> lock;
  std::unique_ptr<LeaseElection> election;
  if (config.leaderElect) {
    KubeClientOptions leaseOptions;
    leaseOptions.requestTimeout = leaseRequestTimeout(config.renewDeadline);
    leaseKube = std::make_unique<KubeClient>(metered, rest->server, kubeToken, leaseOptions);
    lock = std::make_unique<KubeLeaseLock>(*leaseKube, leaseNs, config.leaseName);
    LeaderElectionConfig lc;
    lc.identity = identity;
    lc.leaseDuration = config.leaseDuration;
    lc.renewDeadline = config.renewDeadline;
    lc.retryPeriod = config.retryPeriod;
    lc.releaseOnCancel = true;
    lc.onNewLeader = [](const std::string& who) { spdlog::info("current leader: {}", who); };
    election = std::make_unique<LeaseElection>(*lock, clock, *fence, std::move(lc));
  }
  Manager manager(clock, election.get(), config.shutdownTimeout);

  // Always-on, in this order: metrics, webhook, informer, health (ready once
  // the informer synced), then the hook that tells the sandbox we serve.
  FunctionRunnable metricsServer(
      "metrics server", [&] { return metricsEndpoint->serve(); },
      [&](Clock::SteadyTime) {
        metricsEndpoint->stopServing();
        return true;
      });
  manager.add(metricsServer, Manager::Scope::kAlways);

  // Exit-task status webhook (issue 5): served by every replica, read-only.
  std::unique_ptr<WebhookRuntime> webhook;
  FunctionRunnable webhookServer(
      "webhook",
      [&]() -> Status {
        WebhookConfig wc;
        wc.addr = config.webhookAddr;
        wc.certFile = config.webhookCertFile;
        wc.keyFile = config.webhookKeyFile;
        wc.deadline = config.webhookDeadline;
        wc.selfSigned = config.webhookSelfSigned;
        wc.secretName = config.webhookSecretName;
        wc.serviceName = config.webhookServiceName;
        wc.configurationName = config.webhookConfigurationName;
        wc.namespace_ = rest->namespaceName.empty() ? "default" : rest->namespaceName;
        auto started = WebhookRuntime::start(wc, kube, clock, &metricsEndpoint->webhookMetrics());
        if (!started)
          return Error(started.error().code,
                       "--webhook-addr " + config.webhookAddr + ": " + started.error().message);
        webhook = std::move(started).value();
        return Status();
      },
      [&](Clock::SteadyTime) {
        webhook->stop();
        return true;
      });
  if (!config.webhookAddr.empty())
    manager.add(webhookServer, Manager::Scope::kAlways);

  FunctionRunnable informer(
      "workflow informer",
      [&] {
        controller.startInformer();
        return Status();
      },
      [&](Clock::SteadyTime) {
        controller.stopInformer();
        return true;
      });
  manager.add(informer, Manager::Scope::kAlways);

  // Ready once synced; the leader is also unready while a watch it depends
  // on is stalled (no list, event, bookmark or normal close for longer than a
  // healthy quiet watch stays silent).
  std::unique_ptr<HealthServer> health;
  FunctionRunnable healthServer(
      "health server",
      [&]() -> Status {
        auto started = HealthServer::start(config.healthAddr, [&](std::string& reason) {
          if (!controller.hasSynced()) {
            reason = "workflow cache not synced yet";
            return false;
          }
          if (!manager.leading())
            return true;
          Status s = controller.watchHealth();
          if (s && podAnnotations)
            s = podAnnotations->watch().watchHealth();
          if (!s)
            reason = s.error().message;
          return s.ok();
        });
        if (!started)
          return Error(started.error().code,
                       "--health-addr " + config.healthAddr + ": " + started.error().message);
        health = std::move(started).value();
        return Status();
      },
      [&](Clock::SteadyTime) {
        health.reset();
        return true;
      });
  manager.add(healthServer, Manager::Scope::kAlways);

  FunctionRunnable servingHook(
      "serving hook",
      [&] {
        if (hooks.onServing)
          hooks.onServing(health->port(), metricsEndpoint->port());
        return Status();
      },
      nullptr);
  manager.add(servingHook, Manager::Scope::kAlways);

  // Leader-only, in this order: the leader gauge, the workers, the pods.
  FunctionRunnable leaderGauge(
      "leader gauge",
      [&] {
        if (config.leaderElect)
          spdlog::info("became leader of lease {}/{}", leaseNs, config.leaseName);
        metrics.leader(true);
        return Status();
      },
      [&](Clock::SteadyTime) {
        metrics.leader(false);
        return true;
      });
  manager.add(leaderGauge, Manager::Scope::kLeaderOnly);

  FunctionRunnable workers(
      "workers",
      [&] {
        controller.startWorkers();
        return Status();
      },
      [&](Clock::SteadyTime deadline) {
        return controller.stopWorkers(remaining(clock, deadline));
      });
  manager.add(workers, Manager::Scope::kLeaderOnly);

  FunctionRunnable pods(
      "pod annotations",
      [&] {
        podAnnotations->start();
        return Status();
      },
      [&](Clock::SteadyTime) {
        podAnnotations->stop();
        return true;
      });
  if (podAnnotations)
    manager.add(pods, Manager::Scope::kLeaderOnly);

  // Stopped before the lease is released: its run in flight finishes first.
  FunctionRunnable historySweep(
      "history sweep",
      [&] {
        sweep->start();
        return Status();
      },
      [&](Clock::SteadyTime) {
        sweep->stop();
        return true;
      });
  if (sweep)
    manager.add(historySweep, Manager::Scope::kLeaderOnly);

  spdlog::info(
      "starting: namespace={} selector=\"{}\" workers={} correct={} kfp-report={} "
      "exit-task-failure={} leader-elect={} identity={} kfp-history-sweep={}",
      config.namespaceName.empty() ? "<all>" : config.namespaceName, co.labelSelector,
      config.workers, config.correction.correct, kfpReportModeName(config.correction.kfpReport),
      config.correction.exitTaskFailure == ExitTaskFailurePolicy::kFail ? "fail" : "ignore",
      config.leaderElect, identity,
      sweep ? std::to_string(config.historySweepPeriod.count() / 1000) + "s" : "off");

  const auto began = std::chrono::steady_clock::now();
  const Manager::Result result = manager.run(stop);
  switch (result.kind) {
    case Manager::Result::Kind::kLeadershipLost:
      // Like controller-runtime (pkg/manager/internal.go, OnStoppedLeading:
      // "graceful shutdown is skipped if we lost the leader lock without
      // intending to"): no drain, no release; the fence already refuses every
      // write, and the Deployment restarts the pod.
      if (fence)
        fence->revoke();
      metrics.leader(false);
      spdlog::error(
          "lost leadership of lease {}/{} ({}): exiting at once (in-flight work is "
          "abandoned, not drained)",
          leaseNs, config.leaseName, result.reason);
      spdlog::default_logger()->flush();
      std::_Exit(1);
    case Manager::Result::Kind::kStartFailed:
      return 1;
    case Manager::Result::Kind::kStopped:
      break;
  }
  spdlog::info("stopped in {} ms{}",
               std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - began)
                   .count(),
               result.drained ? "" : " (some in-flight work handed back unfinished)");
  spdlog::default_logger()->flush();
  if (!result.drained) {
    // Workers still blocked in I/O own objects on this stack; leave now.
    std::_Exit(0);
  }
  return 0;
}

int runRun(int argc, char** argv) {
  cli::FlagParser parser = runFlagParser();
  auto args = parser.parse(std::span<char* const>(argv + 1, static_cast<std::size_t>(argc - 1)));
  if (!args)
    return cli::usageError(std::cerr, parser, args.error());
  if (args->helpRequested()) {
    std::cout << parser.help();
    return cli::kExitOk;
  }
  if (!args->positional().empty()) {
    return cli::usageError(std::cerr, parser,
                           Error(ErrorCode::kInvalidInput,
                                 "unexpected argument \"" + args->positional().front() + "\""));
  }
  auto config = parseRunConfig(*args);
  if (!config)
    return cli::usageError(std::cerr, parser, config.error());
  if (Status s = setupLogging(config->logFormat, config->logLevel); !s) {
    return cli::usageError(std::cerr, parser, s.error());
  }
  StopSource stop;
  // Before any other thread exists (see runtime/signals.h).
  auto signals = SignalWatcher::start([&stop](const std::string& name) { stop.requestStop(name); });
  if (!signals) {
    spdlog::error("signal handling: {}", signals.error().describe());
    return 1;
  }
  return runController(*config, stop);
}

}  // namespace exitrec
