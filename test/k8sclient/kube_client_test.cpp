#include "k8sclient/kube_client.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/fake_clock.h"
#include "k8sclient/fake_http_transport.h"
#include "test_util.h"

namespace exitrec {
namespace {

using nlohmann::json;

std::string statusBody(int code, const std::string& reason, const std::string& message) {
  return json{{"kind", "Status"}, {"apiVersion", "v1"}, {"status", "Failure"},
              {"code", code},     {"reason", reason},   {"message", message}}
      .dump();
}

class KubeClientTest : public ::testing::Test {
 protected:
  std::shared_ptr<FakeHttpTransport> transport = std::make_shared<FakeHttpTransport>();
  FakeClock clock;
  KubeClient client{transport, "https://api:6443/", TokenSource::fixed("static-tok")};
};

TEST(ResourceRefTest, Paths) {
  EXPECT_EQ(resources::kPods.collectionPath("ns"), "/api/v1/namespaces/ns/pods");
  EXPECT_EQ(resources::kPods.collectionPath(""), "/api/v1/pods");
  EXPECT_EQ(resources::kNamespaces.objectPath("ignored", "kubeflow"),
            "/api/v1/namespaces/kubeflow");
  EXPECT_EQ(resources::kWorkflows.objectPath("a", "wf"),
            "/apis/argoproj.io/v1alpha1/namespaces/a/workflows/wf");
  EXPECT_EQ(resources::kWorkflows.collectionPath(""), "/apis/argoproj.io/v1alpha1/workflows");
  EXPECT_EQ(resources::kLeases.apiVersion(), "coordination.k8s.io/v1");
  EXPECT_EQ(resources::kPods.apiVersion(), "v1");
}

TEST_F(KubeClientTest, GetSendsBearerTokenAndParses) {
  transport->pushResponse(fakeResponse(200, R"({"metadata":{"name":"p"}})"));
  auto r = client.get(resources::kPods, "ns", "p");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["metadata"]["name"], "p");
  auto reqs = transport->requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "GET");
  EXPECT_EQ(reqs[0].url, "https://api:6443/api/v1/namespaces/ns/pods/p");
  ASSERT_NE(reqs[0].headers.find("authorization"), nullptr);
  EXPECT_EQ(*reqs[0].headers.find("Authorization"), "Bearer static-tok");
}

TEST_F(KubeClientTest, ErrorsAreClassifiedOnce) {
  transport->pushResponse(fakeResponse(404, statusBody(404, "NotFound", "pods \"p\" not found")));
  auto r = client.get(resources::kPods, "ns", "p");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_NE(r.error().message.find("pods \"p\" not found"), std::string::npos);

  transport->pushResponse(Error(ErrorCode::kTransient, "GET https://api:6443/x failed: refused"));
  auto t = client.get(resources::kPods, "ns", "p");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, ErrorCode::kTransient);
}

TEST_F(KubeClientTest, ListPaginatesAndKeepsListResourceVersion) {
  transport->pushResponse(fakeResponse(
      200,
      R"({"kind":"WorkflowList","metadata":{"resourceVersion":"77","continue":"tok/1+"},)"
      R"("items":[{"metadata":{"name":"a","resourceVersion":"5"}},{"metadata":{"name":"b"}}]})"));
  transport->pushResponse(
      fakeResponse(200, R"({"kind":"WorkflowList","metadata":{"resourceVersion":"77"},)"
                        R"("items":[{"metadata":{"name":"c","resourceVersion":"70"}}]})"));
  std::vector<std::string> names;
  ListOptions lo;
  lo.limit = 2;
  lo.labelSelector = "app=x,tier in (a,b)";
  lo.fieldSelector = "metadata.name!=z";
  auto r = client.list(resources::kWorkflows, "ns", lo, [&](std::string_view raw) {
    names.push_back(json::parse(raw)["metadata"]["name"]);
    return Status();
  });
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->resourceVersion, "77");
  EXPECT_EQ(r->items, 3u);
  EXPECT_EQ(r->pages, 2);
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b", "c"}));
  auto reqs = transport->requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].url,
            "https://api:6443/apis/argoproj.io/v1alpha1/namespaces/ns/workflows?limit=2"
            "&labelSelector=app%3Dx%2Ctier%20in%20%28a%2Cb%29&fieldSelector=metadata.name%21%3Dz");
  EXPECT_NE(reqs[1].url.find("&continue=tok%2F1%2B"), std::string::npos) << reqs[1].url;
}

