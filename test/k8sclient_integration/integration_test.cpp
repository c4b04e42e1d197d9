// k8sclient against the in-process KubeApiSimulator over the real cpprest
// transport. Reflector tests use the real clock with short backoffs; leader
// election uses FakeClock (the simulator does not judge lease expiry, the
// electors do), so no test waits out a lease in real time.

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/fake_clock.h"
#include "k8sclient/client_factory.h"
#include "k8sclient/cpprest_transport.h"
#include "k8sclient/informer.h"
#include "k8sclient/leader_election.h"
#include "k8sclient/work_queue.h"
#include "sim/kube_api_simulator.h"
#include "test/k8sclient/test_util.h"

namespace exitrec {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::waitFor;

json workflow(const std::string& ns, const std::string& name,
              const std::string& phase = "Running") {
  return {{"apiVersion", "argoproj.io/v1alpha1"},
          {"kind", "Workflow"},
          {"metadata", {{"namespace", ns}, {"name", name}, {"labels", {{"app", "kfp"}}}}},
          {"spec", {{"entrypoint", "main"}}},
          {"status", {{"phase", phase}}}};
}

// Records the status of every response, to see 401 retries on the wire.
class RecordingTransport final : public HttpTransport {
 public:
  explicit RecordingTransport(std::unique_ptr<HttpTransport> inner) : inner_(std::move(inner)) {}
  Result<HttpResponse> send(const HttpRequest& r) override {
    auto resp = inner_->send(r);
    std::lock_guard<std::mutex> g(mu_);
    statuses_.push_back(resp ? resp->status : -1);
    return resp;
  }
  Result<StreamResult> stream(const HttpRequest& r, const LineCallback& cb,
                              CancelSource& c) override {
    auto res = inner_->stream(r, cb, c);
    std::lock_guard<std::mutex> g(mu_);
    streamStatuses_.push_back(res ? res->response.status : -1);
    return res;
  }
  std::vector<int> statuses() {
    std::lock_guard<std::mutex> g(mu_);
    return statuses_;
  }
  std::vector<int> streamStatuses() {
    std::lock_guard<std::mutex> g(mu_);
    return streamStatuses_;
  }
  void clear() {
    std::lock_guard<std::mutex> g(mu_);
    statuses_.clear();
    streamStatuses_.clear();
  }

 private:
  std::unique_ptr<HttpTransport> inner_;
  std::mutex mu_;
  std::vector<int> statuses_, streamStatuses_;
};

struct Phase {
  std::string phase;
};

// An informer on workflows with a tiny projection, recording handler calls.
class WorkflowWatcher {
 public:
  WorkflowWatcher(KubeClient& client, Clock& clock) {
    ReflectorOptions opts;
    opts.resource = resources::kWorkflows;
    opts.pageSize = 2;  // exercise pagination
    opts.backoff.initial = milliseconds(100);
    opts.backoff.max = milliseconds(1000);
    informer = std::make_unique<Informer<Phase>>(
        client, clock, opts,
        [](const ObjectMeta&, std::string_view raw) -> Result<Phase> {
          auto j = json::parse(raw, nullptr, false);
          if (!j.is_object())
            return Error(ErrorCode::kInvalidInput, "bad json");
          return Phase{j.value("/status/phase"_json_pointer, "")};
        },
        Informer<Phase>::Handlers{
            [this](const std::string& k, const auto& o) { record("add " + k + " " + o->phase); },
            [this](const std::string& k, const auto&, const auto& n) {
              record("update " + k + " " + n->phase);
            },
            [this](const std::string& k, const auto&, bool unknown) {
              record(std::string(unknown ? "delete? " : "delete ") + k);
            }});
  }
  ~WorkflowWatcher() { informer->stop(); }
  void record(std::string s) {
    std::lock_guard<std::mutex> g(mu);
    log.push_back(std::move(s));
  }
  bool saw(const std::string& s) {
    std::lock_guard<std::mutex> g(mu);
    return std::find(log.begin(), log.end(), s) != log.end();
  }
  int restarts() {
    int n = 0;
    for (const auto& [k, v] : informer->reflector().restartCounts())
      n += v;
    return n;
  }

