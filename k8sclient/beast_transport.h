#pragma once
// A plain keep-alive HTTP/1.1 implementation of HttpTransport on
// Boost.Beast/Asio (header-only) and OpenSSL. This header does not include
// Boost; only beast_transport.cpp does.
//
// Why: cpprest hands every request between its asio thread, a pplx task and
// the caller, and copies the body through its own buffers; for the run-history
// audit (one 300 KB GET per run) those hand-offs, not parsing, bounded the
// throughput. Here the calling thread does the whole exchange itself: it runs
// the connection's own io_context until its operation completes.
//
// Behaviour:
// - Connections are pooled per (scheme, host, port); up to `maxIdlePerHost`
//   idle keep-alive connections are kept (size it to the caller's
//   concurrency). A connection goes back to the pool only after a complete
//   response that allows keep-alive.
// - An idempotent GET on a reused connection that fails before any response
//   byte arrived (the server had closed the idle connection) is retried once
//   on a new connection.
// - Timeouts: `connectTimeout` for resolve + connect + TLS handshake; the
//   request's timeout bounds the rest of a short exchange, and is the idle
//   timeout between reads of a stream.
// - Bodies: Content-Length and chunked. A body larger than maxResponseBytes
//   fails with kInvalidInput naming the URL and the limit.
// - TLS is verified by default: the CA file/PEM given, else the system store;
//   SNI is sent and the certificate must match the host (RFC 2818/6125, by
//   name or IP). insecureSkipVerify turns verification off (warned once).
// - Errors (connect, TLS, timeout, a reset connection) are kTransient and
//   name the method and URL without its query (TLS: the CA in use); a
//   cancelled stream ends with StreamEnd::kCancelled. Request headers (the
//   bearer token) never appear in a message or a log.

#include <chrono>
#include <cstddef>
#include <memory>

#include "common/result.h"
#include "k8sclient/http_transport.h"

namespace exitrec {

struct BeastTransportOptions {
  std::size_t maxIdlePerHost = 8;
  std::chrono::milliseconds connectTimeout{std::chrono::seconds(10)};
  std::size_t maxResponseBytes = std::size_t{512} << 20;
};

// Fails with kInvalidInput when a configured CA/cert/key is unreadable or
// not PEM.
Result<std::unique_ptr<HttpTransport>> makeBeastTransport(const TlsOptions& tls,
                                                          BeastTransportOptions options = {});

}  // namespace exitrec
