#pragma once
// The cpprestsdk implementation of HttpTransport. This header deliberately
// does not include <cpprest/...>; only cpprest_transport.cpp does.
//
// Behaviour (see docs/k8sclient.md):
// - Short requests share one pooled http_client per (server, timeout); an
//   idempotent GET that fails with "Failed to read HTTP status line" (a pooled
//   keep-alive connection the server had closed) is retried once.
// - Every stream gets its own http_client (one TCP connection per watch) whose
//   idle timeout is the request's timeout; an idle timeout ends the stream
//   with StreamEnd::kIdleTimeout.
// - TLS is verified by default against the system store or the given CA;
//   insecureSkipVerify disables verification (logged as a warning once).
//   TLS failures are reported as kTransient errors naming the URL and the CA.
// - Blocking calls run on the caller's thread; nothing blocks inside a pplx
//   continuation.

#include <memory>

#include "common/result.h"
#include "k8sclient/http_transport.h"

namespace exitrec {

// Fails with kInvalidInput when a configured CA/cert/key file is unreadable.
Result<std::unique_ptr<HttpTransport>> makeCpprestTransport(const TlsOptions& tls);

}  // namespace exitrec
