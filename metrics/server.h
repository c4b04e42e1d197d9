#pragma once
// Serves a Metrics registry at GET /metrics (prometheus-cpp Exposer, civetweb).
//
// Contract:
// - start() binds before it returns: a bad address or a port in use is an
//   Error (kInvalidInput / kPermanent), never an exception.
// - The server keeps serving until destroyed; the destructor stops it and
//   joins its threads (promptly: it wakes civetweb's accept poll with loopback
//   connects). The Metrics object must outlive the server.
// - Thread-safety: port() may be called from any thread.

#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

namespace exitrec {

class Metrics;

// Turns a Go-style listen address into host:port for civetweb:
// ":8080" → "0.0.0.0:8080", "127.0.0.1:0" unchanged, "[::1]:9" unchanged.
// Errors (kInvalidInput) name the bad value.
Result<std::string> normalizeListenAddress(std::string_view address);

class MetricsServer {
 public:
  static Result<std::unique_ptr<MetricsServer>> start(const Metrics& metrics,
                                                      std::string_view address);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The port actually bound (useful with port 0).
  int port() const;

 private:
  struct Impl;
  explicit MetricsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace exitrec
