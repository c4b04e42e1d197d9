// Fencing: LeaseFence, FencedTransport, and a deposed leader whose lease call
// hangs (FakeClock only: no wall-clock bound anywhere).

#include "k8sclient/leadership_gate.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/fake_clock.h"
#include "k8sclient/fake_http_transport.h"
#include "k8sclient/kube_client.h"
#include "k8sclient/leader_election.h"
#include "test_util.h"

namespace exitrec {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::waitFor;

HttpRequest request(std::string method, std::string url) {
  HttpRequest r;
  r.method = std::move(method);
  r.url = std::move(url);
  return r;
}

TEST(LeaseFenceTest, OpenOnlyBetweenGrantAndDeadlineAndClosedForGoodOnceRevoked) {
  FakeClock clock;
  LeaseFence fence(clock, "kubeflow/lock");
  EXPECT_EQ(fence.state(), LeaseFence::State::kNotLeading);
  EXPECT_EQ(fence.mayWrite().error().code, ErrorCode::kCancelled);
  fence.grant(clock.now() + seconds(10));
  EXPECT_TRUE(fence.mayWrite().ok());
  clock.advance(seconds(10) - milliseconds(1));
  EXPECT_TRUE(fence.mayWrite().ok());
  clock.advance(milliseconds(1));  // the deadline itself is too late
  ASSERT_EQ(fence.state(), LeaseFence::State::kExpired);
  EXPECT_NE(fence.mayWrite().error().message.find("kubeflow/lock"), std::string::npos);
  fence.grant(clock.now() + seconds(10));  // a renewal reopens it
  EXPECT_TRUE(fence.mayWrite().ok());
  fence.revoke();
  EXPECT_EQ(fence.state(), LeaseFence::State::kRevoked);
  fence.grant(clock.now() + seconds(10));  // a late renewal cannot reopen it
  EXPECT_FALSE(fence.mayWrite().ok());
}

TEST(FencedTransportTest, RefusesEveryWriteWhileClosedAndLetsReadsThrough) {
  FakeClock clock;
  LeaseFence fence(clock, "kubeflow/lock");
  auto inner = std::make_shared<FakeHttpTransport>();
  inner->setHandler([](const HttpRequest&) { return fakeResponse(200, "{}"); });
  FencedTransport t(inner, fence);
  const std::string url = "https://api/apis/argoproj.io/v1alpha1/namespaces/kubeflow/workflows/wf";
  for (const char* m : {"PATCH", "POST", "PUT", "DELETE"}) {
    auto r = t.send(request(m, url + "?fieldManager=x"));
    ASSERT_FALSE(r.ok()) << m;
    EXPECT_EQ(r.error().code, ErrorCode::kCancelled);
    EXPECT_EQ(r.error().message.find("fieldManager"), std::string::npos) << "query in message";
    EXPECT_FALSE(t.sendChunked(request(m, url), [](std::string_view) { return true; }).ok());
  }
  EXPECT_TRUE(inner->requests().empty()) << "a refused write reached the wire";
  EXPECT_TRUE(t.send(request("GET", url)).ok());
  fence.grant(clock.now() + seconds(1));
  EXPECT_TRUE(t.send(request("PATCH", url)).ok());
  EXPECT_EQ(inner->requests().size(), 2u);
}

TEST(LeaseRequestTimeoutTest, HalfTheRenewDeadlineAtLeastOneSecondNeverMoreThanTheDeadline) {
  EXPECT_EQ(leaseRequestTimeout(seconds(10)), seconds(5));
  EXPECT_EQ(leaseRequestTimeout(seconds(2)), seconds(1));
  EXPECT_EQ(leaseRequestTimeout(milliseconds(1500)), seconds(1));
  EXPECT_EQ(leaseRequestTimeout(milliseconds(800)), milliseconds(800));
}

// An in-memory Lease served over FakeHttpTransport. hang() makes the next
// lease calls block until release(), like an API server that stopped
// answering (the real transport would time out; here time is the test's);
// after release() every call fails with 503.
class LeaseApi {
 public:
  LeaseApi() : transport(std::make_shared<FakeHttpTransport>()) {
    transport->setHandler([this](const HttpRequest& r) { return serve(r); });
  }
  void hang() {
    std::lock_guard<std::mutex> g(mu_);
    hanging_ = true;
  }
  void release() {
    {
      std::lock_guard<std::mutex> g(mu_);
      hanging_ = false;
      failing_ = true;
    }
    cv_.notify_all();
  }
  int hungCalls() const {
    std::lock_guard<std::mutex> g(mu_);
    return hung_;
  }
  std::shared_ptr<FakeHttpTransport> transport;

