// Run history: the KFP history simulator (list paging, the page-token filter
// trap, multi-user rules, the CR-gone report), `audit --kfp-api-url` and
// `backfill` against it, with the Kubernetes simulator as the cluster.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>

#include "common/clock.h"
#include "common/fake_clock.h"
#include "controller/backfill.h"
#include "controller/history_audit.h"
#include "controller/history_sweep.h"
#include "controller/kfp_history_client.h"
#include "controller/kfp_report_body.h"
#include "k8sclient/client_factory.h"
#include "k8sclient/cpprest_transport.h"
#include "k8sclient/fake_http_transport.h"
#include "k8sclient/kube_config.h"
#include "sim/kfp/kfp_api_simulator.h"
#include "sim/kfp/kfp_history_api.h"
#include "sim/kfp/kfp_run_factory.h"
#include "sim/kube_api_simulator.h"
#include "test/fixtures/runtime_builder.h"

namespace exitrec {
namespace {

using nlohmann::json;
using Query = std::vector<std::pair<std::string, std::string>>;

KfpHistoryApi::HistoryRun historyRun(const std::string& id, const std::string& ns,
                                     std::int64_t finishedAt,
                                     std::optional<std::string> manifest = std::nullopt,
                                     const std::string& state = "SUCCEEDED") {
  KfpHistoryApi::HistoryRun r;
  r.runId = id;
  r.displayName = "display-" + id;
  r.ns = ns;
  r.state = state;
  r.createdAt = finishedAt - 300;
  r.finishedAt = finishedAt;
  r.manifest = std::move(manifest);
  return r;
}

// A KFP 2.0–2.3 run as Argo left it; bodyFails → mis-reported (Succeeded).
std::string manifestFor(const std::string& name, const std::string& ns, const std::string& runId,
                        bool bodyFails, bool finalStateLabel = false) {
  KfpRunSpec spec;
  spec.shape = RunShape::kV2Sibling;
  spec.name = name;
  spec.ns = ns;
  spec.runId = runId;
  spec.bodyFails = bodyFails;
  json wf = json::parse(makeKfpRunJson(spec));
  wf["metadata"]["resourceVersion"] = "4711";
  if (finalStateLabel)
    wf["metadata"]["labels"]["pipeline/persistedFinalState"] = "true";
  return wf.dump();
}

std::string compressed(const std::string& manifest) {
  json wf = json::parse(manifest);
  wf["status"]["compressedNodes"] =
      testing::compressForArgo(wf["status"]["nodes"].dump(), testing::Compression::kGzip);
  wf["status"].erase("nodes");
  return wf.dump();
}

std::string offloaded(const std::string& manifest) {
  json wf = json::parse(manifest);
  wf["status"].erase("nodes");
  wf["status"]["offloadNodeStatusVersion"] = "fnv-123";
  return wf.dump();
}

std::vector<char*> argv(std::vector<std::string>& args) {
  std::vector<char*> out;
  for (auto& a : args)
    out.push_back(a.data());
  return out;
}

std::map<std::string, json> linesByRun(const std::string& text) {
  std::map<std::string, json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    json j = json::parse(line);
    out[j.at("kfpRunId").get<std::string>()] = j;
  }
  return out;
}

// --- simulator: listing ---------------------------------------------------

class HistoryListTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 45; ++i) {
      char id[16];
      std::snprintf(id, sizeof id, "run-%02d", i);
      api.addRun(historyRun(id, i % 2 == 0 ? "team-a" : "team-b", 1767225600 + i * 60, "{}",
                            i % 3 == 0 ? "FAILED" : "SUCCEEDED"));
    }
  }
  json list(const Query& q, int expectStatus = 200) {
    auto r = api.handle("GET", "/apis/v2beta1/runs", q, std::nullopt, "");
    EXPECT_EQ(r.status, expectStatus) << r.body;
    return json::parse(r.body);
  }
  KfpHistoryApi api;
};

TEST_F(HistoryListTest, PagesCoverEveryRunOnceInCreatedOrder) {
  std::vector<std::string> ids;
  std::string token;
  int pages = 0;
  do {
    Query q = {{"page_size", "20"}};
    if (!token.empty())
      q.emplace_back("page_token", token);
    json page = list(q);
    for (const auto& r : page["runs"])
      ids.push_back(r["run_id"]);
    EXPECT_EQ(page["total_size"], 45);
    token = page.value("next_page_token", "");
    ++pages;
  } while (!token.empty());
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(ids.size(), 45u);
  EXPECT_EQ(ids.front(), "run-00");
  EXPECT_EQ(ids.back(), "run-44");
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
}

