// libFuzzer target: the engine's whole read path (readWorkflows: JSON, YAML,
// List, NDJSON, multi-document YAML, compressed nodes) followed by evaluate()
// and verdictToJson(), on arbitrary bytes. Besides crashes, leaks and UB
// (ASan/UBSan), it aborts on broken policy invariants:
// - a Failed/Error run is never turned into another phase;
// - only completed runs are mis-reported;
// - the verdict JSON is one valid JSON object with exactly the audit keys;
// - the fast nodes-map scan and the validating decoder read the same nodes
//   and reject the same workflows with the same message (only when the scan
//   is compiled in: see engine/CMakeLists.txt; the start-up line says so);
// - a workflow whose compressed node status decodes past the bound (1 MiB
//   here, so that bombs are cheap to explore) is not evaluable.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "engine/json_reader.h"
#include "engine/outcome.h"
#include "engine/workflow.h"
#include "test/engine/node_digest.h"

namespace {

void check(bool ok, const char* what, const exitrec::Verdict& v) {
  if (ok)
    return;
  std::fprintf(stderr, "invariant broken: %s\nverdict: %s\n", what,
               exitrec::verdictToJson(v).c_str());
  std::abort();
}

void checkVerdict(const exitrec::Workflow& wf, const exitrec::Verdict& v) {
  using exitrec::Phase;
  if (!wf.nodeStatusOverLimit.empty()) {
    check(wf.nodes.empty() && !v.evaluable && v.cause == "node-status-too-large",
          "node status over the bound is not evaluable", v);
  }
  if (v.evaluable && exitrec::isFailedOrError(v.reportedPhase)) {
    check(v.truePhase == v.reportedPhase, "a failed run keeps its reported phase", v);
  }
  if (v.misreported) {
    check(v.completed, "only completed runs are mis-reported", v);
    check(v.cause.has_value(), "a mis-reported run names its cause", v);
  }
  std::string json = exitrec::verdictToJson(v);
  check(json.find('\n') == std::string::npos, "verdict JSON is one line", v);
  auto parsed = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  check(parsed.is_object(), "verdict JSON parses as an object", v);
  check(parsed.size() == 10, "verdict JSON has exactly the audit keys", v);
  for (const char* key : {"namespace", "name", "runId", "generation", "reportedPhase", "truePhase",
                          "misreported", "cause", "failures", "exitHandlers"}) {
    check(parsed.contains(key), key, v);
  }
}

// Per workflow: its node digest or its error, as readWorkflows reports them.
std::string readDigest(std::string_view text, bool fastScan) {
  exitrec::setNodeScanFastPath(fastScan);
  std::string out;
  exitrec::Status st = exitrec::readWorkflows(
      text, [&](exitrec::Result<exitrec::Workflow> wf, std::string_view origin) {
        out.append(origin).append(" => ");
        out.append(wf.ok() ? exitrec::testing::nodeDigest(*wf) : "error: " + wf.error().message);
        out.push_back('\n');
      });
  exitrec::setNodeScanFastPath(true);
  if (!st.ok())
    out.append("stream error: ").append(st.error().message);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  exitrec::setMaxDecompressedNodeBytes(std::size_t{1} << 20);
  std::fprintf(stderr, "engine_fuzz: fast nodes scan %s\n",
               exitrec::nodeScanFastPathCompiled()
                   ? "compiled in: compared with the validating decoder"
                   : "not compiled in (validating decoder only)");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  // The last byte picks the exit-task policy so both paths are explored.
  exitrec::EvaluateOptions options;
  if (size > 0 && (data[size - 1] & 1) != 0) {
    options.exitTaskFailure = exitrec::ExitTaskFailurePolicy::kFail;
  }
  exitrec::Status status = exitrec::readWorkflows(
      text, [&](exitrec::Result<exitrec::Workflow> workflow, std::string_view /*origin*/) {
        if (!workflow.ok())
          return;
        checkVerdict(*workflow, exitrec::evaluate(*workflow, options));
      });
  (void)status;  // rejecting the input as a whole is a valid outcome
  if (readDigest(text, true) != readDigest(text, false)) {
    std::fprintf(stderr, "invariant broken: fast nodes scan and validating decoder disagree\n");
    std::abort();
  }
  // The compressed-nodes decoder on its own (base64 + gzip/zstd/brotli).
  auto nodes = exitrec::decompressNodes(text, exitrec::maxDecompressedNodeBytes());
  (void)nodes;
  return 0;
}
