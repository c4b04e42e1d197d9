#include "k8sclient/http_transport.h"

#include <strings.h>

namespace exitrec {

void HttpHeaders::set(std::string name, std::string value) {
  for (auto& [n, v] : entries) {
    if (n.size() == name.size() && strncasecmp(n.c_str(), name.c_str(), n.size()) == 0) {
      v = std::move(value);
      return;
    }
  }
  entries.emplace_back(std::move(name), std::move(value));
}

const std::string* HttpHeaders::find(std::string_view name) const {
  for (const auto& [n, v] : entries) {
    if (n.size() == name.size() && strncasecmp(n.data(), name.data(), n.size()) == 0)
      return &v;
  }
  return nullptr;
}

void CancelSource::cancel() {
  std::map<std::uint64_t, std::function<void()>> cbs;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (cancelled_.exchange(true))
      return;
    cbs.swap(callbacks_);
  }
  for (auto& [id, cb] : cbs)
    cb();
}

std::uint64_t CancelSource::onCancel(std::function<void()> cb) {
  {
    std::lock_guard<std::mutex> g(mu_);
    if (!cancelled_.load()) {
      const std::uint64_t id = nextId_++;
      callbacks_.emplace(id, std::move(cb));
      return id;
    }
  }
  cb();
  return 0;
}

void CancelSource::removeCallback(std::uint64_t id) {
  std::lock_guard<std::mutex> g(mu_);
  callbacks_.erase(id);
}

Result<HttpResponse> HttpTransport::sendChunked(const HttpRequest& request,
                                                const ChunkCallback& onChunk) {
  auto resp = send(request);
  if (resp && resp->status >= 200 && resp->status < 300) {
    if (!resp->body.empty())
      onChunk(resp->body);
    resp->body.clear();
  }
  return resp;
}

std::string TlsOptions::describeCa() const {
  if (insecureSkipVerify)
    return "verification disabled (insecure-skip-tls-verify)";
  if (!caFile.empty())
    return "CA file " + caFile;
  if (!caPem.empty())
    return "CA from certificate-authority-data";
  return "system trust store";
}

}  // namespace exitrec