// The store is walked in run-id order, which need not be the sort order: a
// page must still hold the next rows by the sort field, in both directions.
TEST(HistoryListOrderTest, PagesFollowTheSortFieldNotTheStoreOrder) {
  KfpHistoryApi api;
  for (int i = 0; i < 45; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "run-%02d", i);
    api.addRun(historyRun(id, "ns", 1767225600 + ((i * 17) % 45) * 60, "{}"));
  }
  for (const char* sortBy : {"created_at", "created_at desc"}) {
    std::vector<std::string> created;
    std::string token;
    do {
      Query q = {{"page_size", "7"}};
      if (token.empty())
        q.emplace_back("sort_by", sortBy);
      else
        q.emplace_back("page_token", token);
      auto r = api.handle("GET", "/apis/v2beta1/runs", q, std::nullopt, "");
      ASSERT_EQ(r.status, 200) << r.body;
      json page = json::parse(r.body);
      for (const auto& run : page["runs"])
        created.push_back(run["created_at"]);
      token = page.value("next_page_token", "");
    } while (!token.empty());
    ASSERT_EQ(created.size(), 45u) << sortBy;
    std::vector<std::string> expected = created;
    std::sort(expected.begin(), expected.end());
    if (std::string(sortBy).ends_with("desc"))
      std::reverse(expected.begin(), expected.end());
    EXPECT_EQ(created, expected) << sortBy;
    EXPECT_EQ(std::set<std::string>(created.begin(), created.end()).size(), 45u) << sortBy;
  }
}

TEST_F(HistoryListTest, PageSizeDefaultsTo20ClampsTo200AndRejectsNegative) {
  EXPECT_EQ(list({})["runs"].size(), 20u);
  EXPECT_EQ(list({{"page_size", "500"}})["runs"].size(), 45u);
  list({{"page_size", "-1"}}, 400);
}

TEST_F(HistoryListTest, FilterOnStateAndFinishedAtAndDescendingSort) {
  json f = {{"predicates",
             {{{"key", "state"}, {"operation", "EQUALS"}, {"string_value", "SUCCEEDED"}},
              {{"key", "finished_at"},
               {"operation", "GREATER_THAN"},
               {"timestamp_value", "2026-01-01T00:30:00Z"}}}}};
  json page = list({{"filter", f.dump()}, {"page_size", "200"}, {"sort_by", "finished_at desc"}});
  // finished after 00:30 → i >= 31; SUCCEEDED → i % 3 != 0.
  std::vector<std::string> ids;
  for (const auto& r : page["runs"])
    ids.push_back(r["run_id"]);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.front(), "run-44");
  EXPECT_EQ(ids.back(), "run-31");
  EXPECT_EQ(ids.size(), 10u);  // 31..44 without the FAILED multiples of 3 (33 36 39 42)
}

TEST_F(HistoryListTest, EmptyPageIsAnEmptyObject) {
  json f = {{"predicates", {{{"key", "state"}, {"operation", "EQUALS"}, {"string_value", "X"}}}}};
  auto r = api.handle("GET", "/apis/v2beta1/runs", {{"filter", f.dump()}}, std::nullopt, "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{}");
}

// list/list.go Options.Matches after the token's JSON round trip.
TEST_F(HistoryListTest, ResendingATimestampFilterWithTheTokenIs400) {
  json f = {{"predicates",
             {{{"key", "finished_at"},
               {"operation", "GREATER_THAN"},
               {"timestamp_value", "2026-01-01T00:00:00Z"}}}}};
  json first = list({{"filter", f.dump()}, {"page_size", "10"}});
  std::string token = first["next_page_token"];
  json bad = list({{"filter", f.dump()}, {"page_token", token}, {"page_size", "10"}}, 400);
  EXPECT_NE(bad["message"].get<std::string>().find("page token does not match"), std::string::npos);
  json good = list({{"page_token", token}, {"page_size", "10"}});
  EXPECT_EQ(good["runs"].size(), 10u);
  EXPECT_EQ(good["runs"][0]["run_id"], "run-11");  // the token kept the filter (> 00:00)
}

TEST_F(HistoryListTest, AStringOnlyFilterSurvivesTheRoundTrip) {
  json f = {
      {"predicates", {{{"key", "state"}, {"operation", "EQUALS"}, {"string_value", "FAILED"}}}}};
  json first = list({{"filter", f.dump()}, {"page_size", "5"}});
  list({{"filter", f.dump()}, {"page_token", first["next_page_token"]}, {"page_size", "5"}});
}

TEST_F(HistoryListTest, PlusOffsetBreaksOnTheSecondUrlDecoding) {
  json f = {{"predicates",
             {{{"key", "finished_at"},
               {"operation", "GREATER_THAN"},
               {"timestamp_value", "2026-01-01T01:00:00+01:00"}}}}};
  list({{"filter", f.dump()}}, 400);
}

