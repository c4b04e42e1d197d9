// Self-signed webhook TLS against a scripted API server (FakeHttpTransport):
// Secret filled once and reused, a lost update race adopts the winner's pair,
// caBundle patched with a guarded JSON patch and unchanged by serving
// renewals; the renewer (FakeClock) renews while running and every replica
// converges on the Secret's pair; a CA rotation keeps trusting the old CA.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "certs/certificates.h"
#include "certs/self_signed_bootstrap.h"
#include "certs/self_signed_renewer.h"
#include "common/base64.h"
#include "common/fake_clock.h"
#include "k8sclient/fake_http_transport.h"
#include "k8sclient/kube_client.h"
#include "test/webhook/kfp_pods.h"

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
  int patches = 0;
  int conflictsToInject = 0;
  json lastPatch;
  std::mutex mu;  // replicas' renewer threads call concurrently

  json secretData(const char* key) {
    std::lock_guard<std::mutex> g(mu);
    return secret["data"][key];
  }
  json bundle() {
    std::lock_guard<std::mutex> g(mu);
    return config["webhooks"][1]["clientConfig"]["caBundle"];
  }

  Result<HttpResponse> handle(const HttpRequest& req) {
    std::lock_guard<std::mutex> g(mu);
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
        ++patches;
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
  auto r = syncSelfSignedTls(*client_, clock_, opts_);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->generated);
  EXPECT_EQ(r->webhooksPatched, 1);
  EXPECT_EQ(api_.updates, 1);
  const std::string cert = read(opts_.certFile);
  EXPECT_TRUE(certificateUsable(cert, r->caPem, "kfp-exit-reconciler.kubeflow.svc",
                                clock_.wallNow(), std::chrono::hours(24)));
  EXPECT_FALSE(read(opts_.keyFile).empty());
  // Only our webhook's caBundle; the other configuration entry is untouched.
  EXPECT_EQ(api_.config["webhooks"][1]["clientConfig"]["caBundle"], base64Encode(r->caPem));
  EXPECT_FALSE(api_.config["webhooks"][0]["clientConfig"].contains("caBundle"));

  // A restart (or a second replica) reuses the stored pair and patches nothing.
  auto again = syncSelfSignedTls(*client_, clock_, opts_);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->generated);
  EXPECT_EQ(again->webhooksPatched, 0);
  EXPECT_EQ(api_.updates, 1);
  EXPECT_EQ(read(opts_.certFile), cert);
}

TEST_F(BootstrapTest, LosingTheUpdateRaceAdoptsTheWinnersPair) {
  api_.conflictsToInject = 1;
  auto r = syncSelfSignedTls(*client_, clock_, opts_);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->generated);
  EXPECT_EQ(api_.updates, 0);
  EXPECT_EQ(read(opts_.certFile),
            base64Decode(api_.secret["data"]["tls.crt"].get<std::string>()).value());
  EXPECT_EQ(api_.config["webhooks"][1]["clientConfig"]["caBundle"], api_.secret["data"]["ca.crt"]);
}

TEST_F(BootstrapTest, ServingRenewalKeepsTheCaAndTheCaBundle) {
  ASSERT_TRUE(syncSelfSignedTls(*client_, clock_, opts_).ok());
  const json oldBundle = api_.bundle();
  const std::string oldCert = read(opts_.certFile);
  opts_.renewBefore = std::chrono::hours(24 * 400);  // longer than the validity: renew now
  auto r = syncSelfSignedTls(*client_, clock_, opts_);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->generated);
  EXPECT_FALSE(r->caRotated);
  EXPECT_EQ(api_.updates, 2);
  EXPECT_EQ(api_.patches, 1) << "caBundle must not change when only the serving cert renews";
  EXPECT_EQ(api_.bundle(), oldBundle);
  EXPECT_TRUE(r->filesWritten);
  EXPECT_NE(read(opts_.certFile), oldCert);
  // The new certificate chains to the CA the API server already trusts.
  EXPECT_TRUE(certificateUsable(
      read(opts_.certFile), base64Decode(oldBundle.get<std::string>()).value(),
      "kfp-exit-reconciler.kubeflow.svc", clock_.wallNow(), std::chrono::hours(24)));
}

