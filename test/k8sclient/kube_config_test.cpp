#include "k8sclient/kube_config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

namespace exitrec {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "k8scfg-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string write(const std::string& name, const std::string& content) const {
    const std::string p = path_ + "/" + name;
    std::ofstream(p) << content;
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

EnvLookup envOf(std::map<std::string, std::string> vars) {
  return [vars](const char* name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end())
      return std::nullopt;
    return it->second;
  };
}

std::string kubeconfig(const std::string& clusterExtra, const std::string& userBody,
                       const std::string& current = "dev") {
  return "apiVersion: v1\nkind: Config\ncurrent-context: " + current +
         "\n"
         "clusters:\n"
         "- name: c1\n  cluster:\n    server: https://10.1.2.3:6443/\n" +
         clusterExtra +
         "- name: c2\n  cluster:\n    server: https://other:443\n"
         "contexts:\n"
         "- name: dev\n  context:\n    cluster: c1\n    user: u1\n    namespace: team-a\n"
         "- name: prod\n  context:\n    cluster: c2\n    user: u2\n"
         "users:\n"
         "- name: u1\n  user:\n" +
         userBody + "- name: u2\n  user:\n    token: prod-token\n";
}

TEST(KubeConfigTest, TokenAndCaFileRelativeToKubeconfig) {
  TempDir dir;
  dir.write("ca.crt", "PEM");
  const std::string path = dir.write(
      "config", kubeconfig("    certificate-authority: ca.crt\n", "    token: abc.def\n"));
  auto cfg = loadKubeconfigFile(path);
  ASSERT_TRUE(cfg.ok()) << cfg.error().describe();
  EXPECT_EQ(cfg->server, "https://10.1.2.3:6443");
  EXPECT_EQ(cfg->tls.caFile, dir.path() + "/ca.crt");
  EXPECT_TRUE(cfg->tls.caPem.empty());
  EXPECT_FALSE(cfg->tls.insecureSkipVerify);
  EXPECT_EQ(cfg->token, "abc.def");
  EXPECT_EQ(cfg->namespaceName, "team-a");
  EXPECT_EQ(cfg->source, path);
}

TEST(KubeConfigTest, DataFieldsAreDecodedIntoMemory) {
  // "Q0EtUEVN" = "CA-PEM", "Q0VSVA==" = "CERT", "S0VZ" = "KEY"
  auto cfg = parseKubeconfig(kubeconfig("    certificate-authority-data: Q0EtUEVN\n",
                                        "    client-certificate-data: Q0VSVA==\n"
                                        "    client-key-data: S0VZ\n"),
                             "/base");
  ASSERT_TRUE(cfg.ok()) << cfg.error().describe();
  EXPECT_EQ(cfg->tls.caPem, "CA-PEM");
  EXPECT_EQ(cfg->tls.clientCertPem, "CERT");
  EXPECT_EQ(cfg->tls.clientKeyPem, "KEY");
  EXPECT_TRUE(cfg->token.empty());
}

TEST(KubeConfigTest, ClientCertFilesTokenFileAndInsecure) {
  auto cfg = parseKubeconfig(kubeconfig("    insecure-skip-tls-verify: true\n",
                                        "    client-certificate: certs/c.pem\n"
                                        "    client-key: /abs/k.pem\n"
                                        "    tokenFile: tok\n"),
                             "/home/u/.kube");
  ASSERT_TRUE(cfg.ok()) << cfg.error().describe();
  EXPECT_TRUE(cfg->tls.insecureSkipVerify);
  EXPECT_EQ(cfg->tls.clientCertFile, "/home/u/.kube/certs/c.pem");
  EXPECT_EQ(cfg->tls.clientKeyFile, "/abs/k.pem");
  EXPECT_EQ(cfg->tokenFile, "/home/u/.kube/tok");
}

TEST(KubeConfigTest, ContextOverrideSelectsOtherClusterAndUser) {
  auto cfg = parseKubeconfig(kubeconfig("", "    token: t1\n"), "", "prod");
  ASSERT_TRUE(cfg.ok()) << cfg.error().describe();
  EXPECT_EQ(cfg->server, "https://other:443");
  EXPECT_EQ(cfg->token, "prod-token");
  EXPECT_EQ(cfg->namespaceName, "");
}

