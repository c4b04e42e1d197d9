#include "sim/kube_api_simulator.h"

#include <gtest/gtest.h>

#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "common/http_server.h"
#include "test/sim/test_http_client.h"

namespace exitrec {
namespace {

using nlohmann::json;
using testing::HttpResult;
using testing::TestHttpConnection;

std::string urlEncodeForTest(const std::string& s) {
  return urlEncode(s);
}

const char* kWfPath = "/apis/argoproj.io/v1alpha1/namespaces/default/workflows";

json workflow(const std::string& name, const json& labels = json::object()) {
  return {{"apiVersion", "argoproj.io/v1alpha1"},
          {"kind", "Workflow"},
          {"metadata", {{"name", name}, {"namespace", "default"}, {"labels", labels}}},
          {"spec", {{"entrypoint", "main"}}}};
}

class SimTest : public ::testing::Test {
 protected:
  void startSim(KubeApiSimulator::Options o = {}) {
    o.bookmarkInterval = std::chrono::milliseconds(100);
    sim_ = std::make_unique<KubeApiSimulator>(o);
    ASSERT_TRUE(sim_->start().ok());
  }
  void SetUp() override { startSim(); }

  HttpResult call(const std::string& method, const std::string& target,
                  const std::string& body = "", const std::string& contentType = "application/json",
                  std::vector<std::pair<std::string, std::string>> headers = {}) {
    if (!body.empty())
      headers.emplace_back("Content-Type", contentType);
    if (!token_.empty())
      headers.emplace_back("Authorization", "Bearer " + token_);
    return testing::httpRequest(sim_->port(), method, target, headers, body, ca_);
  }
  json callJson(const std::string& method, const std::string& target, const json& body = nullptr,
                int expectStatus = 200, const std::string& contentType = "application/json") {
    auto r = call(method, target, body.is_null() ? "" : body.dump(), contentType);
    EXPECT_EQ(r.status, expectStatus) << method << " " << target << ": " << r.body;
    return json::parse(r.body);
  }
  json create(const json& obj) { return callJson("POST", kWfPath, obj, 201); }