TEST_F(KubeClientTest, ListExpiredContinueIsGone) {
  transport->pushResponse(fakeResponse(
      200,
      R"({"metadata":{"resourceVersion":"7","continue":"c1"},"items":[{"metadata":{"name":"a"}}]})"));
  transport->pushResponse(fakeResponse(410, statusBody(410, "Expired", "continue token expired")));
  auto r = client.list(resources::kPods, "", {}, [](std::string_view) { return Status(); });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kGone);
}

TEST_F(KubeClientTest, ListRejectsNonList) {
  transport->pushResponse(fakeResponse(200, R"({"kind":"Pod"})"));
  auto r = client.list(resources::kPods, "", {}, [](std::string_view) { return Status(); });
  ASSERT_FALSE(r.ok());
}

TEST_F(KubeClientTest, WritesUseTheRightVerbsAndContentTypes) {
  for (int i = 0; i < 4; ++i)
    transport->pushResponse(fakeResponse(200, "{}"));
  ASSERT_TRUE(client.create(resources::kPods, "ns", json{{"metadata", {{"name", "p"}}}}).ok());
  ASSERT_TRUE(client.update(resources::kPods, "ns", "p", json{{"metadata", {{"name", "p"}}}}).ok());
  ASSERT_TRUE(client
                  .mergePatch(resources::kWorkflows, "ns", "wf",
                              json{{"metadata", {{"labels", {{"done", "true"}}}}}}, "42")
                  .ok());
  ASSERT_TRUE(client
                  .jsonPatch(resources::kWorkflows, "ns", "wf",
                             json::array({{{"op", "replace"}, {"path", "/a"}, {"value", 1}}}))
                  .ok());
  auto reqs = transport->requests();
  ASSERT_EQ(reqs.size(), 4u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].url, "https://api:6443/api/v1/namespaces/ns/pods");
  EXPECT_EQ(*reqs[0].headers.find("Content-Type"), "application/json");
  EXPECT_EQ(reqs[1].method, "PUT");
  EXPECT_EQ(reqs[1].url, "https://api:6443/api/v1/namespaces/ns/pods/p");
  EXPECT_EQ(reqs[2].method, "PATCH");
  EXPECT_EQ(*reqs[2].headers.find("Content-Type"), "application/merge-patch+json");
  auto body = json::parse(reqs[2].body);
  EXPECT_EQ(body["metadata"]["resourceVersion"], "42");
  EXPECT_EQ(body["metadata"]["labels"]["done"], "true");
  EXPECT_EQ(*reqs[3].headers.find("Content-Type"), "application/json-patch+json");
}

// The raw merge patch hands back the server's bytes untouched: the caller
// reads the Workflow once (a DOM round trip would reorder keys and respace).
TEST_F(KubeClientTest, RawMergePatchSendsAndReturnsTheBodiesVerbatim) {
  const std::string response = R"({"metadata": {"name":"wf", "annotations":{"z":"1","a":"2"}}})";
  transport->pushResponse(fakeResponse(200, response));
  const std::string patch = R"({"metadata":{"annotations":{"a":"2"}}})";
  auto r = client.mergePatchRaw(resources::kWorkflows, "ns", "wf", patch);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, response);
  auto reqs = transport->requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "PATCH");
  EXPECT_EQ(reqs[0].url, "https://api:6443/apis/argoproj.io/v1alpha1/namespaces/ns/workflows/wf");
  EXPECT_EQ(*reqs[0].headers.find("Content-Type"), "application/merge-patch+json");
  EXPECT_EQ(reqs[0].body, patch);

  transport->pushResponse(
      fakeResponse(409, statusBody(409, "Conflict", "the object has been modified")));
  auto c = client.mergePatchRaw(resources::kWorkflows, "ns", "wf", patch);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, ErrorCode::kConflict);
}

