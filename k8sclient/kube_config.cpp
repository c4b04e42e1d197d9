#include "k8sclient/kube_config.h"

#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/base64.h"
#include "k8sclient/token_source.h"

namespace exitrec {
namespace {

Result<std::string> readFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Error(ErrorCode::kInvalidInput, std::string("cannot read ") + what + " " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos)
    return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

std::string resolvePath(const std::string& p, const std::string& baseDir) {
  if (p.empty() || p[0] == '/' || baseDir.empty())
    return p;
  return (std::filesystem::path(baseDir) / p).lexically_normal().string();
}

std::string str(const YAML::Node& n, const char* key) {
  const YAML::Node v = n[key];
  if (!v || !v.IsScalar())
    return "";
  return v.as<std::string>();
}

// Finds the entry named `name` in a kubeconfig list (clusters/users/contexts)
// and returns its `field` map.
YAML::Node findNamed(const YAML::Node& root, const char* list, const std::string& name,
                     const char* field) {
  const YAML::Node items = root[list];
  if (!items || !items.IsSequence())
    return YAML::Node();
  for (const auto& item : items) {
    if (item.IsMap() && str(item, "name") == name)
      return item[field];
  }
  return YAML::Node();
}

Status decodeData(const YAML::Node& n, const char* key, std::string& out,
                  const std::string& where) {
  const std::string raw = str(n, key);
  if (raw.empty())
    return Status();
  auto decoded = decodeBase64(raw);
  if (!decoded) {
    return Error(ErrorCode::kInvalidInput, where + ": " + key + " is not valid base64");
  }
  out = std::move(decoded).value();
  return Status();
}

}  // namespace

std::optional<std::string> processEnv(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr)
    return std::nullopt;
  return std::string(v);
}

Result<std::string> decodeBase64(std::string_view in) {
  // Wrapped text, missing padding and the URL alphabet are accepted.
  return base64Decode(in, {.skipWhitespace = true, .urlAlphabet = true, .requirePadding = false});
}

Result<RestConfig> loadInClusterConfig(const EnvLookup& env, const InClusterPaths& paths) {
  const auto host = env("KUBERNETES_SERVICE_HOST");
  const auto port = env("KUBERNETES_SERVICE_PORT");
  if (!host || host->empty() || !port || port->empty()) {
    return Error(ErrorCode::kInvalidInput,
                 "not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
                 "must be set");
  }
  RestConfig cfg;
  const bool ipv6 = host->find(':') != std::string::npos && host->front() != '[';
  cfg.server = "https://" + (ipv6 ? "[" + *host + "]" : *host) + ":" + *port;
  if (auto t = readTokenFile(paths.tokenFile); !t) {
    return Error(ErrorCode::kInvalidInput, "in-cluster config: " + t.error().message);
  }
  cfg.tokenFile = paths.tokenFile;
  if (!std::filesystem::exists(paths.caFile)) {
    return Error(ErrorCode::kInvalidInput,
                 "in-cluster config: CA file " + paths.caFile + " not found");
  }
  cfg.tls.caFile = paths.caFile;
  if (auto ns = readFile(paths.namespaceFile, "namespace file"))
    cfg.namespaceName = trim(*ns);
  cfg.source = "in-cluster";
  return cfg;
}

