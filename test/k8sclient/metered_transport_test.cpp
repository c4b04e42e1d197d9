// MeteredTransport: the request classification and the observer calls.

#include "k8sclient/metered_transport.h"

#include <gtest/gtest.h>

#include <mutex>
#include <vector>

#include "k8sclient/fake_http_transport.h"

namespace exitrec {
namespace {

struct Observed {
  std::string verb, resource;
  int status = -1;
  double seconds = -1;
};

class RecordingObserver final : public TransportObserver {
 public:
  void onRequest(std::string_view verb, std::string_view resource, int status,
                 std::chrono::duration<double> latency) override {
    std::lock_guard<std::mutex> g(mu_);
    seen_.push_back({std::string(verb), std::string(resource), status, latency.count()});
  }
  std::vector<Observed> seen() const {
    std::lock_guard<std::mutex> g(mu_);
    return seen_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Observed> seen_;
};

HttpRequest request(std::string method, std::string url) {
  HttpRequest r;
  r.method = std::move(method);
  r.url = std::move(url);
  return r;
}

TEST(MeteredTransportTest, ClassifiesVerbAndResource) {
  using P = std::pair<std::string, std::string>;
  EXPECT_EQ(MeteredTransport::classify(
                "GET", "https://h:6443/apis/argoproj.io/v1alpha1/workflows?limit=500"),
            P("list", "workflows"));
  EXPECT_EQ(MeteredTransport::classify(
                "GET", "http://h/apis/argoproj.io/v1alpha1/workflows?watch=true&resourceVersion=5"),
            P("watch", "workflows"));
  EXPECT_EQ(MeteredTransport::classify(
                "GET", "http://h/apis/argoproj.io/v1alpha1/namespaces/kubeflow/workflows/wf"),
            P("get", "workflows"));
  EXPECT_EQ(MeteredTransport::classify(
                "PATCH", "http://h/apis/argoproj.io/v1alpha1/namespaces/kubeflow/workflows/wf"),
            P("patch", "workflows"));
  EXPECT_EQ(MeteredTransport::classify("POST", "http://h/api/v1/namespaces/kubeflow/events"),
            P("create", "events"));
  EXPECT_EQ(MeteredTransport::classify(
                "PUT", "http://h/apis/coordination.k8s.io/v1/namespaces/ns/leases/l"),
            P("update", "leases"));
}

TEST(MeteredTransportTest, ReportsEachRequestAndPassesItThrough) {
  auto inner = std::make_shared<FakeHttpTransport>();
  RecordingObserver observer;
  MeteredTransport metered(inner, &observer);

  inner->pushResponse(fakeResponse(200, "{}"));
  auto got = metered.send(
      request("GET", "https://h/apis/argoproj.io/v1alpha1/namespaces/kubeflow/workflows/wf"));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got.value().body, "{}");

  inner->pushResponse(fakeResponse(409, "conflict"));
  std::string chunks;
  auto patched = metered.sendChunked(
      request("PATCH", "https://h/api/v1/namespaces/kubeflow/pods/p"), [&](std::string_view piece) {
        chunks.append(piece);
        return true;
      });
  ASSERT_TRUE(patched.ok());
  EXPECT_EQ(patched.value().status, 409);

  // No response at all: status 0.
  inner->pushResponse(Error(ErrorCode::kTransient, "connection refused"));
  EXPECT_FALSE(metered.send(request("POST", "https://h/api/v1/namespaces/ns/events")).ok());

  FakeStream s;
  s.lines = {R"({"type":"ADDED","object":{}})"};
  inner->pushStream(s);
  CancelSource cancel;
  int lines = 0;
  auto streamed = metered.stream(
      request("GET", "https://h/apis/argoproj.io/v1alpha1/workflows?watch=true"),
      [&](std::string_view) {
        ++lines;
        return true;
      },
      cancel);
  ASSERT_TRUE(streamed.ok());
  EXPECT_EQ(lines, 1);

  auto seen = observer.seen();
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[0].verb, "get");
  EXPECT_EQ(seen[0].resource, "workflows");
  EXPECT_EQ(seen[0].status, 200);
  EXPECT_EQ(seen[1].verb, "patch");
  EXPECT_EQ(seen[1].resource, "pods");
  EXPECT_EQ(seen[1].status, 409);
  EXPECT_EQ(seen[2].verb, "create");
  EXPECT_EQ(seen[2].resource, "events");
  EXPECT_EQ(seen[2].status, 0);
  EXPECT_EQ(seen[3].verb, "watch");
  EXPECT_EQ(seen[3].status, 200);
  for (const auto& o : seen)
    EXPECT_GE(o.seconds, 0.0);
}

TEST(MeteredTransportTest, WithoutObserverOnlyPassesThrough) {
  auto inner = std::make_shared<FakeHttpTransport>();
  MeteredTransport metered(inner, nullptr);
  inner->pushResponse(fakeResponse(201, "made"));
  auto got = metered.send(request("POST", "https://h/api/v1/namespaces/ns/events"));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got.value().status, 201);
  EXPECT_EQ(inner->requests().size(), 1u);
}

}  // namespace
}  // namespace exitrec
