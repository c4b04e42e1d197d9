#pragma once
// Configuration of `exit-reconciler run`: every flag, its environment form
// (EXIT_RECONCILER_<FLAG_IN_CAPS>) and its validation. Pure apart from the
// token-file check; errors are kInvalidInput naming the flag and the value.

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "controller/cli.h"
#include "controller/correction.h"

namespace exitrec {

struct RunConfig {
  std::string kubeconfig;
  std::string namespaceName;  // "" = all namespaces
  bool allWorkflows = false;
  int workers = 2;
  CorrectionConfig correction;
  bool kfpReportExplicit = false;
  std::string kfpApiUrl;
  std::string kfpTokenFile;
  bool leaderElect = true;
  std::string leaseName = "kfp-exit-reconciler";
  std::string leaseNamespace;  // "" = the controller's own namespace
  std::string leaderIdentity;  // "" = hostname + random suffix
  std::chrono::milliseconds leaseDuration{std::chrono::seconds(15)};
  std::chrono::milliseconds renewDeadline{std::chrono::seconds(10)};
  std::chrono::milliseconds retryPeriod{std::chrono::seconds(2)};
  std::string healthAddr = ":8081";
  std::string metricsAddr = ":8080";
  std::string logFormat = "text";  // text | json
  std::string logLevel = "info";
  // Cap of the per-key retry backoff (KFP outages, conflicts): the work
  // queue's exponential limiter never waits longer than this.
  std::chrono::milliseconds maxRetryDelay{std::chrono::minutes(5)};
  std::chrono::milliseconds shutdownTimeout{std::chrono::seconds(20)};
  // Server-side lifetime of each watch, random in [watchTimeout, 2 x
  // watchTimeout) (client-go's reflector: 5 to 10 min). A watch silent past
  // its lifetime + min(60 s, watchTimeout / 5) is stalled and restarted.
  std::chrono::milliseconds watchTimeout{std::chrono::minutes(5)};
  bool metricsNamespaceLabel = false;
  // Exit-task status webhook (issue 5, webhook/webhook_runtime.h); off when
  // webhookAddr is empty.
  std::string webhookAddr;
  std::string webhookCertFile;
  std::string webhookKeyFile;
  std::chrono::milliseconds webhookDeadline{std::chrono::seconds(2)};
  bool webhookSelfSigned = false;
  std::string webhookSecretName = "kfp-exit-reconciler-webhook-tls";
  std::string webhookServiceName = "kfp-exit-reconciler";
  std::string webhookConfigurationName = "kfp-exit-reconciler";
  // Pod-annotation channel (controller/pod_annotations/pod_watch.h): the leader annotates Pending
  // exit-task pods.
  bool podAnnotations = false;
  // Bound on a Workflow's decoded status.compressedNodes (tenant-writable: a
  // few KiB of gzip can inflate to any size). A run over it is not evaluable
  // and skipped. Sizing in docs/controller.md ("Hostile input").
  std::size_t maxNodeStatusBytes = kDefaultMaxNodeStatusBytes;
  static constexpr std::size_t kDefaultMaxNodeStatusBytes = std::size_t{8} << 20;  // 8 MiB
  // Run-history sweep (controller/history_sweep.h): leader only; 0 = off.
  // Every period, backfill --apply over runs KFP lists as SUCCEEDED that
  // finished within the window. Needs --kfp-api-url.
  std::chrono::milliseconds historySweepPeriod{0};
  std::chrono::milliseconds historySweepWindow{std::chrono::hours(48)};
  // Namespaces the sweep lists (multi-user KFP needs them); default: the
  // --namespace watched, else every namespace (single-user KFP only).
  std::vector<std::string> historySweepNamespaces;

  // The informer's label selector.
  std::string labelSelector() const;
};

// The flag table (used for parsing and --help).
cli::FlagParser runFlagParser();

// Parses and validates. `args` starts after the subcommand name.
Result<RunConfig> parseRunConfig(const cli::ParsedArgs& args);

}  // namespace exitrec
