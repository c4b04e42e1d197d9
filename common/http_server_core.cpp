// HttpServer's listener, worker pool, TLS context source and registry
// (common/http_server_impl.h).
#include <openssl/ssl.h>
#include <sys/stat.h>

#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <cstdio>

#include "common/http_server_impl.h"

namespace exitrec {
inline namespace server {
namespace detail {

void WorkerPool::start(int threads, std::size_t maxQueued) {
  std::lock_guard<std::mutex> lock(mu_);
  stopping_ = false;
  maxQueued_ = maxQueued;
  for (int i = 0; i < std::max(1, threads); ++i)
    threads_.emplace_back([this] { loop(); });
}

bool WorkerPool::tryPost(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Jobs already queued will take idle workers first.
    if (stopping_ || queue_.size() >= idle_ + maxQueued_)
      return false;
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

std::size_t WorkerPool::queued() {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

void WorkerPool::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    ++idle_;
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    --idle_;
    if (stopping_)
      return;
    std::function<void()> job = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    job();
    job = nullptr;  // drops the connection's reference outside the lock
    lock.lock();
  }
}

void WorkerPool::stop() {
  std::deque<std::function<void()>> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    dropped.swap(queue_);
  }
  cv_.notify_all();
  for (auto& t : threads_)
    t.join();
  threads_.clear();
  dropped.clear();  // closes their connections (destructors), outside the lock
}

namespace {

std::optional<std::pair<long long, long long>> fileMtime(const std::string& path) {
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0)
    return std::nullopt;
  return std::make_pair(static_cast<long long>(st.st_mtim.tv_sec),
                        static_cast<long long>(st.st_mtim.tv_nsec));
}

}  // namespace

TlsContextSource::TlsContextSource(std::string certFile, std::string keyFile)
    : certFile_(std::move(certFile)), keyFile_(keyFile.empty() ? certFile_ : std::move(keyFile)) {}

Status TlsContextSource::reload() {
  std::lock_guard<std::mutex> lock(mu_);
  return reloadLocked();
}

Status TlsContextSource::reloadLocked() {
  auto certMtime = fileMtime(certFile_);
  auto keyMtime = fileMtime(keyFile_);
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(certFile_, ec);
  if (ec) {
    return Error(ErrorCode::kInvalidInput,
                 "cannot read TLS certificate " + certFile_ + ": " + ec.message());
  }
  ctx->use_private_key_file(keyFile_, asio::ssl::context::pem, ec);
  if (ec) {
    return Error(ErrorCode::kInvalidInput,
                 "no usable PEM private key in " + keyFile_ + ": " + ec.message());
  }
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    return Error(ErrorCode::kInvalidInput,
                 "private key in " + keyFile_ + " does not match " + certFile_);
  }
  ctx_ = std::move(ctx);
  certMtime_ = certMtime;
  keyMtime_ = keyMtime;
  return Status();
}

std::shared_ptr<asio::ssl::context> TlsContextSource::current() {
  std::lock_guard<std::mutex> lock(mu_);
  auto now = std::chrono::steady_clock::now();
  if (now - lastCheck_ >= std::chrono::seconds(1)) {
    lastCheck_ = now;
    if (fileMtime(certFile_) != certMtime_ || fileMtime(keyFile_) != keyMtime_)
      (void)reloadLocked();  // a bad or half-written pair: the old one stays
  }
  return ctx_;
}

}  // namespace detail

HttpServer::Impl::Impl(HttpServer& o) : owner(o), options(o.options_) {}

Status HttpServer::Impl::listen(const std::string& address, int port, int& boundPort,
                                bool& boundV6) {
  using namespace detail;
  const bool dual = address.empty() || address == "::";
  boost::system::error_code ec;
  tcp::endpoint ep;
  if (dual) {
    ep = tcp::endpoint(tcp::v6(), static_cast<unsigned short>(port));
  } else {
    auto ip = asio::ip::make_address(address, ec);
    if (ec)
      return Error(ErrorCode::kInvalidInput, "not a numeric IP address: \"" + address + "\"");
    ep = tcp::endpoint(ip, static_cast<unsigned short>(port));
  }
  acceptor.open(ep.protocol(), ec);
  if (ec && dual && ec == asio::error::address_family_not_supported) {
    notice("ipv4-fallback", "no IPv6 on this host (" + ec.message() +
                                "); listening on all IPv4 addresses only, port " +
                                std::to_string(port));
    ep = tcp::endpoint(tcp::v4(), static_cast<unsigned short>(port));
    acceptor.open(ep.protocol(), ec);
  }
  const std::string shown = ep.address().is_v6()
                                ? "[" + ep.address().to_string() + "]:" + std::to_string(port)
                                : ep.address().to_string() + ":" + std::to_string(port);
  auto fail = [&](const char* what) {
    boost::system::error_code ignored;
    acceptor.close(ignored);
    return Error(ErrorCode::kTransient,
                 std::string("cannot listen on ") + shown + ": " + what + ": " + ec.message());
  };
  if (ec)
    return fail("socket");
  if (dual && ep.address().is_v6()) {
    // Dual-stack: IPv4 clients arrive as ::ffff:a.b.c.d.
    acceptor.set_option(asio::ip::v6_only(false), ec);
    if (ec)
      return fail("IPV6_V6ONLY");
  } else if (ep.address().is_v6()) {
    acceptor.set_option(asio::ip::v6_only(true), ec);
  }
  acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  acceptor.bind(ep, ec);
  if (ec)
    return fail("bind");
  acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return fail("listen");
  auto local = acceptor.local_endpoint(ec);
  boundPort = local.port();
  boundV6 = local.address().is_v6();
  return Status();
}