TEST_F(KubeClientTest, GuardedPatchConflicts) {
  transport->pushResponse(
      fakeResponse(409, statusBody(409, "Conflict", "the object has been modified")));
  auto m = client.mergePatch(resources::kWorkflows, "ns", "wf", json::object(), "1");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, ErrorCode::kConflict);

  const json ops =
      json::array({{{"op", "test"}, {"path", "/metadata/resourceVersion"}, {"value", "1"}},
                   {{"op", "replace"}, {"path", "/spec/x"}, {"value", 2}}});
  transport->pushResponse(fakeResponse(422, statusBody(422, "Invalid", "test failed")));
  auto j = client.jsonPatch(resources::kWorkflows, "ns", "wf", ops);
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.error().code, ErrorCode::kConflict);

  // 422 without a test op stays Invalid.
  transport->pushResponse(fakeResponse(422, statusBody(422, "Invalid", "bad path")));
  auto k = client.jsonPatch(resources::kWorkflows, "ns", "wf",
                            json::array({{{"op", "remove"}, {"path", "/nope"}}}));
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.error().code, ErrorCode::kInvalid);
  EXPECT_NE(k.error().message.find("bad path"), std::string::npos);
}

TEST_F(KubeClientTest, WatchParsesEventsAndErrorEvent) {
  FakeStream s;
  s.lines = {
      R"({"type":"ADDED","object":{"metadata":{"name":"a","resourceVersion":"11"}}})",
      R"({"type":"BOOKMARK","object":{"kind":"Workflow","metadata":{"resourceVersion":"12"}}})",
      R"({"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old"}})",
      R"({"type":"DELETED","object":{"metadata":{"name":"never"}}})"};
  transport->pushStream(s);
  std::vector<std::pair<WatchEventType, std::string>> got;
  CancelSource cancel;
  WatchOptions wo;
  wo.resourceVersion = "10";
  wo.timeoutSeconds = std::chrono::seconds(400);
  auto r = client.watch(
      resources::kWorkflows, "", wo,
      [&](WatchEventType t, std::string_view raw) {
        got.emplace_back(t, std::string(raw));
        return true;
      },
      cancel);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].first, WatchEventType::kAdded);
  EXPECT_EQ(got[1].first, WatchEventType::kBookmark);
  ASSERT_TRUE(r->streamError.has_value());
  EXPECT_EQ(r->streamError->code, ErrorCode::kGone);
  EXPECT_EQ(r->end, StreamEnd::kStopped);
  auto reqs = transport->streamRequests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].url,
            "https://api:6443/apis/argoproj.io/v1alpha1/workflows?watch=true&resourceVersion=10"
            "&allowWatchBookmarks=true&timeoutSeconds=400");
  // Client idle timeout above the server-side timeout.
  EXPECT_GT(reqs[0].timeout, std::chrono::seconds(400));
}

TEST_F(KubeClientTest, WatchHttpGone) {
  FakeStream s;
  s.status = 410;
  s.body = statusBody(410, "Expired", "too old resource version");
  transport->pushStream(s);
  CancelSource cancel;
  auto r = client.watch(
      resources::kPods, "ns", {}, [](auto, auto) { return true; }, cancel);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kGone);
}

TEST(ObjectMetaTest, ReadsOnlyMetadata) {
  auto m = readObjectMeta(
      R"({"spec":{"huge":[1,2,3]},"metadata":{"namespace":"n","name":"x","uid":"u-1","resourceVersion":"9","labels":{"a":"b"}}})");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->namespaceName, "n");
  EXPECT_EQ(m->name, "x");
  EXPECT_EQ(m->uid, "u-1");
  EXPECT_EQ(m->resourceVersion, "9");
  EXPECT_FALSE(readObjectMeta(R"({"spec":{}})").ok());
}

// --- tokens ---

class TokenFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "k8stok-XXXXXX").string();
    dir = mkdtemp(tmpl.data());
    path = dir + "/token";
    writeToken("first-secret-token");
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  void writeToken(const std::string& t) { std::ofstream(path) << t << "\n"; }

  std::string dir, path;
  FakeClock clock;
};

TEST_F(TokenFileTest, ReReadAtLeastEveryMinute) {
  TokenSource src = TokenSource::file(path, clock);
  EXPECT_EQ(*src.token(), "first-secret-token");
  writeToken("second-secret-token");
  clock.advance(std::chrono::seconds(59));
  EXPECT_EQ(*src.token(), "first-secret-token");  // cached
  clock.advance(std::chrono::seconds(1));
  EXPECT_EQ(*src.token(), "second-secret-token");
}

TEST_F(TokenFileTest, FailedReReadKeepsPreviousToken) {
  TokenSource src = TokenSource::file(path, clock);
  EXPECT_EQ(*src.token(), "first-secret-token");
  std::filesystem::remove(path);
  clock.advance(std::chrono::minutes(2));
  auto t = src.token();
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t, "first-secret-token");
  TokenSource fresh = TokenSource::file(path, clock);
  auto e = fresh.token();
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find(path), std::string::npos);
}

