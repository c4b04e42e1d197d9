// webhook_flood_bench: admissions while the webhook is flooded (issue 18).
//
//   webhook_flood_bench [--nodes 10000] [--idle-tls 750] [--idle-tcp 750]
//                       [--slowloris 200] [--reps 3]
//
// The webhook and its data are set up as in webhook_bench (a KFP >= 2.4 run
// of --nodes nodes in the Kubernetes API simulator; product provider and
// server options). The existing request mix (in-scope exit-task pods @ 50
// rps for 10 s, out-of-scope pods @ 500 rps for 4 s, 16 kept-alive TLS
// connections, open loop) runs --reps times without a flood, then --reps
// times while a flood holds:
//   - --idle-tls connections that complete the TLS handshake and then send
//     nothing;
//   - --idle-tcp connections that connect and never start TLS;
//   - --slowloris connections that complete the handshake and then send one
//     byte of a never-ending request header every second, over TLS.
// A flood connection the server cuts is reopened at once, so the flood stays
// at full size for the whole measurement (an attacker reconnects). Cuts are
// counted per kind: each kind can only be cut by one server timeout (idle TLS:
// first-byte; idle TCP: handshake; slowloris: request header+body deadline).
//
// Prints p50/p99/max per scenario (medians over the reps), the process's
// thread count (/proc/self/status Threads) before, during and after the
// flood, and the cuts.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "bench/webhook/bench_support.h"
#include "certs/certificates.h"
#include "common/clock.h"
#include "test/sim/raw_socket.h"
#include "test/webhook/kfp_pods.h"
#include "test/webhook/sim_env.h"
#include "webhook/admission_webhook.h"

using namespace exitrec;
using namespace exitrec::testing;
using namespace exitrec::bench;

namespace {

int threadCount() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Threads:", 0) == 0)
      return std::stoi(line.substr(8));
  }
  return -1;
}

double median(std::vector<double> v) {
  return pct(std::move(v), 0.5);
}

// Keeps a flood of idle and slow connections open against one port.
class Flood {
 public:
  enum Kind { kIdleTls, kIdleTcp, kSlowloris, kKinds };
  static constexpr const char* kNames[kKinds] = {"idle after TLS handshake", "TCP, never TLS",
                                                 "slowloris (1 byte/s)"};