 private:
  Result<HttpResponse> serve(const HttpRequest& r) {
    std::unique_lock<std::mutex> lock(mu_);
    if (hanging_) {
      ++hung_;
      cv_.wait(lock, [&] { return !hanging_; });
      return Error(ErrorCode::kTransient, r.method + " " + r.url + ": timed out");
    }
    if (failing_)
      return fakeResponse(503, R"({"kind":"Status","code":503,"reason":"ServiceUnavailable"})");
    if (r.method == "GET") {
      if (lease_.is_null())
        return fakeResponse(404, R"({"kind":"Status","code":404,"reason":"NotFound"})");
      return fakeResponse(200, lease_.dump());
    }
    json obj = json::parse(r.body);
    if (r.method == "PUT" && obj["metadata"].value("resourceVersion", "") != std::to_string(rv_))
      return fakeResponse(409, R"({"kind":"Status","code":409,"reason":"Conflict"})");
    obj["metadata"]["resourceVersion"] = std::to_string(++rv_);
    lease_ = obj;
    return fakeResponse(r.method == "POST" ? 201 : 200, lease_.dump());
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool hanging_ = false;
  bool failing_ = false;
  int hung_ = 0;
  json lease_;
  int rv_ = 0;
};

TEST(FencingTest, DeposedLeaderWritesNothingOnceTheRenewDeadlinePassesEvenWhileItsLeaseCallHangs) {
  FakeClock clock;
  LeaseApi api;
  KubeClientOptions leaseOpts;
  leaseOpts.requestTimeout = leaseRequestTimeout(seconds(10));
  KubeClient leaseClient(api.transport, "https://api", TokenSource(), leaseOpts);
  KubeLeaseLock lock(leaseClient, "kubeflow", "exit-reconciler");
  LeaseFence fence(clock, "kubeflow/exit-reconciler");

  // What workers use: every write goes through the fence.
  auto wire = std::make_shared<FakeHttpTransport>();
  wire->setHandler([](const HttpRequest&) { return fakeResponse(200, "{}"); });
  auto fenced = std::make_shared<FencedTransport>(wire, fence);
  KubeClient workers(fenced, "https://api", TokenSource());
  auto patch = [&] {
    return workers.mergePatch(resources::kWorkflows, "kubeflow", "wf",
                              json{{"metadata", {{"annotations", {{"a", "b"}}}}}});
  };
  auto kfpReport = [&] {
    return fenced->send(request("POST", "http://kfp/apis/v1beta1/workflows"));
  };

  std::atomic<int> stopped{0};
  LeaderElectionConfig c;
  c.identity = "a";  // 15 s / 10 s / 2 s
  c.fence = &fence;
  c.onStoppedLeading = [&] { ++stopped; };
  LeaderElector elector(lock, clock, c, [] { return 0.0; });
  const auto acquiredAt = clock.now();
  std::thread t([&] { elector.run(); });
  struct Cleanup {  // a failed ASSERT must not leave the elector blocked
    LeaseApi& api;
    LeaderElector& elector;
    std::thread& t;
    ~Cleanup() {
      api.release();
      elector.stop();
      if (t.joinable())
        t.join();
    }
  } cleanup{api, elector, t};
  ASSERT_TRUE(waitFor([&] { return elector.isLeader() && clock.waiterCount() == 1; }));
  ASSERT_TRUE(patch().ok());
  ASSERT_TRUE(kfpReport().ok());
  const std::size_t writesWhileLeading = wire->requests().size();
  ASSERT_EQ(writesWhileLeading, 2u);
  for (const auto& r : api.transport->requests())
    EXPECT_EQ(r.timeout, seconds(5)) << r.method << " " << r.url << ": not the lease timeout";

  // The API server stops answering; the next renewal (at +2 s) hangs.
  api.hang();
  clock.advance(seconds(2));
  ASSERT_TRUE(waitFor([&] { return api.hungCalls() == 1; }));
  clock.advance(seconds(7));  // +9 s: still inside the renew deadline
  EXPECT_TRUE(patch().ok());
  clock.advance(seconds(1));  // +10 s = acquiredAt + renewDeadline
  ASSERT_EQ(clock.now(), acquiredAt + seconds(10));
  EXPECT_TRUE(elector.isLeader()) << "the elector is still blocked in the hung call";
  auto refused = patch();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kCancelled);
  EXPECT_FALSE(kfpReport().ok());
  EXPECT_EQ(wire->requests().size(), writesWhileLeading + 1) << "a write after the deadline";

  // The call finally fails, and so does the next round: the elector's own
  // deadline (its round began at +2 s) passes and it gives up.
  api.release();
  ASSERT_TRUE(waitFor([&] { return clock.waiterCount() == 1; }));
  EXPECT_EQ(stopped.load(), 0);
  clock.advance(seconds(2));
  ASSERT_TRUE(waitFor([&] { return stopped.load() == 1; }));
  t.join();
  EXPECT_EQ(fence.state(), LeaseFence::State::kRevoked);
  EXPECT_FALSE(patch().ok());
  EXPECT_EQ(wire->requests().size(), writesWhileLeading + 1);
}

}  // namespace
}  // namespace exitrec