TEST_F(TokenFileTest, UnauthorizedReReadsTokenAndRetriesOnce) {
  auto transport = std::make_shared<FakeHttpTransport>();
  KubeClient client(transport, "https://api", TokenSource::file(path, clock));
  transport->pushResponse(fakeResponse(200, "{}"));
  ASSERT_TRUE(client.get(resources::kPods, "ns", "p").ok());
  writeToken("rotated-secret-token");
  // Within the minute the cached token is used; the server has rotated: 401.
  transport->pushResponse(fakeResponse(401, statusBody(401, "Unauthorized", "Unauthorized")));
  transport->pushResponse(fakeResponse(200, "{}"));
  ASSERT_TRUE(client.get(resources::kPods, "ns", "p").ok());
  auto reqs = transport->requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(*reqs[1].headers.find("Authorization"), "Bearer first-secret-token");
  EXPECT_EQ(*reqs[2].headers.find("Authorization"), "Bearer rotated-secret-token");

  // Only one retry: a second 401 is returned as Unauthorized.
  transport->pushResponse(fakeResponse(401, statusBody(401, "Unauthorized", "Unauthorized")));
  transport->pushResponse(fakeResponse(401, statusBody(401, "Unauthorized", "Unauthorized")));
  transport->pushResponse(fakeResponse(200, "{}"));
  auto r = client.get(resources::kPods, "ns", "p");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnauthorized);
  EXPECT_EQ(transport->pendingResponses(), 1u);
}

TEST_F(TokenFileTest, WatchUnauthorizedReReadsAndRetries) {
  auto transport = std::make_shared<FakeHttpTransport>();
  KubeClient client(transport, "https://api", TokenSource::file(path, clock));
  ASSERT_TRUE(TokenSource::file(path, clock).token().ok());
  FakeStream denied;
  denied.status = 401;
  denied.body = statusBody(401, "Unauthorized", "Unauthorized");
  transport->pushStream(denied);
  FakeStream ok;
  ok.lines = {R"({"type":"ADDED","object":{"metadata":{"name":"a","resourceVersion":"3"}}})"};
  transport->pushStream(ok);
  CancelSource cancel;
  // Warm the cache with the first token, then rotate the file.
  transport->pushResponse(fakeResponse(200, "{}"));
  ASSERT_TRUE(client.get(resources::kPods, "ns", "p").ok());
  writeToken("rotated-secret-token");
  int events = 0;
  auto r = client.watch(
      resources::kPods, "", {}, [&](auto, auto) { return ++events > 0; }, cancel);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(events, 1);
  auto reqs = transport->streamRequests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(*reqs[1].headers.find("Authorization"), "Bearer rotated-secret-token");
}

TEST_F(TokenFileTest, TokenNeverInLogsOrErrors) {
  testing::LogCapture logs;
  auto transport = std::make_shared<FakeHttpTransport>();
  KubeClient client(transport, "https://api", TokenSource::file(path, clock));
  // A misbehaving server (or proxy) echoes the Authorization header back.
  transport->setHandler([](const HttpRequest& req) -> Result<HttpResponse> {
    const std::string* auth = req.headers.find("Authorization");
    return fakeResponse(400, statusBody(400, "BadRequest", "bad header " + (auth ? *auth : "")));
  });
  auto r = client.get(resources::kPods, "ns", "p");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(r.error().message.find("first-secret-token"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("<redacted>"), std::string::npos) << r.error().message;

  // 401 path: re-read, retry, rotation logged.
  writeToken("second-secret-token");
  transport->setHandler([](const HttpRequest&) -> Result<HttpResponse> {
    return fakeResponse(401, statusBody(401, "Unauthorized", "Unauthorized"));
  });
  auto u = client.get(resources::kPods, "ns", "p");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.error().describe().find("secret-token"), std::string::npos);
  const std::string text = logs.text();
  EXPECT_NE(text.find("401"), std::string::npos) << text;  // something was logged
  EXPECT_EQ(text.find("first-secret-token"), std::string::npos) << text;
  EXPECT_EQ(text.find("second-secret-token"), std::string::npos) << text;
}

}  // namespace
}  // namespace exitrec