TEST(HistoryMultiUserTest, NamespaceRequiredAuthenticatedAndAuthorized) {
  KfpHistoryApi::Options o;
  o.multiUser = true;
  KfpHistoryApi api(o);
  api.addRun(historyRun("a1", "team-a", 1767225600, "{}"));
  api.addRun(historyRun("b1", "team-b", 1767225600, "{}"));
  KfpHistoryApi::Identity id;
  id.namespaces = {"team-a"};
  api.addIdentity("tok", id);
  const std::optional<std::string> bearer = "Bearer tok";
  EXPECT_EQ(api.handle("GET", "/apis/v2beta1/runs", {}, bearer, "").status, 400);
  EXPECT_EQ(
      api.handle("GET", "/apis/v2beta1/runs", {{"namespace", "team-a"}}, std::nullopt, "").status,
      401);
  EXPECT_EQ(api.handle("GET", "/apis/v2beta1/runs", {{"namespace", "team-b"}}, bearer, "").status,
            403);
  auto ok = api.handle("GET", "/apis/v2beta1/runs", {{"namespace", "team-a"}}, bearer, "");
  ASSERT_EQ(ok.status, 200);
  EXPECT_EQ(json::parse(ok.body)["runs"].size(), 1u);
  EXPECT_EQ(api.handle("GET", "/apis/v1beta1/runs/b1", {}, bearer, "").status, 403);
  EXPECT_EQ(api.handle("GET", "/apis/v1beta1/runs/a1", {}, bearer, "").status, 200);
}

// --- simulator: the report of a run whose CR is gone -----------------------

TEST(HistoryReportTest, CrGoneCommitsThenNotFoundAndTheLabelStopsItBeforeAnyWrite) {
  KfpHistoryApi api;
  const std::string m = manifestFor("wf-1", "team-a", "r1", true);
  api.addRun(historyRun("r1", "team-a", 1767225600, m));
  json wf = json::parse(m);
  wf["status"]["phase"] = "Failed";
  wf["metadata"]["labels"]["pipeline/persistedFinalState"] = "true";
  auto labelled =
      api.handle("POST", "/apis/v1beta1/workflows", {}, std::nullopt, json(wf.dump()).dump());
  EXPECT_EQ(labelled.status, 404);
  EXPECT_EQ(api.run("r1")->state, "SUCCEEDED");
  wf["metadata"]["labels"].erase("pipeline/persistedFinalState");
  auto stripped =
      api.handle("POST", "/apis/v1beta1/workflows", {}, std::nullopt, json(wf.dump()).dump());
  EXPECT_EQ(stripped.status, 404);
  EXPECT_EQ(api.run("r1")->state, "FAILED");
  EXPECT_EQ(api.run("r1")->stateHistory.back().second, "FAILED");
}

// --- client: paging sends the filter on the first page only ---------------

class HistoryServerTest : public ::testing::Test {
 protected:
  void startKfp(KfpHistoryApi::Options o = {}) {
    api = std::make_unique<KfpHistoryApi>(o);
    seed(*api);
    ASSERT_TRUE(api->start().ok());
  }
  virtual void seed(KfpHistoryApi&) {}
  std::unique_ptr<KfpHistoryApi> api;
};

class HistoryClientTest : public HistoryServerTest {
 protected:
  void seed(KfpHistoryApi& a) override {
    for (int i = 0; i < 30; ++i)
      a.addRun(historyRun("run-" + std::to_string(100 + i), "ns", 1767225600 + i * 60, "{}"));
  }
};

TEST_F(HistoryClientTest, PagesWithATimestampFilterWithoutTripping400) {
  startKfp();
  auto transport = makeCpprestTransport({});
  ASSERT_TRUE(transport.ok());
  KfpHistoryClient client(**transport, TokenSource(), {.baseUrl = api->baseUrl()});
  KfpListQuery q;
  q.filterJson = runFilterJson("2026-01-01T00:04:30Z", {"SUCCEEDED"});
  q.pageSize = 7;
  std::size_t seen = 0;
  std::string token;
  do {
    auto page = client.listPage(q, token);
    ASSERT_TRUE(page.ok()) << page.error().message;
    seen += page->runs.size();
    token = page->nextPageToken;
  } while (!token.empty());
  EXPECT_EQ(seen, 25u);  // runs 5..29 finished after 00:04:30
  EXPECT_GE(api->listRequests(), 4u);
}

TEST(HistoryTimeTest, NormalizesOffsetsToZ) {
  EXPECT_EQ(*normalizeRfc3339("2026-01-01T02:00:00+02:00"), "2026-01-01T00:00:00Z");
  EXPECT_EQ(*normalizeRfc3339("2026-01-01T00:00:00.5Z"), "2026-01-01T00:00:00Z");
  EXPECT_FALSE(normalizeRfc3339("yesterday").ok());
}