  std::unique_ptr<Informer<Phase>> informer;
  std::mutex mu;
  std::vector<std::string> log;
};

class SimTest : public ::testing::Test {
 protected:
  void startSim(KubeApiSimulator::Options opts = {}) {
    opts.bookmarkInterval = milliseconds(300);
    sim = std::make_unique<KubeApiSimulator>(opts);
    Status s = sim->start();
    ASSERT_TRUE(s.ok()) << s.error().describe();
    auto cfg = loadKubeconfigFile(sim->kubeconfigPath());
    ASSERT_TRUE(cfg.ok()) << cfg.error().describe();
    restConfig = *cfg;
  }
  void connect(Clock& clock) {
    auto t = makeCpprestTransport(restConfig.tls);
    ASSERT_TRUE(t.ok()) << t.error().describe();
    transport = std::make_shared<RecordingTransport>(std::move(t).value());
    client = std::make_unique<KubeClient>(transport, restConfig.server,
                                          tokenSourceFor(restConfig, clock));
    for (const char* ns : {"ns", "team-a", "team-b", "kube-system"}) {
      ASSERT_TRUE(
          sim->seed(json{{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}})
              .ok());
    }
  }
  void TearDown() override {
    if (sim)
      sim->stop();
  }

  std::unique_ptr<KubeApiSimulator> sim;
  RestConfig restConfig;
  std::shared_ptr<RecordingTransport> transport;
  std::unique_ptr<KubeClient> client;
};

TEST_F(SimTest, CrudPatchesAndErrorClassesOverTheWire) {
  startSim();
  connect(SystemClock::instance());
  const auto& wf = resources::kWorkflows;
  auto created = client->create(wf, "team-a", workflow("team-a", "wf1"));
  ASSERT_TRUE(created.ok()) << created.error().describe();
  const std::string rv = (*created)["metadata"]["resourceVersion"];
  auto dup = client->create(wf, "team-a", workflow("team-a", "wf1"));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, ErrorCode::kConflict);  // AlreadyExists is a 409

  auto patched = client->mergePatch(wf, "team-a", "wf1",
                                    json{{"metadata", {{"labels", {{"done", "yes"}}}}}}, rv);
  ASSERT_TRUE(patched.ok()) << patched.error().describe();
  EXPECT_EQ((*patched)["metadata"]["labels"]["done"], "yes");
  auto stale =
      client->mergePatch(wf, "team-a", "wf1", json{{"metadata", {{"labels", {{"x", "1"}}}}}}, rv);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code, ErrorCode::kConflict);

  const json failedTest =
      json::array({{{"op", "test"}, {"path", "/metadata/resourceVersion"}, {"value", rv}},
                   {{"op", "replace"}, {"path", "/status/phase"}, {"value", "Failed"}}});
  auto jp = client->jsonPatch(wf, "team-a", "wf1", failedTest);
  ASSERT_FALSE(jp.ok());
  EXPECT_EQ(jp.error().code, ErrorCode::kConflict) << jp.error().describe();

  auto cur = client->get(wf, "team-a", "wf1");
  ASSERT_TRUE(cur.ok());
  json updated = *cur;
  updated["status"]["phase"] = "Succeeded";
  auto put = client->update(wf, "team-a", "wf1", updated);
  ASSERT_TRUE(put.ok()) << put.error().describe();
  auto stalePut = client->update(wf, "team-a", "wf1", updated);  // RV now stale
  ASSERT_FALSE(stalePut.ok());
  EXPECT_EQ(stalePut.error().code, ErrorCode::kConflict);

  auto missing = client->get(wf, "team-a", "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  auto invalid = client->create(wf, "team-a", json{{"kind", "Workflow"}});
  ASSERT_FALSE(invalid.ok());
  EXPECT_EQ(invalid.error().code, ErrorCode::kInvalid) << invalid.error().describe();
  EXPECT_FALSE(invalid.error().message.empty());

  // Selectors, cluster-wide list, core resources.
  ASSERT_TRUE(client->create(wf, "team-b", workflow("team-b", "wf2")).ok());
  json other = workflow("team-b", "wf3");
  other["metadata"]["labels"]["app"] = "other";
  ASSERT_TRUE(client->create(wf, "team-b", other).ok());
  std::vector<std::string> names;
  ListOptions lo;
  lo.limit = 1;
  lo.labelSelector = "app=kfp";
  auto listed = client->list(wf, "", lo, [&](std::string_view raw) {
    names.push_back(json::parse(raw)["metadata"]["name"]);
    return Status();
  });
  ASSERT_TRUE(listed.ok()) << listed.error().describe();
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"wf1", "wf2"}));
  EXPECT_EQ(listed->pages, 2);
  EXPECT_FALSE(listed->resourceVersion.empty());
  ASSERT_TRUE(client->remove(wf, "team-b", "wf3").ok());
  EXPECT_EQ(client->get(wf, "team-b", "wf3").error().code, ErrorCode::kNotFound);
}

