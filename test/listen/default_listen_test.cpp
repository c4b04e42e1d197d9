// With their default addresses, --health-addr, --metrics-addr and the
// manifests' --webhook-addr answer on both 127.0.0.1 and ::1 (issue 18: pods
// with an IPv6 primary address must pass their probes and be scraped). The
// defaults are read from the flag table and the manifests; only the port is
// replaced by 0 so the test does not depend on free well-known ports.
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "certs/certificates.h"
#include "common/listen_address.h"
#include "controller/health_server.h"
#include "controller/run_config.h"
#include "metrics/metrics.h"
#include "metrics/server.h"
#include "test/sim/raw_socket.h"
#include "test/webhook/test_support.h"
#include "webhook/admission_webhook.h"

namespace exitrec {
namespace {

using testing::connectTo;
using testing::readResponse;
using testing::sendAll;
using testing::statusOf;

const char* const kLoopbacks[] = {"127.0.0.1", "::1"};

RunConfig defaults() {
  cli::FlagParser parser = runFlagParser();
  auto parsed = parser.parse(std::span<char* const>(),
                             [](const std::string&) -> std::optional<std::string> { return {}; });
  EXPECT_TRUE(parsed.ok());
  auto c = parseRunConfig(*parsed);
  EXPECT_TRUE(c.ok()) << c.error().describe();
  return *c;
}

// The default's host with port 0: ":8081" -> ":0".
std::string onPortZero(const std::string& address) {
  auto a = parseListenAddress(address);
  EXPECT_TRUE(a.ok()) << address;
  if (a->host.empty())
    return ":0";
  return (a->host.find(':') != std::string::npos ? "[" + a->host + "]" : a->host) + ":0";
}

std::string manifestFlag(const std::string& relPath, const std::string& flag) {
  std::ifstream in(std::string(EXITREC_SOURCE_DIR) + "/" + relPath);
  std::stringstream text;
  text << in.rdbuf();
  std::smatch m;
  std::string s = text.str();
  EXPECT_TRUE(std::regex_search(s, m, std::regex("--" + flag + "=(\\S+)"))) << relPath;
  return m.size() > 1 ? m[1].str() : "";
}

int plainGet(const std::string& ip, int port, const std::string& path) {
  int fd = connectTo(ip, port);
  if (fd < 0)
    return -errno;
  sendAll(fd, "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  int status = statusOf(readResponse(fd));
  ::close(fd);
  return status;
}

// One verified HTTPS GET; the certificate names both loopback addresses.
int tlsGet(const std::string& ip, int port, const std::string& caFile, const std::string& path) {
  int fd = connectTo(ip, port);
  if (fd < 0)
    return -errno;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_load_verify_locations(ctx, caFile.c_str(), nullptr);
  SSL* ssl = SSL_new(ctx);
  X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), ip.c_str());
  SSL_set_fd(ssl, fd);
  int status = -1;
  if (SSL_connect(ssl) == 1) {
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    SSL_write(ssl, req.data(), static_cast<int>(req.size()));
    char buf[256];
    int n = SSL_read(ssl, buf, sizeof(buf));
    if (n > 12)
      status = std::stoi(std::string(buf + 9, 3));
  }
  ERR_clear_error();
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  ::close(fd);
  return status;
}

class DefaultListenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::hasIpv6Loopback())
      GTEST_SKIP() << "no IPv6 loopback (::1) on this machine: dual-stack cannot be shown";
  }
};

TEST_F(DefaultListenTest, HealthServerAnswersOnBothLoopbacks) {
  RunConfig c = defaults();
  EXPECT_EQ(manifestFlag("manifests/base/deployment.yaml", "health-addr"), c.healthAddr);
  auto hs = HealthServer::start(onPortZero(c.healthAddr), nullptr);
  ASSERT_TRUE(hs.ok()) << hs.error().describe();
  for (const char* ip : kLoopbacks)
    EXPECT_EQ(plainGet(ip, (*hs)->port(), "/healthz"), 200) << ip;
}

TEST_F(DefaultListenTest, MetricsServerAnswersOnBothLoopbacks) {
  RunConfig c = defaults();
  EXPECT_EQ(manifestFlag("manifests/base/deployment.yaml", "metrics-addr"), c.metricsAddr);
  Metrics m;
  auto ms = MetricsServer::start(m, onPortZero(c.metricsAddr));
  ASSERT_TRUE(ms.ok()) << ms.error().describe();
  for (const char* ip : kLoopbacks)
    EXPECT_EQ(plainGet(ip, (*ms)->port(), "/metrics"), 200) << ip;
}

TEST_F(DefaultListenTest, WebhookAnswersOnBothLoopbacks) {
  // `run` has no webhook by default; the manifests' component turns it on.
  std::string addr =
      manifestFlag("manifests/components/webhook/kustomization.yaml", "webhook-addr");
  auto listen = parseListenAddress(onPortZero(addr));
  ASSERT_TRUE(listen.ok());
  auto dir =
      std::filesystem::temp_directory_path() / ("default-listen-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto ca = generateCa("default-listen-ca", std::chrono::hours(1));
  ASSERT_TRUE(ca.ok());
  CertificateRequest req;
  req.commonName = "webhook";
  req.ipAddresses = {"127.0.0.1", "::1"};
  req.validity = std::chrono::hours(1);
  auto serving = generateServingCertificate(*ca, req);
  ASSERT_TRUE(serving.ok());
  std::ofstream((dir / "ca.crt").string()) << ca->certPem;
  std::ofstream((dir / "tls.crt").string()) << serving->certPem;
  std::ofstream((dir / "tls.key").string()) << serving->keyPem;

  testing::FakeStateProvider provider;
  SystemClock clock;
  AdmissionWebhookOptions o;
  o.address = listen->host;
  o.port = listen->port;
  o.certFile = (dir / "tls.crt").string();
  o.keyFile = (dir / "tls.key").string();
  AdmissionWebhook webhook(o, provider, clock, nullptr);
  ASSERT_TRUE(webhook.start().ok());
  for (const char* ip : kLoopbacks) {
    // The review path answers GET with 405 ("use POST"): the handler ran.
    EXPECT_EQ(tlsGet(ip, webhook.port(), (dir / "ca.crt").string(), "/mutate-pods"), 405) << ip;
  }
  webhook.stop();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace exitrec
