#include "controller/health_server.h"

#include "common/http_server.h"
#include "common/listen_address.h"

namespace exitrec {

Result<std::unique_ptr<HealthServer>> HealthServer::start(std::string_view address,
                                                          ReadyCheck ready) {
  auto listen = parseListenAddress(address);
  if (!listen)
    return listen.error();
  std::unique_ptr<HealthServer> hs(new HealthServer());
  hs->ready_ = std::move(ready);
  HttpServer::Options opts;
  opts.address = listen->host;
  opts.port = listen->port;
  opts.threads = 4;
  opts.maxBodyBytes = 4096;
  hs->server_ = std::make_unique<HttpServer>(opts);
  HealthServer* self = hs.get();
  const HttpHeaders text = {{"Content-Type", "text/plain; charset=utf-8"}};
  hs->server_->handle(
      "/healthz", [text](const HttpRequest&, HttpResponseWriter& w) { w.send(200, text, "ok\n"); });
  hs->server_->handle("/readyz", [self, text](const HttpRequest&, HttpResponseWriter& w) {
    std::string reason;
    if (self->ready_ && !self->ready_(reason)) {
      w.send(503, text, "not ready: " + reason + "\n");
      return;
    }
    w.send(200, text, "ok\n");
  });
  hs->server_->handle(
      "/", [text](const HttpRequest&, HttpResponseWriter& w) { w.send(404, text, "not found\n"); });
  Status s = hs->server_->start();
  if (!s)
    return Error(s.error().code, "health server: " + s.error().message);
  return hs;
}

HealthServer::~HealthServer() {
  if (server_)
    server_->stop();
}

int HealthServer::port() const {
  return server_ ? server_->port() : 0;
}

}  // namespace exitrec
