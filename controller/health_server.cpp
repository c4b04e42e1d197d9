#include "controller/health_server.h"

#include <charconv>

#include "common/http_server.h"

namespace exitrec {

Result<std::pair<std::string, int>> parseListenAddress(std::string_view address) {
  auto bad = [&](const std::string& why) {
    return Error(ErrorCode::kInvalidInput,
                 "listen address \"" + std::string(address) + "\": " + why);
  };
  const std::size_t colon = address.rfind(':');
  if (colon == std::string_view::npos)
    return bad("expected HOST:PORT or :PORT");
  std::string host(address.substr(0, colon));
  const std::string_view portText = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int port = -1;
  auto [ptr, ec] = std::from_chars(portText.data(), portText.data() + portText.size(), port);
  if (ec != std::errc() || ptr != portText.data() + portText.size() || port < 0 || port > 65535) {
    return bad("port must be a number in 0..65535");
  }
  if (host.empty())
    host = "0.0.0.0";
  return std::make_pair(host, port);
}

Result<std::unique_ptr<HealthServer>> HealthServer::start(std::string_view address,
                                                          ReadyCheck ready) {
  auto hostPort = parseListenAddress(address);
  if (!hostPort)
    return hostPort.error();
  std::unique_ptr<HealthServer> hs(new HealthServer());
  hs->ready_ = std::move(ready);
  HttpServer::Options opts;
  opts.address = hostPort->first;
  opts.port = hostPort->second;
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
    return s.error();
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
