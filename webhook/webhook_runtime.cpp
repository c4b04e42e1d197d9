#include "webhook/webhook_runtime.h"

#include <spdlog/spdlog.h>

#include <charconv>

#include "certs/self_signed_renewer.h"

namespace exitrec {

Result<std::pair<std::string, int>> splitListenAddress(std::string_view addr) {
  auto bad = [&] {
    return Error(ErrorCode::kInvalidInput,
                 "--webhook-addr: expected [host]:port, got \"" + std::string(addr) + "\"");
  };
  auto colon = addr.rfind(':');
  if (colon == std::string_view::npos)
    return bad();
  std::string host(addr.substr(0, colon));
  std::string_view portText = addr.substr(colon + 1);
  int port = -1;
  auto [ptr, ec] = std::from_chars(portText.data(), portText.data() + portText.size(), port);
  if (ec != std::errc() || ptr != portText.data() + portText.size() || port < 0 || port > 65535) {
    return bad();
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty())
    host = "0.0.0.0";
  return std::make_pair(host, port);
}

Result<std::unique_ptr<WebhookRuntime>> WebhookRuntime::start(const WebhookConfig& config,
                                                              KubeClient& client, Clock& clock,
                                                              WebhookMetrics* metrics) {
  auto listen = splitListenAddress(config.addr);
  if (!listen.ok())
    return listen.error();
  if (config.certFile.empty()) {
    return Error(ErrorCode::kInvalidInput, "--webhook-cert-file is required with --webhook-addr");
  }
  std::unique_ptr<SelfSignedTlsRenewer> renewer;
  if (config.selfSigned) {
    SelfSignedOptions so;
    so.namespace_ = config.namespace_;
    so.secretName = config.secretName;
    so.serviceName = config.serviceName;
    so.configurationName = config.configurationName;
    so.certFile = config.certFile;
    so.keyFile = config.keyFile.empty() ? config.certFile + ".key" : config.keyFile;
    // First pass now (the server needs the files), then periodically.
    auto started = SelfSignedTlsRenewer::start(client, clock, so, RenewerTiming{});
    if (!started.ok())
      return started.error();
    renewer = std::move(started).value();
  }
  std::unique_ptr<WebhookRuntime> rt(new WebhookRuntime());
  rt->renewer_ = std::move(renewer);
  rt->provider_ = std::make_unique<KubeRunStateProvider>(client, clock);
  AdmissionWebhookOptions wo;
  wo.address = listen.value().first;
  wo.port = listen.value().second;
  wo.certFile = config.certFile;
  wo.keyFile = config.keyFile;
  wo.deadline = config.deadline;
  rt->webhook_ = std::make_unique<AdmissionWebhook>(wo, *rt->provider_, clock, metrics);
  Status s = rt->webhook_->start();
  if (!s.ok())
    return s.error();
  spdlog::info("webhook: serving {} on {}:{} (deadline {} ms)", kMutatePodsPath, wo.address,
               rt->webhook_->port(), config.deadline.count());
  return rt;
}

WebhookRuntime::~WebhookRuntime() {
  stop();
}

void WebhookRuntime::stop() {
  if (renewer_)
    renewer_->stop();
  if (webhook_)
    webhook_->stop();
}

}  // namespace exitrec
