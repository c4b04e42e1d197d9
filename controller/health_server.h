#pragma once
// HealthServer: /healthz and /readyz on --health-addr (common/http_server.h;
// Go-style address, common/listen_address.h: ":8081" is dual-stack).
//
// - GET /healthz: 200 "ok" whenever the process can answer. It deliberately
//   depends on nothing else (not the API server, not leadership), so an API
//   outage never turns into a crash loop.
// - GET /readyz: 200 "ok" when `ready` says so (the informer caches have
//   synced), else 503 with the reason.
//
// Thread-safety: the ready callback runs on server threads; it must be
// thread-safe and fast.

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

namespace exitrec {

inline namespace server {
class HttpServer;  // common/http_server.h, kept out of this header
}

class HealthServer {
 public:
  // Fills `reason` when not ready.
  using ReadyCheck = std::function<bool(std::string& reason)>;

  static Result<std::unique_ptr<HealthServer>> start(std::string_view address, ReadyCheck ready);
  ~HealthServer();
  HealthServer(const HealthServer&) = delete;
  HealthServer& operator=(const HealthServer&) = delete;

  int port() const;

 private:
  HealthServer() = default;
  std::unique_ptr<HttpServer> server_;
  ReadyCheck ready_;
};

}  // namespace exitrec
