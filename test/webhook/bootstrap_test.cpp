// Self-signed TLS bootstrap against a scripted API server (FakeHttpTransport):
// Secret filled once and reused, a lost update race adopts the winner's pair,
// caBundle patched with a guarded JSON patch.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/certificates.h"
#include "common/fake_clock.h"
#include "k8sclient/fake_http_transport.h"
#include "k8sclient/kube_client.h"
#include "test/webhook/kfp_pods.h"
#include "webhook/self_signed_bootstrap.h"

namespace exitrec::testing {
namespace {

using json = nlohmann::json;

// A tiny API server: one Secret and one MutatingWebhookConfiguration.
struct FakeApi {
  json secret = {
      {"apiVersion", "v1"},
      {"kind", "Secret"},
      {"metadata", {{"name", "tls"}, {"namespace", "kubeflow"}, {"resourceVersion", "1"}}},
      {"type", "Opaque"}};
  json config = {
      {"apiVersion", "admissionregistration.k8s.io/v1"},
      {"kind", "MutatingWebhookConfiguration"},
      {"metadata", {{"name", "kfp-exit-reconciler"}, {"resourceVersion", "7"}}},
      {"webhooks",
       json::array(
           {{{"name", "other.example.com"},
             {"clientConfig", {{"service", {{"name", "other"}, {"namespace", "x"}}}}}},
            {{"name", "exit-task-pods.exit-reconciler.io"},
             {"clientConfig",
              {{"service", {{"name", "kfp-exit-reconciler"}, {"namespace", "kubeflow"}}}}}}})}};
  int updates = 0;
  int conflictsToInject = 0;
  json lastPatch;

