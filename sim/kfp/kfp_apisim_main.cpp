// kfp-apisim: the KFP API simulator as a process (sandbox, e2e tests, bench).
//
//   kfp-apisim [--addr 127.0.0.1] [--port 0] [--token T | --token-file F] [--ready-file PATH]
//              [--kfp-version 2.0-2.3|2.4-2.16|2.17|master] [--gateway-errors auto|v1|v2]
//              [--kube-api-url URL [--kube-token T | --kube-token-file F]]
//              [--workflow-gc-grace-period-seconds N] [--persistence-agent]
//
// --persistence-agent also runs KFP's persistence agent (sim/kfp/
// persistence_agent_sim.h) against --kube-api-url, reporting in-process.
//
// --kube-api-url is the Kubernetes API KFP's workflow client uses (deletes and
// labels Workflow CRs, as the real server does); without it no CR is touched.
//
// When listening it writes PATH atomically with {"port":N,"url":"..."}; SIGTERM
// or SIGINT stop it cleanly.

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "sim/kfp/kfp_api_simulator.h"
#include "sim/kfp/persistence_agent_sim.h"

namespace {

volatile std::sig_atomic_t gStop = 0;
void onSignal(int) {
  gStop = 1;
}

int usage(const std::string& problem) {
  if (!problem.empty())
    std::cerr << "kfp-apisim: " << problem << "\n";
  std::cerr << "usage: kfp-apisim [--addr ADDR] [--port N] [--token T | --token-file FILE] "
               "[--ready-file PATH] [--kfp-version "
            << exitrec::kfpVersionChoices()
            << "] [--gateway-errors auto|v1|v2] [--kube-api-url URL] [--kube-token T | "
               "--kube-token-file FILE] [--workflow-gc-grace-period-seconds N] "
               "[--persistence-agent]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  exitrec::KfpApiSimulator::Options opts;
  std::string readyFile;
  bool agent = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= argc)
        return false;
      out = argv[++i];
      return true;
    };
    std::string v;
    if (arg == "-h" || arg == "--help") {
      usage("");
      return 0;
    } else if (arg == "--addr") {
      if (!value(opts.address))
        return usage("--addr needs a value");
    } else if (arg == "--port") {
      if (!value(v))
        return usage("--port needs a value");
      try {
        opts.port = std::stoi(v);
      } catch (const std::exception&) {
        return usage("--port: not a number: " + v);
      }
      if (opts.port < 0 || opts.port > 65535)
        return usage("--port: out of range: " + v);
    } else if (arg == "--token") {
      if (!value(opts.token))
        return usage("--token needs a value");
    } else if (arg == "--token-file") {
      if (!value(v))
        return usage("--token-file needs a value");
      std::ifstream in(v);
      if (!in)
        return usage("--token-file: cannot read " + v);
      std::getline(in, opts.token);
    } else if (arg == "--kfp-version") {
      if (!value(v))
        return usage("--kfp-version needs a value");
      auto parsed = exitrec::parseKfpVersion(v);
      if (!parsed) {
        return usage("--kfp-version: unknown version \"" + v + "\" (want " +
                     std::string(exitrec::kfpVersionChoices()) + ")");
      }
      opts.version = *parsed;
    } else if (arg == "--gateway-errors") {
      if (!value(v))
        return usage("--gateway-errors needs a value");
      auto parsed = exitrec::parseGatewayErrors(v);
      if (!parsed)
        return usage("--gateway-errors: want auto, v1 or v2, got \"" + v + "\"");
      opts.gatewayErrors = *parsed;
    } else if (arg == "--kube-api-url") {
      if (!value(opts.kubeApiUrl))
        return usage("--kube-api-url needs a value");
    } else if (arg == "--kube-token") {
      if (!value(opts.kubeToken))
        return usage("--kube-token needs a value");
    } else if (arg == "--kube-token-file") {
      if (!value(v))
        return usage("--kube-token-file needs a value");
      std::ifstream in(v);
      if (!in)
        return usage("--kube-token-file: cannot read " + v);
      std::getline(in, opts.kubeToken);
    } else if (arg == "--workflow-gc-grace-period-seconds") {
      if (!value(v))
        return usage("--workflow-gc-grace-period-seconds needs a value");
      try {
        opts.workflowGcGracePeriod = std::chrono::seconds(std::stoll(v));
      } catch (const std::exception&) {
        return usage("--workflow-gc-grace-period-seconds: not a number: " + v);
      }
    } else if (arg == "--persistence-agent") {
      agent = true;
    } else if (arg == "--ready-file") {
      if (!value(readyFile))
        return usage("--ready-file needs a value");
    } else {
      return usage("unknown argument: " + arg);
    }
  }

  if (agent && opts.kubeApiUrl.empty())
    return usage("--persistence-agent needs --kube-api-url");

  exitrec::KfpApiSimulator sim(opts);
  exitrec::Status s = sim.start();
  if (!s) {
    std::cerr << "kfp-apisim: " << s.error().describe() << "\n";
    return 1;
  }
  std::unique_ptr<exitrec::PersistenceAgentSim> persistenceAgent;
  if (agent) {
    exitrec::PersistenceAgentSim::Options ao;
    ao.kubeApiUrl = opts.kubeApiUrl;
    ao.kubeToken = opts.kubeToken;
    persistenceAgent = std::make_unique<exitrec::PersistenceAgentSim>(
        ao, [&sim](const std::string& wf) { return sim.reportFromAgent(wf); });
    if (exitrec::Status a = persistenceAgent->start(); !a) {
      std::cerr << "kfp-apisim: persistence agent: " << a.error().describe() << "\n";
      sim.stop();
      return 1;
    }
  }
  std::signal(SIGTERM, onSignal);
  std::signal(SIGINT, onSignal);
  nlohmann::json ready = {{"port", sim.port()}, {"url", sim.baseUrl()}};
  if (!readyFile.empty()) {
    const std::string tmp = readyFile + ".tmp";
    {
      std::ofstream out(tmp);
      out << ready.dump() << "\n";
    }
    std::rename(tmp.c_str(), readyFile.c_str());
  }
  std::cerr << "kfp-apisim: listening on " << sim.baseUrl() << " as KFP "
            << exitrec::kfpVersionName(opts.version) << "\n";
  while (gStop == 0) {
    struct timespec ts {
      0, 50'000'000
    };
    nanosleep(&ts, nullptr);
  }
  if (persistenceAgent)
    persistenceAgent->stop();
  sim.stop();
  return 0;
}
