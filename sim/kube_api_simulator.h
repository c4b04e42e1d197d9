#pragma once
// KubeApiSimulator: an in-memory Kubernetes API server for tests and the local
// sandbox. It speaks the real wire protocol (discovery, list/watch, CRUD,
// merge/JSON/apply patches, Status bodies) for the resources this project
// uses: argoproj.io/v1alpha1 workflows, core v1 pods/events/namespaces and
// coordination.k8s.io/v1 leases. kubectl and python-kubernetes work against it
// unchanged (see docs/simulator.md for what is and is not simulated).
//
// Thread-safety: every public method may be called from any thread while the
// server runs. start()/stop() must not race with each other.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.h"

namespace exitrec {

// How the next watch request is told that its resourceVersion is too old.
enum class ExpireForm {
  kHttp410,     // the watch request itself answers HTTP 410 with a Status body
  kErrorEvent,  // HTTP 200, then one {"type":"ERROR","object":<Status 410>} line, then EOF
};

// Fails the next `count` requests matching verb and resource.
struct SimFailRule {
  std::string verb = "*";      // get, list, watch, create, update, patch, delete, or "*"
  std::string resource = "*";  // plural ("workflows", "pods", "leases", ...) or "*"
  int count = 1;
  int status = 500;           // HTTP status to answer; 0 = only delay, then serve normally
  int retryAfterSeconds = 0;  // > 0 adds a Retry-After header
  int delayMs = 0;            // sleep before answering
};

// One mutating request as received (create/update/patch/delete and apply).
// Recorded when the request arrives (after pause(), before injected
// failures), completed when it is answered, so that a log reader can order
// writes against each other (seq) and against other processes' clocks (at).
struct SimRequestRecord {
  std::string verb;         // create, update, patch, delete, deletecollection
  std::string path;         // URL path without the query
  std::string contentType;  // request Content-Type
  std::string body;
  std::string query;      // raw query string (e.g. "fieldManager=x&dryRun=All")
  std::uint64_t seq = 0;  // arrival order, from 1, over all mutating requests
  std::string userAgent;  // request User-Agent ("" when absent)
  std::string client;     // <name> of a /_client/<name>/ path prefix ("" without one)
  std::chrono::system_clock::time_point at;      // arrival
  std::chrono::system_clock::time_point doneAt;  // answered (== at until then)
  int status = 0;                                // HTTP status answered; 0 while in flight
  bool injected = false;                         // answered by a failNext() rule, never served
};

class KubeApiSimulator {
 public:
  struct Options {
    std::string addr = "127.0.0.1";
    int port = 0;
    bool tls = false;   // generate a CA + serving cert in stateDir, serve HTTPS
    std::string token;  // when set, every request needs "Authorization: Bearer <token>"
    std::size_t historySize = 10000;  // watch events kept; older resourceVersions get 410
    // Where ca.crt, server.crt/key, token and kubeconfig are written. Empty: a
    // fresh directory under $TMPDIR (removed by stop()).
    std::string stateDir;
    std::string kubeconfigOut;  // also write the kubeconfig here (optional)
    int threads = 128;          // concurrent requests; every open watch holds one
    // Bookmark cadence for watches that ask for bookmarks (real servers: ~1/min).
    std::chrono::milliseconds bookmarkInterval{1000};
    // Continue tokens older than this answer 410 Expired (real default: 5 min).
    std::chrono::seconds continueTtl{300};
    // Server-chosen watch lifetime when the client gives no timeoutSeconds is
    // random in [minRequestTimeout, 2*minRequestTimeout), like kube-apiserver.
    std::chrono::seconds minRequestTimeout{1800};
    bool logRequests = false;  // one line per request on stderr
  };

  explicit KubeApiSimulator(Options options);
  ~KubeApiSimulator();
  KubeApiSimulator(const KubeApiSimulator&) = delete;
  KubeApiSimulator& operator=(const KubeApiSimulator&) = delete;

  // Binds, writes TLS material and kubeconfig, and serves on its own threads.
  Status start();
  // Ends watches, waits for in-flight requests, frees the port. Idempotent.
  void stop();

  int port() const;
  std::string baseUrl() const;         // "http://127.0.0.1:PORT" or "https://..."
  std::string caCertPath() const;      // empty without TLS
  std::string kubeconfigPath() const;  // always written once started
  std::string stateDir() const;

  // Creates or replaces objects: one object, or a List (kind "...List" with
  // items). kInvalidInput for an unknown apiVersion/kind or a missing name.
  Status seed(const nlohmann::json& objectOrList);
  // Seeds from a YAML or JSON file: one object, a List, or several YAML documents.
  Status seedFile(const std::string& path);

  // Fault injection.
  // Every open watch stream ends now: cleanly (terminating chunk) or, with
  // abrupt, by cutting the connection mid-stream.
  void dropAllWatches(bool abrupt = false);
  void expireNextWatch(ExpireForm form);
  void compactHistory();  // forget all watch history up to now
  void failNext(const SimFailRule& rule);
  void pause(bool paused);                  // while paused, API requests block
  void setToken(const std::string& token);  // also rewrites the token file and kubeconfig

  // Observation.
  // Mutating requests that were served (injected failures left out), in
  // arrival order.
  std::vector<SimRequestRecord> mutationLog() const;
  // Every mutating request received, injected failures included.
  std::vector<SimRequestRecord> requestLog() const;
  std::string currentResourceVersion() const;
  std::size_t openWatches() const;
  std::size_t pausedRequests() const;  // requests currently blocked by pause(true)

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace exitrec
