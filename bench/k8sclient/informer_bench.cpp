// Informer benchmark (issue 3). One run:
//  - a child process writes N synthetic KFP Workflows (sim/kfp/kfp_run_factory)
//    as List seed files, so this process's heap never holds them;
//  - kube-apisim runs as a separate process seeded from those files, so the
//    RSS measured here is the client's only;
//  - R times: an Informer (exitrec_k8s Reflector + store) with a compact
//    projection lists and syncs; start -> hasSynced, peak RSS (VmHWM, reset
//    via /proc/self/clear_refs) and steady RSS one second after sync (after
//    malloc_trim); memory per watched workflow = (RSS after - RSS before) / N;
//  - R times: the same list with a callback that only parses each item with
//    simdjson (DOM), summing the parse time: parse alone vs list-and-sync.
// Medians over the R repeats are printed.
//
//   informer_bench --apisim build/sim/kube-apisim [--runs 5000] [--nodes 200]
//                  [--repeats 3] [--projection compact|controller] [--page 500]

#include <malloc.h>
#include <signal.h>
#include <simdjson.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "controller/workflow_record.h"
#include "k8sclient/cpprest_transport.h"
#include "k8sclient/informer.h"
#include "k8sclient/kube_client.h"
#include "sim/kfp/kfp_run_factory.h"

using namespace exitrec;
using namespace std::chrono_literals;
using Clk = std::chrono::steady_clock;

namespace {

double since(Clk::time_point t) {
  return std::chrono::duration<double>(Clk::now() - t).count();
}

// kB from /proc/self/status.
long procKb(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0)
      return std::stol(line.substr(key.size()));
  }
  return -1;
}

// Resets VmHWM to the current RSS (Linux >= 4.0).
void resetPeak() {
  std::ofstream("/proc/self/clear_refs") << "5";
}

long trimmedRssKb() {
  malloc_trim(0);
  return procKb("VmRSS:");
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// The compact projection: what a controller needs to decide whether to look
// again (the store adds the key and uid).
struct WfView {
  std::string resourceVersion;
  std::string phase;
  std::string runId;
  bool completed = false;
};

Result<WfView> projectCompact(const ObjectMeta& meta, std::string_view raw) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto err = parser.parse(raw.data(), raw.size()).get(doc); err)
    return makeError(ErrorCode::kInvalidInput, simdjson::error_message(err));
  WfView v;
  v.resourceVersion = meta.resourceVersion;
  std::string_view s;
  if (!doc.at_pointer("/status/phase").get_string().get(s))
    v.phase = s;
  simdjson::dom::object labels;
  if (!doc.at_pointer("/metadata/labels").get_object().get(labels)) {
    if (!labels["pipeline/runid"].get_string().get(s))
      v.runId = s;
    if (!labels["workflows.argoproj.io/completed"].get_string().get(s))
      v.completed = s == "true";
  }
  return v;
}

struct SyncFigures {
  double syncS = 0;
  long rssBeforeKb = 0, peakKb = 0, rssAfterKb = 0;
  std::size_t items = 0;
};

template <typename T>
SyncFigures syncOnce(KubeClient& client, int page, int runs,
                     typename Informer<T>::Transform transform) {
  SyncFigures f;
  f.rssBeforeKb = trimmedRssKb();
  resetPeak();
  ReflectorOptions ro;
  ro.resource = resources::kWorkflows;
  ro.pageSize = page;
  {
    Informer<T> inf(client, SystemClock::instance(), ro, std::move(transform), {});
    const auto t0 = Clk::now();
    inf.start();
    while (!inf.hasSynced()) {
      if (since(t0) > 600) {
        std::cerr << "no sync within 600 s\n";
        std::exit(1);
      }
      std::this_thread::sleep_for(2ms);
    }
    f.syncS = since(t0);
    std::this_thread::sleep_for(1s);  // watch open, bookmarks flowing: steady state
    f.peakKb = procKb("VmHWM:");
    f.rssAfterKb = trimmedRssKb();
    f.items = inf.size();
    inf.stop();
  }
  if (static_cast<int>(f.items) != runs) {
    std::cerr << "store has " << f.items << " objects, expected " << runs << "\n";
    std::exit(1);
  }
  return f;
}

