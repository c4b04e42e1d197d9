#include "k8sclient/event_recorder.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/fake_clock.h"
#include "k8sclient/fake_http_transport.h"

namespace exitrec {
namespace {

using nlohmann::json;

class EventRecorderTest : public ::testing::Test {
 protected:
  std::shared_ptr<FakeHttpTransport> transport = std::make_shared<FakeHttpTransport>();
  FakeClock clock;
  KubeClient client{transport, "https://api", TokenSource()};
  EventRecorder recorder{client, clock, "kfp-exit-reconciler", "pod-1"};
  ObjectReference wf{"argoproj.io/v1alpha1", "Workflow", "team-a", "run-1", "uid-1"};
};

TEST_F(EventRecorderTest, CreatesThenAggregatesRepeatsWithCount) {
  transport->setHandler([](const HttpRequest& r) -> Result<HttpResponse> {
    return fakeResponse(r.method == "POST" ? 201 : 200, r.body.empty() ? "{}" : r.body);
  });
  ASSERT_TRUE(
      recorder.record(wf, EventType::kWarning, "ExitHandlerFailed", "exit task failed").ok());
  clock.advance(std::chrono::seconds(30));
  ASSERT_TRUE(
      recorder.record(wf, EventType::kWarning, "ExitHandlerFailed", "exit task failed").ok());
  clock.advance(std::chrono::seconds(30));
  ASSERT_TRUE(
      recorder.record(wf, EventType::kWarning, "ExitHandlerFailed", "exit task failed").ok());
  // A different message is a different Event.
  ASSERT_TRUE(recorder.record(wf, EventType::kNormal, "Reconciled", "status corrected").ok());

  auto reqs = transport->requests();
  ASSERT_EQ(reqs.size(), 4u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].url, "https://api/api/v1/namespaces/team-a/events");
  auto ev = json::parse(reqs[0].body);
  EXPECT_EQ(ev["involvedObject"]["kind"], "Workflow");
  EXPECT_EQ(ev["involvedObject"]["apiVersion"], "argoproj.io/v1alpha1");
  EXPECT_EQ(ev["involvedObject"]["name"], "run-1");
  EXPECT_EQ(ev["involvedObject"]["namespace"], "team-a");
  EXPECT_EQ(ev["involvedObject"]["uid"], "uid-1");
  EXPECT_EQ(ev["reason"], "ExitHandlerFailed");
  EXPECT_EQ(ev["message"], "exit task failed");
  EXPECT_EQ(ev["type"], "Warning");
  EXPECT_EQ(ev["source"]["component"], "kfp-exit-reconciler");
  EXPECT_EQ(ev["source"]["host"], "pod-1");
  EXPECT_EQ(ev["count"], 1);
  EXPECT_EQ(ev["firstTimestamp"], ev["lastTimestamp"]);
  const std::string name = ev["metadata"]["name"];
  EXPECT_EQ(name.rfind("run-1.", 0), 0u);

  EXPECT_EQ(reqs[1].method, "PATCH");
  EXPECT_EQ(reqs[1].url, "https://api/api/v1/namespaces/team-a/events/" + name);
  EXPECT_EQ(*reqs[1].headers.find("Content-Type"), "application/merge-patch+json");
  auto p1 = json::parse(reqs[1].body);
  EXPECT_EQ(p1["count"], 2);
  EXPECT_NE(p1["lastTimestamp"], ev["lastTimestamp"]);
  EXPECT_EQ(json::parse(reqs[2].body)["count"], 3);
  EXPECT_EQ(reqs[3].method, "POST");
  EXPECT_EQ(json::parse(reqs[3].body)["type"], "Normal");
}

TEST_F(EventRecorderTest, RecreatesWhenTheAggregatedEventIsGone) {
  transport->pushResponse(fakeResponse(201, "{}"));
  ASSERT_TRUE(recorder.record(wf, EventType::kNormal, "R", "m").ok());
  transport->pushResponse(fakeResponse(404, R"({"kind":"Status","code":404,"reason":"NotFound"})"));
  transport->pushResponse(fakeResponse(201, "{}"));
  ASSERT_TRUE(recorder.record(wf, EventType::kNormal, "R", "m").ok());
  auto reqs = transport->requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[1].method, "PATCH");
  EXPECT_EQ(reqs[2].method, "POST");
  EXPECT_EQ(json::parse(reqs[2].body)["count"], 1);
}

TEST_F(EventRecorderTest, ErrorsAreReturnedClassified) {
  transport->pushResponse(fakeResponse(
      403, R"({"kind":"Status","code":403,"reason":"Forbidden","message":"events is forbidden"})"));
  Status s = recorder.record(wf, EventType::kNormal, "R", "m");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kForbidden);
  // Not cached: the next record creates again.
  transport->pushResponse(fakeResponse(201, "{}"));
  ASSERT_TRUE(recorder.record(wf, EventType::kNormal, "R", "m").ok());
  EXPECT_EQ(transport->requests().back().method, "POST");
}

}  // namespace
}  // namespace exitrec
