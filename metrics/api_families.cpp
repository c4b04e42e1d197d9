// API requests: exit_reconciler_kube_api_requests_total and
// _kube_api_request_duration_seconds (Kubernetes), _kfp_api_requests_total and
// _kfp_api_request_duration_seconds (KFP); and the KFP answers the controller
// acts on: _kfp_endpoint_not_found_total, _kfp_unknown_runs_total,
// _kfp_state_regressions_total.

#include "metrics/metrics_internal.h"

namespace exitrec {
namespace metrics_internal {
namespace {

const Histogram::BucketBoundaries kRequestBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                     0.5,   1,    2.5,   5,    10,  30};

}  // namespace

void ApiFamilies::registerRequestFamilies(FamilyBuilder& build) {
  using prometheus::BuildCounter;
  using prometheus::BuildHistogram;
  kubeRequests = &build(BuildCounter(), "exit_reconciler_kube_api_requests_total",
                        "Kubernetes API requests, by verb, resource and HTTP code.");
  kubeDuration = &build(BuildHistogram(), "exit_reconciler_kube_api_request_duration_seconds",
                        "Kubernetes API request latency (watch: time to response headers).");
  kfpRequests = &build(BuildCounter(), "exit_reconciler_kfp_api_requests_total",
                       "KFP API requests, by operation and HTTP code.");
  kfpDuration = &build(BuildHistogram(), "exit_reconciler_kfp_api_request_duration_seconds",
                       "KFP API request latency, by operation.");
  forEach<KfpOperation, 2>([&](KfpOperation op) {
    kfpRequests->Add({{"operation", str(labelValue(op))}, {"code", "200"}});
    kfpDuration->Add({{"operation", str(labelValue(op))}}, kRequestBuckets);
  });
  // The calls of normal operation, with their success code, exist at 0.
  for (const ApiCall& call : kKnownApiCalls) {
    kubeRequests->Add({{"verb", str(call.verb)},
                       {"resource", str(call.resource)},
                       {"code", httpCodeLabel(call.successStatus)}});
    kubeDuration->Add({{"verb", str(call.verb)}, {"resource", str(call.resource)}},
                      kRequestBuckets);
  }
}

void ApiFamilies::registerKfpAnswerFamilies(FamilyBuilder& build) {
  using prometheus::BuildCounter;
  auto& endpointNotFound =
      build(BuildCounter(), "exit_reconciler_kfp_endpoint_not_found_total",
            "KFP answers of HTTP 404 without KFP's NotFound status, by operation: no KFP API "
            "at --kfp-api-url (a configuration error; retried).");
  forEach<KfpOperation, 2>([&](KfpOperation op) {
    kfpEndpointNotFoundC[idx(op)] = &endpointNotFound.Add({{"operation", str(labelValue(op))}});
  });
  kfpUnknownRunsC = &build(BuildCounter(), "exit_reconciler_kfp_unknown_runs_total",
                           "Corrected runs not reported because KFP has no such run (GET run "
                           "answered NotFound; a report would make KFP delete the Workflow).")
                         .Add({});
  kfpStateRegressionsC =
      &build(BuildCounter(), "exit_reconciler_kfp_state_regressions_total",
             "Verified runs found no longer FAILED in KFP when re-verified: a late report of "
             "an older Workflow state overwrote the correction (KFP 2.0-2.16); reported again.")
           .Add({});
}

}  // namespace metrics_internal

using metrics_internal::allowListed;
using metrics_internal::idx;
using metrics_internal::kRequestBuckets;
using metrics_internal::str;

void Metrics::apiRequest(std::string_view verb, std::string_view resource, int status,
                         double seconds) {
  std::string v = str(allowListed(verb, kApiVerbLabels));
  std::string r = str(allowListed(resource, kApiResourceLabels));
  impl_->api.kubeRequests->Add({{"verb", v}, {"resource", r}, {"code", httpCodeLabel(status)}})
      .Increment();
  impl_->api.kubeDuration->Add({{"verb", v}, {"resource", r}}, kRequestBuckets).Observe(seconds);
}

void Metrics::kfpRequest(KfpOperation operation, int status, double seconds) {
  std::string op = str(labelValue(operation));
  impl_->api.kfpRequests->Add({{"operation", op}, {"code", httpCodeLabel(status)}}).Increment();
  impl_->api.kfpDuration->Add({{"operation", op}}, kRequestBuckets).Observe(seconds);
}

void Metrics::kfpEndpointNotFound(KfpOperation operation) {
  impl_->api.kfpEndpointNotFoundC[idx(operation)]->Increment();
}

void Metrics::kfpUnknownRun() {
  impl_->api.kfpUnknownRunsC->Increment();
}

void Metrics::kfpStateRegression() {
  impl_->api.kfpStateRegressionsC->Increment();
}

}  // namespace exitrec
