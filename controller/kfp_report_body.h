#pragma once
// What a Workflow reported to KFP may carry: the one function every caller
// (the live reconciler, KfpClient, the backfill) builds a report from.
//
// Why it exists: KFP's report handler DELETES the Workflow CR when the
// reported object carries the label pipeline/persistedFinalState
// (`ReportWorkflowResource` in backend/src/apiserver/resource/resource_manager.go:
// `if execSpec.PersistedFinalState() { ...Delete(...) }`, at 2.0.0, 2.3.0,
// 2.4.0, 2.16.1, 2.17.0 and master). `PersistedFinalState()` tests only the
// label's presence. The API server puts that label on every Workflow it has
// stored in a final state, and the persistence agent reports within about a
// second of completion, so a completed Workflow read from the cluster almost
// always carries it. A report built from it unchanged makes KFP delete the run
// being corrected (and, through ownerReferences, its pods).
//
// Contract of kfpReportableWorkflow():
// - the label pipeline/persistedFinalState is removed (the labels map is kept,
//   possibly empty); nothing else is changed;
// - metadata.resourceVersion is kept unless the caller asks otherwise: KFP
//   2.17+ fences terminal reports on it (`workflowStillMatchesReportedVersion`):
//   the live path reports the object exactly as its record patch returned it.
//   A backfill of a CR that no longer exists may drop it (an empty version
//   passes that fence, and a same-named newer CR then cannot be confused with
//   the reported one);
// - input that is not a JSON object (or whose metadata/labels are not objects)
//   is kInvalidInput naming what was wrong; nothing throws.
//
// Thread-safety: pure functions.

#include <string>
#include <string_view>

#include "common/result.h"

namespace exitrec {

struct KfpReportBodyOptions {
  bool keepResourceVersion = true;
};

// The Workflow JSON to report (see the contract above).
Result<std::string> kfpReportableWorkflow(std::string_view workflowJson,
                                          KfpReportBodyOptions options = {});

// The HTTP body of POST /apis/v{1,2}beta1/workflows: kfpReportableWorkflow()
// as a JSON string literal (the report API's `body: "workflow"` is a string
// field, backend/api/v1beta1/report.proto).
Result<std::string> kfpReportBody(std::string_view workflowJson, KfpReportBodyOptions options = {});

// Whether `workflowJson` (a Workflow, not a report body) carries the label.
// Unparseable input answers false.
bool carriesPersistedFinalState(std::string_view workflowJson);

}  // namespace exitrec
