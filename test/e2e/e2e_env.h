#pragma once
// End-to-end environment: the Kubernetes API simulator and the KFP API
// simulator (in the KFP version kfpVersion() returns, with KFP's workflow
// client wired to the Kubernetes simulator) in-process, optionally KFP's
// persistence-agent emulation, the controller (`exit-reconciler run`) as a
// child process, and a KubeClient for the test's own reads and writes.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "k8sclient/cpprest_transport.h"
#include "k8sclient/kube_client.h"
#include "sim/kfp/kfp_api_simulator.h"
#include "sim/kfp/kfp_run_factory.h"
#include "sim/kfp/persistence_agent_sim.h"
#include "sim/kube_api_simulator.h"
#include "test/metrics/exposition.h"

namespace exitrec::e2e {

using nlohmann::json;
using namespace std::chrono_literals;

inline bool waitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred())
      return true;
    std::this_thread::sleep_for(50ms);
  }
  return pred();
}

// One `exit-reconciler run` child process; stderr goes to a log file.
class ControllerProcess {
 public:
  ControllerProcess(std::vector<std::string> args, std::string logPath)
      : logPath_(std::move(logPath)) {
    const std::string binary = std::string(EXITREC_BINARY_DIR) + "/controller/exit-reconciler";
    std::vector<std::string> argv = {binary, "run"};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = fork();
    if (pid_ == 0) {
      FILE* log = std::fopen(logPath_.c_str(), "w");
      if (log != nullptr) {
        dup2(fileno(log), STDERR_FILENO);
        dup2(fileno(log), STDOUT_FILENO);
      }
      std::vector<char*> cargv;
      for (auto& a : argv)
        cargv.push_back(a.data());
      cargv.push_back(nullptr);
      execv(binary.c_str(), cargv.data());
      _exit(127);
    }
  }
  ~ControllerProcess() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  void signal(int sig) { kill(pid_, sig); }
  // Exit code, or -1 on timeout / -signal when killed by a signal.
  int wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
      }
      std::this_thread::sleep_for(20ms);
    }
    return -1000;
  }
  std::string log() const {
    std::ifstream in(logPath_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::size_t count(const std::string& needle) const {
    const std::string text = log();
    std::size_t n = 0;
    for (std::size_t pos = text.find(needle); pos != std::string::npos;
         pos = text.find(needle, pos + 1)) {
      ++n;
    }
    return n;
  }
  pid_t pid() const { return pid_; }

 private:
  std::string logPath_;
  pid_t pid_ = -1;
  bool exited_ = false;
};

class E2eEnv : public ::testing::Test {
 protected:
  virtual KfpVersion kfpVersion() const { return KfpVersion::k2_4To2_16; }

  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("exitrec-e2e-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    KubeApiSimulator::Options ko;
    ko.stateDir = (dir_ / "kube").string();
    ko.bookmarkInterval = 500ms;
    kube_ = std::make_unique<KubeApiSimulator>(ko);
    ASSERT_TRUE(kube_->start().ok());
    ASSERT_TRUE(
        kube_
            ->seed(json{
                {"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "kubeflow"}}}})
            .ok());
    KfpApiSimulator::Options kfpOptions{"127.0.0.1", 0, "kfp-token"};
    kfpOptions.version = kfpVersion();
    kfpOptions.kubeApiUrl = kube_->baseUrl();
    kfp_ = std::make_unique<KfpApiSimulator>(kfpOptions);
    ASSERT_TRUE(kfp_->start().ok());
    tokenFile_ = (dir_ / "kfp-token").string();
    std::ofstream(tokenFile_) << "kfp-token\n";
    auto t = makeCpprestTransport(TlsOptions{});
    ASSERT_TRUE(t.ok());
    client_ = std::make_unique<KubeClient>(std::shared_ptr<HttpTransport>(std::move(t).value()),
                                           kube_->baseUrl(), TokenSource());
  }
  void TearDown() override {
    procs_.clear();
    if (agent_)
      agent_->stop();
    if (kfp_)
      kfp_->stop();
    if (kube_)
      kube_->stop();
    if (!HasFailure())
      std::filesystem::remove_all(dir_);
  }

  std::vector<std::string> baseArgs(const std::string& kfpPath = "") const {
    return {"--kubeconfig",      kube_->kubeconfigPath(),
            "--kfp-api-url",     kfp_->baseUrl() + kfpPath,
            "--kfp-token-file",  tokenFile_,
            "--health-addr",     "127.0.0.1:0",
            "--metrics-addr",    "127.0.0.1:0",
            "--max-retry-delay", "500ms",
            "--workers",         "2",
            "--log-level",       "debug"};
  }

  ControllerProcess& startController(std::vector<std::string> extra = {},
                                     const std::string& tag = "ctl",
                                     const std::string& kfpPath = "") {
    std::vector<std::string> args = baseArgs(kfpPath);
    args.insert(args.end(), extra.begin(), extra.end());
    const std::string log = (dir_ / (tag + "-" + std::to_string(procs_.size()) + ".log")).string();
    procs_.push_back(std::make_unique<ControllerProcess>(args, log));
    return *procs_.back();
  }

  // A KFP run is created as KFP's CreateRun does (the Workflow CR, then the
  // run row); a plain Argo Workflow is just seeded.
  void create(const KfpRunSpec& spec) {
    json wf = json::parse(makeKfpRunJson(spec));
    if (spec.shape == RunShape::kArgo) {
      ASSERT_TRUE(kube_->seed(wf).ok()) << spec.name;
      return;
    }
    KfpApiSimulator::CreateRunRequest req;
    req.runId = wf["metadata"]["labels"]["pipeline/runid"];
    req.workflow = wf;
    auto r = kfp_->createRun(req);
    ASSERT_TRUE(r.ok()) << spec.name << ": " << r.error().describe();
  }
  // A Workflow whose run KFP does not know.
  void seedUnknown(const KfpRunSpec& spec) {
    ASSERT_TRUE(kube_->seed(json::parse(makeKfpRunJson(spec))).ok()) << spec.name;
  }

  // KFP's persistence agent, resyncing every 2 s (KFP: 30 s) so races come quickly.
  void startAgent() {
    PersistenceAgentSim::Options o;
    o.kubeApiUrl = kube_->baseUrl();
    o.resyncPeriod = std::chrono::seconds(2);
    agent_ = std::make_unique<PersistenceAgentSim>(
        o, [this](const std::string& wf) { return kfp_->reportFromAgent(wf); });
    ASSERT_TRUE(agent_->start().ok());
  }
  // Waits until the agent has looked at every Workflow `rounds` more times.
  bool agentRounds(int rounds, std::size_t workflows) {
    const std::size_t from = agent_->stats().saves;
    return waitFor(
        [&] {
          return agent_->stats().saves >= from + static_cast<std::size_t>(rounds) * workflows;
        },
        30s);
  }

  // Workflow deletions the Kubernetes simulator received (only KFP deletes them).
  int workflowDeletes() {
    int n = 0;
    for (const auto& m : kube_->mutationLog())
      n += m.verb == "delete" && m.path.find("/workflows/") != std::string::npos;
    return n;
  }
  bool labelled(const std::string& name) {
    json wf = get(name);
    return wf.is_object() && wf["metadata"]["labels"].contains("pipeline/persistedFinalState");
  }
  std::string kfpState(const std::string& runId) {
    auto r = kfp_->run(runId);
    return r ? r->state : "<no run>";
  }

  json get(const std::string& name) {
    auto r = client_->get(resources::kWorkflows, "kubeflow", name);
    if (!r)
      return json();
    return *r;
  }

  std::string annotation(const std::string& name, const std::string& key) {
    json wf = get(name);
    if (!wf.is_object())
      return "";
    const json& a = wf["metadata"]["annotations"];
    auto it = a.find(key);
    return it == a.end() ? "" : it->get<std::string>();
  }

  // Accepted KFP reports for a workflow.
  int reportsFor(const std::string& name) {
    int n = 0;
    for (const auto& r : kfp_->reports())
      n += (r.status == 200 && r.name == name);
    return n;
  }

  // Patches the controller sent for a workflow (from the simulator's log).
  int patchesFor(const std::string& name) {
    int n = 0;
    for (const auto& m : kube_->mutationLog()) {
      n += m.verb == "patch" && m.path.size() > name.size() &&
           m.path.compare(m.path.size() - name.size() - 1, name.size() + 1, "/" + name) == 0;
    }
    return n;
  }

  // Events about a workflow with a reason: {number of Event objects, summed count}.
  std::pair<int, int> events(const std::string& name, const std::string& reason) {
    int objects = 0, total = 0;
    auto r =
        client_->list(resources::kEvents, "kubeflow", ListOptions{}, [&](std::string_view raw) {
          json e = json::parse(raw);
          if (e["involvedObject"].value("name", "") == name && e.value("reason", "") == reason) {
            ++objects;
            total += e.value("count", 1);
          }
          return Status::okStatus();
        });
    EXPECT_TRUE(r.ok());
    return {objects, total};
  }

  // A port that was free a moment ago (for a child process's listener).
  static int freePort() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    int port = 0;
    if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
    if (fd >= 0)
      ::close(fd);
    return port;
  }

  // The value of an unlabelled metric on http://127.0.0.1:<port>/metrics, or
  // -1 when it cannot be read.
  static double scrape(int port, const std::string& metric) {
    const testing::HttpResponse r = testing::httpGet(port, "/metrics");
    if (r.status != 200)
      return -1;
    return testing::parseExposition(r.body).value(metric).value_or(-1);
  }

  bool corrected(const std::string& name) {
    return !annotation(name, "exit-reconciler.io/event-emitted-at").empty();
  }

  static KfpRunSpec masked(std::string name) {
    KfpRunSpec s;
    s.shape = RunShape::kV2Sibling;
    s.name = std::move(name);
    s.bodyFails = true;
    return s;
  }

  std::filesystem::path dir_;
  std::string tokenFile_;
  std::unique_ptr<KubeApiSimulator> kube_;
  std::unique_ptr<KfpApiSimulator> kfp_;
  std::unique_ptr<KubeClient> client_;
  std::unique_ptr<PersistenceAgentSim> agent_;
  std::vector<std::unique_ptr<ControllerProcess>> procs_;
};

}  // namespace exitrec::e2e
