// Plain Argo workflows: Argo's own verdict (assessDAGPhase, Steps, Retry,
// entry node, onExit override), never mis-reported, masked failures listed.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "engine/argo_assess.h"
#include "engine/outcome.h"
#include "test/engine/wf_builder.h"

namespace exitrec {
namespace {

using testing::Json;
using testing::WfBuilder;

Json task(const std::string& name, const std::string& tmpl, Json extra = Json::object()) {
  Json t = std::move(extra);
  t["name"] = name;
  t["template"] = tmpl;
  return t;
}

std::vector<std::string> names(const std::vector<Failure>& failures) {
  std::vector<std::string> out;
  for (const auto& f : failures)
    out.push_back(f.nodeName);
  return out;
}

// ---------- the upstream status fixtures (reference B12) ----------

std::optional<std::string> readFixture(const std::string& name) {
  std::filesystem::path p =
      std::filesystem::path(EXITREC_SHARED_DIR) / "fixtures/argo/status" / name;
  std::ifstream in(p);
  if (!in)
    return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

#define LOAD_FIXTURE(var, file)                                                   \
  auto var##Text = readFixture(file);                                             \
  if (!var##Text) {                                                               \
    GTEST_SKIP() << "shared fixtures not found at " EXITREC_SHARED_DIR            \
                    "/fixtures/argo/status: skipping the Argo verdict for " file; \
  }                                                                               \
  auto var##Parsed = parseWorkflowYaml(*var##Text);                               \
  ASSERT_TRUE(var##Parsed.ok()) << var##Parsed.error().message;                   \
  const Workflow& var = *var##Parsed

TEST(ArgoFixtures, DagRetrySucceededIsSucceededDespiteItsLabel) {
  LOAD_FIXTURE(wf, "dag_retry_succeeded.yaml");
  EXPECT_EQ(wf.labels.at("workflows.argoproj.io/phase"), "Failed");
  Verdict v = evaluate(wf);
  EXPECT_EQ(v.generation, Generation::kArgo);
  EXPECT_EQ(v.reportedPhase, Phase::kNone);
  EXPECT_EQ(v.truePhase, Phase::kSucceeded);
  EXPECT_FALSE(v.misreported);
  EXPECT_TRUE(v.failures.empty());  // attempts of a Retry that succeeded
}

TEST(ArgoFixtures, DagDisableFailFastIsFailed) {
  LOAD_FIXTURE(wf, "dag-disable-fail-fast.yaml");
  Verdict v = evaluate(wf);
  EXPECT_EQ(v.truePhase, Phase::kFailed);
  EXPECT_FALSE(v.misreported);
  EXPECT_EQ(v.failures.size(), 2u);  // C(0), C(1)
  EXPECT_TRUE(v.maskedFailures.empty());
  // The replay agrees with the stored phase.
  ArgoAssessor assessor(wf);
  EXPECT_EQ(assessor.workflowPhase(), Phase::kFailed);
}

TEST(ArgoFixtures, DagExhaustedRetriesSnapshotBecomesFailed) {
  LOAD_FIXTURE(wf, "dag-exhausted-retries-xfail.yaml");
  Verdict v = evaluate(wf);
  EXPECT_EQ(v.reportedPhase, Phase::kRunning);
  EXPECT_FALSE(v.completed);
  EXPECT_EQ(v.truePhase, Phase::kFailed);  // what the next reconcile writes
  EXPECT_FALSE(v.misreported);
  EXPECT_EQ(names(v.failures), (std::vector<std::string>{"retry-with-dags.sub-dag1.fail(0)",
                                                         "retry-with-dags.sub-dag1.fail(1)"}));
}

TEST(ArgoFixtures, StepsFailedRetriesSnapshotBecomesFailed) {
  LOAD_FIXTURE(wf, "steps-failed-retries.yaml");
  Verdict v = evaluate(wf);
  EXPECT_EQ(v.reportedPhase, Phase::kRunning);
  EXPECT_EQ(v.truePhase, Phase::kFailed);
  EXPECT_FALSE(v.misreported);
  EXPECT_EQ(v.failures.size(), 4u);
  // delayed-fail is still Running in the snapshot, with retries exhausted.
  ArgoAssessor assessor(wf);
  EXPECT_EQ(assessor.nodePhase(*wf.nodeByName("failed-retries-tjjsc[0].delayed-fail")),
            Phase::kFailed);
}

// ---------- generation of the compiled KFP specs ----------

// The compiled files carry only generateName: give them a name and a run id.
std::optional<Workflow> loadCompiled(const std::string& relative) {
  std::filesystem::path p = std::filesystem::path(EXITREC_SHARED_DIR) / "fixtures/kfp" / relative;
  std::ifstream in(p);
  if (!in)
    return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  std::size_t at = text.find("\n  generateName:");
  if (at == std::string::npos)
    return std::nullopt;
  text.insert(at + 1, "  name: test-run\n  labels:\n    pipeline/runid: r1\n");
  auto wf = parseWorkflowYaml(text);
  if (!wf) {
    ADD_FAILURE() << relative << ": " << wf.error().message;
    return std::nullopt;
  }
  return std::move(wf).value();
}

TEST(CompiledFixtures, GenerationFromTheSpec) {
  struct Case {
    const char* file;
    Generation expected;
  } cases[] = {
      {"compiled/pipeline_with_exit_handler.yaml", Generation::kKfpV2Hook},
      {"compiled/pipeline_with_multiple_exit_handlers.yaml", Generation::kKfpV2Hook},
      {"compiled/pipeline_as_exit_task.yaml", Generation::kKfpV2Hook},
      {"compiled/pipeline_with_task_final_status.yaml", Generation::kKfpV2Hook},
      {"compiled/pipeline_with_input_status_state.yaml", Generation::kKfpV2Hook},
      {"compiled/v2.4-exit_handler.yaml", Generation::kKfpV2Hook},
      // A hook on an ordinary task is not an exit handler, but it is hook compilation.
      {"compiled/pipeline_with_task_using_ignore_upstream_failure.yaml", Generation::kKfpV2Hook},
      {"compiled/pipeline_with_loops.yaml", Generation::kKfpV2},
      {"compiled/pipeline_with_condition.yaml", Generation::kKfpV2},
      {"compiled/pipeline_with_retry.yaml", Generation::kKfpV2},
      {"v1/basic.yaml", Generation::kKfpV1},
  };
  if (!std::filesystem::exists(std::filesystem::path(EXITREC_SHARED_DIR) / "fixtures/kfp")) {
    GTEST_SKIP() << "shared fixtures not found at " EXITREC_SHARED_DIR
                    "/fixtures/kfp: skipping generation checks of the compiled KFP specs";
  }
  for (const auto& c : cases) {
    auto wf = loadCompiled(c.file);
    ASSERT_TRUE(wf.has_value()) << c.file;
    Verdict v = evaluate(*wf);
    EXPECT_EQ(v.generation, c.expected) << c.file;
    EXPECT_FALSE(v.misreported) << c.file;  // no status: nothing to judge
  }
  auto retry = loadCompiled("compiled/pipeline_with_retry.yaml");
  ASSERT_TRUE(retry.has_value());
  const Template* impl = retry->templateByName("retry-system-container-impl");
  ASSERT_NE(impl, nullptr);
  EXPECT_TRUE(impl->hasRetryStrategy);
  EXPECT_FALSE(impl->retryLimit.has_value());  // a parameter: unknown until run time
}

// ---------- DAG rules ----------

// wf → A → B (leaf). Phases of A, B and what the DAG says.
WfBuilder dagWf(const std::string& aPhase, const std::string& bPhase, Json bExtra,
                const std::string& wfPhase = "", Json dagExtra = Json::object()) {
  WfBuilder b("d", false);
  if (!wfPhase.empty())
    b.phase(wfPhase);
  b.doc()["spec"]["entrypoint"] = "main";
  b.dag("main", Json::array({task("A", "t"), task("B", "t", bExtra)}), dagExtra);
  b.container("t");
  b.node("d", "DAG", "Running", "main");
  b.node("d.A", "Pod", aPhase, "t", "d", "d");
  if (bPhase == "Omitted") {
    b.node("d.B", "Skipped", "Omitted", "t", "d.A", "d");
  } else if (!bPhase.empty()) {
    b.node("d.B", "Pod", bPhase, "t", "d.A", "d");
  }
  return b;
}

TEST(ArgoDag, LeafDecides) {
  Verdict v = dagWf("Succeeded", "Failed", {{"depends", "A"}}).eval();
  EXPECT_EQ(v.truePhase, Phase::kFailed);
  EXPECT_TRUE(v.maskedFailures.empty());
}

TEST(ArgoDag, DependsOnFailedAbsorbsTheFailure) {
  Verdict v = dagWf("Failed", "Succeeded", {{"depends", "A.Failed"}}).eval();
  EXPECT_EQ(v.truePhase, Phase::kSucceeded);
  EXPECT_FALSE(v.misreported);
  EXPECT_EQ(names(v.failures), std::vector<std::string>{"d.A"});
  EXPECT_EQ(names(v.maskedFailures), std::vector<std::string>{"d.A"});
}

TEST(ArgoDag, OmittedLeafInheritsTheFailure) {
  Verdict v = dagWf("Failed", "Omitted", {{"depends", "A.Succeeded"}}).eval();
  EXPECT_EQ(v.truePhase, Phase::kFailed);
  EXPECT_TRUE(v.maskedFailures.empty());
}

TEST(ArgoDag, ContinueOnCoversAnOmittedLeaf) {
  // argo-workflows#13498: the inherited failure is dropped by the leaf's continueOn.
  Verdict v = dagWf("Failed", "Omitted",
                    {{"dependencies", Json::array({"A"})}, {"continueOn", {{"failed", true}}}})
                  .eval();
  EXPECT_EQ(v.truePhase, Phase::kSucceeded);
  EXPECT_EQ(names(v.maskedFailures), std::vector<std::string>{"d.A"});
  Verdict e = dagWf("Error", "Omitted",
                    {{"dependencies", Json::array({"A"})}, {"continueOn", {{"failed", true}}}})
                  .eval();
  EXPECT_EQ(e.truePhase, Phase::kError);  // continueOn.failed does not cover Error
}

TEST(ArgoDag, MissingTargetIsRunning) {
  Verdict v = dagWf("Succeeded", "", {{"depends", "A"}}).eval();
  EXPECT_EQ(v.truePhase, Phase::kRunning);
  Verdict running = dagWf("Running", "", {{"depends", "A"}}).eval();
  EXPECT_EQ(running.truePhase, Phase::kRunning);
}

TEST(ArgoDag, FailFastOnlyMattersForMissingTargets) {
  // Targets A and B (no dependencies); B failed, A missing.
  auto build = [](Json dagExtra) {
    WfBuilder b("d", false);
    b.doc()["spec"]["entrypoint"] = "main";
    b.dag("main", Json::array({task("A", "t"), task("B", "t")}), dagExtra);
    b.node("d", "DAG", "Running", "main");
    b.node("d.B", "Pod", "Failed", "t", "d", "d");
    return b;
  };
  // Sorted targets: A is checked first and missing → Running. With failFast
  // (the default) the failure of B still wins; without it Argo waits for A.
  EXPECT_EQ(build(Json::object()).eval().truePhase, Phase::kFailed);
  EXPECT_EQ(build({{"failFast", false}}).eval().truePhase, Phase::kRunning);
  Json withTarget = {{"target", "B"}};
  EXPECT_EQ(build(withTarget).eval().truePhase, Phase::kFailed);
}

TEST(ArgoDag, TargetRestrictsTheDecidingTasks) {
  Verdict v = dagWf("Succeeded", "Failed", {{"depends", "A"}}, "", {{"target", "A"}}).eval();
  EXPECT_EQ(v.truePhase, Phase::kSucceeded);
  EXPECT_EQ(names(v.maskedFailures), std::vector<std::string>{"d.B"});
}

TEST(ArgoDag, RetryChildrenCarryTheBranch) {
  // A is a Retry whose last attempt succeeded; B hangs off that attempt.
  WfBuilder b("d", false);
  b.doc()["spec"]["entrypoint"] = "main";
  b.dag("main", Json::array({task("A", "t"), task("B", "t", {{"depends", "A"}})}));
  b.container("t", Json{{"limit", 2}});
  b.node("d", "DAG", "Running", "main");
  b.node("d.A", "Retry", "Succeeded", "t", "d", "d");
  b.node("d.A(0)", "Pod", "Failed", "t", "d.A", "d");
  b.node("d.A(1)", "Pod", "Succeeded", "t", "d.A", "d");
  b.node("d.B", "Pod", "Succeeded", "t", "d.A(1)", "d");
  Verdict v = b.eval();
  EXPECT_EQ(v.truePhase, Phase::kSucceeded);
  EXPECT_TRUE(v.failures.empty());
}

TEST(ArgoDag, OrphanedTaskGroupHeals) {
  WfBuilder b("d", false);
  b.doc()["spec"]["entrypoint"] = "main";
  b.dag("main", Json::array({task("fan", "t")}));
  b.node("d", "DAG", "Running", "main");
  b.node("d.fan", "TaskGroup", "Running", "t", "d", "d");
  b.node("d.fan(0:a)", "Pod", "Succeeded", "t", "d.fan", "d");
  b.node("d.fan(1:b)", "Pod", "Error", "t", "d.fan", "d");
  EXPECT_EQ(b.eval().truePhase, Phase::kError);
  b.at("d.fan(1:b)")["phase"] = "Running";
  EXPECT_EQ(b.eval().truePhase, Phase::kRunning);
}

TEST(ArgoDag, SyntheticIdsResolveByName) {
  WfBuilder b("d", false);
  b.syntheticId("d.A", "node-a").syntheticId("d.B", "node-b");
  b.doc()["spec"]["entrypoint"] = "main";
  b.dag("main", Json::array({task("A", "t"), task("B", "t", {{"depends", "A"}})}));
  b.node("d", "DAG", "Running", "main");
  b.node("d.A", "Pod", "Succeeded", "t", "d", "d");
  b.node("d.B", "Pod", "Failed", "t", "d.A", "d");
  Verdict v = b.eval();
  EXPECT_EQ(v.truePhase, Phase::kFailed);
  EXPECT_EQ(v.failures.at(0).podName, "d-t-" + std::to_string(fnv1a32("d.B")));
}

TEST(ArgoDag, CompletedPhaseIsFinalAndNeverMisreported) {
  WfBuilder b = dagWf("Failed", "Succeeded", {{"depends", "A.Failed"}}, "Succeeded");
  b.at("d")["phase"] = "Succeeded";
  Verdict v = b.eval();
  EXPECT_TRUE(v.completed);
  EXPECT_EQ(v.truePhase, Phase::kSucceeded);
  EXPECT_FALSE(v.misreported);
  EXPECT_FALSE(v.cause.has_value());
  EXPECT_EQ(v.maskedFailures.size(), 1u);
}

// ---------- Steps ----------

WfBuilder stepsWf(const std::string& xPhase, bool continueOn) {
  WfBuilder b("s", false);
  b.doc()["spec"]["entrypoint"] = "main";
  Json x = {{"name", "x"}, {"template", "t"}};
  if (continueOn)
    x["continueOn"]["failed"] = true;
  b.steps("main", Json::array({Json::array({x, {{"name", "y"}, {"template", "t"}}}),
                               Json::array({{{"name", "z"}, {"template", "t"}}})}));
  b.node("s", "Steps", "Running", "main");
  b.node("s[0]", "StepGroup", "Running", "", "s", "s");
  b.node("s[0].x", "Pod", xPhase, "t", "s[0]", "s");
  b.node("s[0].y", "Pod", "Succeeded", "t", "s[0]", "s");
  return b;
}

TEST(ArgoSteps, FailedStepFailsGroupAndSteps) {
  Verdict v = stepsWf("Failed", false).eval();
  EXPECT_EQ(v.truePhase, Phase::kFailed);
  EXPECT_TRUE(v.maskedFailures.empty());
}

TEST(ArgoSteps, ContinueOnLetsTheNextGroupRun) {
  WfBuilder b = stepsWf("Failed", true);
  // Group 1 not created yet → Running; once it succeeded → Succeeded.
  EXPECT_EQ(b.eval().truePhase, Phase::kRunning);
  b.node("s[1]", "StepGroup", "Succeeded", "", "s[0].y", "s");
  b.node("s[1].z", "Pod", "Succeeded", "t", "s[1]", "s");
  Verdict v = b.eval();
  EXPECT_EQ(v.truePhase, Phase::kSucceeded);
  EXPECT_EQ(names(v.maskedFailures), std::vector<std::string>{"s[0].x"});
}

TEST(ArgoSteps, ErrorIsNotCoveredByContinueOnFailed) {
  EXPECT_EQ(stepsWf("Error", true).eval().truePhase, Phase::kFailed);
}

// ---------- Retry prediction ----------

WfBuilder retryWf(const std::vector<std::string>& attempts, Json strategy) {
  WfBuilder b("r", false);
  b.doc()["spec"]["entrypoint"] = "main";
  b.dag("main", Json::array({task("A", "t")}));
  b.container("t", strategy);
  b.node("r", "DAG", "Running", "main");
  b.node("r.A", "Retry", "Running", "", "r", "r");
  for (std::size_t i = 0; i < attempts.size(); ++i) {
    b.node("r.A(" + std::to_string(i) + ")", "Pod", attempts[i], "t", "r.A", "r");
  }
  return b;
}

TEST(ArgoRetry, ExhaustedRetryIsFailedStillRetryingIsRunning) {
  EXPECT_EQ(retryWf({"Failed", "Failed"}, {{"limit", 1}}).eval().truePhase, Phase::kFailed);
  EXPECT_EQ(retryWf({"Failed", "Failed"}, {{"limit", 2}}).eval().truePhase, Phase::kRunning);
  EXPECT_EQ(retryWf({"Failed", "Succeeded"}, {{"limit", 5}}).eval().truePhase, Phase::kSucceeded);
  // Unknown limit (an expression): undecided.
  EXPECT_EQ(retryWf({"Failed", "Failed"}, {{"limit", "{{inputs.parameters.n}}"}}).eval().truePhase,
            Phase::kRunning);
}

TEST(ArgoRetry, PolicyDecidesWhichPhasesAreRetried) {
  // Default OnFailure: an Error is final at once.
  EXPECT_EQ(retryWf({"Error"}, {{"limit", 3}}).eval().truePhase, Phase::kError);
  EXPECT_EQ(retryWf({"Failed"}, {{"limit", 3}, {"retryPolicy", "OnError"}}).eval().truePhase,
            Phase::kFailed);
  EXPECT_EQ(retryWf({"Error"}, {{"limit", 3}, {"retryPolicy", "Always"}}).eval().truePhase,
            Phase::kRunning);
}

// ---------- entry node and workflow onExit ----------

WfBuilder exitWf(const std::string& mainPhase, const std::string& exitPhase) {
  WfBuilder b("e", false);
  b.onExit("bye");
  b.doc()["spec"]["entrypoint"] = "main";
  b.container("main").container("bye");
  b.node("e", "Pod", mainPhase, "main");
  if (!exitPhase.empty())
    b.node("e.onExit", "Pod", exitPhase, "bye")["nodeFlag"]["hooked"] = true;
  return b;
}

TEST(ArgoOnExit, FailingOnExitFailsASucceededWorkflow) {
  Verdict v = exitWf("Succeeded", "Failed").eval();
  EXPECT_EQ(v.truePhase, Phase::kFailed);
  EXPECT_EQ(names(v.exitTaskFailures), std::vector<std::string>{"e.onExit"});
  EXPECT_TRUE(v.maskedFailures.empty());  // it decided the verdict
  EXPECT_EQ(exitWf("Succeeded", "Error").eval().truePhase, Phase::kError);
}

TEST(ArgoOnExit, MainFailureWinsAndOnExitPendingMeansRunning) {
  Verdict v = exitWf("Failed", "Error").eval();
  EXPECT_EQ(v.truePhase, Phase::kFailed);
  EXPECT_EQ(names(v.maskedFailures), std::vector<std::string>{"e.onExit"});
  EXPECT_EQ(exitWf("Succeeded", "").eval().truePhase, Phase::kRunning);
  EXPECT_EQ(exitWf("Succeeded", "Running").eval().truePhase, Phase::kRunning);
  EXPECT_EQ(exitWf("Succeeded", "Succeeded").eval().truePhase, Phase::kSucceeded);
}

TEST(ArgoOnExit, TaskHookFailuresNeverDecide) {
  WfBuilder b = dagWf("Succeeded", "Succeeded", {{"depends", "A"}});
  b.node("d.A.onExit", "Pod", "Failed", "t", "d.A", "d")["nodeFlag"]["hooked"] = true;
  Verdict v = b.eval();
  EXPECT_EQ(v.truePhase, Phase::kSucceeded);
  EXPECT_EQ(names(v.exitTaskFailures), std::vector<std::string>{"d.A.onExit"});
  EXPECT_EQ(names(v.maskedFailures), std::vector<std::string>{"d.A.onExit"});
}

TEST(ArgoEntry, SkippedOrOmittedEntryIsSucceeded) {
  WfBuilder b("k", false);
  b.node("k", "Skipped", "Skipped", "main");
  EXPECT_EQ(b.eval().truePhase, Phase::kSucceeded);
  WfBuilder none("n", false);
  none.phase("Error");  // e.g. a spec error: no nodes at all
  EXPECT_EQ(none.eval().truePhase, Phase::kError);
}

TEST(ArgoRobustness, CyclesAndDanglingChildrenDoNotHang) {
  WfBuilder b("c", false);
  b.doc()["spec"]["entrypoint"] = "main";
  b.dag("main", Json::array({task("A", "sub")}));
  b.dag("sub", Json::array({task("B", "main")}));
  b.node("c", "DAG", "Running", "main");
  b.node("c.A", "DAG", "Running", "sub", "c", "c");
  b.child("c.A", "c");  // cycle
  b.at("c.A")["children"].push_back("does-not-exist");
  Verdict v = b.eval();
  EXPECT_EQ(v.truePhase, Phase::kRunning);
}

}  // namespace
}  // namespace exitrec
