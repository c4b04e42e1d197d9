#pragma once
// Which KFP API server the KFP simulator imitates.
//
// KfpVersion selects the behaviour of ReportWorkflowResource
// (backend/src/apiserver/resource/resource_manager.go), read at the tags
// 2.0.0, 2.3.0, 2.4.0, 2.16.1, 2.17.0 and master (7b70c7b95f):
// - k2_0To2_3 and k2_4To2_16: the handler is the same in every tag of both
//   ranges. 2.0.0 → 2.3.0 only gates the GC/outcome metrics on
//   CollectMetrics; 2.3.0 → 2.4.0 only adds SetLastRunTimestamp on the
//   experiment of a run created from a ScheduledWorkflow; 2.4.0 → 2.16.1 only
//   adds model.LargeText, a report-gap histogram and "%s" format strings.
//   None of it is visible through the report API. Both names are kept because
//   they select different compilers (exit-handler shapes) elsewhere.
// - k2_17: adds the resourceVersion fence on terminal reports, the 120 s grace
//   period before deleting an unknown run's Workflow, the run re-read before
//   labelling and the fenced (JSON-patch `test`) label.
// - kMaster: moves delete-on-label after the run read and the
//   pipelines.kubeflow.org/retry-generation fence; UpdateRun is fenced on
//   RetryGeneration.
//
// GatewayErrors selects the error body. go.mod and the swagger of report.proto
// show grpc-gateway v1.16 up to 2.5.x (`gatewayruntimeError`:
// {error, code, message, details}) and grpc-gateway v2 from 2.14.0 on
// (commit cc35187dff; `googlerpcStatus`: {code, message, details}). So the
// 2.4–2.16 range spans both: kAuto picks v1 for 2.0–2.3 and v2 for 2.4–2.16
// (its current releases, 2.14–2.16), 2.17 and master; pass kV1 for 2.4.x/2.5.x.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace exitrec {

enum class KfpVersion : std::uint8_t { k2_0To2_3, k2_4To2_16, k2_17, kMaster };
enum class GatewayErrors : std::uint8_t { kAuto, kV1, kV2 };

// "2.0-2.3", "2.4-2.16", "2.17", "master".
std::string_view kfpVersionName(KfpVersion v);
std::optional<KfpVersion> parseKfpVersion(std::string_view name);
// "2.0-2.3|2.4-2.16|2.17|master", for usage lines and errors.
std::string_view kfpVersionChoices();

std::string_view gatewayErrorsName(GatewayErrors g);  // "auto", "v1", "v2"
std::optional<GatewayErrors> parseGatewayErrors(std::string_view name);
// kAuto resolved for a version (never returns kAuto).
GatewayErrors effectiveGatewayErrors(KfpVersion v, GatewayErrors g);

}  // namespace exitrec