// Child process: writes the seed files and exits, leaving our heap untouched.
std::vector<std::string> writeSeeds(const std::string& dir, int runs, int nodes, int chunk,
                                    double* mb) {
  std::vector<std::string> files;
  for (int c = 0; c * chunk < runs; ++c)
    files.push_back(dir + "/seed-" + std::to_string(c) + ".json");
  int fds[2];
  if (pipe(fds) != 0)
    std::exit(1);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    const int bodyTasks = std::max(1, (nodes - 8) / 3);
    std::size_t bytes = 0;
    for (std::size_t c = 0; c < files.size(); ++c) {
      std::ofstream out(files[c], std::ios::binary);
      out << R"({"apiVersion":"v1","kind":"List","items":[)";
      const int end = std::min(runs, static_cast<int>(c + 1) * chunk);
      for (int i = static_cast<int>(c) * chunk; i < end; ++i) {
        KfpRunSpec s;
        s.name = "bench-" + std::to_string(i);
        s.bodyTasks = bodyTasks;
        s.bodyFails = (i % 100) == 0;
        const std::string text = makeKfpRunJson(s);
        bytes += text.size();
        if (i != static_cast<int>(c) * chunk)
          out << ',';
        out << text;
      }
      out << "]}";
      if (!out)
        _exit(1);
    }
    const double m = static_cast<double>(bytes) / 1e6;
    if (write(fds[1], &m, sizeof m) != sizeof m)
      _exit(1);
    _exit(0);
  }
  close(fds[1]);
  if (read(fds[0], mb, sizeof *mb) != sizeof *mb)
    std::exit(1);
  close(fds[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    std::exit(1);
  return files;
}

}  // namespace

