#pragma once
// WebhookRuntime: what `exit-reconciler run` starts for issue 5, in one call.
//
//   WebhookConfig wc = ...from --webhook-* flags...;
//   auto rt = WebhookRuntime::start(wc, kubeClient, clock, &metrics);
//   rt->stop();   // on shutdown, before the KubeClient goes away
//
// start(): with selfSigned, runs the first syncSelfSignedTls pass (Secret,
// caBundle, files) and keeps a SelfSignedTlsRenewer running it periodically
// (renewal, convergence across replicas); then serves the admission webhook on `addr` (HTTPS,
// /mutate-pods) with the cert/key files (re-read on change). Every replica
// serves the webhook (not only the leader): it only reads.
// Errors: kInvalidInput for a bad address or certificate, the bootstrap's
// classified API error, kTransient when the port cannot be bound.
// Thread-safety: start/stop from the owner thread.

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "common/clock.h"
#include "common/result.h"
#include "webhook/admission_webhook.h"
#include "webhook/state_provider.h"

namespace exitrec {

class KubeClient;
class SelfSignedTlsRenewer;

struct WebhookConfig {
  std::string addr;                          // --webhook-addr, e.g. ":9443"; empty = no webhook
  std::string certFile;                      // --webhook-cert-file
  std::string keyFile;                       // --webhook-key-file
  std::chrono::milliseconds deadline{2000};  // --webhook-deadline
  bool selfSigned = false;                   // --webhook-self-signed
  std::string secretName;                    // --webhook-secret-name
  std::string serviceName;                   // --webhook-service-name
  std::string configurationName;             // --webhook-configuration-name
  std::string namespace_;                    // the controller's namespace
};

// common/listen_address.h: ":9443" and "[::]:9443" -> ("", 9443) (dual-stack),
// "0.0.0.0:9443" (IPv4 only), "127.0.0.1:0", "[::1]:9443" -> ("::1", 9443).
Result<std::pair<std::string, int>> splitListenAddress(std::string_view addr);

class WebhookRuntime {
 public:
  // `client`, `clock` and `metrics` (nullable) must outlive it.
  static Result<std::unique_ptr<WebhookRuntime>> start(const WebhookConfig& config,
                                                       KubeClient& client, Clock& clock,
                                                       WebhookMetrics* metrics);
  ~WebhookRuntime();
  int port() const { return webhook_ ? webhook_->port() : 0; }
  void stop();

 private:
  WebhookRuntime() = default;
  std::unique_ptr<KubeRunStateProvider> provider_;
  std::unique_ptr<AdmissionWebhook> webhook_;
  std::unique_ptr<SelfSignedTlsRenewer> renewer_;
};

}  // namespace exitrec