Result<RestConfig> parseKubeconfig(std::string_view yaml, const std::string& baseDir,
                                   std::string_view context) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return Error(ErrorCode::kInvalidInput,
                 std::string("kubeconfig is not valid YAML: ") + e.what());
  }
  if (!root.IsMap())
    return Error(ErrorCode::kInvalidInput, "kubeconfig is not a YAML mapping");
  const std::string ctxName = context.empty() ? str(root, "current-context") : std::string(context);
  if (ctxName.empty())
    return Error(ErrorCode::kInvalidInput, "kubeconfig has no current-context");
  const YAML::Node ctx = findNamed(root, "contexts", ctxName, "context");
  if (!ctx || !ctx.IsMap()) {
    return Error(ErrorCode::kInvalidInput, "kubeconfig: context \"" + ctxName + "\" not found");
  }
  const std::string clusterName = str(ctx, "cluster");
  const std::string userName = str(ctx, "user");
  const YAML::Node cluster = findNamed(root, "clusters", clusterName, "cluster");
  if (!cluster || !cluster.IsMap()) {
    return Error(ErrorCode::kInvalidInput, "kubeconfig: cluster \"" + clusterName + "\" not found");
  }
  RestConfig cfg;
  cfg.namespaceName = str(ctx, "namespace");
  cfg.server = str(cluster, "server");
  while (!cfg.server.empty() && cfg.server.back() == '/')
    cfg.server.pop_back();
  if (cfg.server.empty()) {
    return Error(ErrorCode::kInvalidInput,
                 "kubeconfig: cluster \"" + clusterName + "\" has no server");
  }
  const std::string where = "kubeconfig cluster \"" + clusterName + "\"";
  cfg.tls.caFile = resolvePath(str(cluster, "certificate-authority"), baseDir);
  if (Status s = decodeData(cluster, "certificate-authority-data", cfg.tls.caPem, where); !s) {
    return s.error();
  }
  const std::string insecure = str(cluster, "insecure-skip-tls-verify");
  cfg.tls.insecureSkipVerify = insecure == "true" || insecure == "True";
  if (cfg.tls.insecureSkipVerify) {
    spdlog::warn("k8sclient: {} sets insecure-skip-tls-verify: server certificate is not verified",
                 where);
  }

  if (!userName.empty()) {
    const YAML::Node user = findNamed(root, "users", userName, "user");
    if (!user) {
      return Error(ErrorCode::kInvalidInput, "kubeconfig: user \"" + userName + "\" not found");
    }
    const std::string uwhere = "kubeconfig user \"" + userName + "\"";
    if (user.IsMap()) {
      if (user["exec"]) {
        return Error(ErrorCode::kUnsupported,
                     uwhere + " uses an exec credential plugin (command \"" +
                         str(user["exec"], "command") +
                         "\"), which is not supported: use token, tokenFile or a client "
                         "certificate");
      }
      if (user["auth-provider"]) {
        return Error(
            ErrorCode::kUnsupported,
            uwhere + " uses auth-provider \"" + str(user["auth-provider"], "name") +
                "\", which is not supported: use token, tokenFile or a client certificate");
      }
      if (user["username"] || user["password"]) {
        return Error(ErrorCode::kUnsupported,
                     uwhere + " uses basic authentication, which is not supported");
      }
      cfg.token = str(user, "token");
      cfg.tokenFile = resolvePath(str(user, "tokenFile"), baseDir);
      cfg.tls.clientCertFile = resolvePath(str(user, "client-certificate"), baseDir);
      cfg.tls.clientKeyFile = resolvePath(str(user, "client-key"), baseDir);
      if (Status s = decodeData(user, "client-certificate-data", cfg.tls.clientCertPem, uwhere);
          !s) {
        return s.error();
      }
      if (Status s = decodeData(user, "client-key-data", cfg.tls.clientKeyPem, uwhere); !s) {
        return s.error();
      }
      const bool hasCert = !cfg.tls.clientCertFile.empty() || !cfg.tls.clientCertPem.empty();
      const bool hasKey = !cfg.tls.clientKeyFile.empty() || !cfg.tls.clientKeyPem.empty();
      if (hasCert != hasKey) {
        return Error(ErrorCode::kInvalidInput,
                     uwhere + ": a client certificate needs both the certificate and the key");
      }
    }
  }
  return cfg;
}

Result<RestConfig> loadKubeconfigFile(const std::string& path, std::string_view context) {
  auto text = readFile(path, "kubeconfig");
  if (!text)
    return text.error();
  const std::string baseDir = std::filesystem::path(path).parent_path().string();
  auto cfg = parseKubeconfig(*text, baseDir, context);
  if (!cfg)
    return Error(cfg.error().code, cfg.error().message + " (file " + path + ")");
  cfg->source = path;
  return cfg;
}

Result<RestConfig> loadRestConfig(std::string_view kubeconfigFlag, const EnvLookup& env,
                                  const InClusterPaths& paths) {
  if (!kubeconfigFlag.empty())
    return loadKubeconfigFile(std::string(kubeconfigFlag));
  if (auto kc = env("KUBECONFIG"); kc && !kc->empty()) {
    std::stringstream ss(*kc);
    std::string entry;
    while (std::getline(ss, entry, ':')) {
      if (!entry.empty() && std::filesystem::exists(entry))
        return loadKubeconfigFile(entry);
    }
    return Error(ErrorCode::kInvalidInput, "KUBECONFIG is set but names no existing file");
  }
  if (auto host = env("KUBERNETES_SERVICE_HOST"); host && !host->empty()) {
    return loadInClusterConfig(env, paths);
  }
  if (auto home = env("HOME"); home && !home->empty()) {
    const std::string p = *home + "/.kube/config";
    if (std::filesystem::exists(p))
      return loadKubeconfigFile(p);
  }
  return Error(ErrorCode::kInvalidInput,
               "no Kubernetes configuration: pass --kubeconfig, set KUBECONFIG, run in a cluster, "
               "or create ~/.kube/config");
}

}  // namespace exitrec
