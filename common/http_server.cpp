#include "common/http_server.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cctype>
#include <future>

#include "common/http_server_impl.h"

namespace exitrec {
inline namespace server {  // see http_server.h
namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> parseQueryString(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t pos = 0;
  while (pos <= query.size()) {
    std::size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos)
      amp = query.size();
    std::string_view part = query.substr(pos, amp - pos);
    if (!part.empty()) {
      std::size_t eq = part.find('=');
      if (eq == std::string_view::npos) {
        out.emplace_back(urlDecode(part, true), "");
      } else {
        out.emplace_back(urlDecode(part.substr(0, eq), true), urlDecode(part.substr(eq + 1), true));
      }
    }
    pos = amp + 1;
  }
  return out;
}

std::optional<std::string> HttpRequest::queryParam(std::string_view name) const {
  for (const auto& [k, v] : query) {
    if (k == name)
      return v;
  }
  return std::nullopt;
}

std::optional<std::string> HttpRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name))
      return v;
  }
  return std::nullopt;
}

HttpServer::HttpServer(Options options) : options_(std::move(options)) {}

HttpServer::~HttpServer() {
  stop();
}

void HttpServer::handle(std::string prefix, HttpHandler handler) {
  handlers_.emplace_back(std::move(prefix), std::move(handler));
}

void HttpServer::onStopping(std::function<void()> hook) {
  stopHooks_.push_back(std::move(hook));
}

std::string HttpServer::baseUrl() const {
  std::string host = options_.address;
  if (host.empty() || host == "::")
    host = boundV6_ ? "::1" : "127.0.0.1";
  else if (host == "0.0.0.0")
    host = "127.0.0.1";
  if (host.find(':') != std::string::npos)
    host = "[" + host + "]";
  return std::string(tls() ? "https://" : "http://") + host + ":" + std::to_string(port_);
}

HttpServer::Stats HttpServer::stats() const {
  Stats s;
  if (!impl_)
    return s;
  const Impl& i = *impl_;
  s.accepted = i.accepted;
  s.rejectedOverLimit = i.rejectedOverLimit;
  s.handshakeTimeouts = i.handshakeTimeouts;
  s.handshakeFailures = i.handshakeFailures;
  s.firstByteTimeouts = i.firstByteTimeouts;
  s.requestTimeouts = i.requestTimeouts;
  s.idleTimeouts = i.idleTimeouts;
  s.writeTimeouts = i.writeTimeouts;
  s.busyRejections = i.busyRejections;
  s.openConnections = i.openConnections;
  s.queuedRequests = static_cast<std::int64_t>(impl_->workers.queued());
  return s;
}

Status HttpServer::reloadCertificates() {
  if (!tls())
    return makeError(ErrorCode::kInvalidInput, "server has no TLS configured");
  if (!impl_)
    return makeError(ErrorCode::kInvalidInput, "server is not running");
  return impl_->tls->reload();
}

Status HttpServer::start() {
  if (impl_)
    return Status::okStatus();
  auto impl = std::make_unique<Impl>(*this);
  if (tls()) {
    impl->tls.emplace(options_.certFile, options_.keyFile);
    if (Status s = impl->tls->reload(); !s)
      return s;
  }
  if (Status s = impl->listen(options_.address, options_.port, port_, boundV6_); !s)
    return s;
  impl->workers.start(options_.threads,
                      static_cast<std::size_t>(std::max(0, options_.maxQueuedRequests)));
  impl->work.emplace(impl->ioc.get_executor());
  impl->startAccepting();
  for (int i = 0; i < std::max(1, options_.ioThreads); ++i)
    impl->ioThreads.emplace_back([io = &impl->ioc] { io->run(); });
  impl_ = std::move(impl);
  return Status::okStatus();
}

void HttpServer::stop() {
  if (!impl_)
    return;
  Impl& i = *impl_;
  i.stopping = true;
  for (auto& hook : stopHooks_)
    hook();
  // No new connections: the acceptor belongs to the I/O threads.
  std::promise<void> closed;
  boost::asio::post(i.ioc, [&] {
    boost::system::error_code ignored;
    i.acceptor.close(ignored);
    i.acceptRetry.cancel();
    closed.set_value();
  });
  closed.get_future().wait();
  {
    // Handlers see stopRequested() (and owners' hooks) and return; give them
    // a moment to send their final bytes, then cut the connections regardless.
    std::unique_lock<std::mutex> lock(i.activeMu);
    i.activeCv.wait_for(lock, std::chrono::seconds(2), [&] { return i.activeHandlers == 0; });
  }
  i.closeAll();      // idle and streaming connections: writes fail at once
  i.workers.stop();  // joins; handlers that ignore stopRequested() are waited for
  i.closeAll();      // connections that finished a request meanwhile
  {
    std::unique_lock<std::mutex> lock(i.connMu);
    i.connCv.wait_for(lock, std::chrono::seconds(2), [&] { return i.connections.empty(); });
  }
  i.work.reset();
  i.ioc.stop();
  for (auto& t : i.ioThreads)
    t.join();
  impl_.reset();  // destroys what the io_context still holds; releases the port
}

}  // namespace server
}  // namespace exitrec
