#pragma once
// Shared by the webhook benchmarks (webhook_bench.cpp, flood_bench.cpp): the
// widened run, percentiles and the open-loop admission driver.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "test/fixtures/runtime_builder.h"
#include "test/webhook/tls_client.h"

namespace exitrec::bench {

using json = nlohmann::json;
using Clk = std::chrono::steady_clock;
using testing::httpsPost;
using testing::testNodeId;
using testing::TlsConnection;
using testing::TlsReply;

inline double pct(std::vector<double> v, double p) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  std::size_t i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// Adds finished pod nodes under the body DAG until the run has `target` nodes.
inline void widen(json& wf, const std::string& bodyName, int target) {
  json& nodes = wf["status"]["nodes"];
  std::string bodyId;
  for (auto& [id, n] : nodes.items()) {
    if (n["name"] == bodyName)
      bodyId = id;
  }
  const std::string wfName = wf["metadata"]["name"];
  int i = 0;
  while (static_cast<int>(nodes.size()) < target) {
    const std::string name = bodyName + ".work-" + std::to_string(i) + ".executor";
    const std::string id = testNodeId(wfName, name);
    nodes[id] = {{"id", id},
                 {"name", name},
                 {"displayName", "executor"},
                 {"type", "Pod"},
                 {"templateName", "system-container-impl"},
                 {"templateScope", "local/" + wfName},
                 {"phase", "Succeeded"},
                 {"boundaryID", bodyId},
                 {"startedAt", "2026-11-28T12:00:00Z"},
                 {"finishedAt", "2026-11-28T12:01:00Z"},
                 {"progress", "1/1"},
                 {"resourcesDuration", {{"cpu", 1}, {"memory", 12}}},
                 {"outputs", {{"exitCode", "0"}}},
                 {"hostNodeName", "node-" + std::to_string(i % 50)}};
    nodes[bodyId]["children"].push_back(id);
    ++i;
  }
}

struct Series {
  std::vector<double> clientMs;
  int errors = 0;
  double achievedRps = 0;
};

// Open loop over kept-alive connections (one per client thread), or a fresh
// TLS connection per request when `connections` is 0 (16 threads then).
inline Series drive(int port, const std::string& caFile, const std::vector<std::string>& bodies,
                    int rps, int seconds, int connections) {
  const int total = rps * seconds;
  const bool keepAlive = connections > 0;
  const int threadsN = keepAlive ? connections : 16;
  Series s;
  std::mutex mu;
  std::atomic<int> next{0};
  std::vector<std::unique_ptr<TlsConnection>> conns;
  if (keepAlive) {
    for (int c = 0; c < connections; ++c) {
      conns.push_back(std::make_unique<TlsConnection>(port, caFile));
      // Handshake before the clock starts (the API server keeps connections).
      TlsReply warm = conns.back()->post("/mutate-pods", bodies.back());
      if (!warm.ok)
        ++s.errors;
    }
  }
  const auto t0 = Clk::now() + std::chrono::milliseconds(100);
  const auto interval = std::chrono::nanoseconds(1'000'000'000LL / rps);
  Clk::time_point last = t0;
  std::vector<std::thread> threads;
  for (int t = 0; t < threadsN; ++t) {
    threads.emplace_back([&, t] {
      while (true) {
        int i = next.fetch_add(1);
        if (i >= total)
          return;
        auto at = t0 + interval * i;
        std::this_thread::sleep_until(at);
        const std::string& body = bodies[static_cast<std::size_t>(i) % bodies.size()];
        TlsReply r = keepAlive ? conns[static_cast<std::size_t>(t)]->post("/mutate-pods", body)
                               : httpsPost(port, caFile, "/mutate-pods", body);
        auto end = Clk::now();
        double ms = std::chrono::duration<double, std::milli>(end - at).count();
        std::lock_guard<std::mutex> g(mu);
        last = std::max(last, end);
        if (!r.ok || r.status != 200) {
          ++s.errors;
        } else {
          s.clientMs.push_back(ms);
        }
      }
    });
  }
  for (auto& t : threads)
    t.join();
  // Requests completed per second, from the first scheduled start to the last reply.
  double span = std::chrono::duration<double>(last - t0).count();
  s.achievedRps = span > 0 ? static_cast<double>(s.clientMs.size()) / span : 0;
  return s;
}

}  // namespace exitrec::bench
