// kube-apisim: the Kubernetes API simulator as a standalone server.
// See docs/simulator.md. Exit codes: 0 after SIGTERM/SIGINT, 2 on bad flags,
// 1 when the server cannot start or a seed file is invalid.

#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sim/kube_api_simulator.h"

namespace {

void usage(std::ostream& out) {
  out << "usage: kube-apisim [--addr 127.0.0.1] [--port 0] [--ready-file PATH]\n"
         "                   [--tls] [--state-dir DIR] [--token T] [--kubeconfig-out PATH]\n"
         "                   [--seed FILE]... [--history N] [--threads N]\n"
         "                   [--bookmark-interval-ms N] [--continue-ttl-s N] [--log-requests]\n";
}

bool writeAtomic(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out)
      return false;
    out << content;
    if (!out)
      return false;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  return !ec;
}

}  // namespace

int main(int argc, char** argv) {
  exitrec::KubeApiSimulator::Options opts;
  std::string readyFile;
  std::vector<std::string> seeds;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) {
        std::cerr << "kube-apisim: " << a << " needs a value\n";
        usage(std::cerr);
        std::exit(2);
      }
      return args[++i];
    };
    auto number = [&]() -> long long {
      std::string v = value();
      try {
        std::size_t used = 0;
        long long n = std::stoll(v, &used);
        if (used == v.size() && n >= 0)
          return n;
      } catch (const std::exception&) {
      }
      std::cerr << "kube-apisim: " << a << " wants a non-negative number, got " << v << "\n";
      std::exit(2);
    };
    if (a == "--addr") {
      opts.addr = value();
    } else if (a == "--port") {
      opts.port = static_cast<int>(number());
    } else if (a == "--ready-file") {
      readyFile = value();
    } else if (a == "--tls") {
      opts.tls = true;
    } else if (a == "--state-dir") {
      opts.stateDir = value();
    } else if (a == "--token") {
      opts.token = value();
    } else if (a == "--kubeconfig-out") {
      opts.kubeconfigOut = value();
    } else if (a == "--seed") {
      seeds.push_back(value());
    } else if (a == "--history") {
      opts.historySize = static_cast<std::size_t>(std::max(1LL, number()));
    } else if (a == "--threads") {
      opts.threads = static_cast<int>(std::max(4LL, number()));
    } else if (a == "--bookmark-interval-ms") {
      opts.bookmarkInterval = std::chrono::milliseconds(std::max(10LL, number()));
    } else if (a == "--continue-ttl-s") {
      opts.continueTtl = std::chrono::seconds(number());
    } else if (a == "--log-requests") {
      opts.logRequests = true;
    } else if (a == "-h" || a == "--help") {
      usage(std::cout);
      return 0;
    } else {
      std::cerr << "kube-apisim: unknown flag " << a << "\n";
      usage(std::cerr);
      return 2;
    }
  }

  // Signals are taken synchronously by sigwait below; block them before any
  // server thread exists so every thread inherits the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  exitrec::KubeApiSimulator sim(opts);
  for (const auto& f : seeds) {
    if (exitrec::Status s = sim.seedFile(f); !s) {
      std::cerr << "kube-apisim: " << s.error().describe() << "\n";
      return 1;
    }
  }
  if (exitrec::Status s = sim.start(); !s) {
    std::cerr << "kube-apisim: " << s.error().describe() << "\n";
    return 1;
  }
  nlohmann::json ready = {{"port", sim.port()},
                          {"url", sim.baseUrl()},
                          {"kubeconfig", sim.kubeconfigPath()},
                          {"ca", sim.caCertPath()},
                          {"stateDir", sim.stateDir()}};
  std::cerr << "kube-apisim: serving " << sim.baseUrl() << " (kubeconfig " << sim.kubeconfigPath()
            << ")\n";
  if (!readyFile.empty() && !writeAtomic(readyFile, ready.dump() + "\n")) {
    std::cerr << "kube-apisim: cannot write ready file " << readyFile << "\n";
    sim.stop();
    return 1;
  }
  int sig = 0;
  sigwait(&set, &sig);
  std::cerr << "kube-apisim: signal " << sig << ", stopping\n";
  sim.stop();
  return 0;
}