  std::unique_ptr<KubeApiSimulator> sim_;
  std::string token_;
  std::string ca_;
};

TEST_F(SimTest, DiscoveryDescribesWorkflowsWithoutStatusSubresource) {
  json gv = callJson("GET", "/apis/argoproj.io/v1alpha1");
  EXPECT_EQ(gv["kind"], "APIResourceList");
  bool found = false;
  for (const auto& r : gv["resources"]) {
    EXPECT_NE(r["name"], "workflows/status");
    if (r["name"] == "workflows") {
      found = true;
      EXPECT_EQ(r["kind"], "Workflow");
      EXPECT_EQ(r["namespaced"], true);
      EXPECT_EQ(r["shortNames"], json::array({"wf"}));
    }
  }
  EXPECT_TRUE(found);
  json groups = callJson("GET", "/apis");
  EXPECT_EQ(groups["kind"], "APIGroupList");
  EXPECT_EQ(groups["groups"].size(), 2u);
  json core = callJson("GET", "/api/v1");
  std::set<std::string> names;
  for (const auto& r : core["resources"])
    names.insert(r["name"]);
  EXPECT_EQ(names, (std::set<std::string>{"pods", "events", "namespaces"}));
  EXPECT_EQ(callJson("GET", "/version")["major"], "1");
  EXPECT_EQ(callJson("GET", "/apis/coordination.k8s.io/v1")["resources"][0]["name"], "leases");
  EXPECT_EQ(call("GET", "/apis/nope.io/v1").status, 404);
}

TEST_F(SimTest, CreateGetUpdateWithFaithfulErrors) {
  json created = create(workflow("a"));
  EXPECT_FALSE(created["metadata"]["uid"].get<std::string>().empty());
  EXPECT_FALSE(created["metadata"]["creationTimestamp"].get<std::string>().empty());
  EXPECT_TRUE(created["metadata"]["resourceVersion"].is_string());
  EXPECT_EQ(created["metadata"]["generation"], 1);

  json dup = callJson("POST", kWfPath, workflow("a"), 409);
  EXPECT_EQ(dup["reason"], "AlreadyExists");
  EXPECT_EQ(dup["message"], "workflows.argoproj.io \"a\" already exists");

  json missing = callJson("GET", std::string(kWfPath) + "/zz", nullptr, 404);
  EXPECT_EQ(missing["kind"], "Status");
  EXPECT_EQ(missing["apiVersion"], "v1");
  EXPECT_EQ(missing["status"], "Failure");
  EXPECT_EQ(missing["reason"], "NotFound");
  EXPECT_EQ(missing["code"], 404);
  EXPECT_EQ(missing["message"], "workflows.argoproj.io \"zz\" not found");
  EXPECT_EQ(missing["details"]["group"], "argoproj.io");

  json upd = created;
  upd["spec"]["x"] = 1;
  json updated = callJson("PUT", std::string(kWfPath) + "/a", upd);
  EXPECT_NE(updated["metadata"]["resourceVersion"], created["metadata"]["resourceVersion"]);
  EXPECT_EQ(updated["metadata"]["generation"], 2);

  json stale = callJson("PUT", std::string(kWfPath) + "/a", upd, 409);  // old RV
  EXPECT_EQ(stale["reason"], "Conflict");
  EXPECT_EQ(stale["message"],
            "Operation cannot be fulfilled on workflows.argoproj.io \"a\": the object has been "
            "modified; please apply your changes to the latest version and try again");

  // A no-op update keeps the resourceVersion (nothing is written).
  json same = callJson("PUT", std::string(kWfPath) + "/a", updated);
  EXPECT_EQ(same["metadata"]["resourceVersion"], updated["metadata"]["resourceVersion"]);

  json gen = workflow("");
  gen["metadata"].erase("name");
  gen["metadata"]["generateName"] = "run-";
  json g = create(gen);
  EXPECT_EQ(g["metadata"]["name"].get<std::string>().rfind("run-", 0), 0u);
  EXPECT_EQ(g["metadata"]["name"].get<std::string>().size(), 9u);

  json noName = workflow("");
  noName["metadata"].erase("name");
  EXPECT_EQ(callJson("POST", kWfPath, noName, 422)["reason"], "Invalid");

  json del = callJson("DELETE", std::string(kWfPath) + "/a");
  EXPECT_EQ(del["metadata"]["name"], "a");
  EXPECT_EQ(call("GET", std::string(kWfPath) + "/a").status, 404);
}

TEST_F(SimTest, PatchTypesAndOptimisticLocking) {
  json created = create(workflow("p"));
  std::string path = std::string(kWfPath) + "/p";
  std::string rv = created["metadata"]["resourceVersion"];

  json merged =
      callJson("PATCH", path,
               {{"metadata", {{"labels", {{"x", "1"}}}}}, {"spec", {{"entrypoint", nullptr}}}}, 200,
               "application/merge-patch+json");
  EXPECT_EQ(merged["metadata"]["labels"]["x"], "1");
  EXPECT_FALSE(merged["spec"].contains("entrypoint"));

  json staleMerge =
      callJson("PATCH", path, {{"metadata", {{"resourceVersion", rv}, {"labels", {{"y", "2"}}}}}},
               409, "application/merge-patch+json");
  EXPECT_EQ(staleMerge["reason"], "Conflict");

  json failedTest =
      callJson("PATCH", path,
               json::array({{{"op", "test"}, {"path", "/metadata/resourceVersion"}, {"value", rv}},
                            {{"op", "add"}, {"path", "/metadata/labels/z"}, {"value", "3"}}}),
               422, "application/json-patch+json");
  EXPECT_EQ(failedTest["reason"], "Invalid");
  EXPECT_EQ(failedTest["code"], 422);

  std::string cur = merged["metadata"]["resourceVersion"];
  json ok =
      callJson("PATCH", path,
               json::array({{{"op", "test"}, {"path", "/metadata/resourceVersion"}, {"value", cur}},
                            {{"op", "add"}, {"path", "/metadata/labels/z"}, {"value", "3"}}}),
               200, "application/json-patch+json");
  EXPECT_EQ(ok["metadata"]["labels"]["z"], "3");

  json smp = callJson("PATCH", path, {{"metadata", {{"labels", {{"q", "1"}}}}}}, 415,
                      "application/strategic-merge-patch+json");
  EXPECT_EQ(smp["reason"], "UnsupportedMediaType");

  EXPECT_EQ(
      call("PATCH", std::string(kWfPath) + "/none", "{}", "application/merge-patch+json").status,
      404);
}

// Writes parse and mutate outside the store lock and commit only if the
// object is unchanged, else retry: concurrent patches to one object must all
// land (no lost update), each with its own resourceVersion, and an update
// guarded by an older resourceVersion must see 409, never overwrite.
TEST_F(SimTest, ConcurrentWritesToOneObjectLoseNoUpdate) {
  json created = create(workflow("race"));
  const std::string path = std::string(kWfPath) + "/race";
  constexpr int kThreads = 4, kEach = 25;
  std::vector<std::thread> threads;
  std::mutex mu;
  std::set<std::string> rvs;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const std::string key = "k" + std::to_string(t) + "-" + std::to_string(i);
        auto r = call("PATCH", path, json{{"metadata", {{"labels", {{key, "1"}}}}}}.dump(),
                      "application/merge-patch+json");
        EXPECT_EQ(r.status, 200) << r.body;
        std::lock_guard<std::mutex> g(mu);
        rvs.insert(json::parse(r.body)["metadata"]["resourceVersion"].get<std::string>());
      }
    });
  }
  for (auto& th : threads)
    th.join();
  json stale = created;
  stale["spec"]["entrypoint"] = "other";
  json refused = callJson("PUT", path, stale, 409);
  EXPECT_EQ(refused["reason"], "Conflict");
  json now = callJson("GET", path);
  EXPECT_EQ(now["metadata"]["labels"].size(), static_cast<std::size_t>(kThreads * kEach));
  EXPECT_EQ(rvs.size(), static_cast<std::size_t>(kThreads * kEach));
  EXPECT_EQ(now["spec"]["entrypoint"], "main");
}

