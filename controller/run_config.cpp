#include "controller/run_config.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <optional>

#include "common/listen_address.h"
#include "controller/annotations.h"
#include "controller/health_server.h"

namespace exitrec {
namespace {

std::string env(std::string_view flag) {
  std::string out = "EXIT_RECONCILER_";
  for (char c : flag)
    out += c == '-' ? '_' : static_cast<char>(std::toupper(c));
  return out;
}

cli::FlagSpec flag(std::string name, std::string valueName, std::string help,
                   std::string defaultValue = {}, std::vector<std::string> choices = {}) {
  cli::FlagSpec s;
  s.envVar = env(name);
  s.name = std::move(name);
  s.valueName = std::move(valueName);
  s.help = std::move(help);
  s.defaultValue = std::move(defaultValue);
  s.choices = std::move(choices);
  return s;
}

cli::FlagSpec toggle(std::string name, std::string help, bool defaultValue) {
  cli::FlagSpec s = flag(std::move(name), "", std::move(help), defaultValue ? "true" : "false");
  s.isSwitch = true;
  return s;
}

Error invalid(const std::string& message) {
  return Error(ErrorCode::kInvalidInput, message);
}

// "8Mi", "512Ki", "1Gi", "8MiB" or a bare number of bytes.
std::optional<std::size_t> parseBytes(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits])))
    ++digits;
  if (digits == 0 || digits > 12)
    return std::nullopt;
  const std::size_t value = std::stoull(std::string(text.substr(0, digits)));
  std::string_view unit = text.substr(digits);
  if (unit.size() == 3 && unit.back() == 'B')
    unit.remove_suffix(1);
  int shift = 0;
  if (unit == "Ki") {
    shift = 10;
  } else if (unit == "Mi") {
    shift = 20;
  } else if (unit == "Gi") {
    shift = 30;
  } else if (!unit.empty()) {
    return std::nullopt;
  }
  if (value > (std::size_t{1} << 40) >> shift)
    return std::nullopt;  // far past any bound; also keeps the shift from overflowing
  return value << shift;
}

}  // namespace

std::string RunConfig::labelSelector() const {
  std::string selector = std::string(lbl::kCompleted) + "=true";
  if (!allWorkflows)
    selector += "," + std::string(lbl::kRunId);
  return selector;
}

