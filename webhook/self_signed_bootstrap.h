#pragma once
// Self-signed TLS bootstrap for the webhook (manifests overlay
// webhook-self-signed): at start, make sure the controller's Secret holds a CA
// and a serving certificate for the webhook Service, write the pair to the
// files the HTTPS server reads, and put the CA into the
// MutatingWebhookConfiguration's caBundle.
//
// Steps (each idempotent; every replica may run them concurrently):
// 1. GET the Secret (it is shipped empty by the overlay; RBAC get+update by
//    name). If its tls.crt/ca.crt are valid for "<service>.<ns>.svc" for at
//    least `renewBefore`, reuse them; otherwise generate a CA + serving
//    certificate and UPDATE the Secret guarded by its resourceVersion. On a
//    409 another replica won: GET again and use its pair.
// 2. Write tls.crt / tls.key atomically to certFile / keyFile.
// 3. GET the MutatingWebhookConfiguration and JSON-patch the caBundle of
//    every webhook whose clientConfig.service names our Service (with a
//    `test` of the old value, so concurrent writers cannot interleave).
//
// Errors are returned classified (KubeClient); the caller decides whether to
// retry or to run without the webhook.

#include <chrono>
#include <string>

#include "common/clock.h"
#include "common/result.h"

namespace exitrec {

class KubeClient;

struct SelfSignedOptions {
  std::string namespace_;         // the controller's namespace
  std::string secretName;         // e.g. kfp-exit-reconciler-webhook-tls
  std::string serviceName;        // e.g. kfp-exit-reconciler
  std::string configurationName;  // MutatingWebhookConfiguration name
  std::string certFile;           // where the HTTPS server reads the pair
  std::string keyFile;
  std::chrono::hours validity{24 * 365};
  std::chrono::hours renewBefore{24 * 30};
};

struct BootstrapResult {
  bool generated = false;   // a new pair was created (else reused)
  int webhooksPatched = 0;  // caBundle entries changed
  std::string caPem;
};

// The DNS names the serving certificate carries for a Service.
std::vector<std::string> serviceDnsNames(const std::string& service, const std::string& ns);

Result<BootstrapResult> bootstrapSelfSignedTls(KubeClient& client, Clock& clock,
                                               const SelfSignedOptions& options);

}  // namespace exitrec
