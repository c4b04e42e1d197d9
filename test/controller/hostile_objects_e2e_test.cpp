// End to end (issue 16): `exit-reconciler run` against the Kubernetes API
// simulator with hostile Workflows of every kind mixed with good mis-reported
// runs. The good runs are all corrected, the process keeps running, the
// hostile ones are skipped (never patched) and counted in
// exit_reconciler_objects_rejected_total, once per resourceVersion even
// across a relist. (Invalid UTF-8 cannot pass through the simulator, whose
// JSON library refuses it like the API server's encoder; the in-process
// ControllerIsolation test feeds it through a fake transport.)

#include <zlib.h>

#include "common/base64.h"
#include "test/e2e/e2e_env.h"

namespace exitrec::e2e {
namespace {

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

class HostileObjects : public E2eEnv {
 protected:
  json masked(const std::string& name) { return json::parse(makeKfpRunJson(E2eEnv::masked(name))); }
  json healthy(const std::string& name) {
    KfpRunSpec s;
    s.name = name;
    return json::parse(makeKfpRunJson(s));
  }
  void seed(const json& wf) { ASSERT_TRUE(kube_->seed(wf).ok()) << wf["metadata"]["name"]; }
  // A good run as KFP knows it: created through KFP's CreateRun (the CR,
  // then the run row); the controller never reports a run KFP does not have.
  void seedKnownToKfp(const json& wf) {
    KfpApiSimulator::CreateRunRequest req;
    req.runId = wf["metadata"]["labels"]["pipeline/runid"];
    req.workflow = wf;
    auto r = kfp_->createRun(req);
    ASSERT_TRUE(r.ok()) << wf["metadata"]["name"] << ": " << r.error().describe();
  }

