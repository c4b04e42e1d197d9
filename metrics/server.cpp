#include "metrics/server.h"

#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include <charconv>
#include <exception>

#include "metrics/metrics.h"

namespace exitrec {

Result<std::string> normalizeListenAddress(std::string_view address) {
  auto bad = [&](std::string_view why) {
    return makeError(ErrorCode::kInvalidInput,
                     "listen address \"" + std::string(address) + "\": " + std::string(why));
  };
  auto colon = address.rfind(':');
  if (colon == std::string_view::npos)
    return bad("expected host:port or :port");
  std::string_view host = address.substr(0, colon);
  std::string_view portText = address.substr(colon + 1);
  int port = -1;
  auto [end, ec] = std::from_chars(portText.data(), portText.data() + portText.size(), port);
  if (portText.empty() || ec != std::errc() || end != portText.data() + portText.size() ||
      port < 0 || port > 65535) {
    return bad("port must be a number in 0..65535");
  }
  if (host.find(':') != std::string_view::npos &&
      !(host.size() > 2 && host.front() == '[' && host.back() == ']')) {
    return bad("IPv6 hosts must be bracketed, e.g. [::1]:8080");
  }
  if (host.empty())
    host = "0.0.0.0";
  return std::string(host) + ":" + std::to_string(port);
}

struct MetricsServer::Impl {
  std::unique_ptr<prometheus::Exposer> exposer;
  int port = 0;
};

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(const Metrics& metrics,
                                                            std::string_view address) {
  auto bind = normalizeListenAddress(address);
  if (!bind)
    return std::move(bind).takeError();
  auto impl = std::make_unique<Impl>();
  try {
    // civetweb reports bind failures by throwing CivetException (a
    // std::runtime_error) from the constructor.
    impl->exposer = std::make_unique<prometheus::Exposer>(*bind, 2);
  } catch (const std::exception& e) {
    return makeError(ErrorCode::kPermanent,
                     "metrics server: cannot listen on " + *bind + ": " + e.what());
  }
  impl->exposer->RegisterCollectable(metrics.registry(), "/metrics");
  auto ports = impl->exposer->GetListeningPorts();
  if (ports.empty()) {
    return makeError(ErrorCode::kPermanent, "metrics server: no listening port on " + *bind);
  }
  impl->port = ports.front();
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MetricsServer::~MetricsServer() = default;

int MetricsServer::port() const {
  return impl_->port;
}

}  // namespace exitrec
