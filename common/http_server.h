#pragma once
// A small embedded HTTP/1.1 server (civetweb underneath; civetweb never leaks
// through this header). Used by the API simulators, the controller's health
// server and the admission webhook.
//
// - Binds one address/port; port 0 picks a free port, read back with port().
// - Optional TLS from a certificate PEM and a key PEM (separate files or one
//   combined file). The files are re-checked at most once a second during TLS
//   handshakes: a rotated certificate on disk is served to new connections
//   without restarting the server; reloadCertificates() forces a re-read.
//   TLS is terminated by our own OpenSSL front end (civetweb's TLS does not work
//   with Debian's OpenSSL 3), which relays plaintext to civetweb on a loopback
//   port; handlers then see remoteAddr 127.0.0.1 and tls == false. The front
//   end listens on IPv4 or IPv6; plain HTTP is IPv4 only (civetweb is built
//   without IPv6).
// - civetweb ignores SIGPIPE process-wide once a server starts.
// - Handlers are registered by path prefix; the longest matching prefix wins.
// - A handler answers with one plain response (send), or streams a chunked
//   body (beginChunked / writeChunk / endChunked) for watches. clientGone()
//   detects a disconnected client even while nothing is written, and
//   stopRequested() turns true as soon as stop() begins, so streaming
//   handlers end promptly.
//
// Thread-safety: start/stop/port/handle are called from one owner thread;
// handlers run concurrently on the server's worker threads (options.threads),
// each request on one thread (with a normal-size stack). A response writer
// belongs to its request thread.

#include <atomic>
#include <chrono>
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

struct mg_context;  // civetweb's server handle (opaque here)

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
  std::string remoteAddr;
  bool tls = false;  // true only if civetweb itself terminated TLS (never with our front end)

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
    std::string address = "127.0.0.1";  // IPv4 or IPv6 literal ("::1")
    int port = 0;                       // 0: pick a free port
    int threads = 16;                   // concurrent requests (each watch holds one)
    // TLS when certFile is set. keyFile may be empty if certFile holds both.
    std::string certFile;
    std::string keyFile;
    // Max request body accepted; larger bodies get 413.
    std::size_t maxBodyBytes = 64u << 20;
    // Socket send/receive timeout: a client that stops reading for this long
    // is disconnected.
    int socketTimeoutMs = 120000;
    // Run handlers on civetweb's worker threads instead of a fresh thread per
    // request: saves a thread start and two context switches per request, but
    // those stacks are small (Debian: 100 KiB), so only for shallow handlers
    // (no deep recursion, no large locals).
    bool inlineHandlers = false;
    // The exception barrier of the request threads: a handler that throws
    // gets 500 (if it had not answered) and this is called with what it threw
    // (from the request thread; must not throw). Unset: one line on stderr.
    std::function<void(std::string_view what)> onHandlerException;
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

  bool running() const { return ctx_ != nullptr; }
  int port() const { return port_; }
  bool tls() const { return !options_.certFile.empty(); }
  // "http://127.0.0.1:PORT" or "https://[::1]:PORT".
  std::string baseUrl() const;

  // Re-reads the certificate and key now. On error the previous pair stays.
  Status reloadCertificates();

  // Implementation details shared with the .cpp's C callbacks.
  struct Impl;

 private:
  Options options_;
  std::vector<std::pair<std::string, HttpHandler>> handlers_;
  std::vector<std::function<void()>> stopHooks_;
  std::unique_ptr<Impl> impl_;
  ::mg_context* ctx_ = nullptr;
  int port_ = 0;
};

// Percent-decoding of a URL component ('+' becomes ' ' when plusIsSpace).
std::string urlDecode(std::string_view in, bool plusIsSpace);
// Percent-encoding (common/url_encoding.h).
using ::exitrec::urlEncode;
// Splits "a=1&b=x%20y" into decoded pairs.
std::vector<std::pair<std::string, std::string>> parseQueryString(std::string_view query);

}  // namespace server
}  // namespace exitrec
