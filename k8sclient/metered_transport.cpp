#include "k8sclient/metered_transport.h"

#include <vector>

namespace exitrec {

std::pair<std::string, std::string> MeteredTransport::classify(const std::string& method,
                                                               const std::string& url) {
  // Path segments after scheme://host.
  std::size_t start = url.find("://");
  start = url.find('/', start == std::string::npos ? 0 : start + 3);
  std::string path = start == std::string::npos ? "/" : url.substr(start);
  std::string query;
  if (auto q = path.find('?'); q != std::string::npos) {
    query = path.substr(q + 1);
    path.resize(q);
  }
  std::vector<std::string> seg;
  for (std::size_t i = 1; i <= path.size();) {
    std::size_t j = path.find('/', i);
    if (j == std::string::npos)
      j = path.size();
    if (j > i)
      seg.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  std::size_t idx = 0;
  if (!seg.empty() && seg[0] == "api")
    idx = 2;  // /api/v1/...
  else if (!seg.empty() && seg[0] == "apis")
    idx = 3;  // /apis/g/v/...
  if (idx < seg.size() && seg[idx] == "namespaces" && idx + 2 < seg.size())
    idx += 2;
  std::string resource = idx < seg.size() ? seg[idx] : "other";
  const bool named = idx + 1 < seg.size();
  std::string verb = "get";
  if (method == "GET") {
    if (query.find("watch=true") != std::string::npos ||
        query.find("watch=1") != std::string::npos) {
      verb = "watch";
    } else {
      verb = named ? "get" : "list";
    }
  } else if (method == "POST") {
    verb = "create";
  } else if (method == "PUT") {
    verb = "update";
  } else if (method == "PATCH") {
    verb = "patch";
  } else if (method == "DELETE") {
    verb = "delete";
  }
  return {verb, resource};
}

// Times `call` (which runs `request` on the inner transport) and reports it;
// `statusOf` reads the HTTP status from its result (0 = no response).
template <typename Call, typename StatusOf>
auto MeteredTransport::metered(const HttpRequest& request, Call&& call, StatusOf&& statusOf) {
  const auto start = std::chrono::steady_clock::now();
  auto r = call();
  if (observer_ != nullptr) {
    auto [verb, resource] = classify(request.method, request.url);
    observer_->onRequest(verb, resource, r ? statusOf(*r) : 0,
                         std::chrono::steady_clock::now() - start);
  }
  return r;
}

Result<HttpResponse> MeteredTransport::send(const HttpRequest& request) {
  return metered(
      request, [&] { return inner_->send(request); },
      [](const HttpResponse& resp) { return resp.status; });
}

Result<HttpResponse> MeteredTransport::sendChunked(const HttpRequest& request,
                                                   const ChunkCallback& onChunk) {
  return metered(
      request, [&] { return inner_->sendChunked(request, onChunk); },
      [](const HttpResponse& resp) { return resp.status; });
}

Result<StreamResult> MeteredTransport::stream(const HttpRequest& request,
                                              const LineCallback& onLine, CancelSource& cancel) {
  return metered(
      request, [&] { return inner_->stream(request, onLine, cancel); },
      [](const StreamResult& sr) { return sr.response.status; });
}

}  // namespace exitrec