int main(int argc, char** argv) {
  std::string apisim;
  std::string projection = "compact";
  int runs = 5000, nodes = 200, repeats = 3, page = 500, chunk = 500;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--apisim")
      apisim = next();
    else if (a == "--runs")
      runs = std::stoi(next());
    else if (a == "--nodes")
      nodes = std::stoi(next());
    else if (a == "--repeats")
      repeats = std::stoi(next());
    else if (a == "--page")
      page = std::stoi(next());
    else if (a == "--chunk")
      chunk = std::stoi(next());
    else if (a == "--projection")
      projection = next();
    else {
      std::cerr << "usage: informer_bench --apisim PATH [--runs N] [--nodes N] [--repeats N]"
                   " [--page N] [--chunk N] [--projection compact|controller]\n";
      return 2;
    }
  }
  if (apisim.empty() || (projection != "compact" && projection != "controller")) {
    std::cerr << "--apisim PATH is required; --projection is compact or controller\n";
    return 2;
  }

  const std::string dir = "/tmp/exitrec-informer-bench-" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  auto t0 = Clk::now();
  double mb = 0;
  const auto files = writeSeeds(dir, runs, nodes, chunk, &mb);
  std::printf("generated %d workflows (%d nodes each, %.0f MB JSON) in %.1f s\n", runs,
              std::max(1, (nodes - 8) / 3) * 3 + 8, mb, since(t0));

  // --- kube-apisim, a separate process -----------------------------------
  const std::string ready = dir + "/ready.json";
  t0 = Clk::now();
  const pid_t sim = fork();
  if (sim == 0) {
    std::vector<std::string> args = {apisim, "--port",      "0",           "--ready-file",
                                     ready,  "--state-dir", dir + "/state"};
    for (const auto& f : files) {
      args.push_back("--seed");
      args.push_back(f);
    }
    std::vector<char*> av;
    for (auto& s : args)
      av.push_back(s.data());
    av.push_back(nullptr);
    execv(apisim.c_str(), av.data());
    _exit(127);
  }
  std::string url;
  while (url.empty()) {
    int st = 0;
    if (waitpid(sim, &st, WNOHANG) == sim) {
      std::cerr << "kube-apisim exited early\n";
      return 1;
    }
    std::ifstream in(ready);
    if (in) {
      std::stringstream ss;
      ss << in.rdbuf();
      url = nlohmann::json::parse(ss.str()).at("url").get<std::string>();
    } else {
      std::this_thread::sleep_for(100ms);
    }
  }
  for (const auto& f : files)
    std::filesystem::remove(f);
  std::printf("kube-apisim (pid %d) seeded and ready in %.1f s at %s\n", sim, since(t0),
              url.c_str());

  int rc = 0;
  {
    auto transport = makeCpprestTransport(TlsOptions{});
    if (!transport) {
      std::cerr << transport.error().describe() << "\n";
      return 1;
    }
    KubeClient client(std::shared_ptr<HttpTransport>(std::move(transport).value()), url,
                      TokenSource());

    // --- list-and-sync -------------------------------------------------------
    std::vector<double> sync, peak, after, perWf;
    for (int r = 0; r < repeats; ++r) {
      SyncFigures f;
      if (projection == "compact") {
        f = syncOnce<WfView>(client, page, runs, projectCompact);
      } else {
        const CorrectionConfig cfg;
        f = syncOnce<WorkflowRecord>(
            client, page, runs, [cfg](const ObjectMeta&, std::string_view raw) {
              return projectWorkflow(raw, cfg, SystemClock::instance().wallNow());
            });
      }
      const double per = static_cast<double>(f.rssAfterKb - f.rssBeforeKb) * 1024.0 / runs;
      std::printf(
          "sync %d: %.2f s; RSS before %.1f MiB, peak %.1f MiB, steady %.1f MiB; %.0f B/workflow\n",
          r + 1, f.syncS, f.rssBeforeKb / 1024.0, f.peakKb / 1024.0, f.rssAfterKb / 1024.0, per);
      sync.push_back(f.syncS);
      peak.push_back(static_cast<double>(f.peakKb) / 1024.0);
      after.push_back(static_cast<double>(f.rssAfterKb) / 1024.0);
      perWf.push_back(per);
    }

    // --- parse alone: the same bytes, parsed with simdjson only ---------------
    std::vector<double> parse, listParse;
    simdjson::dom::parser parser;
    for (int r = 0; r < repeats; ++r) {
      double parseS = 0;
      std::size_t bytes = 0, n = 0;
      const auto l0 = Clk::now();
      ListOptions lo;
      lo.limit = page;
      auto res = client.list(resources::kWorkflows, "", lo, [&](std::string_view raw) -> Status {
        const auto p0 = Clk::now();
        simdjson::dom::element doc;
        if (parser.parse(raw.data(), raw.size()).get(doc))
          return makeError(ErrorCode::kInvalidInput, "unparsable item");
        parseS += since(p0);
        bytes += raw.size();
        ++n;
        return Status();
      });
      if (!res) {
        std::cerr << "list: " << res.error().describe() << "\n";
        rc = 1;
        break;
      }
      listParse.push_back(since(l0));
      parse.push_back(parseS);
      std::printf("parse %d: %zu items, %.0f MB: simdjson DOM parse %.2f s (list+parse %.2f s)\n",
                  r + 1, n, static_cast<double>(bytes) / 1e6, parseS, since(l0));
    }

    const double ms = median(sync), mp = median(parse);
    std::printf(
        "\nRESULT runs=%d nodes=%d projection=%s page=%d repeats=%d (medians)\n"
        "  list-and-sync        %.2f s\n"
        "  parse alone          %.2f s   (list+parse, no store: %.2f s)\n"
        "  sync / parse         %.2f\n"
        "  peak RSS (VmHWM)     %.1f MiB\n"
        "  steady RSS           %.1f MiB\n"
        "  per workflow         %.0f B  (target <= 4096 B: %s)\n",
        runs, std::max(1, (nodes - 8) / 3) * 3 + 8, projection.c_str(), page, repeats, ms, mp,
        median(listParse), mp > 0 ? ms / mp : 0.0, median(peak), median(after), median(perWf),
        median(perWf) <= 4096 ? "met" : "MISSED");
  }

  kill(sim, SIGTERM);
  int st = 0;
  waitpid(sim, &st, 0);
  std::filesystem::remove_all(dir);
  return rc;
}
