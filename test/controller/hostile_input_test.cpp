// Hostile objects (issue 16): one Workflow that cannot be read, evaluated,
// decided or reconciled never stops the list, the watch or the other runs;
// it is skipped, logged once per resourceVersion and counted. Also the bounds
// on untrusted sizes (decoded node status, Event names) and the flag that
// sets the node-status bound.

#include <gtest/gtest.h>
#include <zlib.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "common/base64.h"
#include "common/fake_clock.h"
#include "controller/annotations.h"
#include "controller/controller.h"
#include "controller/run_config.h"
#include "controller/workflow_record.h"
#include "k8sclient/event_recorder.h"
#include "k8sclient/fake_http_transport.h"
#include "sim/kfp/kfp_run_factory.h"
#include "test/controller/fakes.h"
#include "test/k8sclient/test_util.h"

namespace exitrec {
namespace {

using nlohmann::json;
using testing::FakeEvents;
using testing::FakeWorkflowApi;
using testing::LogCapture;
using testing::waitFor;

const Clock::WallTime kNow{std::chrono::seconds(1'800'000'000)};

KfpRunSpec masked(std::string name) {
  KfpRunSpec s;
  s.shape = RunShape::kV2Sibling;
  s.name = std::move(name);
  s.bodyFails = true;
  return s;
}

json run(const std::string& name, const std::string& rv) {
  json wf = json::parse(makeKfpRunJson(masked(name)));
  wf["metadata"]["resourceVersion"] = rv;
  return wf;
}

std::string gzip(const std::string& data) {
  z_stream zs{};
  deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, data.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// A mis-reported run whose status.nodes is replaced by compressedNodes that
// inflate to `inflated` bytes (a few KiB of gzip).
json bomb(const std::string& name, std::size_t inflated) {
  json wf = run(name, "7");
  json nodes = wf["status"]["nodes"];
  nodes.begin().value()["unreadField"] = std::string(inflated, 'a');  // unknown: ignored
  wf["status"].erase("nodes");
  wf["status"]["compressedNodes"] = base64Encode(gzip(nodes.dump()));
  return wf;
}

// Sets the engine's process-wide node-status bound for one test.
class NodeBound {
 public:
  explicit NodeBound(std::size_t bytes) : previous_(maxDecompressedNodeBytes()) {
    setMaxDecompressedNodeBytes(bytes);
  }
  ~NodeBound() { setMaxDecompressedNodeBytes(previous_); }

 private:
  std::size_t previous_;
};

// --- projection ------------------------------------------------------------

TEST(HostileProjection, UnreadableWorkflowsAreRejectedNeverThrown) {
  CorrectionConfig config;
  WorkflowRecord good = projectWorkflow(run("good", "1").dump(), config, kNow);
  EXPECT_TRUE(good.rejected.empty()) << good.rejectDetail;
  EXPECT_TRUE(good.needsWork());

  std::string nonUtf8 = run("bad-utf8", "2").dump();
  nonUtf8.insert(nonUtf8.find("\"status\":{") + 10, "\"message\":\"\xff\xfe\x80\",");
  for (const std::string& text :
       {std::string("{"), std::string("[1,2]"), std::string("\"x\""), nonUtf8,
        json{{"metadata", {{"name", "n"}}}, {"status", {{"nodes", "not a map"}}}}.dump(),
        json{{"metadata", {{"name", "n"}, {"annotations", {{"a", 5}}}}}}.dump()}) {
    WorkflowRecord r = projectWorkflow(text, config, kNow);
    EXPECT_EQ(r.rejected, kRejectParse) << text.substr(0, 80);
    EXPECT_FALSE(r.rejectDetail.empty());
    EXPECT_FALSE(r.needsWork());
  }
}

TEST(HostileProjection, NodeStatusOverTheBoundIsNotEvaluableAndNeverCorrected) {
  NodeBound bound(1 << 20);
  json wf = bomb("bomb", 4u << 20);
  ASSERT_LT(wf.dump().size(), 64u << 10);  // a small object ...
  WorkflowRecord r = projectWorkflow(wf.dump(), CorrectionConfig{}, kNow);
  EXPECT_EQ(r.rejected, kRejectTooLarge);  // ... that inflates past the bound
  EXPECT_FALSE(r.evaluable);
  EXPECT_FALSE(r.needsWork());
  EXPECT_EQ(r.uid, wf["metadata"]["uid"]);  // identity is still read
  EXPECT_NE(r.rejectDetail.find("exceeds the limit of 1048576 bytes"), std::string::npos)
      << r.rejectDetail;

  // Under the bound the same run is read, found mis-reported and corrected.
  NodeBound larger(8u << 20);
  WorkflowRecord fits = projectWorkflow(wf.dump(), CorrectionConfig{}, kNow);
  EXPECT_TRUE(fits.rejected.empty()) << fits.rejectDetail;
  EXPECT_TRUE(fits.misreported);
  EXPECT_TRUE(fits.needsWork());
}

// --- the controller ----------------------------------------------------------

class CountingMetrics : public ControllerMetrics {
 public:
  void objectRejected(std::string_view reason) override {
    std::lock_guard<std::mutex> g(mu_);
    reasons_.emplace_back(reason);
  }
  std::vector<std::string> reasons() const {
    std::lock_guard<std::mutex> g(mu_);
    return reasons_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> reasons_;
};

std::string listBody(const std::vector<std::string>& items, const std::string& rv) {
  std::string body = R"({"apiVersion":"argoproj.io/v1alpha1","kind":"WorkflowList","metadata":)";
  body += R"({"resourceVersion":")" + rv + R"("},"items":[)";
  for (std::size_t i = 0; i < items.size(); ++i)
    body += (i == 0 ? "" : ",") + items[i];
  return body + "]}";
}

std::string watchLine(const std::string& type, const std::string& object) {
  return R"({"type":")" + type + R"(","object":)" + object + "}";
}

class ControllerIsolation : public ::testing::Test {
 protected:
  void SetUp() override {
    transport_ = std::make_shared<FakeHttpTransport>();
    kube_ = std::make_unique<KubeClient>(transport_, "https://api", TokenSource());
  }

  Controller::Options options() {
    Controller::Options o;
    o.workers = 1;
    o.correction.kfpReport = KfpReportMode::kPersistenceAgent;
    // A projection that throws for one object: the barrier must hold whatever
    // the correction code does with today's hostile inputs.
    o.project = [](std::string_view raw, const CorrectionConfig& c, Clock::WallTime now) {
      if (raw.find("projection-throws") != std::string_view::npos)
        throw std::runtime_error("boom");
      return projectWorkflow(raw, c, now);
    };
    return o;
  }

  std::vector<std::string> hostileItems() {
    std::string nonUtf8 = run("bad-utf8", "11").dump();
    nonUtf8.insert(nonUtf8.find("\"status\":{") + 10, "\"message\":\"\xff\xfe\",");
    // Healthy, recorded as observed: its event step reads the failures.
    KfpRunSpec healthy;
    healthy.name = "wrong-type";
    json wrongType = json::parse(makeKfpRunJson(healthy));
    wrongType["metadata"]["resourceVersion"] = "12";
    wrongType["metadata"]["annotations"] = {
        {std::string(ann::kTruePhase), "Failed"},
        {std::string(ann::kReportedPhase), "Succeeded"},
        {std::string(ann::kAction), "observed"},
        {std::string(ann::kFailures), R"([{"displayName": 5}])"},
        {std::string(ann::kRecordedAt), "2026-11-28T10:06:00Z"}};
    json malformed = run("malformed-status", "13");
    malformed["status"]["nodes"] = json::array({1, 2});
    return {nonUtf8, run("projection-throws", "14").dump(), wrongType.dump(), malformed.dump()};
  }

  std::shared_ptr<FakeHttpTransport> transport_;
  std::unique_ptr<KubeClient> kube_;
  FakeClock clock_;
  FakeWorkflowApi api_;
  FakeEvents events_;
  CountingMetrics metrics_;
};

TEST_F(ControllerIsolation, HostileObjectsNeverStopTheListOrTheOthers) {
  std::vector<std::string> items = hostileItems();
  items.insert(items.begin() + 2, run("good-a", "21").dump());
  items.push_back(run("good-b", "22").dump());
  const std::string body = listBody(items, "100");
  transport_->setHandler([&](const HttpRequest&) { return fakeResponse(200, body); });

  LogCapture logs;
  Controller controller(options(), *kube_, api_, nullptr, events_, clock_, &metrics_);
  controller.startInformer();
  ASSERT_TRUE(waitFor([&] { return controller.hasSynced(); }));
  ASSERT_TRUE(waitFor([&] { return transport_->waitingStreams() == 1; }));  // watching

  for (const char* good : {"kubeflow/good-a", "kubeflow/good-b"}) {
    auto rec = controller.record(good);
    ASSERT_NE(rec, nullptr) << good;
    EXPECT_TRUE(rec->rejected.empty()) << good;
    EXPECT_TRUE(rec->needsWork()) << good;
  }
  auto thrown = controller.record("kubeflow/projection-throws");
  ASSERT_NE(thrown, nullptr);
  EXPECT_EQ(thrown->rejected, kRejectProjection);
  EXPECT_EQ(thrown->resourceVersion, "14");
  EXPECT_EQ(controller.record("kubeflow/bad-utf8")->rejected, kRejectParse);
  EXPECT_EQ(controller.record("kubeflow/malformed-status")->rejected, kRejectParse);
  EXPECT_EQ(controller.pending(), 2u);  // only the good runs need work
  const std::size_t rejected = controller.rejectedCount();
  EXPECT_GE(rejected, 3u);  // wrong-type is rejected too while decideNextStep throws on it
  EXPECT_EQ(metrics_.reasons().size(), rejected);
  EXPECT_NE(logs.text().find("kubeflow/projection-throws: skipped (reason projection, "
                             "resourceVersion 14): projection threw: boom"),
            std::string::npos)
      << logs.text();

  // A relist (410 in the watch) sees the same objects: nothing new is logged
  // or counted, once per resourceVersion.
  transport_->pushStream(FakeStream{
      std::nullopt, 200, "", {}, {R"({"type":"ERROR","object":{"kind":"Status","code":410}})"}});
  ASSERT_TRUE(waitFor([&] {
    clock_.advance(std::chrono::seconds(1));  // the reflector's backoff
    return transport_->streamRequests().size() == 2 && transport_->waitingStreams() == 1;
  }));
  EXPECT_EQ(controller.rejectedCount(), rejected);

  // A new version of a hostile object is news: logged and counted again; a
  // fixed version replaces the rejected record.
  json fixed = run("malformed-status", "31");
  std::string again = run("projection-throws", "32").dump();
  transport_->pushStream(
      FakeStream{std::nullopt,
                 200,
                 "",
                 {},
                 {watchLine("MODIFIED", fixed.dump()), watchLine("MODIFIED", again)},
                 StreamEnd::kEof,
                 true});
  ASSERT_TRUE(waitFor(
      [&] { return controller.record("kubeflow/projection-throws")->resourceVersion == "32"; }));
  EXPECT_EQ(controller.rejectedCount(), rejected + 1);
  EXPECT_TRUE(controller.record("kubeflow/malformed-status")->rejected.empty());
  EXPECT_TRUE(controller.record("kubeflow/malformed-status")->needsWork());
  controller.stopInformer();
}

// The worker's barrier: a reconcile that throws skips that run only.
class ThrowingApi : public FakeWorkflowApi {
 public:
  Result<std::string> get(const std::string& ns, const std::string& name) override {
    if (name == "get-throws")
      throw std::runtime_error("api exploded");
    return FakeWorkflowApi::get(ns, name);
  }
};

TEST_F(ControllerIsolation, AReconcileThatThrowsSkipsThatRunOnly) {
  ThrowingApi api;
  std::vector<std::string> items;
  for (const char* name : {"get-throws", "good-a", "good-b"}) {
    json wf = run(name, "5");
    api.put(wf.dump());
    items.push_back(wf.dump());
  }
  const std::string body = listBody(items, "100");
  transport_->setHandler([&](const HttpRequest&) { return fakeResponse(200, body); });

  Controller controller(options(), *kube_, api, nullptr, events_, clock_, &metrics_);
  controller.startInformer();
  ASSERT_TRUE(waitFor([&] { return controller.hasSynced(); }));
  controller.startWorkers();
  // Both good runs are recorded (their phase patched) by the one worker,
  // whichever order it takes the keys in.
  ASSERT_TRUE(waitFor([&] {
    return api.object("kubeflow", "good-a")["status"]["phase"] == "Failed" &&
           api.object("kubeflow", "good-b")["status"]["phase"] == "Failed" &&
           controller.rejectedCount() == 1;
  }));
  EXPECT_EQ(metrics_.reasons(), std::vector<std::string>{"reconcile"});
  EXPECT_EQ(api.object("kubeflow", "get-throws")["status"]["phase"], "Succeeded");
  EXPECT_TRUE(controller.stopWorkers(std::chrono::seconds(5)));
  controller.stopInformer();
}

// --- Events ----------------------------------------------------------------

TEST(HostileEvents, EventNamesOfLongWorkflowNamesFitAndStayApart) {
  const std::string suffix = ".187b5c0e9f3a2b10";
  EXPECT_EQ(eventName("short-run", suffix), "short-run" + suffix);
  const std::string a = std::string(240, 'a') + "-x1";
  const std::string b = std::string(240, 'a') + "-x2";
  const std::string na = eventName(a, suffix);
  const std::string nb = eventName(b, suffix);
  EXPECT_EQ(na.size(), 253u);
  EXPECT_LE(nb.size(), 253u);
  EXPECT_NE(na, nb);
  EXPECT_EQ(na.substr(na.size() - suffix.size()), suffix);
  // A prefix cut at '-' or '.' would make "a.-x": the cut ends on a letter.
  const std::string dots = std::string(225, 'b') + "." + std::string(27, 'c');
  const std::string nd = eventName(dots, suffix);
  EXPECT_LE(nd.size(), 253u);
  const std::size_t hash = nd.rfind('-');
  ASSERT_NE(hash, std::string::npos);
  EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(nd[hash - 1]))) << nd;
}

TEST(HostileEvents, ALongMultibyteMessageIsCutOnACharacterBoundary) {
  auto transport = std::make_shared<FakeHttpTransport>();
  KubeClient kube(transport, "https://api", TokenSource());
  FakeClock clock;
  EventRecorder recorder(kube, clock, "exit-reconciler");
  std::string sent;
  transport->setHandler([&](const HttpRequest& r) {
    sent = r.body;
    return fakeResponse(201, "{}");
  });
  ObjectReference ref{"argoproj.io/v1alpha1", "Workflow", "kubeflow", std::string(250, 'w'), "u"};
  // 1023 ASCII bytes then 'é' (2 bytes): the 1024-byte cut falls inside it.
  const std::string message = std::string(1023, 'm') + "\xc3\xa9 and more";
  ASSERT_TRUE(recorder.record(ref, EventType::kWarning, "RunPhaseCorrected", message).ok());
  json ev = json::parse(sent);
  EXPECT_EQ(ev["message"], std::string(1023, 'm'));
  EXPECT_LE(ev["metadata"]["name"].get<std::string>().size(), 253u);
  EXPECT_EQ(ev["involvedObject"]["name"], std::string(250, 'w'));
}

// --- the flag -------------------------------------------------------------------

Result<RunConfig> parseArgs(std::vector<std::string> args,
                            std::map<std::string, std::string> env = {}) {
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  auto parsed = runFlagParser().parse(std::span<char* const>(argv.data(), argv.size()),
                                      [&](const std::string& n) -> std::optional<std::string> {
                                        auto it = env.find(n);
                                        if (it == env.end())
                                          return std::nullopt;
                                        return it->second;
                                      });
  if (!parsed)
    return parsed.error();
  return parseRunConfig(*parsed);
}

TEST(HostileFlags, MaxNodeStatusBytesDefaultsWellBelowTheMemoryLimitAndValidates) {
  auto c = parseArgs({});
  ASSERT_TRUE(c.ok()) << c.error().describe();
  EXPECT_EQ(c->maxNodeStatusBytes, std::size_t{8} << 20);
  c = parseArgs({"--max-node-status-bytes=32Mi"});
  ASSERT_TRUE(c.ok()) << c.error().describe();
  EXPECT_EQ(c->maxNodeStatusBytes, std::size_t{32} << 20);
  c = parseArgs({}, {{"EXIT_RECONCILER_MAX_NODE_STATUS_BYTES", "1048576"}});
  ASSERT_TRUE(c.ok()) << c.error().describe();
  EXPECT_EQ(c->maxNodeStatusBytes, std::size_t{1} << 20);
  for (const char* bad : {"8MB", "-1", "", "1Ki", "5Gi", "Mi", "99999999999999Mi"}) {
    auto r = parseArgs({std::string("--max-node-status-bytes=") + bad});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("--max-node-status-bytes"), std::string::npos);
  }
}

}  // namespace
}  // namespace exitrec
