#pragma once
// Serves a Metrics registry at GET /metrics: prometheus-cpp's registry and
// TextSerializer on our HttpServer (common/http_server.h), so the listener is
// dual-stack like the health server and the webhook.
//
// Contract:
// - start() binds before it returns: a bad address is kInvalidInput, a port
//   in use kPermanent, both naming the address; never an exception.
// - The address is Go-style (common/listen_address.h): ":8080" answers on
//   every IPv4 and IPv6 address.
// - The server keeps serving until destroyed; the destructor stops it and
//   joins its threads. The Metrics object must outlive the server.
// - Thread-safety: port() may be called from any thread.

#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

namespace exitrec {

class Metrics;
inline namespace server {
class HttpServer;  // common/http_server.h, kept out of this header
}

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
  MetricsServer() = default;
  std::unique_ptr<HttpServer> server_;
};

}  // namespace exitrec