// --- audit --kfp-api-url ---------------------------------------------------

class HistoryAuditTest : public HistoryServerTest {
 protected:
  void seed(KfpHistoryApi& a) override {
    a.addRun(historyRun("healthy", "team-a", 1767225600,
                        manifestFor("wf-h", "team-a", "healthy", false)));
    a.addRun(historyRun("bad", "team-a", 1767225660, manifestFor("wf-b", "team-a", "bad", true)));
    a.addRun(historyRun("zipped", "team-b", 1767225720,
                        compressed(manifestFor("wf-z", "team-b", "zipped", true))));
    a.addRun(historyRun("nomanifest", "team-b", 1767225780, std::nullopt));
    a.addRun(historyRun("garbage", "team-b", 1767225840, std::string("{\"status\":")));
    a.addRun(historyRun("offload", "team-b", 1767225900,
                        offloaded(manifestFor("wf-o", "team-b", "offload", true))));
  }
  int audit(std::vector<std::string> extra, std::string& out, std::string& err) {
    std::vector<std::string> args = {"--kfp-api-url", api->baseUrl()};
    args.insert(args.end(), extra.begin(), extra.end());
    auto a = argv(args);
    std::ostringstream o, e;
    int rc = runHistoryAudit(a, o, e);
    out = o.str();
    err = e.str();
    return rc;
  }
};

TEST_F(HistoryAuditTest, EveryRunGetsAVerdictOrAnErrorLine) {
  startKfp();
  std::string out, err;
  EXPECT_EQ(audit({}, out, err), 2) << err;  // unreadable runs → 2, the rest still audited
  auto lines = linesByRun(out);
  ASSERT_EQ(lines.size(), 6u) << out;
  EXPECT_EQ(lines["healthy"]["misreported"], false);
  EXPECT_EQ(lines["healthy"]["source"], "kfp-history");
  EXPECT_EQ(lines["healthy"]["kfpState"], "SUCCEEDED");
  EXPECT_EQ(lines["bad"]["misreported"], true);
  EXPECT_EQ(lines["bad"]["truePhase"], "Failed");
  EXPECT_EQ(lines["bad"]["generation"], "kfp-v2-sibling");
  EXPECT_EQ(lines["zipped"]["misreported"], true);
  for (const char* id : {"nomanifest", "garbage", "offload"}) {
    EXPECT_TRUE(lines[id].contains("error")) << id;
    EXPECT_FALSE(lines[id].contains("misreported")) << id;
  }
  EXPECT_NE(lines["offload"]["error"].get<std::string>().find("offloaded"), std::string::npos);
  EXPECT_NE(lines["nomanifest"]["error"].get<std::string>().find("no workflow manifest"),
            std::string::npos);
  // Progress (no TTY): the final line counts every run against KFP's total.
  EXPECT_NE(err.find("audit: 6/6 runs"), std::string::npos) << err;
  EXPECT_NE(err.find("2 mis-reported, 3 errors"), std::string::npos) << err;
}

TEST_F(HistoryAuditTest, TableFormatStreamsRowsAndASummary) {
  startKfp();
  std::string out, err;
  EXPECT_EQ(audit({"--format", "table"}, out, err), 2) << err;
  EXPECT_EQ(out.rfind("KFP RUN ID", 0), 0u) << out;
  EXPECT_NE(out.find("6 runs, 2 mis-reported, 3 not auditable"), std::string::npos) << out;
  EXPECT_NE(out.find("error: KFP stores no workflow manifest"), std::string::npos) << out;
}

// Single-user KFP ignores `namespace`: the stored manifest's namespace
// decides, so a run whose manifest cannot be read is still reported.
TEST_F(HistoryAuditTest, NamespaceAndFinishedAfterSelectRuns) {
  startKfp();
  std::string out, err;
  EXPECT_EQ(audit({"--namespace", "team-a", "--finished-after", "2026-01-01T00:00:30Z"}, out, err),
            2)
      << err;
  auto lines = linesByRun(out);
  EXPECT_TRUE(lines.count("bad"));
  EXPECT_FALSE(lines.count("healthy"));  // finished before
  EXPECT_FALSE(lines.count("zipped"));   // team-b
  EXPECT_FALSE(lines.count("offload"));  // team-b (its metadata is readable)
  EXPECT_TRUE(lines.count("nomanifest"));
  EXPECT_EQ(lines.size(), 3u) << out;  // bad, nomanifest, garbage
}

