#pragma once
// A small embedded HTTP/1.1 server on Boost.Beast / Boost.Asio (neither leaks
// through this header). Used by the API simulators, the controller's health
// and metrics servers and the admission webhook.
//
// - Binds one address/port; port 0 picks a free port, read back with port().
//   Address "" or "::" is one dual-stack IPv6 socket (v6_only off) that
//   accepts IPv4 too; on a host without IPv6 (EAFNOSUPPORT) it falls back to
//   IPv4 with a notice. "0.0.0.0" is IPv4 only; other literals as given.
//   Go-style "host:port" strings are parsed by common/listen_address.h.
// - Optional TLS (1.2+) from a certificate PEM and a key PEM (separate files
//   or one combined file). The files are re-checked at most once a second as
//   handshakes arrive: a rotated certificate on disk is served to new
//   connections without a restart; reloadCertificates() forces a re-read. On
//   a bad new pair the previous one stays.
// - Bounded: accept, TLS handshake and request reading are asynchronous on
//   Options.ioThreads threads (an idle connection costs no thread); handlers
//   run on a fixed pool of Options.threads workers with a queue of
//   Options.maxQueuedRequests; a request finding both full gets 503. At most
//   Options.maxConnections connections are open; beyond that new ones are
//   closed at once (counted in stats(), reported rate-limited).
// - Timeouts: TLS handshake; the first request byte after connect; request
//   header + body in total from the first byte (a client dribbling bytes is
//   cut, not reset per byte); keep-alive idle; each handler write
//   (socketTimeoutMs: a client that stops reading is disconnected). Bodies
//   over maxBodyBytes get 413.
// - Handlers are registered by path prefix; the longest matching prefix wins.
// - A handler answers with one plain response (send), or streams a chunked
//   body (beginChunked / writeChunk / endChunked) for watches. clientGone()
//   detects a disconnected client even while nothing is written, and
//   stopRequested() turns true as soon as stop() begins, so streaming
//   handlers end promptly.
//
// Thread-safety: start/stop/port/handle are called from one owner thread;
// stats() from any thread. Handlers run concurrently on the worker threads
// (normal-size stacks), each request on one worker. A response writer
// belongs to its handler's thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/url_encoding.h"

