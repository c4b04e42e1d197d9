#pragma once
// HttpTransport: the only seam between the Kubernetes client and an HTTP
// library. The cpprestsdk implementation lives in cpprest_transport.cpp (the
// only file that includes <cpprest/...>); tests use FakeHttpTransport.
//
// Error contract of the transport itself: a request that produced an HTTP
// response (any status) is a success at this level; classification of HTTP
// statuses happens once, in api_error.h. Connection failures, TLS failures and
// timeouts are returned as Error{kTransient} whose message names the URL (and,
// for TLS, the CA in use); a cancelled request is Error{kCancelled}. Messages
// never contain request headers (they carry the bearer token).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace exitrec {

// Header names are matched case-insensitively by HttpHeaders::find.
struct HttpHeaders {
  std::vector<std::pair<std::string, std::string>> entries;

  void set(std::string name, std::string value);
  const std::string* find(std::string_view name) const;
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;  // absolute: scheme://host:port/path?query
  HttpHeaders headers;
  std::string body;
  // Short requests: the whole exchange. Streams: the idle timeout between
  // chunks (it must exceed the server-side watch timeoutSeconds).
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};
};

struct HttpResponse {
  int status = 0;
  HttpHeaders headers;
  std::string body;
};

// Cooperative cancellation shared between a caller and a blocked transport
// call. Thread-safe. Callbacks registered with onCancel run exactly once, on
// the thread calling cancel() (or immediately if already cancelled).
class CancelSource {
 public:
  void cancel();
  bool cancelled() const { return cancelled_.load(); }
  // Returns an id for removeCallback.
  std::uint64_t onCancel(std::function<void()> cb);
  void removeCallback(std::uint64_t id);

 private:
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  std::uint64_t nextId_ = 1;
  std::map<std::uint64_t, std::function<void()>> callbacks_;
};

// How a successfully opened (2xx) stream ended.
enum class StreamEnd {
  kEof,          // the server closed the stream cleanly
  kIdleTimeout,  // no bytes for `timeout`: a normal reconnect, not an error
  kStopped,      // the line callback returned false
  kCancelled,    // the CancelSource fired
};

struct StreamResult {
  // For a non-2xx status the body is collected into `response.body` and no
  // line is delivered.
  HttpResponse response;
  StreamEnd end = StreamEnd::kEof;
};

// Receives one newline-delimited line (without the newline). Return false to
// stop reading.
using LineCallback = std::function<bool(std::string_view line)>;

// Receives the next piece of a response body (any size, valid during the
// call). Return false to stop reading.
using ChunkCallback = std::function<bool(std::string_view piece)>;

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;

  // Performs one request and returns the response. Blocking; thread-safe.
  virtual Result<HttpResponse> send(const HttpRequest& request) = 0;

  // Opens a streaming request and feeds each body line to `onLine` until the
  // stream ends, the callback stops it or `cancel` fires. Blocking: call it
  // from a thread the caller owns (never from a pplx continuation).
  virtual Result<StreamResult> stream(const HttpRequest& request, const LineCallback& onLine,
                                      CancelSource& cancel) = 0;

  // Like send(), but a 2xx body is handed to `onChunk` piece by piece as it
  // arrives instead of being collected (the returned body is then empty), so
  // a large response is never held whole. Other statuses: the body is in the
  // response and `onChunk` is not called. When `onChunk` returns false the
  // rest of the body is discarded. Default: send(), then the body as one piece.
  virtual Result<HttpResponse> sendChunked(const HttpRequest& request,
                                           const ChunkCallback& onChunk);
};

// TLS and connection settings for one API server.
struct TlsOptions {
  std::string caFile;  // PEM bundle to verify the server with
  std::string caPem;   // or the PEM itself (certificate-authority-data)
  bool insecureSkipVerify = false;
  std::string clientCertFile;  // client certificate chain (PEM)
  std::string clientKeyFile;
  std::string clientCertPem;  // or in memory (client-certificate-data)
  std::string clientKeyPem;
  // Human-readable description of the trust anchor for error messages.
  std::string describeCa() const;
};

}  // namespace exitrec