  Flood(int port, const int counts[kKinds]) : port_(port) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);  // an attacker does not verify
    for (int k = 0; k < kKinds; ++k) {
      for (int i = 0; i < counts[k]; ++i)
        conns_.push_back(open(static_cast<Kind>(k)));
    }
    thread_ = std::thread([this] { loop(); });
  }
  ~Flood() {
    stop_ = true;
    thread_.join();
    for (auto& c : conns_)
      release(c);
    SSL_CTX_free(ctx_);
  }
  long cuts(Kind k) const { return cuts_[k].load(); }
  int open() const { return static_cast<int>(conns_.size()); }

 private:
  struct Conn {
    int fd;
    Kind kind;
    SSL* ssl;  // slowloris only: writes its header through it
    std::size_t sent;
  };

  static void release(Conn& c) {
    if (c.ssl != nullptr)
      SSL_free(c.ssl);
    if (c.fd >= 0)
      ::close(c.fd);
    c = {-1, c.kind, nullptr, 0};
  }

  Conn open(Kind kind) {
    int fd = connectTo("127.0.0.1", port_);
    SSL* ssl = nullptr;
    if (fd >= 0 && kind != kIdleTcp) {
      ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, fd);
      if (SSL_connect(ssl) != 1)
        ERR_clear_error();
      if (kind == kIdleTls) {
        SSL_free(ssl);  // the socket stays open and silent (no close_notify sent)
        ssl = nullptr;
      }
    }
    return {fd, kind, ssl, 0};
  }

  void loop() {
    auto nextByte = Clk::now();
    char buf[4096];
    while (!stop_) {
      std::vector<pollfd> p(conns_.size());
      for (std::size_t i = 0; i < conns_.size(); ++i)
        p[i] = {conns_[i].fd, POLLIN | POLLRDHUP, 0};
      ::poll(p.data(), p.size(), 100);
      for (std::size_t i = 0; i < conns_.size(); ++i) {
        if (p[i].revents == 0 && conns_[i].fd >= 0)
          continue;
        ssize_t n = conns_[i].fd >= 0 ? ::recv(conns_[i].fd, buf, sizeof(buf), MSG_DONTWAIT) : 0;
        if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)))
          continue;  // e.g. TLS 1.3 session tickets
        if (conns_[i].fd >= 0)
          ++cuts_[conns_[i].kind];
        release(conns_[i]);
        conns_[i] = open(conns_[i].kind);  // the attacker reconnects
      }
      if (Clk::now() >= nextByte) {
        nextByte += std::chrono::seconds(1);
        static const std::string header = "POST /mutate-pods HTTP/1.1\r\nX-Slow: ";
        for (auto& c : conns_) {
          if (c.kind != kSlowloris || c.ssl == nullptr)
            continue;
          char b = c.sent < header.size() ? header[c.sent] : 'a';
          ++c.sent;
          if (SSL_write(c.ssl, &b, 1) != 1)
            ERR_clear_error();  // cut: the poll above notices the close
        }
      }
    }
  }

  int port_;
  SSL_CTX* ctx_;
  std::vector<Conn> conns_;
  std::atomic<long> cuts_[kKinds] = {};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  int nodes = 10000, reps = 3;
  int counts[Flood::kKinds] = {750, 750, 200};
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    int v = std::atoi(argv[i + 1]);
    if (a == "--nodes")
      nodes = v;
    else if (a == "--idle-tls")
      counts[Flood::kIdleTls] = v;
    else if (a == "--idle-tcp")
      counts[Flood::kIdleTcp] = v;
    else if (a == "--slowloris")
      counts[Flood::kSlowloris] = v;
    else if (a == "--reps" && v > 0)
      reps = v;
    else {
      std::fprintf(stderr,
                   "usage: webhook_flood_bench [--nodes N] [--idle-tls N] [--idle-tcp N] "
                   "[--slowloris N] [--reps R]\n");
      return 2;
    }
  }
  // Two descriptors per flood connection (client and server side) in one process.
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
  spdlog::set_level(spdlog::level::warn);
  std::signal(SIGPIPE, SIG_IGN);  // flood writes to connections the server cut

  const std::string shared = std::string(EXITREC_SHARED_DIR) + "/fixtures/kfp/compiled/";
  auto builder = RuntimeBuilder::fromFile(shared + "pipeline_with_exit_handler.yaml");
  if (!builder.ok())
    return 2;
  Scenario sc;
  sc.name = "bench-run";
  sc.pods["fail-op"].phase = "Failed";
  json wf = builder.value().build(sc);
  wf["metadata"]["uid"] = "0b6d2c1e-8f43-4a57-9e21-6c3d5f7a8b90";
  wf["spec"]["podMetadata"]["labels"]["pipeline/runid"] = sc.runId;
  widen(wf, "bench-run.root.exit-handler-1", nodes);
  const auto dir = std::filesystem::temp_directory_path() /
                   ("exitrec-webhook-flood-" + std::to_string(::getpid()));
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
  auto provider = env->makeProvider(KubeRunStateProvider::Options{});
  AdmissionWebhookOptions o;  // product defaults (threads, timeouts)
  o.address = "127.0.0.1";
  o.port = 0;
  o.certFile = certFile;
  o.keyFile = keyFile;
  AdmissionWebhook webhook(o, *provider, SystemClock::instance(), nullptr);
  if (!webhook.start().ok())
    return 1;

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

  struct Agg {
    std::vector<double> p50, p99, max;
    int errors = 0;
    void add(const Series& s) {
      p50.push_back(pct(s.clientMs, 0.5));
      p99.push_back(pct(s.clientMs, 0.99));
      max.push_back(s.clientMs.empty() ? 0
                                       : *std::max_element(s.clientMs.begin(), s.clientMs.end()));
      errors += s.errors;
    }
  };
  Agg inQuiet, outQuiet, inFlood, outFlood;
  for (int r = 0; r < reps; ++r) {
    inQuiet.add(drive(webhook.port(), caFile, inScope, 50, 10, 16));
    outQuiet.add(drive(webhook.port(), caFile, outScope, 500, 4, 16));
  }
  // Sampled when no client thread of drive() is alive, after the quiet runs
  // have started every lazily created pool (cpprest's, the simulator's).
  const int threadsBefore = threadCount();
  int threadsDuring = 0, floodOpen = 0;
  long cuts[Flood::kKinds] = {};
  double floodSeconds = 0;
  {
    auto f0 = Clk::now();
    Flood flood(webhook.port(), counts);
    floodOpen = flood.open();
    threadsDuring = threadCount();
    for (int r = 0; r < reps; ++r) {
      inFlood.add(drive(webhook.port(), caFile, inScope, 50, 10, 16));
      threadsDuring = std::max(threadsDuring, threadCount());
      outFlood.add(drive(webhook.port(), caFile, outScope, 500, 4, 16));
      threadsDuring = std::max(threadsDuring, threadCount());
    }
    for (int k = 0; k < Flood::kKinds; ++k)
      cuts[k] = flood.cuts(static_cast<Flood::Kind>(k));
    floodSeconds = std::chrono::duration<double>(Clk::now() - f0).count();
  }
  // The server notices the closed flood sockets on its I/O thread.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const int threadsAfter = threadCount();
  webhook.stop();
  provider.reset();
  env.reset();
  std::filesystem::remove_all(dir);

  std::printf("workflow: %d nodes; flood: %d idle TLS + %d TCP-only + %d slowloris (%d open)\n",
              nodes, counts[0], counts[1], counts[2], floodOpen);
  std::printf("%-40s %9s %9s %9s %7s\n", "scenario (medians of reps)", "p50 ms", "p99 ms", "max ms",
              "errors");
  auto row = [](const char* name, const Agg& a) {
    std::printf("%-40s %9.3f %9.3f %9.3f %7d\n", name, median(a.p50), median(a.p99), median(a.max),
                a.errors);
  };
  row("in scope @50, no flood", inQuiet);
  row("in scope @50, during flood", inFlood);
  row("out of scope @500, no flood", outQuiet);
  row("out of scope @500, during flood", outFlood);
  std::printf(
      "threads (between runs): before %d, during (max) %d (incl. 1 flood client thread), "
      "after %d\n",
      threadsBefore, threadsDuring, threadsAfter);
  std::printf("flood connections cut by the server in %.0f s (each reopened at once):\n",
              floodSeconds);
  std::printf("  %-28s %6ld  (first-byte timeout, 10 s)\n", Flood::kNames[0], cuts[0]);
  std::printf("  %-28s %6ld  (handshake timeout, 10 s)\n", Flood::kNames[1], cuts[1]);
  std::printf("  %-28s %6ld  (request timeout, 10 s from the first byte)\n", Flood::kNames[2],
              cuts[2]);
  const double deadlineMs = 5000;  // manifests: MutatingWebhookConfiguration timeoutSeconds: 5
  double worst = std::max(median(inFlood.max), median(outFlood.max));
  const bool ok = worst < deadlineMs && inFlood.errors == 0 && outFlood.errors == 0 &&
                  threadsDuring <= threadsBefore + 1;
  std::printf("admissions within the 5 s webhook deadline and threads bounded: %s\n",
              ok ? "met" : "MISSED");
  return ok ? 0 : 1;
}