TEST_F(SimTest, InformerSurvivesWatchDropMidStream) {
  startSim();
  connect(SystemClock::instance());
  for (const char* n : {"a", "b", "c"})
    ASSERT_TRUE(sim->seed(workflow("ns", n)).ok());
  WorkflowWatcher w(*client, SystemClock::instance());
  w.informer->start();
  ASSERT_TRUE(waitFor([&] { return w.informer->hasSynced(); }));
  EXPECT_EQ(w.informer->size(), 3u);
  ASSERT_TRUE(
      client
          ->mergePatch(resources::kWorkflows, "ns", "a", json{{"status", {{"phase", "Succeeded"}}}})
          .ok());
  ASSERT_TRUE(waitFor([&] { return w.saw("update ns/a Succeeded"); }));
  for (int i = 0; i < 3; ++i) {
    const int before = w.restarts();
    sim->dropAllWatches();
    ASSERT_TRUE(waitFor([&] { return w.restarts() > before; }));
    ASSERT_TRUE(client
                    ->mergePatch(resources::kWorkflows, "ns", "b",
                                 json{{"status", {{"phase", "Phase" + std::to_string(i)}}}})
                    .ok());
    ASSERT_TRUE(waitFor([&] { return w.saw("update ns/b Phase" + std::to_string(i)); }));
  }
  ASSERT_TRUE(client->remove(resources::kWorkflows, "ns", "c").ok());
  ASSERT_TRUE(waitFor([&] { return w.saw("delete ns/c"); }));
  // Drops re-watch from the last RV: the only list is the first one.
  EXPECT_EQ(w.informer->reflector().listCount(), 1);
  EXPECT_EQ(w.informer->reflector().restartCounts().count("gone_http"), 0u);
}

// The transport cuts watch lines itself from blocks of at most 64 KiB: events
// larger than a block, and many small ones arriving in one block, must come
// out whole and in order.
TEST_F(SimTest, WatchDeliversEventsLargerThanOneReadBlockWhole) {
  startSim();
  connect(SystemClock::instance());
  auto list = client->list(resources::kWorkflows, "", ListOptions{},
                           [](std::string_view) { return Status(); });
  ASSERT_TRUE(list.ok()) << list.error().describe();
  std::vector<std::string> values;
  for (int i = 0; i < 12; ++i) {
    // 1 B .. ~300 KB annotations: below, around and far above the block size.
    values.push_back(std::string(static_cast<std::size_t>(i == 0 ? 1 : (i * 25000) + i), 'a' + i));
    json wf = workflow("ns", "big-" + std::to_string(i));
    wf["metadata"]["annotations"] = {{"payload", values.back()}};
    ASSERT_TRUE(sim->seed(wf).ok());
  }
  std::vector<std::string> seen;
  CancelSource cancel;
  WatchOptions wo;
  wo.resourceVersion = list->resourceVersion;
  wo.timeoutSeconds = seconds(5);
  auto end = client->watch(
      resources::kWorkflows, "", wo,
      [&](WatchEventType type, std::string_view raw) {
        if (type != WatchEventType::kAdded)
          return true;
        auto j = json::parse(raw, nullptr, false);
        EXPECT_TRUE(j.is_object()) << "event cut wrongly, " << raw.size() << " bytes";
        seen.push_back(j.is_object() ? j["metadata"]["annotations"].value("payload", "") : "");
        return seen.size() < values.size();
      },
      cancel);
  ASSERT_TRUE(end.ok()) << end.error().describe();
  EXPECT_EQ(end->end, StreamEnd::kStopped);
  ASSERT_EQ(seen.size(), values.size());
  for (std::size_t i = 0; i < values.size(); ++i)
    EXPECT_EQ(seen[i], values[i]) << "event " << i;
}