cli::FlagParser runFlagParser() {
  cli::FlagParser p("exit-reconciler run", "",
                    "Runs the controller: watches completed KFP runs, records their true outcome, "
                    "corrects mis-reported runs and reports them to KFP. Every flag also has an "
                    "environment form, shown in brackets.");
  p.add(flag("kubeconfig", "PATH",
             "kubeconfig file (default: $KUBECONFIG, in-cluster, then ~/.kube/config)"));
  p.add(flag("namespace", "NS", "watch only this namespace (default: all namespaces)"));
  p.add(toggle("all-workflows",
               "also watch plain Argo workflows (metrics and audit only; never written)", false));
  p.add(flag("workers", "N", "concurrent reconcile workers (1..64)", "2"));
  p.add(toggle("correct",
               "correct mis-reported runs (phase, message, label, KFP); false only observes",
               true));
  p.add(flag("kfp-report", "MODE",
             "how KFP learns the corrected phase: direct (POST to the report API; default when "
             "--kfp-api-url is set) or persistence-agent (drop pipeline/persistedFinalState so "
             "KFP's agent re-reports; the default otherwise)",
             "", {"direct", "persistence-agent"}));
  p.add(flag("kfp-api-url", "URL",
             "KFP API server, e.g. http://ml-pipeline.kubeflow.svc:8888 (required for direct; with "
             "persistence-agent, used to verify the run state after the agent's re-report)"));
  p.add(flag("kfp-token-file", "PATH",
             "bearer token for KFP (projected SA token, audience pipelines.kubeflow.org); re-read "
             "when it changes"));
  p.add(flag("exit-task-failure", "POLICY",
             "a failed exit task on KFP >=2.4: ignore (record, metric, event) or fail (correct "
             "the run)",
             "ignore", {"ignore", "fail"}));
  p.add(toggle("leader-elect", "use a Lease so only one replica acts", true));
  p.add(flag("leader-election-name", "NAME", "Lease name", "kfp-exit-reconciler"));
  p.add(flag("leader-election-namespace", "NS",
             "Lease namespace (default: the controller's own namespace)"));
  p.add(flag("leader-election-identity", "ID", "holder identity (default: hostname_<random>)"));
  p.add(flag("leader-election-lease-duration", "DURATION", "Lease duration", "15s"));
  p.add(flag("leader-election-renew-deadline", "DURATION", "renew deadline", "10s"));
  p.add(flag("leader-election-retry-period", "DURATION", "retry period", "2s"));
  p.add(flag("health-addr", "ADDR", "serve /healthz and /readyz here", ":8081"));
  p.add(flag("metrics-addr", "ADDR", "serve /metrics here", ":8080"));
  p.add(toggle("metrics-namespace-label", "add the run namespace as a metric label", false));
  p.add(flag("log-format", "FORMAT", "text or json", "text", {"text", "json"}));
  p.add(flag("log-level", "LEVEL", "trace, debug, info, warn or error", "info",
             {"trace", "debug", "info", "warn", "error"}));
  p.add(flag("max-retry-delay", "DURATION",
             "longest per-run backoff between retries (KFP outages, conflicts)", "5m"));
  p.add(flag("shutdown-timeout", "DURATION",
             "on SIGTERM, how long in-flight work may take before it is handed back", "20s"));
  p.add(flag("watch-timeout", "DURATION",
             "watch lifetime asked of the API server, randomized in [d, 2d) (whole seconds)",
             "5m"));
  p.add(flag("webhook-addr", "ADDR",
             "serve the exit-task status admission webhook (HTTPS, /mutate-pods) here; "
             "empty: no webhook"));
  p.add(flag("webhook-cert-file", "FILE", "webhook TLS certificate (PEM), re-read on change"));
  p.add(flag("webhook-key-file", "FILE", "webhook TLS private key (PEM), re-read on change"));
  p.add(flag("webhook-deadline", "DURATION",
             "past this, an exit-task pod is admitted unchanged (and counted)", "2s"));
  p.add(toggle("webhook-self-signed",
               "create a CA and serving certificate in --webhook-secret-name, write them to "
               "the cert/key files and patch the webhook configuration's caBundle",
               false));
  p.add(flag("webhook-secret-name", "NAME", "Secret holding the self-signed webhook TLS pair",
             "kfp-exit-reconciler-webhook-tls"));
  p.add(flag("webhook-service-name", "NAME", "Service in front of the webhook (certificate SANs)",
             "kfp-exit-reconciler"));
  p.add(flag("webhook-configuration-name", "NAME", "MutatingWebhookConfiguration to patch",
             "kfp-exit-reconciler"));
  p.add(flag("max-node-status-bytes", "BYTES",
             "largest decoded status.compressedNodes read (e.g. 8Mi); a run over it is not "
             "evaluable and skipped. Keep 40Mi + (workers + 1) x 5 x this under the memory limit",
             "8Mi"));
  p.add(toggle("pod-annotations",
               "watch pods of KFP runs and annotate Pending exit-task pods with the run's true "
               "status (the channel that needs no webhook; leader only)",
               false));
  p.add(flag("kfp-history-sweep", "DURATION",
             "every DURATION, correct mis-reported runs in KFP's history whose Workflow is gone "
             "(backfill --apply over the recent window; leader only; needs --kfp-api-url). "
             "0: off",
             "0"));
  p.add(flag("kfp-history-window", "DURATION",
             "the history sweep looks at runs that finished within this window", "48h"));
  p.add(flag("kfp-history-namespaces", "NS[,NS...]",
             "namespaces the history sweep lists (multi-user KFP lists runs per namespace; "
             "default: --namespace, else all, which only single-user KFP allows)"));
  return p;
}

