#include "metrics/server.h"

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "common/http_server.h"
#include "common/listen_address.h"
#include "metrics/metrics.h"

namespace exitrec {

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(const Metrics& metrics,
                                                            std::string_view address) {
  auto listen = parseListenAddress(address);
  if (!listen)
    return listen.error();
  std::unique_ptr<MetricsServer> ms(new MetricsServer());
  HttpServer::Options opts;
  opts.address = listen->host;
  opts.port = listen->port;
  opts.threads = 2;  // scrapes are rare; a third concurrent scrape waits in the queue
  opts.maxQueuedRequests = 16;
  opts.maxConnections = 256;
  opts.maxBodyBytes = 4096;
  ms->server_ = std::make_unique<HttpServer>(opts);
  std::shared_ptr<prometheus::Registry> registry = metrics.registry();
  ms->server_->handle("/metrics", [registry](const HttpRequest& req, HttpResponseWriter& w) {
    if (req.path != "/metrics") {
      w.send(404, {{"Content-Type", "text/plain"}}, "not found\n");
      return;
    }
    // Prometheus text exposition format 0.0.4 (what TextSerializer writes).
    std::string body = prometheus::TextSerializer().Serialize(registry->Collect());
    w.send(200, {{"Content-Type", "text/plain; version=0.0.4; charset=utf-8"}}, body);
  });
  ms->server_->handle("/", [](const HttpRequest&, HttpResponseWriter& w) {
    w.send(404, {{"Content-Type", "text/plain"}}, "not found\n");
  });
  Status s = ms->server_->start();
  if (!s) {
    ErrorCode code =
        s.error().code == ErrorCode::kTransient ? ErrorCode::kPermanent : s.error().code;
    return Error(code, "metrics server: " + s.error().message);
  }
  return ms;
}

MetricsServer::~MetricsServer() {
  if (server_)
    server_->stop();
}

int MetricsServer::port() const {
  return server_ ? server_->port() : 0;
}

}  // namespace exitrec