TEST_F(SimTest, IdleTimeoutEndsAWatchNormallyAndCancelIsPrompt) {
  KubeApiSimulator::Options o;
  o.bookmarkInterval = seconds(60);
  sim = std::make_unique<KubeApiSimulator>(o);
  ASSERT_TRUE(sim->start().ok());
  auto cfg = loadKubeconfigFile(sim->kubeconfigPath());
  ASSERT_TRUE(cfg.ok());
  restConfig = *cfg;
  connect(SystemClock::instance());
  ASSERT_TRUE(sim->seed(workflow("ns", "a")).ok());

  // Nothing arrives within the client idle timeout: a normal end, not an error.
  WatchOptions wo;
  wo.allowWatchBookmarks = false;
  wo.timeoutSeconds = seconds(60);
  wo.idleTimeout = milliseconds(700);
  CancelSource never;
  int events = 0;
  auto r = client->watch(
      resources::kWorkflows, "", wo, [&](auto, auto) { return ++events > 0; }, never);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->end, StreamEnd::kIdleTimeout);
  EXPECT_EQ(events, 1);  // the initial ADDED (watch without RV)

  // Cancelling aborts a blocked read at once.
  CancelSource cancel;
  wo.idleTimeout = seconds(60);
  std::optional<Result<WatchEnd>> out;
  std::thread t([&] {
    out.emplace(client->watch(
        resources::kWorkflows, "", wo, [](auto, auto) { return true; }, cancel));
  });
  ASSERT_TRUE(waitFor([&] { return sim->openWatches() == 1; }));
  cancel.cancel();
  t.join();  // returns only if the cancel aborted the blocked read (the idle timeout is 60 s)
  ASSERT_TRUE(out.has_value());
  if (out->ok()) {
    EXPECT_EQ((*out)->end, StreamEnd::kCancelled);
  } else {
    EXPECT_EQ(out->error().code, ErrorCode::kCancelled);
  }
}

class GoneTest : public SimTest, public ::testing::WithParamInterface<ExpireForm> {};

TEST_P(GoneTest, RelistRecoversDeletesMissedDuringTheGap) {
  startSim();
  connect(SystemClock::instance());
  for (const char* n : {"a", "b", "c", "d", "e"})
    ASSERT_TRUE(sim->seed(workflow("ns", n)).ok());
  WorkflowWatcher w(*client, SystemClock::instance());
  w.informer->start();
  ASSERT_TRUE(waitFor([&] { return w.informer->hasSynced() && sim->openWatches() == 1; }));
  sim->expireNextWatch(GetParam());
  const int before = w.restarts();
  sim->dropAllWatches();
  ASSERT_TRUE(waitFor([&] { return w.restarts() > before; }));
  // The old watch is gone and the next one will be told 410: these deletes
  // can only be learned from the relist.
  ASSERT_TRUE(client->remove(resources::kWorkflows, "ns", "b").ok());
  ASSERT_TRUE(client->remove(resources::kWorkflows, "ns", "d").ok());
  ASSERT_TRUE(client->create(resources::kWorkflows, "ns", workflow("ns", "f")).ok());
  ASSERT_TRUE(waitFor([&] { return w.saw("delete? ns/b") && w.saw("delete? ns/d"); }, seconds(8)));
  ASSERT_TRUE(waitFor([&] { return w.saw("add ns/f Running"); }));
  const auto counts = w.informer->reflector().restartCounts();
  const char* reason = GetParam() == ExpireForm::kHttp410 ? "gone_http" : "gone_event";
  EXPECT_EQ(counts.count(reason), 1u) << reason;
  EXPECT_EQ(w.informer->reflector().listCount(), 2);
  EXPECT_EQ(w.informer->size(), 4u);
  EXPECT_EQ(w.informer->get("ns/b"), nullptr);
  // And it keeps watching afterwards.
  ASSERT_TRUE(
      client->mergePatch(resources::kWorkflows, "ns", "a", json{{"status", {{"phase", "Failed"}}}})
          .ok());
  ASSERT_TRUE(waitFor([&] { return w.saw("update ns/a Failed"); }));
}

