#include "metrics/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <prometheus/exposer.h>
#include <prometheus/registry.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <exception>
#include <thread>

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

namespace {

// civetweb's master thread polls its listening socket in 2 s quanta before it
// notices the stop flag. Loopback connects during the stop wake it at once.
void connectOnce(const std::string& host, int port) {
  const bool v6 = host.find(':') != std::string::npos;
  int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return;
  if (v6) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(static_cast<uint16_t>(port));
    if (::inet_pton(AF_INET6, host.c_str(), &a.sin6_addr) == 1) {
      (void)::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    }
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    if (::inet_pton(AF_INET, host.c_str(), &a.sin_addr) == 1) {
      (void)::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    }
  }
  ::close(fd);
}

}  // namespace

struct MetricsServer::Impl {
  std::unique_ptr<prometheus::Exposer> exposer;
  std::string wakeHost;  // where a loopback connect reaches the listener
  int port = 0;

  ~Impl() {
    if (!exposer)
      return;
    std::atomic<bool> stopped{false};
    std::thread waker([&] {
      while (!stopped.load()) {
        connectOnce(wakeHost, port);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
    exposer.reset();
    stopped = true;
    waker.join();
  }
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
  // The host part of the normalized address; wildcard binds are reached on loopback.
  std::string host = bind->substr(0, bind->rfind(':'));
  if (host.size() > 2 && host.front() == '[')
    host = host.substr(1, host.size() - 2);
  if (host == "0.0.0.0")
    host = "127.0.0.1";
  if (host == "::")
    host = "::1";
  impl->wakeHost = host;
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MetricsServer::~MetricsServer() = default;

int MetricsServer::port() const {
  return impl_->port;
}

}  // namespace exitrec
