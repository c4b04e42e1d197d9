#include "webhook/webhook_runtime.h"

#include <spdlog/spdlog.h>

#include "certs/self_signed_renewer.h"
#include "common/listen_address.h"

namespace exitrec {

Result<std::pair<std::string, int>> splitListenAddress(std::string_view addr) {
  auto parsed = parseListenAddress(addr);  // common/listen_address.h
  if (!parsed)
    return Error(ErrorCode::kInvalidInput, "--webhook-addr: " + parsed.error().message);
  return std::make_pair(parsed->host, parsed->port);
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