INSTANTIATE_TEST_SUITE_P(BothForms, GoneTest,
                         ::testing::Values(ExpireForm::kHttp410, ExpireForm::kErrorEvent));

TEST_F(SimTest, FiveHundredBurstsAreTransientAndRecovered) {
  startSim();
  connect(SystemClock::instance());
  ASSERT_TRUE(sim->seed(workflow("ns", "a")).ok());
  sim->failNext({"list", "workflows", 3, 503, 0, 0});
  WorkflowWatcher w(*client, SystemClock::instance());
  w.informer->start();
  ASSERT_TRUE(waitFor([&] { return w.informer->hasSynced(); }));
  EXPECT_EQ(w.informer->reflector().restartCounts()["list_error"], 3);

  ASSERT_TRUE(waitFor([&] { return sim->openWatches() == 1; }));
  sim->failNext({"watch", "workflows", 2, 500, 0, 0});
  const int before = w.restarts();
  sim->dropAllWatches();
  ASSERT_TRUE(
      waitFor([&] { return w.restarts() >= before + 3 && sim->openWatches() == 1; }, seconds(9)));
  EXPECT_EQ(w.informer->reflector().restartCounts()["watch_error"], 2);
  EXPECT_EQ(w.informer->reflector().listCount(), 1);  // 5xx on watch: re-watch, no relist
  ASSERT_TRUE(
      client->mergePatch(resources::kWorkflows, "ns", "a", json{{"status", {{"phase", "Done"}}}})
          .ok());
  ASSERT_TRUE(waitFor([&] { return w.saw("update ns/a Done"); }));

  sim->failNext({"patch", "workflows", 2, 502, 0, 0});
  for (int i = 0; i < 2; ++i) {
    auto r = client->mergePatch(resources::kWorkflows, "ns", "a", json{{"spec", {{"x", i}}}});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kTransient);
    EXPECT_EQ(r.error().httpStatus, 502);
  }
  EXPECT_TRUE(
      client->mergePatch(resources::kWorkflows, "ns", "a", json{{"spec", {{"x", 9}}}}).ok());
}

TEST_F(SimTest, TooManyRequestsCarriesRetryAfterAndTheQueueHonoursIt) {
  startSim();
  connect(SystemClock::instance());
  ASSERT_TRUE(sim->seed(workflow("ns", "a")).ok());
  sim->failNext({"patch", "workflows", 1, 429, 1, 0});
  WorkQueue queue("integration", SystemClock::instance());
  std::atomic<int> attempts{0};
  std::vector<std::chrono::steady_clock::time_point> times;
  std::optional<Error> firstError;
  std::thread worker([&] {
    while (auto key = queue.get()) {
      times.push_back(std::chrono::steady_clock::now());
      ++attempts;
      auto r = client->mergePatch(resources::kWorkflows, "ns", *key,
                                  json{{"metadata", {{"labels", {{"reconciled", "true"}}}}}});
      if (r.ok()) {
        queue.forget(*key);
        queue.done(*key);
        queue.shutDown();
        continue;
      }
      if (!firstError)
        firstError = r.error();
      const auto limiterDelay = std::chrono::nanoseconds(milliseconds(5));
      const auto serverDelay = r.error().retryAfter.value_or(seconds(0));
      queue.addAfter(*key, std::max<std::chrono::nanoseconds>(limiterDelay, serverDelay));
      queue.done(*key);
    }
  });
  queue.add("a");
  worker.join();
  ASSERT_TRUE(firstError.has_value());
  EXPECT_EQ(firstError->code, ErrorCode::kTooManyRequests);
  ASSERT_TRUE(firstError->retryAfter.has_value());
  EXPECT_EQ(firstError->retryAfter->count(), 1);
  ASSERT_EQ(attempts.load(), 2);
  EXPECT_GE(times[1] - times[0], milliseconds(990));
  auto got = client->get(resources::kWorkflows, "ns", "a");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)["metadata"]["labels"]["reconciled"], "true");
}