TEST_F(HistoryAuditTest, MultiUserNeedsNamespacesAndListsEach) {
  KfpHistoryApi::Options o;
  o.multiUser = true;
  startKfp(o);
  KfpHistoryApi::Identity id;
  id.namespaces = {"team-a", "team-b"};
  api->addIdentity("sekret", id);
  const std::string tokenFile = ::testing::TempDir() + "/history-token";
  std::ofstream(tokenFile) << "sekret";
  std::string out, err;
  EXPECT_EQ(audit({"--kfp-token-file", tokenFile}, out, err), 2);
  EXPECT_NE(err.find("multi-user"), std::string::npos) << err;
  EXPECT_EQ(audit({"--kfp-token-file", tokenFile, "--namespace", "team-a"}, out, err), 1) << err;
  EXPECT_EQ(linesByRun(out).size(), 2u);
  EXPECT_EQ(audit({"--kfp-token-file", tokenFile, "--namespace", "team-a", "--namespace", "team-b"},
                  out, err),
            2);
  EXPECT_EQ(linesByRun(out).size(), 6u);
  EXPECT_EQ(err.find("sekret"), std::string::npos);  // tokens never printed
}

// --- backfill ----------------------------------------------------------------

class BackfillTest : public HistoryServerTest {
 protected:
  void SetUp() override {
    KubeApiSimulator::Options ko;
    kube = std::make_unique<KubeApiSimulator>(ko);
    ASSERT_TRUE(kube->start().ok());
    auto cfg = loadKubeconfigFile(kube->kubeconfigPath());
    ASSERT_TRUE(cfg.ok());
    auto client = makeKubeClient(*cfg, SystemClock::instance());
    ASSERT_TRUE(client.ok());
    kubeClient = std::move(*client);
    // Only wf-present still exists in the cluster.
    json present = json::parse(manifestFor("wf-present", "team-a", "present", true));
    present["metadata"].erase("resourceVersion");
    ASSERT_TRUE(kube->seed(present).ok());
  }
  void seed(KfpHistoryApi& a) override {
    a.addRun(
        historyRun("gone", "team-a", 1767225600, manifestFor("wf-gone", "team-a", "gone", true)));
    a.addRun(historyRun("labelled", "team-a", 1767225660,
                        manifestFor("wf-labelled", "team-a", "labelled", true, true)));
    a.addRun(historyRun("zipped", "team-b", 1767225720,
                        compressed(manifestFor("wf-zipped", "team-b", "zipped", true))));
    a.addRun(historyRun("present", "team-a", 1767225780,
                        manifestFor("wf-present", "team-a", "present", true)));
    a.addRun(historyRun("healthy", "team-a", 1767225840,
                        manifestFor("wf-healthy", "team-a", "healthy", false)));
    a.addRun(historyRun("failed", "team-a", 1767225900,
                        manifestFor("wf-failed", "team-a", "failed", true), "FAILED"));
    KfpHistoryApi::Cluster c;
    c.exists = [this](const std::string& ns, const std::string& name) {
      return kubeClient->get(resources::kWorkflows, ns, name).ok();
    };
    c.remove = [this](const std::string& ns, const std::string& name) {
      ++deletes;
      return kubeClient->get(resources::kWorkflows, ns, name).ok();  // never really deletes
    };
    a.setCluster(c);
  }
  int backfill(std::vector<std::string> extra, std::string& out, std::string& err) {
    std::vector<std::string> args = {"--kfp-api-url", api->baseUrl(), "--qps", "1000"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto a = argv(args);
    std::ostringstream o, e;
    int rc = runBackfill(a, o, e);
    out = o.str();
    err = e.str();
    return rc;
  }
  std::unique_ptr<KubeApiSimulator> kube;
  std::unique_ptr<KubeClient> kubeClient;
  std::atomic<int> deletes{0};
};

TEST_F(BackfillTest, DryRunChangesNothing) {
  startKfp();
  std::string out, err;
  EXPECT_EQ(backfill({"--kubeconfig", kube->kubeconfigPath()}, out, err), 1) << err;
  auto lines = linesByRun(out);
  EXPECT_EQ(lines["gone"]["action"], "would-correct");
  EXPECT_EQ(lines["present"]["action"], "skipped-workflow-exists");
  EXPECT_EQ(lines["healthy"]["action"], "healthy");
  EXPECT_FALSE(lines.count("failed"));
  EXPECT_TRUE(api->reports().empty());
}

TEST_F(BackfillTest, ApplyCorrectsExactlyTheGoneMisreportedRunsAndARerunChangesNothing) {
  startKfp();
  const std::string report = ::testing::TempDir() + "/backfill-report.ndjson";
  std::filesystem::remove(report);
  std::string out, err;
  EXPECT_EQ(
      backfill({"--kubeconfig", kube->kubeconfigPath(), "--apply", "--report", report}, out, err),
      0)
      << err << out;
  auto lines = linesByRun(out);
  for (const char* id : {"gone", "labelled", "zipped"}) {
    EXPECT_EQ(lines[id]["action"], "corrected") << id << " " << lines[id].dump();
    EXPECT_EQ(api->run(id)->state, "FAILED") << id;
  }
  EXPECT_EQ(lines["present"]["action"], "skipped-workflow-exists");
  EXPECT_EQ(api->run("present")->state, "SUCCEEDED");
  EXPECT_EQ(api->run("healthy")->state, "SUCCEEDED");
  // Every report was label-free: KFP was never asked to delete a CR.
  ASSERT_EQ(api->reports().size(), 3u);
  for (const auto& r : api->reports()) {
    EXPECT_FALSE(r.hadFinalStateLabel) << r.runId;
    EXPECT_TRUE(r.wroteRun) << r.runId;
    EXPECT_EQ(r.status, 404) << r.runId;  // committed, then NotFound (the CR is gone)
  }
  EXPECT_EQ(deletes.load(), 0);
  // The stored manifest is the controller's correction.
  json stored = json::parse(*api->run("gone")->manifest);
  EXPECT_EQ(stored["status"]["phase"], "Failed");
  EXPECT_EQ(stored["metadata"]["annotations"]["exit-reconciler.io/action"], "corrected");
  // The report file has one line per action.
  std::ifstream in(report);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(linesByRun(text).size(), 5u);

  EXPECT_EQ(backfill({"--kubeconfig", kube->kubeconfigPath(), "--apply"}, out, err), 0) << err;
  EXPECT_EQ(api->reports().size(), 3u);  // nothing new sent
  EXPECT_EQ(linesByRun(out).count("gone"), 0u);
}

TEST_F(BackfillTest, MultiUserNeedsReportPermissionAndCorrectsPerNamespace) {
  KfpHistoryApi::Options o;
  o.multiUser = true;
  startKfp(o);
  KfpHistoryApi::Identity reader;
  reader.namespaces = {"team-a"};
  api->addIdentity("reader", reader);
  KfpHistoryApi::Identity reporter = reader;
  reporter.mayReport = true;
  api->addIdentity("reporter", reporter);
  const std::string dir = ::testing::TempDir();
  std::ofstream(dir + "/reader-token") << "reader";
  std::ofstream(dir + "/reporter-token") << "reporter";
  std::string out, err;
  // Without `report workflows` KFP answers 403: nothing changes, exit 2.
  EXPECT_EQ(backfill({"--kubeconfig", kube->kubeconfigPath(), "--apply", "--namespace", "team-a",
                      "--kfp-token-file", dir + "/reader-token"},
                     out, err),
            2)
      << err;
  EXPECT_EQ(linesByRun(out)["gone"]["action"], "report-failed");
  EXPECT_EQ(api->run("gone")->state, "SUCCEEDED");
  EXPECT_EQ(backfill({"--kubeconfig", kube->kubeconfigPath(), "--apply", "--namespace", "team-a",
                      "--kfp-token-file", dir + "/reporter-token"},
                     out, err),
            0)
      << err;
  auto lines = linesByRun(out);
  EXPECT_EQ(lines["gone"]["action"], "corrected");
  EXPECT_EQ(lines["labelled"]["action"], "corrected");
  EXPECT_FALSE(lines.count("zipped"));  // team-b: not listed
  EXPECT_EQ(api->run("zipped")->state, "SUCCEEDED");
}

TEST_F(BackfillTest, WithoutAClusterItCorrectsNothingAndSaysWhy) {
  startKfp();
  std::string out, err;
  EXPECT_EQ(backfill({"--kubeconfig", "/nonexistent/kubeconfig", "--apply"}, out, err), 2);
  EXPECT_NE(err.find("corrects nothing"), std::string::npos) << err;
  EXPECT_TRUE(api->reports().empty());
}

TEST(SafeReportTest, StripsTheLabelAndResourceVersionAndAppliesThePatch) {
  const std::string m = manifestFor("wf", "ns", "r", true, true);
  auto body = safeHistoricalReport(
      m,
      R"({"metadata":{"resourceVersion":"4711","annotations":{"a":"b"}},"status":{"phase":"Failed"}})");
  ASSERT_TRUE(body.ok());
  json wf = json::parse(*body);
  EXPECT_FALSE(wf["metadata"]["labels"].contains("pipeline/persistedFinalState"));
  EXPECT_FALSE(wf["metadata"].contains("resourceVersion"));
  EXPECT_EQ(wf["metadata"]["labels"]["pipeline/runid"], "r");
  EXPECT_EQ(wf["metadata"]["annotations"]["a"], "b");
  EXPECT_EQ(wf["status"]["phase"], "Failed");
  EXPECT_FALSE(carriesPersistedFinalState(*body));
  EXPECT_TRUE(carriesPersistedFinalState(m));
}

}  // namespace
}  // namespace exitrec