  Result<HttpResponse> handle(const HttpRequest& req) {
    const std::string path = req.url.substr(req.url.find('/', 8));
    if (path == "/api/v1/namespaces/kubeflow/secrets/tls") {
      if (req.method == "GET")
        return fakeResponse(200, secret.dump());
      if (req.method == "PUT") {
        json body = json::parse(req.body);
        if (conflictsToInject > 0 ||
            body["metadata"]["resourceVersion"] != secret["metadata"]["resourceVersion"]) {
          if (conflictsToInject > 0) {
            // Another replica wins the race meanwhile.
            --conflictsToInject;
            auto ca = generateCa("other-ca", std::chrono::hours(24 * 365));
            CertificateRequest cr;
            cr.commonName = "kfp-exit-reconciler.kubeflow.svc";
            cr.dnsNames = {"kfp-exit-reconciler.kubeflow.svc"};
            auto sv = generateServingCertificate(ca.value(), cr);
            secret["data"] = {{"ca.crt", base64Encode(ca->certPem)},
                              {"ca.key", base64Encode(ca->keyPem)},
                              {"tls.crt", base64Encode(sv->certPem)},
                              {"tls.key", base64Encode(sv->keyPem)}};
            secret["metadata"]["resourceVersion"] = "2";
          }
          return fakeResponse(
              409, R"({"kind":"Status","code":409,"reason":"Conflict","message":"conflict"})");
        }
        ++updates;
        secret = body;
        secret["metadata"]["resourceVersion"] = std::to_string(10 + updates);
        return fakeResponse(200, secret.dump());
      }
    }
    if (path ==
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/kfp-exit-reconciler") {
      if (req.method == "GET")
        return fakeResponse(200, config.dump());
      if (req.method == "PATCH") {
        lastPatch = json::parse(req.body);
        for (const auto& op : lastPatch) {
          if (op["op"] == "test" &&
              config.at(json::json_pointer(op["path"].get<std::string>())) != op["value"]) {
            return fakeResponse(422, R"({"kind":"Status","code":422,"reason":"Invalid"})");
          }
        }
        json ops = json::array();
        for (const auto& op : lastPatch) {
          if (op["op"] != "test")
            ops.push_back(op);
        }
        config = applyJsonPatch(config, ops);
        return fakeResponse(200, config.dump());
      }
    }
    return fakeResponse(404, R"({"kind":"Status","code":404,"reason":"NotFound"})");
  }
};

class BootstrapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("exitrec-bootstrap-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    transport_ = std::make_shared<FakeHttpTransport>();
    transport_->setHandler([this](const HttpRequest& r) { return api_.handle(r); });
    client_ = std::make_unique<KubeClient>(transport_, "https://10.0.0.1:443", TokenSource());
    opts_.namespace_ = "kubeflow";
    opts_.secretName = "tls";
    opts_.serviceName = "kfp-exit-reconciler";
    opts_.configurationName = "kfp-exit-reconciler";
    opts_.certFile = (dir_ / "tls.crt").string();
    opts_.keyFile = (dir_ / "tls.key").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string read(const std::string& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  std::filesystem::path dir_;
  FakeApi api_;
  std::shared_ptr<FakeHttpTransport> transport_;
  std::unique_ptr<KubeClient> client_;
  SelfSignedOptions opts_;
  FakeClock clock_;
};

TEST_F(BootstrapTest, GeneratesOnceStoresAndPatchesCaBundle) {
  auto r = bootstrapSelfSignedTls(*client_, clock_, opts_);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->generated);
  EXPECT_EQ(r->webhooksPatched, 1);
  EXPECT_EQ(api_.updates, 1);
  const std::string cert = read(opts_.certFile);
  EXPECT_TRUE(certificateUsable(cert, r->caPem, "kfp-exit-reconciler.kubeflow.svc",
                                std::chrono::system_clock::now(), std::chrono::hours(24)));
  EXPECT_FALSE(read(opts_.keyFile).empty());
  // Only our webhook's caBundle; the other configuration entry is untouched.
  EXPECT_EQ(api_.config["webhooks"][1]["clientConfig"]["caBundle"], base64Encode(r->caPem));
  EXPECT_FALSE(api_.config["webhooks"][0]["clientConfig"].contains("caBundle"));

  // A restart (or a second replica) reuses the stored pair and patches nothing.
  auto again = bootstrapSelfSignedTls(*client_, clock_, opts_);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->generated);
  EXPECT_EQ(again->webhooksPatched, 0);
  EXPECT_EQ(api_.updates, 1);
  EXPECT_EQ(read(opts_.certFile), cert);
}

TEST_F(BootstrapTest, LosingTheUpdateRaceAdoptsTheWinnersPair) {
  api_.conflictsToInject = 1;
  auto r = bootstrapSelfSignedTls(*client_, clock_, opts_);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->generated);
  EXPECT_EQ(api_.updates, 0);
  EXPECT_EQ(read(opts_.certFile), base64Decode(api_.secret["data"]["tls.crt"].get<std::string>()));
  EXPECT_EQ(api_.config["webhooks"][1]["clientConfig"]["caBundle"], api_.secret["data"]["ca.crt"]);
}

TEST_F(BootstrapTest, ExpiringCertificateIsReplacedAndCaBundleGuarded) {
  ASSERT_TRUE(bootstrapSelfSignedTls(*client_, clock_, opts_).ok());
  const json oldBundle = api_.config["webhooks"][1]["clientConfig"]["caBundle"];
  opts_.renewBefore = std::chrono::hours(24 * 400);  // longer than the validity: renew now
  auto r = bootstrapSelfSignedTls(*client_, clock_, opts_);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->generated);
  EXPECT_EQ(api_.updates, 2);
  ASSERT_EQ(api_.lastPatch.size(), 2u);
  EXPECT_EQ(api_.lastPatch[0]["op"], "test");
  EXPECT_EQ(api_.lastPatch[0]["value"], oldBundle);
  EXPECT_NE(api_.config["webhooks"][1]["clientConfig"]["caBundle"], oldBundle);
}

TEST_F(BootstrapTest, MissingSecretIsAClassifiedError) {
  opts_.secretName = "absent";
  auto r = bootstrapSelfSignedTls(*client_, clock_, opts_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace exitrec::testing