// Recently written objects keep their parsed form for the next write (a
// bounded cache, kDomCache = 256): more written objects than that must still
// be patched on top of their latest state, whether cached or parsed again.
TEST_F(SimTest, WritesBeyondTheParsedObjectCacheStayConsistent) {
  constexpr int kObjects = 300;
  for (int i = 0; i < kObjects; ++i)
    ASSERT_TRUE(sim_->seed(workflow("w" + std::to_string(i))).ok());
  for (const char* label : {"a", "b", "c"}) {
    for (int i = 0; i < kObjects; ++i) {
      auto r = call("PATCH", std::string(kWfPath) + "/w" + std::to_string(i),
                    json{{"metadata", {{"labels", {{label, std::to_string(i)}}}}}}.dump(),
                    "application/merge-patch+json");
      ASSERT_EQ(r.status, 200) << r.body;
    }
  }
  for (int i : {0, 1, 150, 299}) {
    json got = callJson("GET", std::string(kWfPath) + "/w" + std::to_string(i));
    EXPECT_EQ(got["metadata"]["labels"],
              json({{"a", std::to_string(i)}, {"b", std::to_string(i)}, {"c", std::to_string(i)}}))
        << i;
  }
  // A no-op write keeps the resourceVersion (served from the cached form).
  json before = callJson("GET", std::string(kWfPath) + "/w299");
  json same =
      callJson("PATCH", std::string(kWfPath) + "/w299",
               {{"metadata", {{"labels", {{"c", "299"}}}}}}, 200, "application/merge-patch+json");
  EXPECT_EQ(same["metadata"]["resourceVersion"], before["metadata"]["resourceVersion"]);
}

TEST_F(SimTest, ServerSideApplyCreatesMergesAndNeedsFieldManager) {
  std::string path = std::string(kWfPath) + "/ssa";
  std::string yaml =
      "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata:\n  name: ssa\n  labels:\n    a: "
      "\"1\"\n"
      "spec:\n  entrypoint: main\n";
  auto noManager = call("PATCH", path, yaml, "application/apply-patch+yaml");
  EXPECT_EQ(noManager.status, 422);
  auto created = call("PATCH", path + "?fieldManager=tester", yaml, "application/apply-patch+yaml");
  EXPECT_EQ(created.status, 201) << created.body;
  json obj = json::parse(created.body);
  EXPECT_EQ(obj["metadata"]["labels"]["a"], "1");
  EXPECT_EQ(obj["metadata"]["managedFields"][0]["manager"], "tester");
  EXPECT_EQ(obj["metadata"]["managedFields"][0]["operation"], "Apply");
  // Another manager changing an owned field conflicts unless forced.
  std::string other =
      "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata:\n  name: ssa\n"
      "spec:\n  entrypoint: other\n";
  auto conflict =
      call("PATCH", path + "?fieldManager=other", other, "application/apply-patch+yaml");
  EXPECT_EQ(conflict.status, 409);
  EXPECT_NE(conflict.body.find("conflict with \\\"tester\\\""), std::string::npos) << conflict.body;
  auto forced =
      call("PATCH", path + "?fieldManager=other&force=true", other, "application/apply-patch+yaml");
  EXPECT_EQ(forced.status, 200);
  EXPECT_EQ(json::parse(forced.body)["spec"]["entrypoint"], "other");
}

TEST_F(SimTest, DryRunDoesNotPersist) {
  auto r = call("POST", std::string(kWfPath) + "?dryRun=All", workflow("dry").dump());
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(call("GET", std::string(kWfPath) + "/dry").status, 404);
  EXPECT_EQ(sim_->mutationLog().size(), 1u);
}

