// Controller benchmark (issue 4). One run:
//  (a) preload the Kubernetes API simulator with N completed KFP runs of ~200
//      nodes (1% mis-reported), start `exit-reconciler run`, time until every
//      correction is reported to the KFP simulator;
//  (b) time `kubectl get workflows -A -o json > /dev/null` against the same
//      simulator (the floor for moving the bytes);
//  peak RSS of the controller; then a steady phase of U Workflow updates per
//  second for D seconds (running runs updated, runs completing, 1 in 10
//  mis-reported) with p50/p99 completion→KFP-report latency and the
//  controller's CPU.
//
//   controller_bench [--runs 5000] [--nodes 200] [--rate 200] [--seconds 60]

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
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
  int runs = 5000, nodes = 200, rate = 200, seconds = 60;
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
    if (!kube.seed(json::parse(text)).ok())
      return 1;
  }
  std::printf("preloaded %d runs (%d nodes each, %.0f MB JSON, %d mis-reported) in %.1f s\n", runs,
              bodyTasks * 3 + 8, static_cast<double>(bytes) / 1e6, misreported, since(t0));

  // --- (b) kubectl floor ---------------------------------------------------------
  t0 = Clk::now();
  const std::string kubectl =
      "kubectl --kubeconfig " + kube.kubeconfigPath() + " get workflows -A -o json > /dev/null";
  const int krc = std::system(kubectl.c_str());
  const double b = since(t0);
  std::printf("(b) kubectl get workflows -A -o json: %.2f s (rc %d)\n", b, krc);

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
  while (kfp.acceptedReports() < static_cast<std::size_t>(misreported) && since(t0) < 600) {
    std::this_thread::sleep_for(20ms);
  }
  const double a = since(t0);
  std::printf("(a) controller start -> %zu corrections reported: %.2f s;  a/b = %.2f\n",
              kfp.acceptedReports(), a, a / b);
  std::printf("peak RSS after sync: %.1f MB\n",
              static_cast<double>(procField(pid, "VmHWM:")) / 1024);

  // --- Steady phase ------------------------------------------------------------
  auto transport = makeCpprestTransport(TlsOptions{});
  KubeClient client(std::shared_ptr<HttpTransport>(std::move(transport).value()), kube.baseUrl(),
                    TokenSource());
  // A pool of running runs (updated in place) of the same size.
  const int pool = 200;
  std::vector<std::string> running;
  for (int i = 0; i < pool; ++i) {
    KfpRunSpec s;
    s.name = "live-" + std::to_string(i);
    s.bodyTasks = bodyTasks;
    s.completed = false;
    s.bodyFails = true;
    running.push_back(s.name);
    if (!kube.seed(json::parse(makeKfpRunJson(s))).ok())
      return 1;
  }
  std::map<std::string, Clk::time_point> completedAt;  // mis-reported completions
  const double cpu0 = cpuSeconds(pid);
  const auto steady0 = Clk::now();
  int updates = 0, next = 0, completions = 0;
  const auto interval = std::chrono::nanoseconds(1'000'000'000LL / std::max(1, rate));
  auto due = Clk::now();
  while (since(steady0) < seconds) {
    due += interval;
    const std::string name = running[static_cast<std::size_t>(next++ % pool)];
    auto live = client.get(resources::kWorkflows, "kubeflow", name);
    if (!live)
      continue;
    json wf = *live;
    // Every 20th update completes a run (10/s at 200/s); half of them mis-reported.
    const bool complete = (updates % 20) == 0;
    if (complete) {
      KfpRunSpec s;
      s.name = name;
      s.bodyTasks = bodyTasks;
      s.bodyFails = (completions++ % 2) == 0;
      json done = json::parse(makeKfpRunJson(s));
      done["metadata"]["resourceVersion"] = wf["metadata"]["resourceVersion"];
      wf = done;
    } else {
      wf["status"]["progress"] = std::to_string(updates % 97) + "/100";
    }
    const bool masked = complete && wf["status"]["phase"] == "Succeeded" &&
                        wf["metadata"]["labels"].value("pipeline/runid", "") != "" &&
                        (completions % 2) == 1;  // bodyFails was set for this completion
    auto r = client.update(resources::kWorkflows, "kubeflow", name, wf);
    if (r && masked)
      completedAt[name] = Clk::now();
    if (r && complete) {
      KfpRunSpec s;
      s.name = name + "-" + std::to_string(updates);
      s.bodyTasks = bodyTasks;
      s.completed = false;
      running[static_cast<std::size_t>((next - 1) % pool)] = s.name;
      (void)kube.seed(json::parse(makeKfpRunJson(s)));
    }
    ++updates;
    std::this_thread::sleep_until(due);
  }
  const double steadySeconds = since(steady0);
  std::this_thread::sleep_for(3s);
  const double cpu = (cpuSeconds(pid) - cpu0) / steadySeconds;
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
  std::printf("steady: %d updates in %.1f s (%.0f/s), %zu mis-reported completions, %zu reported\n",
              updates, steadySeconds, updates / steadySeconds, completedAt.size(),
              latencies.size());
  std::printf("completion -> KFP report latency: p50 %.3f s, p99 %.3f s\n",
              percentile(latencies, 0.5), percentile(latencies, 0.99));
  std::printf("controller CPU during steady phase: %.1f%% of one core\n", cpu * 100);
  std::printf("peak RSS overall: %.1f MB\n", static_cast<double>(procField(pid, "VmHWM:")) / 1024);
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  kfp.stop();
  kube.stop();
  return 0;
}
