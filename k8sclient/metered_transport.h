#pragma once
// MeteredTransport: an HttpTransport decorator that reports every Kubernetes
// API request to a TransportObserver: the verb and resource (client-go's
// names, read from the method and URL), the HTTP status and the latency.
// Requests and responses pass through unchanged.
//
// Thread-safety: as the inner transport; the observer is called on the
// requesting thread, concurrently from many threads.

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "k8sclient/http_transport.h"

namespace exitrec {

// Told about each request once it has ended (a stream: when it closes).
// Implementations must be thread-safe and cheap; they must not throw.
class TransportObserver {
 public:
  virtual ~TransportObserver() = default;
  // `verb`: get, list, watch, create, update, patch or delete; `resource`:
  // the plural ("workflows"), "other" when the path names none. `status`:
  // the HTTP status, 0 when no response arrived (transport error).
  virtual void onRequest(std::string_view verb, std::string_view resource, int status,
                         std::chrono::duration<double> latency) = 0;
};

class MeteredTransport final : public HttpTransport {
 public:
  // `observer` (nullable: nothing is reported) must outlive the transport.
  MeteredTransport(std::shared_ptr<HttpTransport> inner, TransportObserver* observer)
      : inner_(std::move(inner)), observer_(observer) {}
  Result<HttpResponse> send(const HttpRequest& request) override;
  Result<HttpResponse> sendChunked(const HttpRequest& request,
                                   const ChunkCallback& onChunk) override;
  Result<StreamResult> stream(const HttpRequest& request, const LineCallback& onLine,
                              CancelSource& cancel) override;

  // ("list", "workflows") from "GET https://h/apis/argoproj.io/v1alpha1/workflows?limit=500".
  static std::pair<std::string, std::string> classify(const std::string& method,
                                                      const std::string& url);

 private:
  template <typename Call, typename StatusOf>
  auto metered(const HttpRequest& request, Call&& call, StatusOf&& statusOf);
  std::shared_ptr<HttpTransport> inner_;
  TransportObserver* observer_;
};

}  // namespace exitrec