TEST_F(SimTest, ListPaginatesAndFiltersBySelectors) {
  for (int i = 0; i < 5; ++i) {
    create(workflow("w" + std::to_string(i),
                    {{"idx", std::to_string(i)}, {"even", i % 2 == 0 ? "y" : "n"}}));
  }
  json page1 = callJson("GET", std::string(kWfPath) + "?limit=2");
  ASSERT_EQ(page1["items"].size(), 2u);
  EXPECT_EQ(page1["kind"], "WorkflowList");
  EXPECT_EQ(page1["metadata"]["remainingItemCount"], 3);
  std::string listRv = page1["metadata"]["resourceVersion"];
  std::string cont = page1["metadata"]["continue"];
  create(workflow("zz-late"));
  json page2 =
      callJson("GET", std::string(kWfPath) + "?limit=2&continue=" + urlEncodeForTest(cont));
  EXPECT_EQ(page2["items"][0]["metadata"]["name"], "w2");
  EXPECT_EQ(page2["metadata"]["resourceVersion"], listRv);  // pages keep the list's RV

  json sel = callJson("GET", "/apis/argoproj.io/v1alpha1/workflows?labelSelector=" +
                                 urlEncodeForTest("even=y,idx notin (4)"));
  EXPECT_EQ(sel["items"].size(), 2u);
  json exists =
      callJson("GET", std::string(kWfPath) + "?labelSelector=" + urlEncodeForTest("!idx"));
  ASSERT_EQ(exists["items"].size(), 1u);
  EXPECT_EQ(exists["items"][0]["metadata"]["name"], "zz-late");
  json byName = callJson("GET", std::string(kWfPath) + "?fieldSelector=metadata.name%3Dw3");
  EXPECT_EQ(byName["items"].size(), 1u);
  EXPECT_EQ(call("GET", std::string(kWfPath) + "?labelSelector=a+in+(").status, 400);
  EXPECT_EQ(call("GET", std::string(kWfPath) + "?fieldSelector=spec.x%3D1").status, 400);

  sim_->compactHistory();
  json gone = callJson("GET", std::string(kWfPath) + "?limit=2&continue=" + urlEncodeForTest(cont),
                       nullptr, 410);
  EXPECT_EQ(gone["reason"], "Expired");
}

class WatchStream {
 public:
  WatchStream(int port, const std::string& target) : c_(port) {
    c_.sendRequest("GET", target);
    head_ = c_.readHead();
  }
  int status() const { return head_.status; }
  std::optional<json> next() {
    auto line = c_.nextBodyLine();
    if (!line)
      return std::nullopt;
    return json::parse(*line);
  }

 private:
  TestHttpConnection c_;
  HttpResult head_;
};

TEST_F(SimTest, WatchDeliversEventsFromResourceVersion) {
  json a = create(workflow("a"));
  WatchStream w(sim_->port(), std::string(kWfPath) + "?watch=1&resourceVersion=" +
                                  a["metadata"]["resourceVersion"].get<std::string>() +
                                  "&timeoutSeconds=5");
  ASSERT_EQ(w.status(), 200);
  create(workflow("b"));
  callJson("PATCH", std::string(kWfPath) + "/a", {{"metadata", {{"labels", {{"x", "1"}}}}}}, 200,
           "application/merge-patch+json");
  callJson("DELETE", std::string(kWfPath) + "/b");
  auto e1 = w.next();
  auto e2 = w.next();
  auto e3 = w.next();
  ASSERT_TRUE(e1 && e2 && e3);
  EXPECT_EQ((*e1)["type"], "ADDED");
  EXPECT_EQ((*e1)["object"]["metadata"]["name"], "b");
  EXPECT_EQ((*e2)["type"], "MODIFIED");
  EXPECT_EQ((*e3)["type"], "DELETED");
  EXPECT_EQ((*e3)["object"]["metadata"]["resourceVersion"], sim_->currentResourceVersion());
}

TEST_F(SimTest, WatchFromEmptyRvSendsSyntheticAddsAndSelectorTransitions) {
  create(workflow("a", {{"team", "x"}}));
  create(workflow("b", {{"team", "y"}}));
  WatchStream w(
      sim_->port(),
      "/apis/argoproj.io/v1alpha1/workflows?watch=true&labelSelector=team%3Dx&timeoutSeconds=5");
  auto first = w.next();
  ASSERT_TRUE(first);
  EXPECT_EQ((*first)["type"], "ADDED");
  EXPECT_EQ((*first)["object"]["metadata"]["name"], "a");
  // b starts matching: ADDED; a stops matching: DELETED.
  callJson("PATCH", std::string(kWfPath) + "/b", {{"metadata", {{"labels", {{"team", "x"}}}}}}, 200,
           "application/merge-patch+json");
  callJson("PATCH", std::string(kWfPath) + "/a", {{"metadata", {{"labels", {{"team", "z"}}}}}}, 200,
           "application/merge-patch+json");
  auto e1 = w.next();
  auto e2 = w.next();
  ASSERT_TRUE(e1 && e2);
  EXPECT_EQ((*e1)["type"], "ADDED");
  EXPECT_EQ((*e1)["object"]["metadata"]["name"], "b");
  EXPECT_EQ((*e2)["type"], "DELETED");
  EXPECT_EQ((*e2)["object"]["metadata"]["name"], "a");
}

