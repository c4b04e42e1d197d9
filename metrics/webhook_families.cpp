// Exit-task injection and the admission webhook: exit_reconciler_injections_total,
// _webhook_duration_seconds, _webhook_certificate_reloads_total and
// _webhook_certificate_expiry_timestamp_seconds.

#include "metrics/metrics_internal.h"

namespace exitrec {
namespace metrics_internal {
namespace {

const Histogram::BucketBoundaries kWebhookBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                     0.05,   0.1,   0.25,   0.5,   1,    2.5};

}  // namespace

void WebhookFamilies::registerIn(FamilyBuilder& build) {
  using prometheus::BuildCounter;
  using prometheus::BuildGauge;
  using prometheus::BuildHistogram;
  injections = &build(BuildCounter(), "exit_reconciler_injections_total",
                      "Exit-task pod injections, by channel and result.");
  webhookDuration = &build(BuildHistogram(), "exit_reconciler_webhook_duration_seconds",
                           "Admission webhook handling time, by scope.");
  certReloads = &build(BuildCounter(), "exit_reconciler_webhook_certificate_reloads_total",
                       "Webhook serving certificate (re)loads, by result.");
  certExpiry = &build(BuildGauge(), "exit_reconciler_webhook_certificate_expiry_timestamp_seconds",
                      "NotAfter of the loaded webhook serving certificate, Unix seconds.");
  webhookH[0] = &webhookDuration->Add({{"scope", "out_of_scope"}}, kWebhookBuckets);
  webhookH[1] = &webhookDuration->Add({{"scope", "in_scope"}}, kWebhookBuckets);
  certReloadC[0] = &certReloads->Add({{"result", "error"}});
  certReloadC[1] = &certReloads->Add({{"result", "success"}});
  certExpiryG = &certExpiry->Add({});
}

// Every channel × result at 0 (injections are namespace-labelled when enabled).
void WebhookFamilies::precreate() {
  forEach<InjectionChannel, 2>([&](InjectionChannel c) {
    forEach<InjectionResultLabel, 8>([&](InjectionResultLabel r) {
      injections->Add({{"channel", str(labelValue(c))}, {"result", str(labelValue(r))}});
    });
  });
}

}  // namespace metrics_internal

using metrics_internal::str;

void Metrics::injection(InjectionChannel channel, InjectionResultLabel result,
                        std::string_view ns) {
  impl_->webhook.injections
      ->Add(impl_->withNs(
          {{"channel", str(labelValue(channel))}, {"result", str(labelValue(result))}}, ns))
      .Increment();
}

void Metrics::observeWebhookLatency(bool inScope, double seconds) {
  impl_->webhook.webhookH[inScope ? 1 : 0]->Observe(seconds);
}

void Metrics::webhookCertificateLoaded(bool ok, double notAfterUnixSeconds) {
  impl_->webhook.certReloadC[ok ? 1 : 0]->Increment();
  if (ok)
    impl_->webhook.certExpiryG->Set(notAfterUnixSeconds);
}

}  // namespace exitrec
