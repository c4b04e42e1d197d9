#include "k8sclient/client_factory.h"

#include "k8sclient/cpprest_transport.h"

namespace exitrec {

TokenSource tokenSourceFor(const RestConfig& cfg, Clock& clock) {
  if (!cfg.token.empty())
    return TokenSource::fixed(cfg.token);
  if (!cfg.tokenFile.empty())
    return TokenSource::file(cfg.tokenFile, clock);
  return TokenSource();
}

Result<std::unique_ptr<KubeClient>> makeKubeClient(const RestConfig& cfg, Clock& clock,
                                                   KubeClientOptions options) {
  if (cfg.server.rfind("https://", 0) != 0 && cfg.server.rfind("http://", 0) != 0) {
    return Error(ErrorCode::kInvalidInput, "server \"" + cfg.server + "\" is not an http(s) URL");
  }
  auto transport = makeCpprestTransport(cfg.tls);
  if (!transport)
    return transport.error();
  return std::make_unique<KubeClient>(std::shared_ptr<HttpTransport>(std::move(transport).value()),
                                      cfg.server, tokenSourceFor(cfg, clock), std::move(options));
}

}  // namespace exitrec