TEST_F(SimTest, BookmarksOnlyWhenRequestedAndTimeoutEndsStream) {
  std::string rv = sim_->currentResourceVersion();
  {
    WatchStream w(
        sim_->port(),
        std::string(kWfPath) +
            "?watch=True&allowWatchBookmarks=True&timeoutSeconds=1&resourceVersion=" + rv);
    auto b = w.next();
    ASSERT_TRUE(b);
    EXPECT_EQ((*b)["type"], "BOOKMARK");
    EXPECT_EQ((*b)["object"]["kind"], "Workflow");
    EXPECT_EQ((*b)["object"]["metadata"]["resourceVersion"], rv);
    int n = 0;
    while (w.next())
      ++n;  // ends at timeoutSeconds
    EXPECT_GE(n, 1);
  }
  WatchStream w(sim_->port(),
                std::string(kWfPath) + "?watch=true&timeoutSeconds=1&resourceVersion=" + rv);
  EXPECT_FALSE(w.next().has_value());  // no bookmarks, nothing happened, closed at timeoutSeconds
}

TEST_F(SimTest, TooOldResourceVersionAndExpireInBothForms) {
  create(workflow("a"));
  std::string old = sim_->currentResourceVersion();
  create(workflow("b"));
  sim_->compactHistory();
  WatchStream tooOld(sim_->port(), std::string(kWfPath) + "?watch=true&resourceVersion=" + old);
  ASSERT_EQ(tooOld.status(), 200);
  auto err = tooOld.next();
  ASSERT_TRUE(err);
  EXPECT_EQ((*err)["type"], "ERROR");
  EXPECT_EQ((*err)["object"]["code"], 410);
  EXPECT_EQ((*err)["object"]["reason"], "Expired");
  EXPECT_FALSE(tooOld.next().has_value());

  std::string now = sim_->currentResourceVersion();
  sim_->expireNextWatch(ExpireForm::kHttp410);
  WatchStream http(sim_->port(), std::string(kWfPath) + "?watch=true&resourceVersion=" + now);
  EXPECT_EQ(http.status(), 410);
  sim_->expireNextWatch(ExpireForm::kErrorEvent);
  WatchStream ev(sim_->port(), std::string(kWfPath) + "?watch=true&resourceVersion=" + now);
  EXPECT_EQ(ev.status(), 200);
  EXPECT_EQ((*ev.next())["object"]["code"], 410);
  // A resourceVersion from the future is refused like kube-apiserver does after its wait.
  WatchStream future(sim_->port(), std::string(kWfPath) + "?watch=true&resourceVersion=999999");
  EXPECT_EQ(future.status(), 504);
  // Only the next watch was affected.
  WatchStream fine(sim_->port(),
                   std::string(kWfPath) + "?watch=true&timeoutSeconds=1&resourceVersion=" + now);
  EXPECT_EQ(fine.status(), 200);
  EXPECT_FALSE(fine.next().has_value());
}

TEST_F(SimTest, BoundedHistoryExpiresOldResourceVersions) {
  sim_.reset();
  KubeApiSimulator::Options o;
  o.historySize = 3;
  startSim(o);
  std::string start = sim_->currentResourceVersion();
  for (int i = 0; i < 5; ++i)
    create(workflow("h" + std::to_string(i)));
  WatchStream w(sim_->port(), std::string(kWfPath) + "?watch=true&resourceVersion=" + start);
  EXPECT_EQ((*w.next())["type"], "ERROR");
}

TEST_F(SimTest, ManyConcurrentWatchersAllReceiveEachEvent) {
  std::string rv = sim_->currentResourceVersion();
  std::vector<std::unique_ptr<WatchStream>> streams;
  for (int i = 0; i < 60; ++i) {
    streams.push_back(std::make_unique<WatchStream>(
        sim_->port(),
        "/apis/argoproj.io/v1alpha1/workflows?watch=true&timeoutSeconds=10&resourceVersion=" + rv));
    ASSERT_EQ(streams.back()->status(), 200);
  }
  create(workflow("fanout"));
  for (auto& s : streams) {
    auto e = s->next();
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ((*e)["object"]["metadata"]["name"], "fanout");
  }
  EXPECT_EQ(sim_->openWatches(), 60u);
}