void HttpServer::Impl::startAccepting() {
  doAccept();
}

void HttpServer::Impl::doAccept() {
  using namespace detail;
  acceptor.async_accept(asio::make_strand(ioc),
                        [this](boost::system::error_code ec, tcp::socket socket) {
                          if (stopping || !acceptor.is_open())
                            return;
                          if (ec) {
                            // Out of descriptors and the like: back off briefly instead of
                            // spinning.
                            notice("accept", "accept failed: " + ec.message());
                            acceptRetry.expires_after(std::chrono::milliseconds(50));
                            acceptRetry.async_wait([this](boost::system::error_code) {
                              if (!stopping)
                                doAccept();
                            });
                            return;
                          }
                          onAccept(std::move(socket));
                          doAccept();
                        });
}

void HttpServer::Impl::onAccept(detail::tcp::socket socket) {
  if (openConnections.load() >= options.maxConnections) {
    ++rejectedOverLimit;
    notice("limit", "connection limit (" + std::to_string(options.maxConnections) +
                        ") reached: closing new connections at once");
    boost::system::error_code ignored;
    socket.close(ignored);
    return;
  }
  ++accepted;
  detail::startConnection(*this, std::move(socket), tls ? tls->current() : nullptr);
}

void HttpServer::Impl::registerConnection(const std::shared_ptr<detail::Connection>& c) {
  std::lock_guard<std::mutex> lock(connMu);
  connections.emplace(c.get(), c);
}

void HttpServer::Impl::unregisterConnection(detail::Connection* c) {
  {
    std::lock_guard<std::mutex> lock(connMu);
    connections.erase(c);
  }
  connCv.notify_all();
}

void HttpServer::Impl::closeAll() {
  std::vector<std::shared_ptr<detail::Connection>> open;
  {
    std::lock_guard<std::mutex> lock(connMu);
    for (auto& [raw, weak] : connections) {
      if (auto c = weak.lock())
        open.push_back(std::move(c));
    }
  }
  for (auto& c : open)
    c->close();
}

const HttpHandler* HttpServer::Impl::route(const std::string& path) const {
  const HttpHandler* best = nullptr;
  std::size_t bestLen = 0;
  for (const auto& [prefix, handler] : owner.handlers_) {
    if (path.compare(0, prefix.size(), prefix) == 0 &&
        (best == nullptr || prefix.size() > bestLen)) {
      best = &handler;
      bestLen = prefix.size();
    }
  }
  return best;
}

void HttpServer::Impl::reportException(const std::string& what) noexcept {
  try {
    if (options.onHandlerException) {
      options.onHandlerException(what);
    } else {
      std::fprintf(stderr, "http server: request failed with an exception: %s\n", what.c_str());
    }
  } catch (...) {
    // The barrier must not throw; nothing is left to report with.
  }
}

void HttpServer::Impl::notice(const std::string& kind, const std::string& text) {
  std::string line;
  {
    std::lock_guard<std::mutex> lock(noticeMu);
    auto now = std::chrono::steady_clock::now();
    auto it = lastNotice.find(kind);
    if (it != lastNotice.end() && now - it->second < std::chrono::seconds(10)) {
      ++suppressed[kind];
      return;
    }
    lastNotice[kind] = now;
    line = "http server: " + text;
    if (auto n = suppressed[kind]; n > 0)
      line += " (" + std::to_string(n) + " more since the last notice)";
    suppressed[kind] = 0;
  }
  try {
    if (options.onNotice)
      options.onNotice(line);
    else
      std::fprintf(stderr, "%s\n", line.c_str());
  } catch (...) {
  }
}

}  // namespace server
}  // namespace exitrec