TEST(KubeConfigTest, ExecAndAuthProviderAreUnsupported) {
  auto exec =
      parseKubeconfig(kubeconfig("",
                                 "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
                                 "      command: aws\n      args: [eks, get-token]\n"),
                      "");
  ASSERT_FALSE(exec.ok());
  EXPECT_EQ(exec.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(exec.error().message.find("exec"), std::string::npos);
  EXPECT_NE(exec.error().message.find("aws"), std::string::npos);

  auto ap = parseKubeconfig(kubeconfig("", "    auth-provider:\n      name: gcp\n"), "");
  ASSERT_FALSE(ap.ok());
  EXPECT_EQ(ap.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(ap.error().message.find("gcp"), std::string::npos);
}

TEST(KubeConfigTest, MalformedInputsNameTheProblem) {
  auto noCtx = parseKubeconfig(kubeconfig("", "    token: t\n", "missing"), "");
  ASSERT_FALSE(noCtx.ok());
  EXPECT_NE(noCtx.error().message.find("missing"), std::string::npos);
  auto notYaml = parseKubeconfig("clusters: [unclosed", "");
  ASSERT_FALSE(notYaml.ok());
  EXPECT_EQ(notYaml.error().code, ErrorCode::kInvalidInput);
  auto badB64 =
      parseKubeconfig(kubeconfig("    certificate-authority-data: '!!notbase64'\n", ""), "");
  ASSERT_FALSE(badB64.ok());
  EXPECT_NE(badB64.error().message.find("certificate-authority-data"), std::string::npos);
  auto halfCert = parseKubeconfig(kubeconfig("", "    client-certificate-data: Q0VSVA==\n"), "");
  ASSERT_FALSE(halfCert.ok());
}

TEST(KubeConfigTest, SecretsNeverInErrors) {
  auto r = parseKubeconfig(kubeconfig("", "    token: s3cr3t-token-value\n", "nope"), "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.find("s3cr3t"), std::string::npos);
}

TEST(KubeConfigTest, InClusterIpv4AndIpv6) {
  TempDir dir;
  InClusterPaths paths{dir.write("token", "tok-1\n"), dir.write("ca.crt", "PEM"),
                       dir.write("namespace", "kubeflow\n")};
  auto v4 = loadInClusterConfig(
      envOf({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}}), paths);
  ASSERT_TRUE(v4.ok()) << v4.error().describe();
  EXPECT_EQ(v4->server, "https://10.96.0.1:443");
  EXPECT_EQ(v4->tokenFile, paths.tokenFile);
  EXPECT_TRUE(v4->token.empty());  // read through TokenSource, re-read periodically
  EXPECT_EQ(v4->tls.caFile, paths.caFile);
  EXPECT_EQ(v4->namespaceName, "kubeflow");

  auto v6 = loadInClusterConfig(
      envOf({{"KUBERNETES_SERVICE_HOST", "fd00:10:96::1"}, {"KUBERNETES_SERVICE_PORT", "6443"}}),
      paths);
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->server, "https://[fd00:10:96::1]:6443");

  auto none = loadInClusterConfig(envOf({}), paths);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("KUBERNETES_SERVICE_HOST"), std::string::npos);

  InClusterPaths noToken = paths;
  noToken.tokenFile = dir.path() + "/absent";
  auto nt = loadInClusterConfig(
      envOf({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}}),
      noToken);
  ASSERT_FALSE(nt.ok());
  EXPECT_NE(nt.error().message.find("absent"), std::string::npos);
}

TEST(KubeConfigTest, ResolutionOrderFlagEnvInClusterHome) {
  TempDir dir;
  const std::string flagPath = dir.write("flag.yaml", kubeconfig("", "    token: a\n"));
  const std::string envPath = dir.write("env.yaml", kubeconfig("", "    token: b\n", "prod"));
  fs::create_directories(dir.path() + "/home/.kube");
  dir.write("home/.kube/config", kubeconfig("", "    token: c\n"));
  InClusterPaths paths{dir.write("token", "tok"), dir.write("ca.crt", "PEM"),
                       dir.write("namespace", "ns")};
  std::map<std::string, std::string> vars{{"KUBECONFIG", "/nonexistent:" + envPath},
                                          {"KUBERNETES_SERVICE_HOST", "10.0.0.1"},
                                          {"KUBERNETES_SERVICE_PORT", "443"},
                                          {"HOME", dir.path() + "/home"}};
  auto r = loadRestConfig(flagPath, envOf(vars), paths);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->source, flagPath);
  r = loadRestConfig("", envOf(vars), paths);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->source, envPath);
  vars.erase("KUBECONFIG");
  r = loadRestConfig("", envOf(vars), paths);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->source, "in-cluster");
  vars.erase("KUBERNETES_SERVICE_HOST");
  r = loadRestConfig("", envOf(vars), paths);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->source, dir.path() + "/home/.kube/config");
  vars.erase("HOME");
  r = loadRestConfig("", envOf(vars), paths);
  ASSERT_FALSE(r.ok());
}

TEST(KubeConfigTest, Base64) {
  EXPECT_EQ(*decodeBase64("aGVsbG8gd29ybGQ="), "hello world");
  EXPECT_EQ(*decodeBase64("aGVsbG8g\nd29ybGQ"), "hello world");
  EXPECT_EQ(*decodeBase64(""), "");
  EXPECT_FALSE(decodeBase64("a$b").ok());
  EXPECT_FALSE(decodeBase64("a").ok());
}

}  // namespace
}  // namespace exitrec