TEST_F(SimTest, DropAllWatchesEndsOpenStreams) {
  WatchStream w(sim_->port(), std::string(kWfPath) +
                                  "?watch=true&resourceVersion=" + sim_->currentResourceVersion());
  for (int i = 0; i < 100 && sim_->openWatches() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(sim_->openWatches(), 1u);
  sim_->dropAllWatches();
  EXPECT_FALSE(w.next().has_value());
}

TEST_F(SimTest, AbruptDropCutsTheStreamWithoutTerminatingChunk) {
  TestHttpConnection c(sim_->port());
  c.sendRequest("GET", std::string(kWfPath) +
                           "?watch=true&resourceVersion=" + sim_->currentResourceVersion());
  ASSERT_EQ(c.readHead().status, 200);
  create(workflow("before-drop"));
  ASSERT_TRUE(c.nextBodyLine().has_value());
  for (int i = 0; i < 100 && sim_->openWatches() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(call("POST", "/_sim/drop-watches?mode=abort").status, 200);
  // The chunked body is cut: reading on finds EOF where a chunk header should be.
  EXPECT_THROW(
      {
        while (c.nextBodyLine()) {
        }
      },
      std::runtime_error);
}

TEST_F(SimTest, StopEndsOpenWatchesAndBlockedRequestsPromptly) {
  WatchStream w(sim_->port(), std::string(kWfPath) +
                                  "?watch=true&resourceVersion=" + sim_->currentResourceVersion());
  sim_->pause(true);
  std::atomic<int> status{0};
  std::thread blocked([&] {
    try {
      status = call("GET", kWfPath).status;
    } catch (const std::runtime_error&) {
      status = -1;  // connection cut instead of a 503: also an end, but not the expected one
    }
  });
  for (int i = 0; i < 100 && sim_->openWatches() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (int i = 0; i < 500 && sim_->pausedRequests() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(sim_->pausedRequests(), 1u);
  sim_->stop();  // returns only once the watch and the paused request have ended
  blocked.join();
  EXPECT_EQ(status.load(), 503);
  EXPECT_FALSE(w.next().has_value());
}

TEST_F(SimTest, FailNextInjectsStatusRetryAfterAndCount) {
  create(workflow("f"));
  sim_->failNext({"patch", "workflows", 2, 429, 3, 0});
  for (int i = 0; i < 2; ++i) {
    auto r = call("PATCH", std::string(kWfPath) + "/f", "{}", "application/merge-patch+json");
    EXPECT_EQ(r.status, 429);
    EXPECT_EQ(r.headers["retry-after"], "3");
    EXPECT_EQ(json::parse(r.body)["reason"], "TooManyRequests");
  }
  EXPECT_EQ(call("GET", std::string(kWfPath) + "/f").status, 200);  // other verbs unaffected
  EXPECT_EQ(call("PATCH", std::string(kWfPath) + "/f", "{}", "application/merge-patch+json").status,
            200);
  // status 0: delay only, then the request is served normally.
  sim_->failNext({"get", "workflows", 1, 0, 0, 300});
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(call("GET", std::string(kWfPath) + "/f").status, 200);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(300));
  sim_->failNext({"*", "*", 1, 503, 0, 0});
  EXPECT_EQ(call("GET", "/api/v1/namespaces/default/pods").status, 503);
  EXPECT_EQ(call("GET", "/api/v1/namespaces/default/pods").status, 200);
}

TEST_F(SimTest, PauseBlocksRequestsUntilResumed) {
  sim_->pause(true);
  std::atomic<int> status{0};
  std::thread t([&] { status = call("GET", std::string(kWfPath)).status; });
  for (int i = 0; i < 500 && sim_->pausedRequests() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(sim_->pausedRequests(), 1u);
  EXPECT_EQ(status.load(), 0);
  sim_->pause(false);
  t.join();
  EXPECT_EQ(status.load(), 200);
}

TEST_F(SimTest, ControlEndpointSeedsFailsAndLogs) {
  json list = {{"kind", "List"},
               {"items", json::array({workflow("s1"),
                                      {{"apiVersion", "v1"},
                                       {"kind", "Pod"},
                                       {"metadata", {{"name", "p1"}, {"namespace", "ns1"}}}}})}};
  EXPECT_EQ(call("POST", "/_sim/seed", list.dump()).status, 200);
  EXPECT_EQ(call("GET", std::string(kWfPath) + "/s1").status, 200);
  EXPECT_EQ(call("GET", "/api/v1/namespaces/ns1/pods/p1").status, 200);
  EXPECT_EQ(call("POST", "/_sim/fail", R"({"verb":"get","resource":"pods","count":1,"status":500})")
                .status,
            200);
  EXPECT_EQ(call("GET", "/api/v1/namespaces/ns1/pods/p1").status, 500);
  EXPECT_EQ(call("POST", "/_sim/expire-next-watch?form=http").status, 200);
  EXPECT_EQ(WatchStream(sim_->port(), std::string(kWfPath) + "?watch=1&resourceVersion=1").status(),
            410);
  call("PATCH", std::string(kWfPath) + "/s1?fieldManager=me",
       R"({"metadata":{"labels":{"k":"v"}}})", "application/merge-patch+json");
  json log = json::parse(call("GET", "/_sim/requests").body);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0]["verb"], "patch");
  EXPECT_EQ(log[0]["path"], std::string(kWfPath) + "/s1");
  EXPECT_EQ(log[0]["query"], "fieldManager=me");
  EXPECT_EQ(log[0]["contentType"], "application/merge-patch+json");
  EXPECT_EQ(call("POST", "/_sim/fail", R"({"verb":"bogus"})").status, 400);
}

// The request log orders writes (seq), attributes them (User-Agent), times
// them and tells served writes from injected failures (the chaos soak's
// fencing check reads all four).
TEST_F(SimTest, RequestLogRecordsSeqAgentStatusAndInjectedFailures) {
  create(workflow("r1"));
  EXPECT_EQ(
      call("POST", "/_sim/fail", R"({"verb":"patch","resource":"workflows","status":409})").status,
      200);
  const std::string patch = R"({"metadata":{"labels":{"k":"v"}}})";
  const auto before = std::chrono::system_clock::now();
  EXPECT_EQ(call("PATCH", std::string(kWfPath) + "/r1", patch, "application/merge-patch+json",
                 {{"User-Agent", "replica-a"}})
                .status,
            409);
  EXPECT_EQ(call("PATCH", "/_client/b" + std::string(kWfPath) + "/r1", patch,
                 "application/merge-patch+json", {{"User-Agent", "replica-b"}})
                .status,
            200);
  EXPECT_EQ(callJson("GET", "/_client/b" + std::string(kWfPath) + "/r1")["metadata"]["labels"]["k"],
            "v");
  EXPECT_EQ(call("GET", "/_client/").status, 404);
  EXPECT_EQ(call("PATCH", std::string(kWfPath) + "/missing", patch, "application/merge-patch+json",
                 {{"User-Agent", "replica-b"}})
                .status,
            404);

  json all = json::parse(call("GET", "/_sim/requests?injected=1&since=1&maxBody=5").body);
  ASSERT_EQ(all.size(), 3u) << all.dump();
  EXPECT_EQ(all[0]["seq"], 2);
  EXPECT_EQ(all[0]["userAgent"], "replica-a");
  EXPECT_EQ(all[0]["status"], 409);
  EXPECT_EQ(all[0]["injected"], true);
  EXPECT_EQ(all[0]["body"], patch.substr(0, 5));
  EXPECT_EQ(all[0]["bodySize"], patch.size());
  EXPECT_GE(
      all[0]["atUs"].get<long long>(),
      std::chrono::duration_cast<std::chrono::microseconds>(before.time_since_epoch()).count() - 1);
  EXPECT_GE(all[0]["doneAtUs"].get<long long>(), all[0]["atUs"].get<long long>());
  EXPECT_EQ(all[1]["seq"], 3);
  EXPECT_EQ(all[1]["userAgent"], "replica-b");
  EXPECT_EQ(all[1]["status"], 200);
  EXPECT_EQ(all[1]["injected"], false);
  EXPECT_EQ(all[1]["client"], "b");
  EXPECT_EQ(all[1]["path"], std::string(kWfPath) + "/r1");
  EXPECT_EQ(all[0]["client"], "");
  EXPECT_EQ(all[2]["status"], 404);

  // Without injected=1 (and in mutationLog()) only served requests appear.
  json served = json::parse(call("GET", "/_sim/requests").body);
  ASSERT_EQ(served.size(), 3u);
  EXPECT_EQ(served[0]["verb"], "create");
  EXPECT_EQ(served[1]["seq"], 3);
  EXPECT_EQ(served[1]["body"], patch);
  EXPECT_EQ(sim_->mutationLog().size(), 3u);
  ASSERT_EQ(sim_->requestLog().size(), 4u);
  EXPECT_TRUE(sim_->requestLog()[1].injected);
  EXPECT_EQ(call("GET", "/_sim/requests?since=x").status, 400);
}

TEST_F(SimTest, SeedFileAcceptsMultiDocumentYaml) {
  std::string path = sim_->stateDir() + "/seed.yaml";
  std::ofstream(path) << "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata:\n  name: y1\n"
                         "  namespace: kubeflow\nspec:\n  n: 5\n  quoted: \"5\"\n---\n"
                         "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: l1\n"
                         "  namespace: kubeflow\nspec:\n  holderIdentity: me\n";
  ASSERT_TRUE(sim_->seedFile(path).ok());
  json wf = callJson("GET", "/apis/argoproj.io/v1alpha1/namespaces/kubeflow/workflows/y1");
  EXPECT_EQ(wf["spec"]["n"], 5);
  EXPECT_EQ(wf["spec"]["quoted"], "5");
  EXPECT_EQ(
      callJson(
          "GET",
          "/apis/coordination.k8s.io/v1/namespaces/kubeflow/leases/l1")["spec"]["holderIdentity"],
      "me");
  std::ofstream(path) << "apiVersion: nope/v1\nkind: Thing\nmetadata:\n  name: x\n";
  EXPECT_FALSE(sim_->seedFile(path).ok());
}

TEST(SimTlsTest, TlsWithTokenKubeconfigAndRotation) {
  KubeApiSimulator::Options o;
  o.tls = true;
  o.token = "first";
  KubeApiSimulator sim(o);
  ASSERT_TRUE(sim.start().ok());
  EXPECT_EQ(sim.baseUrl().rfind("https://127.0.0.1:", 0), 0u);
  ASSERT_FALSE(sim.caCertPath().empty());
  std::ifstream kc(sim.kubeconfigPath());
  std::string kubeconfig((std::istreambuf_iterator<char>(kc)), std::istreambuf_iterator<char>());
  EXPECT_NE(kubeconfig.find("server: " + sim.baseUrl()), std::string::npos);
  EXPECT_NE(kubeconfig.find("certificate-authority: " + sim.caCertPath()), std::string::npos);
  EXPECT_NE(kubeconfig.find("token: first"), std::string::npos);

  auto noAuth = testing::httpRequest(sim.port(), "GET", "/api/v1/pods", {}, "", sim.caCertPath());
  EXPECT_EQ(noAuth.status, 401);
  EXPECT_EQ(json::parse(noAuth.body)["reason"], "Unauthorized");
  EXPECT_EQ(testing::httpRequest(sim.port(), "GET", "/api/v1/pods",
                                 {{"Authorization", "Bearer first"}}, "", sim.caCertPath())
                .status,
            200);
  sim.setToken("second");
  EXPECT_EQ(testing::httpRequest(sim.port(), "GET", "/api/v1/pods",
                                 {{"Authorization", "Bearer first"}}, "", sim.caCertPath())
                .status,
            401);
  EXPECT_EQ(testing::httpRequest(sim.port(), "GET", "/api/v1/pods",
                                 {{"Authorization", "Bearer second"}}, "", sim.caCertPath())
                .status,
            200);
  std::ifstream kc2(sim.kubeconfigPath());
  std::string rotated((std::istreambuf_iterator<char>(kc2)), std::istreambuf_iterator<char>());
  EXPECT_NE(rotated.find("token: second"), std::string::npos);
}

TEST(SimTlsTest, WatchOverTlsEndsWhenTheClientLeaves) {
  KubeApiSimulator::Options o;
  o.tls = true;
  KubeApiSimulator sim(o);
  ASSERT_TRUE(sim.start().ok());
  {
    TestHttpConnection c(sim.port(), sim.caCertPath());
    c.sendRequest("GET", std::string(kWfPath) +
                             "?watch=true&resourceVersion=" + sim.currentResourceVersion());
    EXPECT_EQ(c.readHead().status, 200);
    for (int i = 0; i < 200 && sim.openWatches() == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_EQ(sim.openWatches(), 1u);
  }
  for (int i = 0; i < 300 && sim.openWatches() != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(sim.openWatches(), 0u);
}

TEST(SimLargeTest, LargeListIsStreamedCompletely) {
  KubeApiSimulator sim({});
  ASSERT_TRUE(sim.start().ok());
  std::string blob(200 * 1024, 'n');
  for (int i = 0; i < 40; ++i) {  // ~8 MiB: above the streaming threshold
    json wf = workflow("big" + std::to_string(i));
    wf["status"]["blob"] = blob;
    ASSERT_TRUE(sim.seed(wf).ok());
  }
  auto r = testing::httpRequest(sim.port(), "GET", kWfPath);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["transfer-encoding"], "chunked");
  json list = json::parse(r.body);
  EXPECT_EQ(list["items"].size(), 40u);
  EXPECT_EQ(list["items"][39]["status"]["blob"].get<std::string>().size(), blob.size());
}

}  // namespace
}  // namespace exitrec
