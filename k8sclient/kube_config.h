#pragma once
// Where the API server is and how to authenticate to it: in-cluster service
// account or a kubeconfig file (YAML). See docs/k8sclient.md.
//
// Errors: kInvalidInput for missing/malformed configuration (naming the file
// and field), kUnsupported for auth methods this client does not implement
// (exec plugins, auth-provider, basic auth). Credentials never appear in
// error messages. Pure functions apart from file reads; thread-safe.

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "k8sclient/http_transport.h"

namespace exitrec {

struct RestConfig {
  std::string server;  // e.g. "https://10.0.0.1:443" (no trailing slash)
  TlsOptions tls;
  std::string token;          // static bearer token; secret, never log
  std::string tokenFile;      // or a file re-read periodically (takes effect when token is empty)
  std::string namespaceName;  // default namespace ("" when unknown)
  std::string source;         // "in-cluster" or the kubeconfig path, for logs
};

// Environment lookup, injectable for tests.
using EnvLookup = std::function<std::optional<std::string>(const char* name)>;
std::optional<std::string> processEnv(const char* name);

struct InClusterPaths {
  std::string tokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token";
  std::string caFile = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
  std::string namespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
};

// From KUBERNETES_SERVICE_HOST/PORT (IPv6 hosts bracketed) and the service
// account files. The token file must be readable now (it is re-read later).
Result<RestConfig> loadInClusterConfig(const EnvLookup& env = processEnv,
                                       const InClusterPaths& paths = {});

// Parses kubeconfig YAML. Relative file paths are resolved against
// `baseDir`. `context` overrides current-context when non-empty.
Result<RestConfig> parseKubeconfig(std::string_view yaml, const std::string& baseDir,
                                   std::string_view context = "");
Result<RestConfig> loadKubeconfigFile(const std::string& path, std::string_view context = "");

// Resolution order (controller-runtime's): the --kubeconfig flag, then
// $KUBECONFIG (first existing entry of a ':'-separated list), then in-cluster
// when KUBERNETES_SERVICE_HOST is set, then $HOME/.kube/config.
Result<RestConfig> loadRestConfig(std::string_view kubeconfigFlag,
                                  const EnvLookup& env = processEnv,
                                  const InClusterPaths& paths = {});

// RFC 4648 base64 for kubeconfig data (padding optional, whitespace ignored,
// URL alphabet accepted); common/base64.h underneath.
Result<std::string> decodeBase64(std::string_view in);

}  // namespace exitrec