namespace exitrec {
namespace {

class CountingSweepMetrics : public HistorySweepMetrics {
 public:
  void runScanned() override { ++scanned; }
  void runMisreported(std::string_view generation, std::string_view cause) override {
    misreported.emplace_back(std::string(generation) + "/" + std::string(cause));
  }
  void runCorrected() override { ++corrected; }
  void runFailed() override { ++failed; }
  void sweepDone(bool ok, double) override { passes += ok ? 1 : 0; }
  int scanned = 0, corrected = 0, failed = 0, passes = 0;
  std::vector<std::string> misreported;
};

class MemoryKfp : public KfpReporter {
 public:
  explicit MemoryKfp(KfpHistoryApi& api) : api_(api) {}
  Status reportWorkflow(std::string_view wf) override {
    auto r = api_.handle("POST", "/apis/v1beta1/workflows", {}, std::nullopt,
                         nlohmann::json(std::string(wf)).dump());
    if (r.status == 404)
      return Error(ErrorCode::kNotFound, r.body);
    if (r.status != 200)
      return Error(ErrorCode::kInvalid, r.body);
    return Status::okStatus();
  }
  Result<std::string> runState(const std::string& id) override { return api_.run(id)->state; }

 private:
  KfpHistoryApi& api_;
};

// FakeClock's wall time is 1798000000 (2026-12-23T...): the window is relative to it.
TEST(HistorySweepTest, CorrectsOnlyRecentGoneRunsAndCountsThem) {
  KfpHistoryApi api;
  const std::int64_t now = 1798000000;
  api.addRun(historyRun("recent", "ns", now - 3600, manifestFor("wf-r", "ns", "recent", true)));
  api.addRun(historyRun("old", "ns", now - 5 * 86400, manifestFor("wf-o", "ns", "old", true)));
  api.addRun(historyRun("alive", "ns", now - 600, manifestFor("wf-a", "ns", "alive", true)));
  ASSERT_TRUE(api.start().ok());
  auto transport = makeCpprestTransport({});
  ASSERT_TRUE(transport.ok());
  KfpHistoryClient client(**transport, TokenSource(), {.baseUrl = api.baseUrl()});
  MemoryKfp kfp(api);
  CountingSweepMetrics metrics;
  FakeClock clock;
  HistorySweepOptions o;
  o.window = std::chrono::hours(48);
  o.backfill.qps = 1000;
  auto exists = [](const std::string&, const std::string& name) -> Result<bool> {
    return name == "wf-a";
  };
  HistorySweep sweep(client, kfp, exists, o, metrics, clock);
  ASSERT_TRUE(sweep.sweepOnce().ok());
  EXPECT_EQ(api.run("recent")->state, "FAILED");
  EXPECT_EQ(api.run("old")->state, "SUCCEEDED");    // outside the window
  EXPECT_EQ(api.run("alive")->state, "SUCCEEDED");  // the controller's
  EXPECT_EQ(metrics.scanned, 2);
  EXPECT_EQ(metrics.corrected, 1);
  EXPECT_EQ(metrics.misreported.size(), 2u);
  EXPECT_EQ(metrics.misreported[0], "kfp-v2-sibling/exit-task-masked-failure");
  ASSERT_TRUE(sweep.sweepOnce().ok());  // the corrected run is FAILED: not listed again
  EXPECT_EQ(metrics.scanned, 3);
  EXPECT_EQ(metrics.corrected, 1);
  EXPECT_EQ(metrics.passes, 2);
}

}  // namespace
}  // namespace exitrec