TEST_F(BootstrapTest, ChangedCaBundleIsPatchedWithAGuard) {
  ASSERT_TRUE(syncSelfSignedTls(*client_, clock_, opts_).ok());
  const json good = api_.bundle();
  api_.config["webhooks"][1]["clientConfig"]["caBundle"] = base64Encode("stale");
  auto r = syncSelfSignedTls(*client_, clock_, opts_);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->webhooksPatched, 1);
  ASSERT_EQ(api_.lastPatch.size(), 2u);
  EXPECT_EQ(api_.lastPatch[0]["op"], "test");
  EXPECT_EQ(api_.lastPatch[0]["value"], base64Encode("stale"));
  EXPECT_EQ(api_.bundle(), good);
}

TEST_F(BootstrapTest, GarbledSecretIsReplacedNotServed) {
  api_.secret["data"] = {{"ca.crt", "!!notbase64"},
                         {"ca.key", base64Encode("junk")},
                         {"tls.crt", base64Encode("-----BEGIN CERTIFICATE-----\nAAAA\n")},
                         {"tls.key", 7}};
  auto r = syncSelfSignedTls(*client_, clock_, opts_);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->generated);
  EXPECT_TRUE(r->caRotated);
  EXPECT_TRUE(certificateUsable(read(opts_.certFile), r->caPem, "kfp-exit-reconciler.kubeflow.svc",
                                clock_.wallNow(), std::chrono::hours(24)));
  EXPECT_TRUE(keyMatchesCertificate(read(opts_.certFile), read(opts_.keyFile)));
}

