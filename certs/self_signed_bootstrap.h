#pragma once
// Self-signed TLS for the webhook (manifests overlay webhook-self-signed): the
// controller's own CA signs the serving certificate of the webhook Service.
// One Secret holds the truth; every replica converges on it.
//
// Secret data (shipped empty by the overlay; RBAC get+update by name):
//   ca.crt   the trusted CAs, PEM: the current CA first, then the previous one
//            while it has not expired (serving certificates it signed may
//            still be served by a replica that has not synced yet)
//   ca.key   the current CA's key
//   tls.crt, tls.key   the serving pair, signed by the current CA
//
// One pass of syncSelfSignedTls (idempotent; replicas may run it concurrently):
// 1. GET the Secret. If the serving certificate is valid for
//    "<service>.<ns>.svc" for at least `renewBefore`, signed by the current CA,
//    and its key matches, keep everything. Otherwise issue a new serving
//    certificate from the current CA, or from a new CA when the current one
//    is missing, unusable or would expire before a new serving certificate
//    (the old CA then stays in ca.crt until it expires). UPDATE the Secret
//    guarded by its resourceVersion; on 409 another replica won: read again.
// 2. Make the caBundle of every webhook whose clientConfig.service names our
//    Service equal to ca.crt (JSON patch with a `test` of the old value, so
//    concurrent writers cannot interleave). Done before step 3, so the API
//    server trusts a new CA before any replica serves a certificate from it.
// 3. Write tls.crt / tls.key atomically to certFile / keyFile when they differ
//    from the Secret's; the HTTPS server reloads changed files by itself.
//
// The caBundle does not change when only the serving certificate is renewed,
// so a replica that still serves the previous certificate stays trusted until
// its next pass. SelfSignedTlsRenewer (self_signed_renewer.h) runs the pass
// periodically on every replica.
//
// Secret contents are not trusted: anything unreadable counts as absent and is
// replaced. Errors are returned classified (KubeClient); nothing is deleted.

#include <chrono>
#include <string>
#include <vector>

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
  std::chrono::hours validity{24 * 90};      // of a serving certificate
  std::chrono::hours renewBefore{24 * 30};   // renew the serving certificate this early
  std::chrono::hours caValidity{24 * 3650};  // of a CA
};

struct BootstrapResult {
  bool generated = false;   // this pass stored a new serving certificate
  bool caRotated = false;   // ... and a new CA
  int webhooksPatched = 0;  // caBundle entries changed
  bool filesWritten = false;
  std::string caPem;       // the trusted CAs (ca.crt), current first
  std::string servingPem;  // the serving certificate now in the files
};

// The DNS names the serving certificate carries for a Service.
std::vector<std::string> serviceDnsNames(const std::string& service, const std::string& ns);

// One pass as described above.
Result<BootstrapResult> syncSelfSignedTls(KubeClient& client, Clock& clock,
                                          const SelfSignedOptions& options);

}  // namespace exitrec