  // exit_reconciler_objects_rejected_total{reason}, -1 when unreadable.
  static double rejected(int port, const std::string& reason) {
    const testing::HttpResponse r = testing::httpGet(port, "/metrics");
    if (r.status != 200)
      return -1;
    return testing::parseExposition(r.body)
        .value("exit_reconciler_objects_rejected_total", {{"reason", reason}})
        .value_or(-1);
  }
  static bool alive(const ControllerProcess& p) {
    int status = 0;
    return waitpid(p.pid(), &status, WNOHANG) == 0;
  }
};

TEST_F(HostileObjects, GoodRunsAreCorrectedWhateverElseTheClusterHolds) {
  const std::string longName = "long-" + std::string(245, 'n');
  std::vector<std::string> good = {"good-1", "good-2", "good-3", longName};
  for (const std::string& name : good)
    seedKnownToKfp(masked(name));

  // Mis-reported, with a 200 KiB annotation of someone else's: still ours to fix.
  json huge = masked("huge-annotation");
  huge["metadata"]["annotations"]["tenant.example/blob"] = std::string(200 << 10, 'z');
  seedKnownToKfp(huge);
  good.push_back("huge-annotation");

  // Our own annotations, wrong-typed (issue 16's reproduction: the informer
  // used to fail the whole list on it).
  json wrongType = healthy("wrong-typed-failures");
  wrongType["metadata"]["annotations"]["exit-reconciler.io/true-phase"] = "Failed";
  wrongType["metadata"]["annotations"]["exit-reconciler.io/reported-phase"] = "Succeeded";
  wrongType["metadata"]["annotations"]["exit-reconciler.io/action"] = "observed";
  wrongType["metadata"]["annotations"]["exit-reconciler.io/failures"] = R"([{"displayName": 5}])";
  wrongType["metadata"]["annotations"]["exit-reconciler.io/recorded-at"] = "2026-11-28T10:06:00Z";
  seed(wrongType);

  // 200 KiB of failures in our annotation, and garbage markers.
  json manyFailures = healthy("huge-failures");
  json failures = json::array();
  for (int i = 0; i < 3000; ++i)
    failures.push_back(
        {{"displayName", "t" + std::to_string(i)}, {"message", std::string(60, 'm')}});
  manyFailures["metadata"]["annotations"]["exit-reconciler.io/true-phase"] = "Failed";
  manyFailures["metadata"]["annotations"]["exit-reconciler.io/action"] = "observed";
  manyFailures["metadata"]["annotations"]["exit-reconciler.io/failures"] = failures.dump();
  seed(manyFailures);
  json bogus = healthy("garbage-markers");
  bogus["metadata"]["annotations"]["exit-reconciler.io/true-phase"] = "Bogus";
  bogus["metadata"]["annotations"]["exit-reconciler.io/action"] = "corrected";
  seed(bogus);

  // A compressedNodes bomb: a few KiB that inflate to 4 MiB, past the bound.
  json bomb = masked("bomb");
  json nodes = bomb["status"]["nodes"];
  nodes.begin().value()["unreadField"] = std::string(4 << 20, 'a');
  bomb["status"].erase("nodes");
  bomb["status"]["compressedNodes"] = base64Encode(gzip(nodes.dump()));
  ASSERT_LT(bomb.dump().size(), 64u << 10);
  seed(bomb);

  // Malformed status: nodes is not a map; phase is not a string.
  json badNodes = masked("malformed-nodes");
  badNodes["status"]["nodes"] = json::array({1, 2, 3});
  seed(badNodes);
  json badPhase = masked("malformed-phase");
  badPhase["status"]["phase"] = 5;
  seed(badPhase);

  const int metricsPort = freePort();
  ControllerProcess& ctl =
      startController({"--leader-elect=false", "--max-node-status-bytes", "1Mi", "--metrics-addr",
                       "127.0.0.1:" + std::to_string(metricsPort)});
  ASSERT_TRUE(waitFor(
      [&] {
        for (const std::string& name : good) {
          if (!corrected(name))
            return false;
        }
        return true;
      },
      60s))
      << ctl.log();
  for (const std::string& name : good) {
    EXPECT_EQ(get(name)["status"]["phase"], "Failed") << name;
    EXPECT_EQ(reportsFor(name), 1) << name;  // ours: the run came from createRun
    EXPECT_EQ(kfp_->run("run-" + name)->state, "FAILED") << name;
    EXPECT_EQ(events(name, "RunPhaseCorrected").first, 1) << name;  // even past 253 chars
  }
  EXPECT_TRUE(alive(ctl)) << ctl.log();

  // The unreadable and the oversized are skipped, untouched, and counted.
  ASSERT_TRUE(waitFor([&] { return rejected(metricsPort, "parse") >= 2; }, 10s)) << ctl.log();
  EXPECT_GE(rejected(metricsPort, "too-large"), 1);
  for (const char* name : {"bomb", "malformed-nodes", "malformed-phase"}) {
    EXPECT_EQ(patchesFor(name), 0) << name;
    EXPECT_EQ(reportsFor(name), 0) << name;
  }
  EXPECT_EQ(ctl.count("kubeflow/bomb: skipped (reason too-large"), 1u) << ctl.log();
  const double parseBefore = rejected(metricsPort, "parse");
  const double tooLargeBefore = rejected(metricsPort, "too-large");

  // A relist (the watch expires) sees the same versions again: not logged or
  // counted twice. The run created meanwhile is seen in or after the relist,
  // so its correction marks the relist done.
  kube_->expireNextWatch(ExpireForm::kHttp410);
  kube_->dropAllWatches();
  seedKnownToKfp(masked("after-relist"));
  ASSERT_TRUE(waitFor([&] { return corrected("after-relist"); }, 30s)) << ctl.log();
  EXPECT_EQ(rejected(metricsPort, "parse"), parseBefore);
  EXPECT_EQ(rejected(metricsPort, "too-large"), tooLargeBefore);
  EXPECT_EQ(ctl.count("kubeflow/bomb: skipped (reason too-large"), 1u) << ctl.log();
  EXPECT_EQ(ctl.count("kubeflow/malformed-nodes: skipped"), 1u) << ctl.log();

  EXPECT_TRUE(alive(ctl));
  ctl.signal(SIGTERM);
  EXPECT_EQ(ctl.wait(15s), 0) << ctl.log();
}

}  // namespace
}  // namespace exitrec::e2e