namespace exitrec {
namespace {

// The launcher serves file audit itself and hands --kfp-api-url (which needs
// the HTTP stack) to the operator binary.
TEST(HistoryLauncherTest, AuditWithKfpApiUrlRunsThroughTheLauncher) {
  KfpHistoryApi api;
  api.addRun(historyRun("bad", "ns", 1767225600, manifestFor("wf-b", "ns", "bad", true)));
  ASSERT_TRUE(api.start().ok());
  const std::string cmd =
      std::string(EXITREC_AUDIT_BIN) + " audit --kfp-api-url " + api.baseUrl() + " 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;)
    out.append(buf, n);
  const int status = ::pclose(p);
  EXPECT_EQ(WEXITSTATUS(status), 1) << out;
  auto lines = linesByRun(out);
  ASSERT_EQ(lines.size(), 1u) << out;
  EXPECT_EQ(lines["bad"]["misreported"], true);
}

}  // namespace
}  // namespace exitrec

namespace exitrec {
namespace {

// getManifest's unescaping (an AVX-512 fast path where the CPU has one,
// simdjson's otherwise) gives exactly the string nlohmann decodes, for
// escapes of every kind, backslash runs across 64-byte blocks, and strings
// of every length around the block size; an invalid escape is an error.
TEST(HistoryManifestTest, UnescapingMatchesAJsonDecoderOnBothPaths) {
  FakeHttpTransport transport;
  std::string body;
  transport.setHandler([&](const HttpRequest&) -> Result<HttpResponse> {
    HttpResponse r;
    r.status = 200;
    r.body = body;
    return r;
  });
  KfpHistoryClient client(transport, TokenSource(), {.baseUrl = "http://kfp"});
  std::mt19937 rng(17);
  const std::vector<std::string> pieces = {
      "a", "xyz", "\"", "\\", "\\\\", "/", "\n", "\t", "\u00e9", "\u2603", "{\"k\":\"v\"}", "\\\""};
  std::vector<std::string> texts;
  for (std::size_t n = 0; n < 200; ++n)  // lengths around the block size
    texts.push_back(std::string(n, 'q') + "\"" + std::string(n % 7, '\\'));
  for (int i = 0; i < 400; ++i) {
    std::string t;
    const int count = std::uniform_int_distribution<int>(1, 120)(rng);
    const bool simpleOnly = i % 2 == 0;  // the fast path's own blocks
    for (int k = 0; k < count; ++k) {
      const auto& p = pieces[std::uniform_int_distribution<std::size_t>(
          0, simpleOnly ? 5 : pieces.size() - 1)(rng)];
      t += p;
    }
    texts.push_back(t);
  }
  for (bool fast : {true, false}) {
    setManifestUnescapeFastPath(fast);
    for (std::size_t i = 0; i < texts.size(); ++i) {
      const std::string& text = texts[i];
      // \uXXXX for non-ASCII in every third, \/ for / in every fifth.
      std::string literal = nlohmann::json(text).dump(-1, ' ', i % 3 == 1);
      if (i % 5 == 0) {
        for (std::size_t at = literal.find('/'); at != std::string::npos;
             at = literal.find('/', at + 2))
          literal.replace(at, 1, "\\/");
      }
      body = R"({"run":{"id":"r"},"pipeline_runtime":{"workflow_manifest":)" + literal + "}}";
      auto m = client.getManifest("r");
      if (text.empty()) {
        ASSERT_FALSE(m.ok());
        continue;
      }
      ASSERT_TRUE(m.ok()) << m.error().message << " for " << literal;
      ASSERT_EQ(m->text, text) << "fast=" << fast << " literal " << literal;
      ASSERT_EQ(std::string(m->text.data() + m->text.size(), 64), std::string(64, '\0'));
    }
    body = R"({"pipeline_runtime":{"workflow_manifest":")" + std::string(70, 'a') + R"(\q"}})";
    auto bad = client.getManifest("r");
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message.find("not a valid JSON string"), std::string::npos);
  }
  setManifestUnescapeFastPath(true);
}

// The KFP simulator hands its history component what it serves: the list and
// get-v1 always, get-v2 and reports only for the component's own runs.
TEST(HistoryHookTest, KfpSimulatorDispatchesHistoryRequests) {
  KfpHistoryApi history;
  history.addRun(historyRun("h1", "ns", 1767225600, manifestFor("wf-h1", "ns", "h1", true)));
  EXPECT_TRUE(history.serves("GET", "/apis/v2beta1/runs", ""));
  EXPECT_TRUE(history.serves("GET", "/apis/v2beta1/runs/h1", ""));
  EXPECT_FALSE(history.serves("GET", "/apis/v2beta1/runs/live-run", ""));
  const std::string other = nlohmann::json(manifestFor("wf-x", "ns", "live-run", true)).dump();
  EXPECT_FALSE(history.serves("POST", "/apis/v1beta1/workflows", other));
  const std::string mine = nlohmann::json(manifestFor("wf-h1", "ns", "h1", true)).dump();
  EXPECT_TRUE(history.serves("POST", "/apis/v1beta1/workflows", mine));

  KfpApiSimulator kfp(KfpApiSimulator::Options{});
  kfp.attachHistory(&history);
  ASSERT_TRUE(kfp.start().ok());
  auto transport = makeCpprestTransport({});
  ASSERT_TRUE(transport.ok());
  KfpHistoryClient client(**transport, TokenSource(), {.baseUrl = kfp.baseUrl()});
  auto page = client.listPage({}, "");
  ASSERT_TRUE(page.ok()) << page.error().message;
  ASSERT_EQ(page->runs.size(), 1u);
  auto manifest = client.getManifest("h1");
  ASSERT_TRUE(manifest.ok()) << manifest.error().message;
  EXPECT_NE(manifest->text.find("wf-h1"), std::string_view::npos);
}

}  // namespace
}  // namespace exitrec