namespace exitrec {
// Server-side types live in an inline namespace: k8sclient/http_transport.h
// has client-side HttpRequest/HttpHeaders and kube_client.h a urlEncode of
// its own, and both halves are linked into one binary (the controller, the
// sandbox). The inline namespace gives these distinct symbols (no ODR clash);
// a translation unit should still include only one of the two headers.
inline namespace server {

struct HttpRequest {
  std::string method;    // "GET", "PATCH", ...
  std::string path;      // URL-decoded path without the query, e.g. "/api/v1/pods"
  std::string rawQuery;  // as received, without '?'
  // Query parameters, URL-decoded, in order of appearance (names may repeat).
  std::vector<std::pair<std::string, std::string>> query;
  // Request headers in order; look them up with header() (case-insensitive).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string remoteAddr;  // the peer's IP ("::ffff:a.b.c.d" is shown as "a.b.c.d")
  bool tls = false;        // the request came over TLS

  // First value of a query parameter, if present.
  std::optional<std::string> queryParam(std::string_view name) const;
  // First value of a header (name compared case-insensitively), if present.
  std::optional<std::string> header(std::string_view name) const;
};

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// Writes the response of one request. Not thread-safe; used by the handler's
// thread only. If a handler returns without responding, the server answers 500.
class HttpResponseWriter {
 public:
  virtual ~HttpResponseWriter() = default;

  // One complete response with a Content-Length. Returns false if the client
  // is gone. Call at most once, and not after beginChunked().
  virtual bool send(int status, const HttpHeaders& headers, std::string_view body) = 0;

  // Starts a chunked response (Transfer-Encoding: chunked is added).
  virtual bool beginChunked(int status, const HttpHeaders& headers) = 0;
  // Writes one chunk and flushes it to the socket. Empty data is ignored.
  // Returns false when the client is gone (the handler should stop).
  virtual bool writeChunk(std::string_view data) = 0;
  // Writes the terminating chunk. Called automatically if the handler forgets.
  virtual bool endChunked() = 0;

  // True if the peer closed its side of the connection (checked without
  // writing). Cheap enough to poll a few times a second.
  virtual bool clientGone() = 0;
  // True once the server is stopping; long-running handlers should return.
  virtual bool stopRequested() const = 0;
  // Cuts the connection at once, without the terminating chunk (the client sees
  // a truncated body, like a dropped network path). Nothing more is written.
  virtual void abortConnection() = 0;
};

using HttpHandler = std::function<void(const HttpRequest&, HttpResponseWriter&)>;

class HttpServer {
 public:
  struct Options {
    std::string address = "127.0.0.1";  // IP literal; "" or "::": dual-stack (see above)
    int port = 0;                       // 0: pick a free port
    int threads = 16;                   // handler workers (each watch holds one)
    // Accept, TLS handshakes, request reading. Two, so that a burst of
    // handshakes (CPU work: a reconnecting flood) does not stall the reading
    // of ordinary requests behind it.
    int ioThreads = 2;
    // Requests waiting for a worker; beyond it (all workers busy) → 503.
    int maxQueuedRequests = 64;
    // Open connections (each costs a descriptor and a few KiB, no thread).
    int maxConnections = 4096;
    // TLS when certFile is set. keyFile may be empty if certFile holds both.
    std::string certFile;
    std::string keyFile;
    // Max request body accepted; larger bodies get 413.
    std::size_t maxBodyBytes = 64u << 20;
    std::size_t maxHeaderBytes = 64u << 10;  // larger request heads get 431
    // A handler write that the client does not take for this long cuts the
    // connection (a client that stopped reading).
    int socketTimeoutMs = 120000;
    int handshakeTimeoutMs = 10000;  // TCP connect → TLS handshake done
    // The first request byte must arrive this soon after connect (after the
    // handshake with TLS); then header and body must be complete within
    // requestTimeoutMs of that first byte.
    int firstByteTimeoutMs = 10000;
    int requestTimeoutMs = 10000;
    int idleTimeoutMs = 60000;  // keep-alive: between a response and the next request
    // The exception barrier of the workers: a handler that throws gets 500
    // (if it had not answered) and this is called with what it threw (from
    // the worker; must not throw). Unset: one line on stderr.
    std::function<void(std::string_view what)> onHandlerException;
    // Operational notices (connection limit reached, IPv4 fallback), at most
    // one per kind every 10 s. Must not throw. Unset: stderr.
    std::function<void(std::string_view notice)> onNotice;
  };

  // Counters since start(); connections cut by each timeout, for operators
  // and the flood benchmark.
  struct Stats {
    std::uint64_t accepted = 0;
    std::uint64_t rejectedOverLimit = 0;  // closed at once: maxConnections
    std::uint64_t handshakeTimeouts = 0;
    std::uint64_t handshakeFailures = 0;
    std::uint64_t firstByteTimeouts = 0;
    std::uint64_t requestTimeouts = 0;  // header/body not complete in time
    std::uint64_t idleTimeouts = 0;
    std::uint64_t writeTimeouts = 0;
    std::uint64_t busyRejections = 0;  // 503: workers and queue full
    std::int64_t openConnections = 0;
    std::int64_t queuedRequests = 0;  // waiting for a worker now
  };

  explicit HttpServer(Options options);
  ~HttpServer();  // stops the server
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Registers a handler for every path starting with `prefix` ("/" = all).
  // Must be called before start().
  void handle(std::string prefix, HttpHandler handler);

  // Called once when stop() begins, before waiting for handlers, so owners can
  // wake streaming handlers that block on their own condition variables.
  void onStopping(std::function<void()> hook);

  // Binds and starts serving. Errors: kInvalidInput for an unreadable or bad
  // certificate/key, kTransient if the address cannot be bound.
  Status start();
  // Closes streams, waits for handlers to return, releases the port. Idempotent.
  void stop();

  bool running() const { return impl_ != nullptr; }
  int port() const { return port_; }
  bool tls() const { return !options_.certFile.empty(); }
  // "http://127.0.0.1:PORT" or "https://[::1]:PORT"; wildcard binds give the
  // loopback address of the bound family.
  std::string baseUrl() const;
  Stats stats() const;

  // Re-reads the certificate and key now. On error the previous pair stays.
  Status reloadCertificates();

  // The running server (common/http_server_impl.h).
  struct Impl;

 private:
  Options options_;
  std::vector<std::pair<std::string, HttpHandler>> handlers_;
  std::vector<std::function<void()>> stopHooks_;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
  bool boundV6_ = false;
};

// Percent-decoding and -encoding (common/url_encoding.h).
using ::exitrec::urlDecode;
using ::exitrec::urlEncode;
// Splits "a=1&b=x%20y" into decoded pairs.
std::vector<std::pair<std::string, std::string>> parseQueryString(std::string_view query);

}  // namespace server
}  // namespace exitrec