TEST_F(SimTest, TokenFileRotationAndReReadOn401) {
  KubeApiSimulator::Options o;
  o.tls = true;
  o.token = "token-one-aaaa";
  startSim(o);
  // Use a token file instead of the kubeconfig's inline token.
  const std::string tokenPath = sim->stateDir() + "/client-token";
  std::ofstream(tokenPath) << "token-one-aaaa\n";
  restConfig.token.clear();
  restConfig.tokenFile = tokenPath;
  FakeClock clock;
  connect(clock);
  ASSERT_TRUE(client->get(resources::kNamespaces, "", "default").ok() ||
              client->get(resources::kNamespaces, "", "default").error().code ==
                  ErrorCode::kNotFound);
  transport->clear();

  // Rotation noticed by the periodic re-read: no 401 at all.
  sim->setToken("token-two-bbbb");
  std::ofstream(tokenPath) << "token-two-bbbb\n";
  clock.advance(seconds(61));
  ASSERT_TRUE(client->create(resources::kWorkflows, "ns", workflow("ns", "a")).ok());
  EXPECT_EQ(transport->statuses(), (std::vector<int>{201}));

  // Rotation within the minute: the 401 triggers a re-read and one retry.
  transport->clear();
  sim->setToken("token-three-cccc");
  std::ofstream(tokenPath) << "token-three-cccc\n";
  auto got = client->get(resources::kWorkflows, "ns", "a");
  ASSERT_TRUE(got.ok()) << got.error().describe();
  EXPECT_EQ(transport->statuses(), (std::vector<int>{401, 200}));

  // Watches too: an informer reconnecting after rotation re-reads the token.
  // (The reflector backs off on the real clock; the token source keeps the fake one.)
  WorkflowWatcher w(*client, SystemClock::instance());
  w.informer->start();
  ASSERT_TRUE(waitFor([&] { return w.informer->hasSynced() && sim->openWatches() == 1; }));
  transport->clear();
  sim->setToken("token-four-dddd");
  std::ofstream(tokenPath) << "token-four-dddd\n";
  sim->dropAllWatches();
  ASSERT_TRUE(waitFor([&] { return transport->streamStatuses().size() >= 2; }));
  EXPECT_EQ(transport->streamStatuses()[0], 200);  // the dropped watch
  EXPECT_EQ(transport->streamStatuses()[1], 401);  // re-watch with the old token
  ASSERT_TRUE(
      client->mergePatch(resources::kWorkflows, "ns", "a", json{{"status", {{"phase", "Rotated"}}}})
          .ok());
  ASSERT_TRUE(waitFor([&] { return w.saw("update ns/a Rotated"); }));

  // A wrong token that cannot be fixed by re-reading is Unauthorized; never leaked.
  sim->setToken("token-five-eeee");
  auto denied = client->get(resources::kWorkflows, "ns", "a");
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.error().code, ErrorCode::kUnauthorized);
  EXPECT_EQ(denied.error().message.find("token-four"), std::string::npos);
}

