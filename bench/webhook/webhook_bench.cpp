// webhook_bench: admission latency of the exit-task webhook.
//
//   webhook_bench [--nodes 10000] [--in-rps 50] [--in-seconds 10]
//                 [--out-rps 500] [--out-seconds 4] [--connections 16]
//
// In process: the Kubernetes API simulator (plain HTTP on 127.0.0.1) holds a
// KFP >= 2.4 run whose Workflow has --nodes nodes (the exit-handler fixture's
// status from the test RuntimeBuilder, its body widened with finished pod
// nodes); the webhook serves HTTPS with a generated certificate and reads the
// Workflow through the production KubeRunStateProvider (live GET + parse,
// shared between concurrent reviews, recent copies reused; see
// webhook/workflow_reads.h). Side by side, the same webhook over a provider
// without reuse (every review joins the next GET) shows what the cache buys.
//
// An open-loop client sends AdmissionReviews at a fixed rate over
// --connections kept-alive TLS connections (as the API server keeps them;
// handshakes happen before the clock starts) and measures from each
// request's scheduled start, so queueing is not hidden. Out-of-scope pods mix
// a non-KFP pod and a body pod of the same run. One extra row sends
// out-of-scope reviews over a fresh TLS connection each, for reference.
//
// Prints p50/p99/max per scenario (client-observed and inside the handler),
// the request rate achieved, and where an uncached in-scope review spends its
// time (GET through cpprest, parse, evaluate).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench/webhook/bench_support.h"
#include "certs/certificates.h"
#include "common/clock.h"
#include "test/fixtures/runtime_builder.h"
#include "test/webhook/kfp_pods.h"
#include "test/webhook/sim_env.h"
#include "test/webhook/tls_client.h"
#include "webhook/admission_webhook.h"
#include "webhook/exit_task.h"

using namespace exitrec;
using namespace exitrec::testing;
using namespace exitrec::bench;

