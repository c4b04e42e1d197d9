// Metrics: the registry, build info and leader status; every other family is
// registered and recorded by its own file (see metrics/metrics_internal.h).

#include "metrics/metrics.h"

#include <prometheus/text_serializer.h>

#include "common/clock.h"
#include "metrics/metrics_internal.h"

#ifndef EXITREC_VERSION
#define EXITREC_VERSION "unknown"
#endif
#ifndef EXITREC_REVISION
#define EXITREC_REVISION "unknown"
#endif

namespace exitrec {

Metrics::Impl::Impl(MetricsOptions opts)
    : options(std::move(opts)), clock(options.clock ? options.clock : &SystemClock::instance()) {
  using prometheus::BuildGauge;
  if (options.version.empty())
    options.version = EXITREC_VERSION;
  if (options.revision.empty())
    options.revision = EXITREC_REVISION;

  // Registration order is the exposition's order.
  metrics_internal::FamilyBuilder build(*registry);
  runs.registerRunFamilies(build);
  webhook.registerIn(build);
  api.registerRequestFamilies(build);
  watch.registerIn(build);
  runs.registerStateFamilies(build);
  queues.registerIn(build);
  auto& leader = build(BuildGauge(), "leader_election_master_status",
                       "1 while this replica holds the lease named by `name`, 0 on a standby.");
  auto& buildInfo = build(BuildGauge(), "exit_reconciler_build_info",
                          "Always 1; labels carry the build's version and revision.");
  buildInfo.Add({{"version", options.version}, {"revision", options.revision}}).Set(1);
  leaderG = &leader.Add({{"name", options.leaseName}});
  leaderG->Set(0);
  api.registerKfpAnswerFamilies(build);
  history.registerIn(build);
  // Namespaces are not known up front: with the namespace label, per-run
  // series appear with their first sample.
  if (!options.namespaceLabel) {
    runs.precreate();
    webhook.precreate();
  }
}

Metrics::Metrics(MetricsOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Metrics::~Metrics() = default;

void Metrics::setLeader(bool leader) {
  impl_->leaderG->Set(leader ? 1 : 0);
}

std::string Metrics::exposition() const {
  return prometheus::TextSerializer().Serialize(impl_->registry->Collect());
}

std::shared_ptr<prometheus::Registry> Metrics::registry() const {
  return impl_->registry;
}

const MetricsOptions& Metrics::options() const {
  return impl_->options;
}

}  // namespace exitrec