TEST_F(SimTest, TlsWithCustomCaAndWrongCaRefusedClearly) {
  KubeApiSimulator::Options o;
  o.tls = true;
  startSim(o);
  ASSERT_FALSE(restConfig.tls.caFile.empty());
  EXPECT_EQ(restConfig.server.rfind("https://127.0.0.1:", 0), 0u) << restConfig.server;
  connect(SystemClock::instance());
  ASSERT_TRUE(client->create(resources::kWorkflows, "ns", workflow("ns", "a")).ok());

  // CA given as data (certificate-authority-data) works the same.
  std::ifstream caIn(restConfig.tls.caFile);
  std::stringstream caPem;
  caPem << caIn.rdbuf();
  RestConfig dataCfg = restConfig;
  dataCfg.tls.caFile.clear();
  dataCfg.tls.caPem = caPem.str();
  auto dataClient = makeKubeClient(dataCfg, SystemClock::instance());
  ASSERT_TRUE(dataClient.ok());
  EXPECT_TRUE((*dataClient)->get(resources::kWorkflows, "ns", "a").ok());

  // Another simulator's CA does not vouch for this server.
  KubeApiSimulator::Options otherOpts;
  otherOpts.tls = true;
  KubeApiSimulator other(otherOpts);
  ASSERT_TRUE(other.start().ok());
  RestConfig wrong = restConfig;
  wrong.tls.caFile = other.caCertPath();
  auto wrongClient = makeKubeClient(wrong, SystemClock::instance());
  ASSERT_TRUE(wrongClient.ok());
  auto r = (*wrongClient)->get(resources::kWorkflows, "ns", "a");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kTransient);
  EXPECT_NE(r.error().message.find("TLS"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find(restConfig.server), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find(other.caCertPath()), std::string::npos) << r.error().message;

  // No CA at all: the system store does not know the simulator's CA either.
  RestConfig none = restConfig;
  none.tls.caFile.clear();
  auto noneClient = makeKubeClient(none, SystemClock::instance());
  ASSERT_TRUE(noneClient.ok());
  EXPECT_FALSE((*noneClient)->get(resources::kWorkflows, "ns", "a").ok());

  // insecure-skip-tls-verify is honoured (with a warning).
  testing::LogCapture logs;
  RestConfig insecure = none;
  insecure.tls.insecureSkipVerify = true;
  auto insecureClient = makeKubeClient(insecure, SystemClock::instance());
  ASSERT_TRUE(insecureClient.ok());
  EXPECT_TRUE((*insecureClient)->get(resources::kWorkflows, "ns", "a").ok());
  EXPECT_NE(logs.text().find("insecure-skip-tls-verify"), std::string::npos);

  // An unreadable CA file is reported up front, naming the path.
  RestConfig missing = restConfig;
  missing.tls.caFile = "/nonexistent/ca.crt";
  auto m = makeKubeClient(missing, SystemClock::instance());
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("/nonexistent/ca.crt"), std::string::npos);
  other.stop();
}

class ElectionTest : public SimTest {
 protected:
  struct Candidate {
    std::unique_ptr<KubeLeaseLock> lock;
    std::unique_ptr<LeaderElector> elector;
    std::thread thread;
    std::atomic<int> started{0}, stopped{0};
    void run() {
      thread = std::thread([this] { elector->run(); });
    }
    ~Candidate() {
      elector->stop();
      if (thread.joinable())
        thread.join();
    }
  };
  std::unique_ptr<Candidate> candidate(const std::string& id, bool releaseOnCancel = true) {
    auto c = std::make_unique<Candidate>();
    c->lock = std::make_unique<KubeLeaseLock>(*client, "kube-system", "exit-reconciler");
    LeaderElectionConfig cfg;
    cfg.identity = id;
    cfg.releaseOnCancel = releaseOnCancel;
    Candidate* raw = c.get();
    cfg.onStartedLeading = [raw] { ++raw->started; };
    cfg.onStoppedLeading = [raw] { ++raw->stopped; };
    c->elector = std::make_unique<LeaderElector>(*c->lock, clock, cfg, [] { return 0.0; });
    return c;
  }
  json lease() { return *client->get(resources::kLeases, "kube-system", "exit-reconciler"); }
  // Advances fake time by `d` in 1 s steps; after each step waits until all
  // `electors` are parked again on a future deadline (their rounds, real API
  // calls included, are done).
  void advance(std::chrono::milliseconds d, std::size_t electors) {
    for (auto t = milliseconds(0); t < d; t += seconds(1)) {
      clock.advance(seconds(1));
      ASSERT_TRUE(
          waitFor([&] { return clock.dueWaiters() == 0 && clock.waiterCount() == electors; }));
    }
  }
  FakeClock clock;
};