namespace {

template <typename F>
std::vector<double> timeEach(int n, F&& f) {
  std::vector<double> out;
  for (int i = 0; i < n; ++i) {
    auto a = Clk::now();
    f(i);
    out.push_back(std::chrono::duration<double, std::milli>(Clk::now() - a).count());
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int nodes = 10000;
  int inRps = 50, inSeconds = 10, outRps = 500, outSeconds = 4, connections = 16;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    int v = std::atoi(argv[i + 1]);
    if (a == "--nodes")
      nodes = v;
    else if (a == "--in-rps")
      inRps = v;
    else if (a == "--in-seconds")
      inSeconds = v;
    else if (a == "--out-rps")
      outRps = v;
    else if (a == "--out-seconds")
      outSeconds = v;
    else if (a == "--connections" && v > 0)
      connections = v;
    else {
      std::fprintf(stderr,
                   "usage: webhook_bench [--nodes N] [--in-rps R] [--in-seconds S] "
                   "[--out-rps R] [--out-seconds S] [--connections C]\n");
      return 2;
    }
  }
  // One info line per injection would measure the terminal, not the webhook.
  spdlog::set_level(spdlog::level::warn);
  const std::string shared = std::string(EXITREC_SHARED_DIR) + "/fixtures/kfp/compiled/";
  auto builder = RuntimeBuilder::fromFile(shared + "pipeline_with_exit_handler.yaml");
  if (!builder.ok()) {
    std::fprintf(stderr, "fixture: %s\n", builder.error().message.c_str());
    return 2;
  }
  Scenario sc;
  sc.name = "bench-run";
  sc.pods["fail-op"].phase = "Failed";
  json wf = builder.value().build(sc);
  wf["metadata"]["uid"] = "0b6d2c1e-8f43-4a57-9e21-6c3d5f7a8b90";
  wf["spec"]["podMetadata"]["labels"]["pipeline/runid"] = sc.runId;
  widen(wf, "bench-run.root.exit-handler-1", nodes);
  const std::string wfText = wf.dump();

  const auto dir = std::filesystem::temp_directory_path() /
                   ("exitrec-webhook-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto env = SimEnv::start((dir / "kube").string(), sc.namespace_);
  if (!env || !env->seed(wf).ok())
    return 1;

  auto ca = generateCa("bench-ca", std::chrono::hours(24));
  CertificateRequest cr;
  cr.commonName = "127.0.0.1";
  cr.ipAddresses = {"127.0.0.1"};
  auto serving = generateServingCertificate(ca.value(), cr);
  const std::string caFile = (dir / "ca.crt").string(), certFile = (dir / "tls.crt").string(),
                    keyFile = (dir / "tls.key").string();
  (void)writeFileAtomic(caFile, ca->certPem);
  (void)writeFileAtomic(certFile, serving->certPem);
  (void)writeFileAtomic(keyFile, serving->keyPem);

  // The product's provider (defaults), and one that never reuses a copy.
  auto cached = env->makeProvider(KubeRunStateProvider::Options{});
  KubeRunStateProvider::Options noReuse;
  noReuse.reads.maxAge = std::chrono::milliseconds(0);
  noReuse.reads.backgroundRefresh = false;
  auto uncached = env->makeProvider(noReuse);

  AdmissionWebhookOptions o;
  o.address = "127.0.0.1";
  o.port = 0;
  o.certFile = certFile;
  o.keyFile = keyFile;
  o.workers = 4;
  o.serverThreads = 32;
  AdmissionWebhook webhook(o, *cached, SystemClock::instance(), nullptr);
  AdmissionWebhook webhookUncached(o, *uncached, SystemClock::instance(), nullptr);
  if (!webhook.start().ok() || !webhookUncached.start().ok())
    return 1;

  // Requests.
  json exitPod = buildArgoPod(wf, "bench-run.root.exit-handler-1.onExit.print-op.executor");
  std::vector<std::string> inScope = {admissionReviewFor(exitPod, "in").dump()};
  json bodyPod = buildArgoPod(wf, "bench-run.root.exit-handler-1.fail-op.executor");
  json plain = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", {{"name", "web-7d9f"}, {"namespace", "default"}, {"labels", {{"app", "web"}}}}},
      {"spec", {{"containers", json::array({{{"name", "web"}, {"image", "nginx:1.27"}}})}}}};
  std::vector<std::string> outScope = {admissionReviewFor(plain, "out1").dump(),
                                       admissionReviewFor(bodyPod, "out2").dump()};

  // Inside the handler, without HTTP. Uncached first: where its time goes.
  bool injectedAll = true;
  auto inOnce = [&](AdmissionWebhook& w) {
    AdmissionReply r = w.review(inScope[0]);
    injectedAll = injectedAll && r.result == InjectionResult::kInjected;
  };
  const auto statsBefore = uncached->stats();
  auto handlerInUncached = timeEach(20, [&](int) { inOnce(webhookUncached); });
  const auto statsAfter = uncached->stats();
  auto handlerInCached = timeEach(200, [&](int) { inOnce(webhook); });
  const auto& ob = outScope;
  auto handlerOut = timeEach(4000, [&](int i) { (void)webhook.review(ob[i % 2]); });
  // The same out-of-scope decision through the full nlohmann parse (before).
  auto handlerOutFull = timeEach(4000, [&](int i) {
    auto v = parseAdmissionReview(ob[i % 2]);
    PodIdentity id = podIdentityOf(v.value().object);
    (void)ExitTaskResolver::worthResolving(id);
    (void)admissionResponse(v.value().apiVersion, v.value().uid, nullptr);
  });
  // Per review kind: the fast path alone vs the full parse (sizes differ a lot).
  auto fastPlain = timeEach(4000, [&](int) { (void)fastOutOfScopeResponse(ob[0]); });
  auto fastBody = timeEach(4000, [&](int) { (void)fastOutOfScopeResponse(ob[1]); });
  auto fullPlain = timeEach(4000, [&](int) { (void)parseAdmissionReview(ob[0]); });
  auto fullBody = timeEach(4000, [&](int) { (void)parseAdmissionReview(ob[1]); });
  if (!injectedAll) {
    std::fprintf(stderr, "exit-task pod was not injected\n");
    return 1;
  }
  // Where one uncached review's time goes: GET (cpprest + simulator), parse, evaluate.
  const double gets = static_cast<double>(statsAfter.reads.gets - statsBefore.reads.gets);
  const double getMs =
      std::chrono::duration<double, std::milli>(statsAfter.getTime - statsBefore.getTime).count() /
      std::max(1.0, gets);
  const double parseMs =
      std::chrono::duration<double, std::milli>(statsAfter.parseTime - statsBefore.parseTime)
          .count() /
      std::max(1.0, gets);
  auto parsedWf = parseWorkflowJson(wfText);
  PodIdentity exitId = podIdentityOf(exitPod);
  auto target = identifyExitTask(parsedWf.value(), exitId);
  if (!target) {
    std::fprintf(stderr, "exit task not identified\n");
    return 1;
  }
  auto evalMs = timeEach(20, [&](int) { (void)computeExitTaskState(parsedWf.value(), *target); });

  const double load0 = [] {
    double l = 0;
    if (FILE* f = std::fopen("/proc/loadavg", "r")) {
      if (std::fscanf(f, "%lf", &l) != 1)
        l = 0;
      std::fclose(f);
    }
    return l;
  }();
  Series inKeep = drive(webhook.port(), caFile, inScope, inRps, inSeconds, connections);
  Series inKeepUncached =
      drive(webhookUncached.port(), caFile, inScope, inRps, inSeconds, connections);
  Series outKeep = drive(webhook.port(), caFile, outScope, outRps, outSeconds, connections);
  Series outFresh = drive(webhook.port(), caFile, outScope, outRps, outSeconds, 0);
  const auto cs = cached->stats();
  webhook.stop();
  webhookUncached.stop();
  cached.reset();
  uncached.reset();
  env.reset();
  std::filesystem::remove_all(dir);

  std::printf("workflow: %d nodes, %.1f MB JSON; load average at start %.2f\n", nodes,
              static_cast<double>(wfText.size()) / 1e6, load0);
  std::printf(
      "uncached review: GET %.1f ms (cpprest + simulator), parse %.1f ms, evaluate %.2f ms "
      "(medians/means of %d)\n",
      getMs, parseMs, pct(evalMs, 0.5), static_cast<int>(gets));
  std::printf(
      "cached provider: %llu GETs (%llu background), %llu reviews shared a GET, %llu "
      "served a recent copy\n",
      static_cast<unsigned long long>(cs.reads.gets),
      static_cast<unsigned long long>(cs.reads.refreshes),
      static_cast<unsigned long long>(cs.reads.sharedWaits),
      static_cast<unsigned long long>(cs.reads.recentHits));
  std::printf("%-44s %6s %9s %9s %9s %7s %8s\n", "scenario", "n", "p50 ms", "p99 ms", "max ms",
              "errors", "rps");
  auto row = [](const std::string& name, const std::vector<double>& v, int errors, double rps) {
    std::printf("%-44s %6zu %9.3f %9.3f %9.3f %7d %8.1f\n", name.c_str(), v.size(), pct(v, 0.5),
                pct(v, 0.99), v.empty() ? 0.0 : *std::max_element(v.begin(), v.end()), errors, rps);
  };
  row("in scope, handler only, no reuse", handlerInUncached, 0, 0);
  row("in scope, handler only, product", handlerInCached, 0, 0);
  row("out of scope, handler only, product", handlerOut, 0, 0);
  row("out of scope, nlohmann parse path (before)", handlerOutFull, 0, 0);
  row("  plain pod " + std::to_string(ob[0].size()) + " B: simdjson fast path", fastPlain, 0, 0);
  row("  plain pod: nlohmann parseAdmissionReview", fullPlain, 0, 0);
  row("  KFP body pod " + std::to_string(ob[1].size()) + " B: simdjson fast path", fastBody, 0, 0);
  row("  KFP body pod: nlohmann parseAdmissionReview", fullBody, 0, 0);
  const std::string ir = std::to_string(inRps), orr = std::to_string(outRps);
  row("in scope, HTTPS keep-alive @" + ir + ", product", inKeep.clientMs, inKeep.errors,
      inKeep.achievedRps);
  row("in scope, HTTPS keep-alive @" + ir + ", no reuse", inKeepUncached.clientMs,
      inKeepUncached.errors, inKeepUncached.achievedRps);
  row("out of scope, HTTPS keep-alive @" + orr, outKeep.clientMs, outKeep.errors,
      outKeep.achievedRps);
  row("out of scope, HTTPS new TLS each @" + orr, outFresh.clientMs, outFresh.errors,
      outFresh.achievedRps);
  const bool okIn = pct(inKeep.clientMs, 0.99) < 50.0 && inKeep.errors == 0;
  const bool okOut = pct(outKeep.clientMs, 0.99) < 2.0 && outKeep.errors == 0;
  std::printf("target in-scope p99 < 50 ms (HTTPS keep-alive, client-observed): %s\n",
              okIn ? "met" : "MISSED");
  std::printf("target out-of-scope p99 < 2 ms (HTTPS keep-alive, client-observed): %s\n",
              okOut ? "met" : "MISSED");
  return 0;
}