TEST_F(BootstrapTest, MissingSecretIsAClassifiedError) {
  opts_.secretName = "absent";
  auto r = syncSelfSignedTls(*client_, clock_, opts_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
}

// Waits (real time, bounded) until `renewer` has completed `n` passes.
bool waitForPasses(const SelfSignedTlsRenewer& renewer, std::uint64_t n) {
  for (int i = 0; i < 2000 && renewer.passes() < n; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return renewer.passes() >= n;
}

// Waits until `n` renewers are parked on a future deadline, so that the next
// advance() is seen by all of them (bounded real-time wait).
bool waitParked(const FakeClock& clock, std::size_t n) {
  for (int i = 0; i < 2000; ++i) {
    if (clock.waiterCount() == n && clock.dueWaiters() == 0)
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

// Two replicas: each its own files, one Secret and one webhook configuration.
class RenewerTest : public BootstrapTest {
 protected:
  void SetUp() override {
    BootstrapTest::SetUp();
    optsB_ = opts_;
    optsB_.certFile = (dir_ / "b.crt").string();
    optsB_.keyFile = (dir_ / "b.key").string();
  }
  // Advances the fake time and waits until both replicas ran one more pass.
  void advanceAndSync(std::chrono::hours by, SelfSignedTlsRenewer& a, SelfSignedTlsRenewer& b) {
    ASSERT_TRUE(waitParked(clock_, 2));
    const auto pa = a.passes(), pb = b.passes();
    clock_.advance(by);
    ASSERT_TRUE(waitForPasses(a, pa + 1));
    ASSERT_TRUE(waitForPasses(b, pb + 1));
  }
  SelfSignedOptions optsB_;
  RenewerTiming timing_;  // resync every minute
};

TEST_F(RenewerTest, RenewsWhileRunningAndEveryReplicaServesTheStoredPair) {
  auto a = SelfSignedTlsRenewer::start(*client_, clock_, opts_, timing_);
  ASSERT_TRUE(a.ok()) << a.error().message;
  auto b = SelfSignedTlsRenewer::start(*client_, clock_, optsB_, timing_);
  ASSERT_TRUE(b.ok()) << b.error().message;
  const json bundle = api_.bundle();
  const std::string first = read(opts_.certFile);
  EXPECT_EQ(read(optsB_.certFile), first);
  EXPECT_EQ(api_.updates, 1);

  // Day 59 of 90: nothing due yet.
  advanceAndSync(std::chrono::hours(24 * 59), **a, **b);
  EXPECT_EQ(api_.updates, 1);
  // Day 61: inside renewBefore (30 days). Exactly one replica stores a new
  // pair; both serve it; the caBundle stays (same CA).
  advanceAndSync(std::chrono::hours(24 * 2), **a, **b);
  advanceAndSync(std::chrono::hours(1), **a, **b);  // the loser of the race catches up
  EXPECT_EQ(api_.updates, 2);
  const std::string renewed = base64Decode(api_.secretData("tls.crt").get<std::string>()).value();
  EXPECT_NE(renewed, first);
  EXPECT_EQ(read(opts_.certFile), renewed);
  EXPECT_EQ(read(optsB_.certFile), renewed);
  EXPECT_EQ(read(optsB_.keyFile),
            base64Decode(api_.secretData("tls.key").get<std::string>()).value());
  EXPECT_EQ(api_.bundle(), bundle);
  EXPECT_TRUE(certificateUsable(renewed, base64Decode(bundle.get<std::string>()).value(),
                                "kfp-exit-reconciler.kubeflow.svc", clock_.wallNow(),
                                std::chrono::hours(24 * 30)));
  EXPECT_EQ((*a)->failures() + (*b)->failures(), 0u);
}

TEST_F(RenewerTest, ReplicaAdoptsAPairAnotherReplicaStored) {
  auto a = SelfSignedTlsRenewer::start(*client_, clock_, opts_, timing_);
  ASSERT_TRUE(a.ok()) << a.error().message;
  // Another replica (not running here) stores a new pair from the same CA.
  ASSERT_TRUE(syncSelfSignedTls(*client_, clock_,
                                [&] {
                                  auto o = optsB_;
                                  o.renewBefore = std::chrono::hours(24 * 400);  // renew now
                                  return o;
                                }())
                  .ok());
  const std::string stored = base64Decode(api_.secretData("tls.crt").get<std::string>()).value();
  ASSERT_NE(read(opts_.certFile), stored);
  const auto updates = api_.updates;
  const auto passes = (*a)->passes();
  ASSERT_TRUE(waitParked(clock_, 1));
  clock_.advance(std::chrono::minutes(1));
  ASSERT_TRUE(waitForPasses(**a, passes + 1));
  EXPECT_EQ(read(opts_.certFile), stored);
  EXPECT_EQ(api_.updates, updates);  // adopted, not renewed again
}

TEST_F(RenewerTest, CaRotationKeepsTrustingThePreviousCa) {
  opts_.caValidity = std::chrono::hours(24 * 120);  // cannot outlive a second 90-day cert
  auto a = SelfSignedTlsRenewer::start(*client_, clock_, opts_, timing_);
  ASSERT_TRUE(a.ok()) << a.error().message;
  const std::string oldCa = base64Decode(api_.bundle().get<std::string>()).value();
  const std::string oldCert = read(opts_.certFile);
  const auto passes = (*a)->passes();
  ASSERT_TRUE(waitParked(clock_, 1));
  clock_.advance(std::chrono::hours(24 * 61));
  ASSERT_TRUE(waitForPasses(**a, passes + 1));
  const auto cas = splitPemCertificates(base64Decode(api_.bundle().get<std::string>()).value());
  ASSERT_EQ(cas.size(), 2u);
  EXPECT_NE(cas[0], oldCa);
  EXPECT_EQ(cas[1], oldCa);  // a replica still serving the old pair stays trusted
  EXPECT_TRUE(certificateUsable(read(opts_.certFile), cas[0], "kfp-exit-reconciler.kubeflow.svc",
                                clock_.wallNow(), std::chrono::hours(24)));
  EXPECT_TRUE(certificateUsable(oldCert, cas[1], "kfp-exit-reconciler.kubeflow.svc",
                                clock_.wallNow(), std::chrono::hours(24)));
  EXPECT_EQ(base64Decode(api_.secretData("ca.crt").get<std::string>()).value(), cas[0] + cas[1]);
}

TEST_F(RenewerTest, FailedPassIsRetriedAndTheFilesKeepTheLastPair) {
  auto a = SelfSignedTlsRenewer::start(*client_, clock_, opts_, timing_);
  ASSERT_TRUE(a.ok()) << a.error().message;
  const std::string cert = read(opts_.certFile);
  {
    std::lock_guard<std::mutex> g(api_.mu);
    api_.config = json::array();  // an unreadable configuration
  }
  auto passes = (*a)->passes();
  ASSERT_TRUE(waitParked(clock_, 1));
  clock_.advance(std::chrono::minutes(1));
  ASSERT_TRUE(waitForPasses(**a, passes + 1));
  EXPECT_EQ((*a)->failures(), 1u);
  EXPECT_EQ(read(opts_.certFile), cert);
  // The retry comes after retryInterval, not after the full resync interval.
  passes = (*a)->passes();
  ASSERT_TRUE(waitParked(clock_, 1));
  clock_.advance(timing_.retryInterval);
  ASSERT_TRUE(waitForPasses(**a, passes + 1));
  EXPECT_EQ((*a)->failures(), 2u);
}

}  // namespace
}  // namespace exitrec::testing
