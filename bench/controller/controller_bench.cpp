// Controller benchmark (issue 4). One run:
//  (a) preload the Kubernetes API simulator with N completed KFP runs of ~200
//      nodes (1% mis-reported), start `exit-reconciler run`, time until every
//      correction is reported to the KFP simulator;
//  (b) time `kubectl get workflows -A -o json > /dev/null` against the same
//      simulator (the floor for moving the bytes), and (b0) one unpaginated
//      `curl` of the same list (the bytes alone, no decoding);
//  the controller's RSS (sampled every 10 ms, and VmHWM); then a steady phase
//  of U Workflow updates per second for D seconds from several updater
//  threads (running runs patched, 1 in 20 updates completes a run, half of
//  the completions mis-reported) with the achieved rate, p50/p99
//  completion→KFP-report latency and the controller's CPU.
//
//   controller_bench [--runs 5000] [--nodes 200] [--rate 200] [--seconds 60]
//                    [--updaters 4] [--kubectl 1]

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "k8sclient/cpprest_transport.h"
#include "k8sclient/kube_client.h"
#include "sim/kfp/kfp_api_simulator.h"
#include "sim/kfp/kfp_run_factory.h"
#include "sim/kube_api_simulator.h"

using namespace exitrec;
using namespace std::chrono_literals;
using nlohmann::json;
using Clk = std::chrono::steady_clock;

namespace {

double since(Clk::time_point t) {
  return std::chrono::duration<double>(Clk::now() - t).count();
}

long procField(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0)
      return std::stol(line.substr(key.size()));
  }
  return -1;
}

double cpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream ss(text.substr(text.rfind(')') + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && ss >> field; ++i) {
    if (i == 14)
      utime = std::stol(field);
    if (i == 15)
      stime = std::stol(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double percentile(std::vector<double> v, double p) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 5000, nodes = 200, rate = 200, seconds = 60, updaters = 4, runKubectl = 1;
  setvbuf(stdout, nullptr, _IOLBF, 0);
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    int v = std::atoi(argv[i + 1]);
    if (a == "--runs")
      runs = v;
    if (a == "--nodes")
      nodes = v;
    if (a == "--rate")
      rate = v;
    if (a == "--seconds")
      seconds = v;
    if (a == "--updaters")
      updaters = std::max(1, v);
    if (a == "--kubectl")
      runKubectl = v;
  }
  const std::string binary = std::string(EXITREC_BINARY_DIR) + "/controller/exit-reconciler";
  const std::string dir = "/tmp/exitrec-controller-bench-" + std::to_string(getpid());
  KubeApiSimulator::Options ko;
  ko.stateDir = dir;
  ko.historySize = 200000;
  KubeApiSimulator kube(ko);
  if (!kube.start().ok())
    return 1;
  KfpApiSimulator kfp({"127.0.0.1", 0, ""});
  if (!kfp.start().ok())
    return 1;
  (void)kube.seed(
      json{{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "kubeflow"}}}});

  // KFP knows a run only once it created it (the simulator follows KFP's
  // CreateRun; a report never creates a run).
  auto registerRun = [&kfp](const std::string& name) {
    KfpApiSimulator::CreateRunRequest req;
    req.runId = "run-" + name;
    req.ns = "kubeflow";
    req.workflowName = name;
    return kfp.createRun(req).ok();
  };

  // --- Preload ------------------------------------------------------------
  const int bodyTasks = std::max(1, (nodes - 8) / 3);
  std::size_t bytes = 0;
  int misreported = 0;
  auto t0 = Clk::now();
  for (int i = 0; i < runs; ++i) {
    KfpRunSpec s;
    s.name = "bench-" + std::to_string(i);
    s.bodyTasks = bodyTasks;
    s.bodyFails = (i % 100) == 0;  // 1%: masked by the sibling exit task
    misreported += s.bodyFails;
    std::string text = makeKfpRunJson(s);
    bytes += text.size();
    if (!registerRun(s.name) || !kube.seed(json::parse(text)).ok())
      return 1;
  }
  std::printf("preloaded %d runs (%d nodes each, %.0f MB JSON, %d mis-reported) in %.1f s\n", runs,
              bodyTasks * 3 + 8, static_cast<double>(bytes) / 1e6, misreported, since(t0));

  // --- (b) kubectl floor; and the raw bytes alone (one unpaginated GET by curl) -------------
  double b = 0;
  if (runKubectl) {
    t0 = Clk::now();
    const std::string kubectl =
        "kubectl --kubeconfig " + kube.kubeconfigPath() + " get workflows -A -o json > /dev/null";
    const int krc = std::system(kubectl.c_str());
    b = since(t0);
    std::printf("(b) kubectl get workflows -A -o json: %.2f s (rc %d)\n", b, krc);
  }
  t0 = Clk::now();
  const std::string curl =
      "curl -sS -o /dev/null " + kube.baseUrl() + "/apis/argoproj.io/v1alpha1/workflows";
  const int crc = std::system(curl.c_str());
  const double raw = since(t0);
  std::printf("(b0) curl, one unpaginated list of all workflows: %.2f s (rc %d)\n", raw, crc);

  // --- (a) controller start → every correction reported -----------------------------
  t0 = Clk::now();
  pid_t pid = fork();
  if (pid == 0) {
    FILE* log = std::fopen((dir + "/controller.log").c_str(), "w");
    if (log)
      dup2(fileno(log), STDERR_FILENO);
    execl(binary.c_str(), binary.c_str(), "run", "--kubeconfig", kube.kubeconfigPath().c_str(),
          "--kfp-api-url", kfp.baseUrl().c_str(), "--leader-elect=false", "--health-addr",
          "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--workers", "4", nullptr);
    _exit(127);
  }
  // Sample the controller's RSS every 10 ms: where the peak happens.
  long firstRss = -1, rssAtSync = -1;
  double peakAt = 0;
  long peakSeen = 0;
  while (kfp.acceptedReports() < static_cast<std::size_t>(misreported) && since(t0) < 900) {
    // Until its exec the child is a copy of this process, and then for a few
    // ms the launcher: not the controller (exit-reconciler-operator) yet. The
    // comm name is cut to 15 characters and fits both, so read the exe link.
    std::error_code ec;
    const auto exe = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec);
    if (ec || exe.filename() != "exit-reconciler-operator") {
      std::this_thread::sleep_for(1ms);
      continue;
    }
    const long rss = procField(pid, "VmRSS:");
    if (firstRss < 0 && rss > 0)
      firstRss = rss;
    if (rss > peakSeen) {
      peakSeen = rss;
      peakAt = since(t0);
    }
    std::this_thread::sleep_for(10ms);
  }
  const double a = since(t0);
  rssAtSync = procField(pid, "VmRSS:");
  std::printf("(a) controller start -> %zu corrections reported: %.2f s", kfp.acceptedReports(), a);
  if (b > 0)
    std::printf(";  a/b = %.3f", a / b);
  std::printf(";  a/b0 = %.2f\n", a / raw);
  std::printf(
      "controller RSS: first sample %.1f MB, sampled max %.1f MB at %.2f s, "
      "%.1f MB when done; VmHWM %.1f MB\n",
      static_cast<double>(firstRss) / 1024, static_cast<double>(peakSeen) / 1024, peakAt,
      static_cast<double>(rssAtSync) / 1024, static_cast<double>(procField(pid, "VmHWM:")) / 1024);

  // --- Steady phase ------------------------------------------------------------
  // `updaters` threads share the schedule: update slot i is due at
  // steady0 + i/rate and belongs to thread i % updaters; each thread owns its
  // own running runs (no two threads write one object) and its own connection.
  // Running runs get a JSON merge patch of status.progress (the simulator
  // re-serializes the whole ~130 KB object and emits a MODIFIED event, as for
  // Argo's own writes); every 20th update of a thread instead completes the run
  // with a PUT of the full completed object (half of the completions
  // mis-reported) and a new running run takes its place.
  const int pool = 200;
  std::vector<std::vector<std::string>> owned(static_cast<std::size_t>(updaters));
  for (int i = 0; i < pool; ++i) {
    KfpRunSpec s;
    s.name = "live-" + std::to_string(i);
    s.bodyTasks = bodyTasks;
    s.completed = false;
    if (!registerRun(s.name) || !kube.seed(json::parse(makeKfpRunJson(s))).ok())
      return 1;
    owned[static_cast<std::size_t>(i % updaters)].push_back(s.name);
  }
  const std::string wfPath =
      kube.baseUrl() + "/apis/argoproj.io/v1alpha1/namespaces/kubeflow/workflows/";
  std::atomic<int> completionSeq{0};
  std::atomic<long> updatesOk{0}, updateErrors{0};
  std::mutex mu;
  std::map<std::string, Clk::time_point> completedAt;  // mis-reported completions: PUT sent
  std::map<long, int> perSecond;                       // updates answered per second of the window
  const auto interval = std::chrono::nanoseconds(1'000'000'000LL / std::max(1, rate));
  // Every completion's JSON is generated before the window (the generator is
  // slow), per thread in the order the thread will need it.
  struct Completion {
    std::string doneText;  // the completed run, without metadata.resourceVersion
    std::size_t rvAt = 0;  // where `"resourceVersion":"N",` goes (just inside metadata)
    bool masked = false;   // mis-reported: body failed, phase Succeeded
    std::string nextName;  // the running run that takes its place
    std::string nextText;
  };
  const long totalSlots = static_cast<long>(rate) * seconds;
  std::vector<std::map<long, Completion>> plans(static_cast<std::size_t>(updaters));
  for (int self = 0; self < updaters; ++self) {
    std::vector<std::string> names = owned[static_cast<std::size_t>(self)];
    long k = 0;
    for (long i = self; i < totalSlots; i += updaters, ++k) {
      if (k % 20 != 19)
        continue;
      std::string& name = names[static_cast<std::size_t>(k) % names.size()];
      Completion c;
      KfpRunSpec s;
      s.name = name;
      s.bodyTasks = bodyTasks;
      c.masked = (k / 20 + self) % 2 == 0;
      s.bodyFails = c.masked;  // masked by the sibling exit task: reported Succeeded
      c.doneText = makeKfpRunJson(s);
      // Keys are sorted: apiVersion, kind, then the top-level metadata.
      c.rvAt = c.doneText.find("\"metadata\":{") + 12;
      KfpRunSpec n;
      n.name = "live-" + std::to_string(self) + "-" + std::to_string(k);
      n.bodyTasks = bodyTasks;
      n.completed = false;
      c.nextName = n.name;
      c.nextText = makeKfpRunJson(n);
      name = n.name;
      plans[static_cast<std::size_t>(self)].emplace(k, std::move(c));
    }
  }
  const auto steady0 = Clk::now() + 200ms;
  double cpu0 = 0;
  auto updater = [&](int self) {
    auto transport = std::shared_ptr<HttpTransport>(makeCpprestTransport(TlsOptions{}).value());
    std::vector<std::string>& mine = owned[static_cast<std::size_t>(self)];
    std::map<long, Completion>& plan = plans[static_cast<std::size_t>(self)];
    std::map<std::string, std::string> rvOf;
    long k = 0;  // this thread's update count
    for (long i = self; i < totalSlots; i += updaters, ++k) {
      std::this_thread::sleep_until(steady0 + i * interval);
      std::string& name = mine[static_cast<std::size_t>(k) % mine.size()];
      HttpRequest req;
      req.url = wfPath + name;
      auto done = plan.find(k);
      const bool complete = done != plan.end();
      if (!complete) {
        req.method = "PATCH";
        req.headers.set("Content-Type", "application/merge-patch+json");
        req.body = R"({"status":{"progress":")" + std::to_string(k % 97) + "/100\"}}";
      } else {
        if (rvOf.count(name) == 0) {
          HttpRequest get;
          get.url = req.url;
          auto got = transport->send(get);
          if (!got || got->status != 200) {
            ++updateErrors;
            continue;
          }
          rvOf[name] = readObjectMeta(got->body).value().resourceVersion;
        }
        const Completion& c = done->second;
        req.method = "PUT";
        req.headers.set("Content-Type", "application/json");
        req.body.reserve(c.doneText.size() + 64);
        req.body.append(c.doneText, 0, c.rvAt);
        req.body += "\"resourceVersion\":\"" + rvOf[name] + "\",";
        req.body.append(c.doneText, c.rvAt);
      }
      const auto sent = Clk::now();
      auto r = transport->send(req);
      if (!r || r->status != 200) {
        ++updateErrors;
        rvOf.erase(name);
        continue;
      }
      ++updatesOk;
      {
        std::lock_guard<std::mutex> g(mu);
        ++perSecond[std::chrono::duration_cast<std::chrono::seconds>(Clk::now() - steady0).count()];
        if (complete && done->second.masked)
          completedAt[name] = sent;
      }
      if (!complete) {
        rvOf[name] = readObjectMeta(r->body).value().resourceVersion;
        continue;
      }
      rvOf.erase(name);
      completionSeq++;
      if (registerRun(done->second.nextName) && kube.seed(json::parse(done->second.nextText)).ok())
        name = done->second.nextName;
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < updaters; ++t)
    threads.emplace_back(updater, t);
  std::this_thread::sleep_until(steady0);
  cpu0 = cpuSeconds(pid);
  for (auto& t : threads)
    t.join();
  const double steadySeconds = std::chrono::duration<double>(Clk::now() - steady0).count();
  const double cpu = (cpuSeconds(pid) - cpu0) / steadySeconds;
  const long steadyRssPeak = procField(pid, "VmHWM:");
  // Let the last completions be reported before collecting latencies.
  const auto drain = Clk::now();
  while (since(drain) < 10) {
    std::size_t reported = 0;
    {
      std::lock_guard<std::mutex> g(mu);
      for (const auto& rep : kfp.reports())
        reported += rep.status == 200 && rep.phase == "Failed" && completedAt.count(rep.name);
      if (reported >= completedAt.size())
        break;
    }
    std::this_thread::sleep_for(100ms);
  }
  std::vector<double> latencies;
  std::map<std::string, std::chrono::system_clock::time_point> reportedAt;
  for (const auto& rep : kfp.reports()) {
    if (rep.status == 200 && rep.phase == "Failed" && !reportedAt.count(rep.name)) {
      reportedAt[rep.name] = rep.at;
    }
  }
  // Map steady-clock completion times to wall clock.
  const auto wallOffset =
      std::chrono::system_clock::now().time_since_epoch() - Clk::now().time_since_epoch();
  for (const auto& [name, at] : completedAt) {
    auto it = reportedAt.find(name);
    if (it == reportedAt.end())
      continue;
    const std::chrono::system_clock::time_point completedWall(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(at.time_since_epoch() +
                                                                        wallOffset));
    latencies.push_back(std::chrono::duration<double>(it->second - completedWall).count());
  }
  // Whole seconds only (the last one is partial).
  int minSecond = rate * 10, maxSecond = 0;
  for (long sec = 0; sec + 1 < static_cast<long>(steadySeconds); ++sec) {
    minSecond = std::min(minSecond, perSecond[sec]);
    maxSecond = std::max(maxSecond, perSecond[sec]);
  }
  std::printf(
      "steady: %ld updates in %.1f s = %.1f/s achieved (target %d/s; per second min %d max %d; "
      "%ld failed) by %d updater threads\n",
      updatesOk.load(), steadySeconds, static_cast<double>(updatesOk.load()) / steadySeconds, rate,
      minSecond, maxSecond, updateErrors.load(), updaters);
  std::printf("  %d completions, %zu mis-reported, %zu of them reported to KFP\n",
              completionSeq.load(), completedAt.size(), latencies.size());
  std::printf("completion -> KFP report latency: p50 %.3f s, p99 %.3f s, max %.3f s\n",
              percentile(latencies, 0.5), percentile(latencies, 0.99), percentile(latencies, 1.0));
  std::printf("controller CPU during steady phase: %.1f%% of one core\n", cpu * 100);
  std::printf("peak RSS overall: %.1f MB\n", static_cast<double>(steadyRssPeak) / 1024);
  std::fflush(stdout);
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  kfp.stop();
  kube.stop();
  return 0;
}