TEST_F(ElectionTest, TwoContendersOneLeaderThenFailoverWhenTheHolderStopsRenewing) {
  startSim();
  connect(clock);
  auto a = candidate("a", /*releaseOnCancel=*/false);
  auto b = candidate("b");
  a->run();
  ASSERT_TRUE(waitFor([&] { return a->started.load() == 1 && clock.waiterCount() == 1; }));
  b->run();
  ASSERT_TRUE(waitFor([&] { return clock.waiterCount() == 2; }));
  advance(seconds(20), 2);  // a keeps renewing; b keeps failing
  EXPECT_EQ(b->started.load(), 0);
  EXPECT_EQ(lease()["spec"]["holderIdentity"], "a");
  EXPECT_EQ(lease()["spec"]["leaseTransitions"], 0);

  // a "crashes": it stops renewing and does not release.
  a->elector->stop();
  a->thread.join();
  EXPECT_EQ(lease()["spec"]["holderIdentity"], "a");
  advance(seconds(10), 1);
  EXPECT_EQ(b->started.load(), 0);  // not yet expired on b's clock
  advance(seconds(8), 1);
  ASSERT_TRUE(waitFor([&] { return b->started.load() == 1; }));
  EXPECT_EQ(lease()["spec"]["holderIdentity"], "b");
  EXPECT_EQ(lease()["spec"]["leaseTransitions"], 1);
  // Every write was a resourceVersion-guarded PUT.
  int puts = 0;
  for (const auto& m : sim->mutationLog()) {
    if (m.path.find("/leases") == std::string::npos)
      continue;
    EXPECT_TRUE(m.verb == "create" || m.verb == "update") << m.verb;
    if (m.verb == "update") {
      ++puts;
      EXPECT_FALSE(json::parse(m.body)["metadata"].value("resourceVersion", "").empty());
    }
  }
  EXPECT_GT(puts, 5);
}

TEST_F(ElectionTest, GracefulReleaseLetsTheSuccessorInAtOnce) {
  startSim();
  connect(clock);
  auto a = candidate("a");
  auto b = candidate("b");
  a->run();
  ASSERT_TRUE(waitFor([&] { return a->started.load() == 1 && clock.waiterCount() == 1; }));
  b->run();
  ASSERT_TRUE(waitFor([&] { return clock.waiterCount() == 2; }));
  a->elector->stop();
  a->thread.join();
  EXPECT_EQ(a->stopped.load(), 1);
  EXPECT_EQ(lease()["spec"]["holderIdentity"], "");
  advance(seconds(4), 1);  // a few retry periods, far less than the 15 s lease
  ASSERT_TRUE(waitFor([&] { return b->started.load() == 1; }));
  EXPECT_EQ(lease()["spec"]["holderIdentity"], "b");
}

TEST_F(ElectionTest, LosingTheLeaseStopsTheWork) {
  startSim();
  connect(clock);
  auto a = candidate("a");
  a->run();
  ASSERT_TRUE(waitFor([&] { return a->started.load() == 1 && clock.waiterCount() == 1; }));
  sim->failNext({"update", "leases", 1000, 503, 0, 0});
  sim->failNext({"get", "leases", 1000, 503, 0, 0});
  for (int i = 0; i < 20 && a->stopped.load() == 0; ++i) {
    clock.advance(seconds(1));
    ASSERT_TRUE(waitFor([&] {
      return (clock.dueWaiters() == 0 && clock.waiterCount() == 1) || a->stopped.load() == 1;
    }));
  }
  ASSERT_TRUE(waitFor([&] { return a->stopped.load() == 1; }));
  EXPECT_FALSE(a->elector->isLeader());
}

}  // namespace
}  // namespace exitrec