Result<RunConfig> parseRunConfig(const cli::ParsedArgs& a) {
  RunConfig c;
  c.kubeconfig = a.get("kubeconfig");
  c.namespaceName = a.get("namespace");
  c.allWorkflows = a.getSwitch("all-workflows");
  auto workers = a.getInt("workers", 1, 64);
  if (!workers)
    return workers.error();
  c.workers = static_cast<int>(*workers);
  c.correction.correct = a.getSwitch("correct");
  c.correction.exitTaskFailure = a.get("exit-task-failure") == "fail"
                                     ? ExitTaskFailurePolicy::kFail
                                     : ExitTaskFailurePolicy::kIgnore;
  c.kfpApiUrl = a.get("kfp-api-url");
  while (!c.kfpApiUrl.empty() && c.kfpApiUrl.back() == '/')
    c.kfpApiUrl.pop_back();
  if (!c.kfpApiUrl.empty() && c.kfpApiUrl.rfind("http://", 0) != 0 &&
      c.kfpApiUrl.rfind("https://", 0) != 0) {
    return invalid("--kfp-api-url: expected an http:// or https:// URL, got \"" + c.kfpApiUrl +
                   "\"");
  }
  c.kfpReportExplicit = a.isSet("kfp-report");
  const std::string& mode = a.get("kfp-report");
  if (mode == "direct" || (mode.empty() && !c.kfpApiUrl.empty())) {
    c.correction.kfpReport = KfpReportMode::kDirect;
  } else {
    c.correction.kfpReport = KfpReportMode::kPersistenceAgent;
  }
  if (c.correction.kfpReport == KfpReportMode::kDirect && c.kfpApiUrl.empty()) {
    return invalid("--kfp-report=direct needs --kfp-api-url (or use persistence-agent)");
  }
  c.correction.kfpReverify = !c.kfpApiUrl.empty();  // KFP's state can be read again
  c.kfpTokenFile = a.get("kfp-token-file");
  if (!c.kfpTokenFile.empty() && !std::ifstream(c.kfpTokenFile)) {
    return invalid("--kfp-token-file: cannot read \"" + c.kfpTokenFile + "\"");
  }
  c.leaderElect = a.getSwitch("leader-elect");
  c.leaseName = a.get("leader-election-name");
  if (c.leaseName.empty())
    return invalid("--leader-election-name: must not be empty");
  c.leaseNamespace = a.get("leader-election-namespace");
  c.leaderIdentity = a.get("leader-election-identity");
  for (auto [name, out] : {std::pair{"leader-election-lease-duration", &c.leaseDuration},
                           std::pair{"leader-election-renew-deadline", &c.renewDeadline},
                           std::pair{"leader-election-retry-period", &c.retryPeriod},
                           std::pair{"max-retry-delay", &c.maxRetryDelay},
                           std::pair{"shutdown-timeout", &c.shutdownTimeout},
                           std::pair{"watch-timeout", &c.watchTimeout}}) {
    auto d = a.getDuration(name);
    if (!d)
      return d.error();
    if (d->count() <= 0) {
      return invalid(std::string("--") + name + ": must be positive, got \"" + a.get(name) + "\"");
    }
    *out = *d;
  }
  if (c.watchTimeout < std::chrono::seconds(1))
    return invalid("--watch-timeout: at least 1s (timeoutSeconds is whole seconds), got \"" +
                   a.get("watch-timeout") + "\"");
  // client-go's rule: LeaseDuration > RenewDeadline > 1.2 × RetryPeriod.
  if (c.leaderElect && !(c.leaseDuration > c.renewDeadline &&
                         c.renewDeadline.count() * 10 > c.retryPeriod.count() * 12)) {
    return invalid("leader election timings: need lease-duration (" +
                   a.get("leader-election-lease-duration") + ") > renew-deadline (" +
                   a.get("leader-election-renew-deadline") + ") > 1.2 x retry-period (" +
                   a.get("leader-election-retry-period") + ")");
  }
  c.healthAddr = a.get("health-addr");
  c.metricsAddr = a.get("metrics-addr");
  for (auto [name, value] :
       {std::pair{"health-addr", c.healthAddr}, std::pair{"metrics-addr", c.metricsAddr}}) {
    auto parsed = parseListenAddress(value);
    if (!parsed)
      return invalid(std::string("--") + name + ": " + parsed.error().message);
  }
  c.metricsNamespaceLabel = a.getSwitch("metrics-namespace-label");
  c.webhookAddr = a.get("webhook-addr");
  c.webhookCertFile = a.get("webhook-cert-file");
  c.webhookKeyFile = a.get("webhook-key-file");
  c.webhookSelfSigned = a.getSwitch("webhook-self-signed");
  c.webhookSecretName = a.get("webhook-secret-name");
  c.webhookServiceName = a.get("webhook-service-name");
  c.webhookConfigurationName = a.get("webhook-configuration-name");
  c.podAnnotations = a.getSwitch("pod-annotations");
  {
    auto d = a.getDuration("webhook-deadline");
    if (!d)
      return d.error();
    if (d->count() <= 0)
      return invalid("--webhook-deadline: must be positive, got \"" + a.get("webhook-deadline") +
                     "\"");
    c.webhookDeadline = *d;
  }
  if (!c.webhookAddr.empty()) {
    auto parsed = parseListenAddress(c.webhookAddr);
    if (!parsed)
      return invalid("--webhook-addr: " + parsed.error().message);
    if (c.webhookCertFile.empty())
      return invalid("--webhook-cert-file: required with --webhook-addr");
  }
  {
    const std::string& text = a.get("max-node-status-bytes");
    auto bytes = parseBytes(text);
    if (!bytes || *bytes < (std::size_t{64} << 10) || *bytes > (std::size_t{4} << 30)) {
      return invalid(
          "--max-node-status-bytes: expected a size from 64Ki to 4Gi such as 8Mi, got \"" + text +
          "\"");
    }
    c.maxNodeStatusBytes = *bytes;
  }
  {
    auto period = a.getDuration("kfp-history-sweep");
    if (!period)
      return period.error();
    auto window = a.getDuration("kfp-history-window");
    if (!window)
      return window.error();
    if (window->count() <= 0)
      return invalid("--kfp-history-window: must be positive, got \"" +
                     a.get("kfp-history-window") + "\"");
    c.historySweepPeriod = *period;
    c.historySweepWindow = *window;
    if (period->count() > 0 && *period < std::chrono::seconds(10))
      return invalid("--kfp-history-sweep: at least 10s (each pass lists KFP's runs), got \"" +
                     a.get("kfp-history-sweep") + "\"");
    if (period->count() > 0 && c.kfpApiUrl.empty())
      return invalid("--kfp-history-sweep needs --kfp-api-url (the sweep reads KFP's run history)");
    const std::string& list = a.get("kfp-history-namespaces");
    for (std::size_t at = 0; at <= list.size() && !list.empty();) {
      const std::size_t comma = std::min(list.find(',', at), list.size());
      const std::string ns = list.substr(at, comma - at);
      if (ns.empty())
        return invalid("--kfp-history-namespaces: empty namespace in \"" + list + "\"");
      c.historySweepNamespaces.push_back(ns);
      at = comma + 1;
    }
    if (c.historySweepNamespaces.empty() && !c.namespaceName.empty())
      c.historySweepNamespaces.push_back(c.namespaceName);
  }
  c.logFormat = a.get("log-format");
  c.logLevel = a.get("log-level");
  return c;
}

}  // namespace exitrec
