#pragma once
// Internals of HttpServer (common/http_server.h): the Asio I/O side, the
// bounded worker pool and the reloadable TLS context. Included only by
// common/http_server*.cpp.

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/http_server.h"

namespace exitrec {
inline namespace server {
namespace detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// A fixed set of worker threads and a bounded queue. tryPost refuses (the
// caller answers 503) instead of growing anything.
class WorkerPool {
 public:
  void start(int threads, std::size_t maxQueued);
  // False when every worker is busy and maxQueued jobs already wait, or
  // after stop().
  bool tryPost(std::function<void()> job);
  // Wakes idle workers, drops queued jobs, joins (running jobs finish first).
  void stop();
  std::size_t queued();

 private:
  void loop();
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> threads_;
  std::size_t idle_ = 0;
  std::size_t maxQueued_ = 0;
  bool stopping_ = false;
};

// The TLS context given to new connections. A reload builds a new context and
// swaps the pointer; connections keep the one they started with.
class TlsContextSource {
 public:
  TlsContextSource(std::string certFile, std::string keyFile);
  // Loads now. On error the previous context stays.
  Status reload();
  // The current context, after re-checking the files' mtimes (at most once a
  // second). A half-written pair fails to load and the old one stays.
  std::shared_ptr<asio::ssl::context> current();

 private:
  Status reloadLocked();
  std::string certFile_, keyFile_;
  std::mutex mu_;
  std::shared_ptr<asio::ssl::context> ctx_;
  std::optional<std::pair<long long, long long>> certMtime_, keyMtime_;
  std::chrono::steady_clock::time_point lastCheck_{};
};

// A connection, as the server's registry sees it (for stop()).
class Connection {
 public:
  virtual ~Connection() = default;
  virtual void close() = 0;  // thread-safe: posts to the connection's strand
};

}  // namespace detail

struct HttpServer::Impl {
  explicit Impl(HttpServer& owner);

  HttpServer& owner;
  const HttpServer::Options& options;
  std::atomic<bool> stopping{false};

  // Counters (HttpServer::Stats).
  std::atomic<std::uint64_t> accepted{0}, rejectedOverLimit{0}, handshakeTimeouts{0},
      handshakeFailures{0}, firstByteTimeouts{0}, requestTimeouts{0}, idleTimeouts{0},
      writeTimeouts{0}, busyRejections{0};
  std::atomic<std::int64_t> openConnections{0};

  // Handlers running now; stop() gives them a moment to finish.
  std::mutex activeMu;
  std::condition_variable activeCv;
  int activeHandlers = 0;

  // Open connections, for stop(). Declared before the io_context so that
  // connections destroyed with it can still unregister.
  std::mutex connMu;
  std::condition_variable connCv;
  std::unordered_map<detail::Connection*, std::weak_ptr<detail::Connection>> connections;

  std::optional<detail::TlsContextSource> tls;
  detail::WorkerPool workers;
  detail::asio::io_context ioc;
  std::optional<detail::asio::executor_work_guard<detail::asio::io_context::executor_type>> work;
  detail::tcp::acceptor acceptor{ioc};
  detail::asio::steady_timer acceptRetry{ioc};
  std::vector<std::thread> ioThreads;

  // Rate-limited notices, one per kind every 10 s.
  std::mutex noticeMu;
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> lastNotice;
  std::unordered_map<std::string, std::uint64_t> suppressed;

  // Binds; sets boundPort/boundV6. Errors name the address.
  Status listen(const std::string& address, int port, int& boundPort, bool& boundV6);
  void startAccepting();
  void registerConnection(const std::shared_ptr<detail::Connection>& c);
  void unregisterConnection(detail::Connection* c);
  void closeAll();

  // The handler with the longest matching prefix, or null.
  const HttpHandler* route(const std::string& path) const;
  void reportException(const std::string& what) noexcept;
  void notice(const std::string& kind, const std::string& text);

 private:
  void doAccept();
  void onAccept(detail::tcp::socket socket);
};

namespace detail {
// Runs one accepted connection (common/http_session.cpp): TLS handshake when
// `tls` is set, then requests until close. Counts itself in openConnections.
void startConnection(HttpServer::Impl& server, tcp::socket socket,
                     std::shared_ptr<asio::ssl::context> tls);
}  // namespace detail

}  // namespace server
}  // namespace exitrec
