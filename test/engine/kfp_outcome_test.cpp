// KFP runs: generations, exit-handler groups at any depth, significant
// failures, true phase, mis-reporting and its cause.
#include <gtest/gtest.h>

#include <string>

#include "engine/outcome.h"
#include "test/engine/wf_builder.h"

namespace exitrec {
namespace {

using testing::Json;
using testing::WfBuilder;

const std::string W = "run-x";

Json task(const std::string& name, const std::string& tmpl, const std::string& depends = "") {
  Json t;
  t["name"] = name;
  t["template"] = tmpl;
  if (!depends.empty())
    t["depends"] = depends;
  return t;
}

Json hookedTask(const std::string& name, const std::string& tmpl, const std::string& hook,
                const std::string& depends = "") {
  Json t = task(name, tmpl, depends);
  t["hooks"]["exit"]["template"] = hook;
  return t;
}

const char* kSiblingDepends =
    "exit-handler-1.Succeeded || exit-handler-1.Skipped || exit-handler-1.Failed || "
    "exit-handler-1.Errored";

// Adds the nodes of a KFP container task: <dag>.<t>-driver, <dag>.<t>,
// <dag>.<t>.executor. `parent` gets the driver as a child.
void containerTask(WfBuilder& b, const std::string& dag, const std::string& t,
                   const std::string& execPhase, const std::string& driverPhase = "Succeeded",
                   const std::string& parent = "") {
  std::string driver = dag + "." + t + "-driver";
  std::string exec = dag + "." + t;
  b.node(driver, "Pod", driverPhase, "system-container-driver", parent.empty() ? dag : parent, dag);
  if (driverPhase != "Succeeded") {
    b.node(exec, "Skipped", "Omitted", "system-container-executor", driver, dag);
    return;
  }
  std::string dagPhase = execPhase == "Skipped" ? "Succeeded" : execPhase;
  b.node(exec, "DAG", dagPhase, "system-container-executor", driver, dag);
  if (execPhase == "Skipped") {
    b.node(exec + ".executor", "Skipped", "Skipped", "system-container-impl", exec, exec);
  } else {
    b.node(exec + ".executor", "Pod", execPhase, "system-container-impl", exec, exec);
  }
}

// The common top: W (entrypoint) → W.root-driver → W.root.
void top(WfBuilder& b, const std::string& phase) {
  b.dag("entrypoint", Json::array({task("root-driver", "system-dag-driver"),
                                   task("root", "root", "root-driver.Succeeded")}));
  b.node(W, "DAG", phase, "entrypoint");
  b.node(W + ".root-driver", "Pod", "Succeeded", "system-dag-driver", W, W);
  b.node(W + ".root", "DAG", phase, "root", W + ".root-driver", W);
}

std::string worse(const std::string& a, const std::string& b) {
  return (a == "Failed" || b == "Failed") ? "Failed" : "Succeeded";
}

// KFP ≥2.4: exit-handler-1 with a hook running print-op; body fail-op.
WfBuilder hookRun(const std::string& bodyPhase, const std::string& exitPhase) {
  WfBuilder b(W);
  // Argo: the hook never changes the phase; the body does.
  b.phase(bodyPhase);
  top(b, bodyPhase);
  b.dag("root",
        Json::array({task("exit-handler-1-driver", "system-dag-driver"),
                     hookedTask("exit-handler-1", "comp-exit-handler-1", "exit-hook-root-print-op",
                                "exit-handler-1-driver.Succeeded")}));
  b.dag("comp-exit-handler-1",
        Json::array({task("fail-op-driver", "system-container-driver"),
                     task("fail-op", "system-container-executor", "fail-op-driver.Succeeded")}));
  b.dag("exit-hook-root-print-op",
        Json::array({task("print-op-driver", "system-container-driver"),
                     task("print-op", "system-container-executor", "print-op-driver.Succeeded")}));
  const std::string R = W + ".root";
  const std::string G = R + ".exit-handler-1";
  b.node(R + ".exit-handler-1-driver", "Pod", "Succeeded", "system-dag-driver", R, R);
  b.node(G, "DAG", bodyPhase, "comp-exit-handler-1", R + ".exit-handler-1-driver", R);
  containerTask(b, G, "fail-op", bodyPhase);
  b.node(G + ".onExit", "DAG", exitPhase, "exit-hook-root-print-op", G, R)["nodeFlag"]["hooked"] =
      true;
  containerTask(b, G + ".onExit", "print-op", exitPhase);
  return b;
}

// KFP 2.0–2.3: the exit task print-op is a sibling of exit-handler-1 in root.
WfBuilder siblingRun(const std::string& bodyPhase, const std::string& exitPhase,
                     const std::string& exitDriverPhase = "Succeeded") {
  WfBuilder b(W);
  // Argo: only the leaf (the exit task) decides root's phase.
  std::string exitResult = exitDriverPhase != "Succeeded" ? exitDriverPhase : exitPhase;
  b.phase(exitResult);
  top(b, exitResult);
  b.dag(
      "root",
      Json::array({task("exit-handler-1-driver", "system-dag-driver"),
                   task("exit-handler-1", "comp-exit-handler-1", "exit-handler-1-driver.Succeeded"),
                   task("print-op-driver", "system-container-driver", kSiblingDepends),
                   task("print-op", "system-container-executor", "print-op-driver.Succeeded")}));
  b.dag("comp-exit-handler-1",
        Json::array({task("fail-op-driver", "system-container-driver"),
                     task("fail-op", "system-container-executor", "fail-op-driver.Succeeded")}));
  const std::string R = W + ".root";
  const std::string G = R + ".exit-handler-1";
  b.node(R + ".exit-handler-1-driver", "Pod", "Succeeded", "system-dag-driver", R, R);
  b.node(G, "DAG", bodyPhase, "comp-exit-handler-1", R + ".exit-handler-1-driver", R);
  containerTask(b, G, "fail-op", bodyPhase);
  // The exit task's driver depends on the group: a child of its outbound node.
  containerTask(b, R, "print-op", exitPhase, exitDriverPhase, G + ".fail-op.executor");
  return b;
}

std::vector<std::string> names(const std::vector<Failure>& failures) {
  std::vector<std::string> out;
  for (const auto& f : failures)
    out.push_back(f.nodeName);
  return out;
}

// ---------- generations ----------

TEST(Generation, ClassifiedFromTheSpec) {
  EXPECT_EQ(hookRun("Succeeded", "Succeeded").eval().generation, Generation::kKfpV2Hook);
  EXPECT_EQ(siblingRun("Succeeded", "Succeeded").eval().generation, Generation::kKfpV2Sibling);
  WfBuilder plain(W);
  plain.phase("Succeeded");
  top(plain, "Succeeded");
  EXPECT_EQ(plain.eval().generation, Generation::kKfpV2);
  WfBuilder v1(W);
  v1.onExit("exiting");
  EXPECT_EQ(v1.eval().generation, Generation::kKfpV1);
  WfBuilder argo(W, /*kfp=*/false);
  argo.onExit("exiting");
  Verdict a = argo.eval();
  EXPECT_EQ(a.generation, Generation::kArgo);
  EXPECT_FALSE(a.runId.has_value());
  EXPECT_EQ(generationName(Generation::kKfpV2Sibling), "kfp-v2-sibling");
  EXPECT_EQ(generationName(Generation::kKfpV2Hook), "kfp-v2-hook");
  EXPECT_EQ(generationName(Generation::kKfpV1), "kfp-v1");
  EXPECT_EQ(generationName(Generation::kKfpV2), "kfp-v2");
  EXPECT_EQ(generationName(Generation::kArgo), "argo");
}

// The v1 compiler (sdk/python/kfp/compiler/compiler.py, 1.8.22) emits one
// template per op and no driver templates; v1 runs without an ExitHandler
// have no onExit and need not carry the SDK annotation.
TEST(Generation, V1WithoutOnExitOrAnnotationIsV1) {
  WfBuilder b(W);
  b.phase("Succeeded");
  b.doc()["spec"]["entrypoint"] = "etl";
  b.dag("etl", Json::array({task("load", "load"), task("save", "save", "load")}));
  b.container("load").container("save");
  b.node(W, "DAG", "Succeeded", "etl");
  b.node(W + ".load", "Pod", "Succeeded", "load", W, W);
  b.node(W + ".save", "Pod", "Succeeded", "save", W + ".load", W);
  EXPECT_EQ(b.eval().generation, Generation::kKfpV1);
  // Without a spec, the nodes tell: no driver template ran.
  b.doc()["spec"].erase("templates");
  EXPECT_EQ(b.eval().generation, Generation::kKfpV1);
}

TEST(Generation, V2IsTheDriverTemplatesAndAnyHookMakesItHook) {
  // Only an .ignore_upstream_failure() hook, no exit handler: still hook compilation.
  WfBuilder b(W);
  b.phase("Succeeded");
  top(b, "Succeeded");
  b.dag("root", Json::array({task("a-driver", "system-container-driver"),
                             hookedTask("a", "system-container-executor", "exit-hook-root-b",
                                        "a-driver.Succeeded")}));
  EXPECT_EQ(b.eval().generation, Generation::kKfpV2Hook);
  // A stripped spec: the driver nodes say v2, an "….onExit" node says hook.
  WfBuilder n(W);
  n.phase("Succeeded");
  n.node(W, "DAG", "Succeeded", "entrypoint");
  n.node(W + ".root-driver", "Pod", "Succeeded", "system-dag-driver", W, W);
  EXPECT_EQ(n.eval().generation, Generation::kKfpV2);
  n.node(W + ".root.a.onExit", "DAG", "Succeeded", "exit-hook-root-b", W, W)["nodeFlag"]["hooked"] =
      true;
  EXPECT_EQ(n.eval().generation, Generation::kKfpV2Hook);
}

// ---------- KFP ≥2.4 (hook) ----------

TEST(KfpV2Hook, BodyFailureStaysFailed) {
  Verdict v = hookRun("Failed", "Succeeded").eval();
  EXPECT_EQ(v.runId, "run-123");
  EXPECT_EQ(v.reportedPhase, Phase::kFailed);
  EXPECT_EQ(v.truePhase, Phase::kFailed);
  EXPECT_FALSE(v.misreported);
  EXPECT_FALSE(v.cause.has_value());
  EXPECT_EQ(names(v.failures),
            std::vector<std::string>{W + ".root.exit-handler-1.fail-op.executor"});
  ASSERT_EQ(v.exitHandlers.size(), 1u);
  EXPECT_EQ(v.exitHandlers[0].name, W + ".root.exit-handler-1");
  EXPECT_EQ(v.exitHandlers[0].bodyPhase, Phase::kFailed);
  EXPECT_EQ(v.exitHandlers[0].exitTask, W + ".root.exit-handler-1.onExit");
  EXPECT_EQ(v.exitHandlers[0].exitTaskPhase, Phase::kSucceeded);
}

TEST(KfpV2Hook, FailingExitTaskIsIgnoredByDefault) {
  Verdict v = hookRun("Succeeded", "Failed").eval();
  EXPECT_EQ(v.reportedPhase, Phase::kSucceeded);
  EXPECT_EQ(v.truePhase, Phase::kSucceeded);
  EXPECT_FALSE(v.misreported);
  EXPECT_TRUE(v.failures.empty());
  EXPECT_EQ(names(v.exitTaskFailures),
            std::vector<std::string>{W + ".root.exit-handler-1.onExit.print-op.executor"});
  EXPECT_EQ(v.exitHandlers.at(0).exitTaskPhase, Phase::kFailed);
}

TEST(KfpV2Hook, FailingExitTaskCountsUnderFailPolicy) {
  Verdict v = hookRun("Succeeded", "Failed").eval({ExitTaskFailurePolicy::kFail});
  EXPECT_EQ(v.truePhase, Phase::kFailed);
  EXPECT_TRUE(v.misreported);
  EXPECT_EQ(v.cause, "exit-task-failed");
  // The exit task's failure decided the verdict, so `failures` names it.
  EXPECT_EQ(names(v.failures),
            std::vector<std::string>{W + ".root.exit-handler-1.onExit.print-op.executor"});
  EXPECT_EQ(v.exitTaskFailures.size(), 1u);
}

TEST(KfpV2Hook, BothFail) {
  Verdict v = hookRun("Failed", "Failed").eval({ExitTaskFailurePolicy::kFail});
  EXPECT_EQ(v.truePhase, Phase::kFailed);
  EXPECT_FALSE(v.misreported);
  EXPECT_EQ(v.failures.size(), 2u);  // the body's and, under `fail`, the exit task's
  EXPECT_EQ(v.exitTaskFailures.size(), 1u);
}

TEST(KfpV2Hook, GroupWhoseDriverFailedHasNoExitTask) {
  WfBuilder b = hookRun("Succeeded", "Succeeded");
  // Re-shape: the group's driver failed, the group was Omitted, no hook ran.
  const std::string R = W + ".root";
  b.doc()["status"]["nodes"].erase(b.idOf(R + ".exit-handler-1.onExit"));
  b.at(R + ".exit-handler-1-driver")["phase"] = "Failed";
  b.at(R + ".exit-handler-1")["type"] = "Skipped";
  b.at(R + ".exit-handler-1")["phase"] = "Omitted";
  b.at(R)["phase"] = "Failed";
  b.at(W)["phase"] = "Failed";
  b.phase("Failed");
  Verdict v = b.eval();
  EXPECT_EQ(v.truePhase, Phase::kFailed);
  EXPECT_EQ(names(v.failures), std::vector<std::string>{R + ".exit-handler-1-driver"});
  ASSERT_EQ(v.exitHandlers.size(), 1u);
  EXPECT_EQ(v.exitHandlers[0].bodyPhase, Phase::kOmitted);
  EXPECT_EQ(v.exitHandlers[0].exitTask, "");
  EXPECT_EQ(v.exitHandlers[0].exitTaskPhase, Phase::kNone);
}

// ---------- KFP 2.0–2.3 (sibling) ----------

TEST(KfpV2Sibling, BodyFailureMaskedBySucceedingExitTask) {
  Verdict v = siblingRun("Failed", "Succeeded").eval();
  EXPECT_EQ(v.reportedPhase, Phase::kSucceeded);
  EXPECT_EQ(v.truePhase, Phase::kFailed);
  EXPECT_TRUE(v.misreported);
  EXPECT_EQ(v.cause, "exit-task-masked-failure");
  EXPECT_EQ(names(v.failures),
            std::vector<std::string>{W + ".root.exit-handler-1.fail-op.executor"});
  ASSERT_EQ(v.failures.size(), 1u);
  const Failure& f = v.failures[0];
  EXPECT_EQ(f.displayName, "executor");
  EXPECT_EQ(f.templateName, "system-container-impl");
  EXPECT_EQ(f.phase, Phase::kFailed);
  EXPECT_EQ(f.message, "Error (exit code 1)");
  EXPECT_EQ(f.finishedAt, "2024-10-14T09:21:18Z");
  ASSERT_EQ(v.exitHandlers.size(), 1u);
  EXPECT_EQ(v.exitHandlers[0].name, W + ".root.exit-handler-1");
  EXPECT_EQ(v.exitHandlers[0].bodyPhase, Phase::kFailed);
  EXPECT_EQ(v.exitHandlers[0].exitTask, W + ".root.print-op");
  EXPECT_EQ(v.exitHandlers[0].exitTaskPhase, Phase::kSucceeded);
}

TEST(KfpV2Sibling, FailingExitTaskFailsTheRunItself) {
  Verdict v = siblingRun("Succeeded", "Failed").eval();
  EXPECT_EQ(v.reportedPhase, Phase::kFailed);
  EXPECT_EQ(v.truePhase, Phase::kFailed);
  EXPECT_FALSE(v.misreported);
  EXPECT_TRUE(v.failures.empty());
  EXPECT_EQ(names(v.exitTaskFailures), std::vector<std::string>{W + ".root.print-op.executor"});
}

TEST(KfpV2Sibling, BothFail) {
  Verdict v = siblingRun("Failed", "Failed").eval();
  EXPECT_EQ(v.truePhase, Phase::kFailed);
  EXPECT_FALSE(v.misreported);
  EXPECT_EQ(v.failures.size(), 1u);
  EXPECT_EQ(v.exitTaskFailures.size(), 1u);
}

TEST(KfpV2Sibling, ExitDriverFailureIsAnExitTaskFailure) {
  Verdict v = siblingRun("Succeeded", "Succeeded", "Failed").eval();
  EXPECT_EQ(v.reportedPhase, Phase::kFailed);
  EXPECT_EQ(names(v.exitTaskFailures), std::vector<std::string>{W + ".root.print-op-driver"});
  EXPECT_TRUE(v.failures.empty());
  EXPECT_EQ(v.exitHandlers.at(0).exitTaskPhase, Phase::kFailed);
}

TEST(KfpV2Sibling, BodyDriverFailureIsSignificant) {
  WfBuilder b = siblingRun("Succeeded", "Succeeded");
  const std::string G = W + ".root.exit-handler-1";
  b.at(G + ".fail-op-driver")["phase"] = "Error";
  b.at(G)["phase"] = "Failed";
  Verdict v = b.eval();
  EXPECT_TRUE(v.misreported);
  EXPECT_EQ(v.truePhase, Phase::kError);  // all significant failures are Error
  EXPECT_EQ(v.cause, "exit-task-masked-failure");
  EXPECT_EQ(names(v.failures), std::vector<std::string>{G + ".fail-op-driver"});
}

// Whether a failure lies in an exit-handler body decides the cause; the
// bodies are walked only when a failure of ordinary work asks (see inBody()).
TEST(KfpV2Sibling, WorkFailureOutsideTheBodyIsAGenericMaskedFailure) {
  WfBuilder b = siblingRun("Succeeded", "Succeeded");
  containerTask(b, W + ".root", "after", "Failed");
  Verdict v = b.eval();
  EXPECT_TRUE(v.misreported);
  EXPECT_EQ(v.truePhase, Phase::kFailed);
  EXPECT_EQ(v.cause, "masked-failure");
  EXPECT_EQ(names(v.failures), std::vector<std::string>{W + ".root.after.executor"});
}

TEST(KfpV2Sibling, FailuresInsideAndOutsideTheBodyNameTheExitTask) {
  WfBuilder b = siblingRun("Failed", "Succeeded");
  containerTask(b, W + ".root", "after", "Failed");
  Verdict v = b.eval();
  EXPECT_TRUE(v.misreported);
  EXPECT_EQ(v.cause, "exit-task-masked-failure");
  EXPECT_EQ(names(v.failures),
            (std::vector<std::string>{W + ".root.after.executor",
                                      W + ".root.exit-handler-1.fail-op.executor"}));
}

TEST(KfpV2Sibling, ParallelForIterationFailureInsideTheBody) {
  WfBuilder b = siblingRun("Succeeded", "Succeeded");
  const std::string G = W + ".root.exit-handler-1";
  const std::string L = G + ".for-loop-1";
  b.node(L, "DAG", "Failed", "comp-for-loop-1-for-loop-1-iterator", G, G);
  const std::string T = L + ".iteration-iterations";
  b.node(T, "TaskGroup", "Failed", "comp-for-loop-1-iteration", L, L);
  for (int i = 0; i < 3; ++i) {
    std::string it = T + "(" + std::to_string(i) + ":" + std::to_string(i) + ")";
    b.node(it, "DAG", i == 1 ? "Failed" : "Succeeded", "comp-for-loop-1-iteration", T, L);
    containerTask(b, it, "print-text", i == 1 ? "Failed" : "Succeeded");
  }
  Verdict v = b.eval();
  EXPECT_TRUE(v.misreported);
  EXPECT_EQ(v.cause, "exit-task-masked-failure");
  EXPECT_EQ(names(v.failures), std::vector<std::string>{T + "(1:1).print-text.executor"});
}

// ---------- KFP v1 ----------

WfBuilder v1Run(const std::string& bodyPhase, const std::string& exitPhase) {
  WfBuilder b(W);
  b.onExit("exiting");
  b.annotation("pipelines.kubeflow.org/kfp_sdk_version", "1.8.22");
  std::string phase = worse(bodyPhase, exitPhase);  // onExit override
  b.phase(phase);
  b.doc()["spec"]["entrypoint"] = "save-most-frequent";
  b.dag("save-most-frequent", Json::array({task("exit-handler-1", "exit-handler-1")}));
  b.dag("exit-handler-1", Json::array({task("get-frequent", "get-frequent")}));
  b.container("get-frequent").container("exiting");
  b.node(W, "DAG", bodyPhase, "save-most-frequent");
  b.node(W + ".exit-handler-1", "DAG", bodyPhase, "exit-handler-1", W, W);
  b.node(W + ".exit-handler-1.get-frequent", "Pod", bodyPhase, "get-frequent",
         W + ".exit-handler-1", W + ".exit-handler-1");
  b.node(W + ".onExit", "Pod", exitPhase, "exiting")["nodeFlag"]["hooked"] = true;
  return b;
}

TEST(KfpV1, BodyFailure) {
  Verdict v = v1Run("Failed", "Succeeded").eval();
  EXPECT_EQ(v.generation, Generation::kKfpV1);
  EXPECT_EQ(v.truePhase, Phase::kFailed);
  EXPECT_FALSE(v.misreported);
  EXPECT_EQ(names(v.failures), std::vector<std::string>{W + ".exit-handler-1.get-frequent"});
  ASSERT_EQ(v.exitHandlers.size(), 1u);
  EXPECT_EQ(v.exitHandlers[0].name, W + ".exit-handler-1");
  EXPECT_EQ(v.exitHandlers[0].exitTask, W + ".onExit");
  EXPECT_EQ(v.exitHandlers[0].exitTaskPhase, Phase::kSucceeded);
}

TEST(KfpV1, ExitFailureFailsTheRunThroughTheOverride) {
  Verdict v = v1Run("Succeeded", "Failed").eval();
  EXPECT_EQ(v.reportedPhase, Phase::kFailed);
  EXPECT_FALSE(v.misreported);
  EXPECT_TRUE(v.failures.empty());
  EXPECT_EQ(names(v.exitTaskFailures), std::vector<std::string>{W + ".onExit"});
  // Under `fail` the onExit failure decided the verdict: `failures` names it.
  Verdict strict = v1Run("Succeeded", "Failed").eval({ExitTaskFailurePolicy::kFail});
  EXPECT_EQ(strict.truePhase, Phase::kFailed);
  EXPECT_FALSE(strict.misreported);
  EXPECT_EQ(names(strict.failures), std::vector<std::string>{W + ".onExit"});
}

TEST(KfpV1, BothFail) {
  Verdict v = v1Run("Failed", "Failed").eval({ExitTaskFailurePolicy::kFail});
  EXPECT_EQ(v.truePhase, Phase::kFailed);
  EXPECT_FALSE(v.misreported);
  EXPECT_EQ(v.failures.size(), 2u);
  EXPECT_EQ(v.exitTaskFailures.size(), 1u);
  EXPECT_EQ(v.exitHandlers.at(0).bodyPhase, Phase::kFailed);
  EXPECT_EQ(v.exitHandlers.at(0).exitTaskPhase, Phase::kFailed);
}

TEST(KfpV1, MaskedBodyFailureIsGeneric) {
  // A body pod failed but the run says Succeeded (e.g. continueOn in the spec).
  WfBuilder b = v1Run("Succeeded", "Succeeded");
  b.at(W + ".exit-handler-1.get-frequent")["phase"] = "Failed";
  Verdict v = b.eval();
  EXPECT_TRUE(v.misreported);
  EXPECT_EQ(v.truePhase, Phase::kFailed);
  EXPECT_EQ(v.cause, "masked-failure");
}

// ---------- nesting and hooks on ordinary tasks ----------

// Outer exit-handler-1 whose body runs sub-pipeline `inner` with its own
// exit-handler-1 (template comp-exit-handler-1-2) and hook.
WfBuilder nestedRun(const std::string& innerBody, const std::string& innerExit) {
  WfBuilder b(W);
  std::string phase = innerBody;
  b.phase(phase);
  top(b, phase);
  b.dag("root", Json::array({task("exit-handler-1-driver", "system-dag-driver"),
                             hookedTask("exit-handler-1", "comp-exit-handler-1",
                                        "exit-hook-root-print-op")}));
  b.dag("comp-exit-handler-1",
        Json::array({task("inner-driver", "system-dag-driver"),
                     task("inner", "comp-inner", "inner-driver.Succeeded")}));
  b.dag("comp-inner", Json::array({task("exit-handler-1-driver", "system-dag-driver"),
                                   hookedTask("exit-handler-1", "comp-exit-handler-1-2",
                                              "exit-hook-comp-inner-print-op")}));
  b.dag("comp-exit-handler-1-2", Json::array({task("work", "system-container-executor")}));
  const std::string R = W + ".root";
  const std::string G = R + ".exit-handler-1";
  b.node(G, "DAG", phase, "comp-exit-handler-1", R, R);
  const std::string I = G + ".inner";
  b.node(I, "DAG", phase, "comp-inner", G, G);
  const std::string IG = I + ".exit-handler-1";
  b.node(IG, "DAG", innerBody, "comp-exit-handler-1-2", I, I);
  containerTask(b, IG, "work", innerBody);
  b.node(IG + ".onExit", "DAG", innerExit, "exit-hook-comp-inner-print-op", IG,
         I)["nodeFlag"]["hooked"] = true;
  containerTask(b, IG + ".onExit", "print-op", innerExit);
  b.node(G + ".onExit", "DAG", "Succeeded", "exit-hook-root-print-op", G, R)["nodeFlag"]["hooked"] =
      true;
  containerTask(b, G + ".onExit", "print-op", "Succeeded");
  return b;
}

TEST(Nested, ExitHandlersAtEveryDepthNamedByPath) {
  Verdict v = nestedRun("Failed", "Succeeded").eval();
  EXPECT_EQ(v.generation, Generation::kKfpV2Hook);
  ASSERT_EQ(v.exitHandlers.size(), 2u);
  EXPECT_EQ(v.exitHandlers[0].name, W + ".root.exit-handler-1");
  EXPECT_EQ(v.exitHandlers[1].name, W + ".root.exit-handler-1.inner.exit-handler-1");
  EXPECT_EQ(v.exitHandlers[1].bodyPhase, Phase::kFailed);
  EXPECT_EQ(v.exitHandlers[1].exitTask, W + ".root.exit-handler-1.inner.exit-handler-1.onExit");
  EXPECT_EQ(v.truePhase, Phase::kFailed);
  EXPECT_EQ(names(v.failures), std::vector<std::string>{
                                   W + ".root.exit-handler-1.inner.exit-handler-1.work.executor"});
}

TEST(Nested, InnerExitTaskFailureIsAnExitTaskFailure) {
  Verdict v = nestedRun("Succeeded", "Failed").eval();
  EXPECT_FALSE(v.misreported);
  EXPECT_TRUE(v.failures.empty());
  EXPECT_EQ(names(v.exitTaskFailures),
            std::vector<std::string>{
                W + ".root.exit-handler-1.inner.exit-handler-1.onExit.print-op.executor"});
  Verdict f = nestedRun("Succeeded", "Failed").eval({ExitTaskFailurePolicy::kFail});
  EXPECT_TRUE(f.misreported);
  EXPECT_EQ(f.cause, "exit-task-failed");
}

TEST(IgnoreUpstreamFailure, FailingHookedTaskIsMisreported) {
  WfBuilder b(W);
  b.phase("Succeeded");
  top(b, "Succeeded");
  b.dag("root", Json::array({task("fail-op-driver", "system-container-driver"),
                             hookedTask("fail-op", "system-container-executor",
                                        "exit-hook-root-print-op", "fail-op-driver.Succeeded")}));
  const std::string R = W + ".root";
  containerTask(b, R, "fail-op", "Succeeded");
  b.node(R + ".fail-op.onExit", "DAG", "Failed", "exit-hook-root-print-op", R + ".fail-op",
         R)["nodeFlag"]["hooked"] = true;
  containerTask(b, R + ".fail-op.onExit", "print-op", "Failed");
  Verdict v = b.eval();
  EXPECT_EQ(v.generation, Generation::kKfpV2Hook);  // hooks.exit: hook compilation
  EXPECT_TRUE(v.exitHandlers.empty());
  EXPECT_EQ(v.truePhase, Phase::kFailed);
  EXPECT_TRUE(v.misreported);
  EXPECT_EQ(v.cause, "hooked-task-failed");
  EXPECT_EQ(names(v.failures), std::vector<std::string>{R + ".fail-op.onExit.print-op.executor"});
  EXPECT_TRUE(v.exitTaskFailures.empty());
}

// ---------- retries, skips, Plugin, terminated, running ----------

WfBuilder retryRun(const std::vector<std::string>& attempts, const std::string& retryPhase) {
  WfBuilder b(W);
  b.phase(retryPhase);
  top(b, retryPhase);
  const std::string R = W + ".root";
  b.node(R + ".add-driver", "Pod", "Succeeded", "system-container-driver", R, R);
  b.node(R + ".add", "DAG", retryPhase, "retry-system-container-executor", R + ".add-driver", R);
  const std::string X = R + ".add.executor";
  b.node(X, "Retry", retryPhase, "retry-system-container-impl", R + ".add", R + ".add");
  for (std::size_t i = 0; i < attempts.size(); ++i) {
    b.node(X + "(" + std::to_string(i) + ")", "Pod", attempts[i], "retry-system-container-impl", X,
           R + ".add")["nodeFlag"]["retried"] = true;
  }
  return b;
}

TEST(Retries, SucceededRetryHidesItsFailedAttempts) {
  Verdict v = retryRun({"Failed", "Error", "Succeeded"}, "Succeeded").eval();
  EXPECT_EQ(v.generation, Generation::kKfpV2);
  EXPECT_TRUE(v.failures.empty());
  EXPECT_EQ(v.truePhase, Phase::kSucceeded);
  EXPECT_FALSE(v.misreported);
}

TEST(Retries, ExhaustedRetryKeepsEveryAttempt) {
  Verdict v = retryRun({"Failed", "Failed"}, "Failed").eval();
  EXPECT_EQ(v.truePhase, Phase::kFailed);
  EXPECT_EQ(v.failures.size(), 2u);
}

TEST(Retries, LastAttemptOfASucceededRetryStillCounts) {
  // KFP 2.17's templateDefaults: the entry node is a Retry. Attempt (0)
  // errored and was retried; attempt (1) succeeded with a failed
  // .ignore_upstream_failure() hook inside it, which Argo ignores.
  WfBuilder b(W);
  b.phase("Succeeded");
  b.dag("entrypoint", Json::array({hookedTask("root-driver", "system-dag-driver", "hook")}));
  b.container("hook");
  b.node(W, "Retry", "Succeeded", "entrypoint");
  b.node(W + "(0)", "DAG", "Error", "entrypoint", W)["nodeFlag"]["retried"] = true;
  b.node(W + "(0).root-driver", "Pod", "Error", "system-dag-driver", W + "(0)", W + "(0)");
  b.node(W + "(1)", "DAG", "Succeeded", "entrypoint", W)["nodeFlag"]["retried"] = true;
  b.node(W + "(1).root-driver", "Pod", "Succeeded", "system-dag-driver", W + "(1)", W + "(1)");
  b.node(W + "(1).root-driver.onExit", "Pod", "Failed", "hook", W + "(1).root-driver",
         W + "(1)")["nodeFlag"]["hooked"] = true;
  Verdict v = b.eval();
  EXPECT_EQ(names(v.failures), std::vector<std::string>{W + "(1).root-driver.onExit"});
  EXPECT_TRUE(v.misreported);
  EXPECT_EQ(v.cause.value_or(""), "hooked-task-failed");
}

TEST(Retries, FailedPodsInsideASupersededAttemptAreExcluded) {
  WfBuilder b = retryRun({"Succeeded"}, "Succeeded");
  const std::string X = W + ".root.add.executor";
  // Attempt (0) was a DAG whose pod failed; attempt (1) succeeded.
  b.doc()["status"]["nodes"].erase(b.idOf(X + "(0)"));
  b.at(X).erase("children");
  b.node(X + "(0)", "DAG", "Failed", "sub", X, W + ".root.add");
  b.node(X + "(0).inner", "Pod", "Failed", "t", X + "(0)", X + "(0)");
  b.node(X + "(1)", "Pod", "Succeeded", "retry-system-container-impl", X, W + ".root.add");
  Verdict v = b.eval();
  EXPECT_TRUE(v.failures.empty()) << verdictToJson(v);
}

TEST(Skips, ConditionSkippedCachedAndOmittedAreNotFailures) {
  WfBuilder b(W);
  b.phase("Succeeded");
  top(b, "Succeeded");
  const std::string R = W + ".root";
  containerTask(b, R, "cached", "Skipped");
  b.node(R + ".condition-1", "Skipped", "Skipped", "comp-condition-1", R, R)["message"] =
      "when 'false != false' evaluated false";
  b.node(R + ".after", "Skipped", "Omitted", "system-container-executor", R, R);
  Verdict v = b.eval();
  EXPECT_TRUE(v.failures.empty());
  EXPECT_EQ(v.truePhase, Phase::kSucceeded);
  EXPECT_FALSE(v.misreported);
}

TEST(Skips, SkippedNodeInErrorIsSignificant) {
  WfBuilder b(W);
  b.phase("Succeeded");
  top(b, "Succeeded");
  b.node(W + ".root.bad-depends", "Skipped", "Error", "t", W + ".root", W + ".root");
  Verdict v = b.eval();
  EXPECT_EQ(v.truePhase, Phase::kError);
  EXPECT_TRUE(v.misreported);
  EXPECT_EQ(v.cause, "masked-failure");
}

TEST(NodeTypes, PluginDriverFailureCountsLikeAPod) {
  WfBuilder b = siblingRun("Succeeded", "Succeeded");
  const std::string G = W + ".root.exit-handler-1";
  b.at(G + ".fail-op-driver")["type"] = "Plugin";
  b.at(G + ".fail-op-driver")["phase"] = "Failed";
  Verdict v = b.eval();
  EXPECT_TRUE(v.misreported);
  EXPECT_EQ(v.truePhase, Phase::kFailed);
  EXPECT_EQ(names(v.failures), std::vector<std::string>{G + ".fail-op-driver"});
}

TEST(NodeTypes, ContainerAndHttpCountButBoundariesDoNot) {
  WfBuilder b(W);
  b.phase("Succeeded");
  top(b, "Succeeded");
  const std::string R = W + ".root";
  b.node(R + ".a", "Container", "Failed", "t", R, R);
  b.node(R + ".b", "HTTP", "Error", "t", R, R);
  b.node(R + ".c", "DAG", "Failed", "t", R, R);
  b.node(R + ".d", "Retry", "Failed", "t", R, R);
  Verdict v = b.eval();
  EXPECT_EQ(names(v.failures), (std::vector<std::string>{R + ".a", R + ".b"}));
  EXPECT_EQ(v.truePhase, Phase::kFailed);  // one Failed among them
}

TEST(Terminated, StaysFailed) {
  WfBuilder b = hookRun("Failed", "Succeeded");
  b.doc()["status"]["message"] = "Stopped with strategy 'Terminate'";
  b.doc()["spec"]["shutdown"] = "Terminate";
  b.at(W + ".root.exit-handler-1.fail-op.executor")["message"] = "terminated";
  Verdict v = b.eval();
  EXPECT_EQ(v.truePhase, Phase::kFailed);
  EXPECT_FALSE(v.misreported);
}

TEST(NeverToSuccess, ErrorAndFailedAreKept) {
  WfBuilder b(W);
  b.phase("Error");
  top(b, "Error");
  Verdict v = b.eval();
  EXPECT_EQ(v.truePhase, Phase::kError);
  EXPECT_FALSE(v.misreported);
  WfBuilder f(W);
  f.phase("Failed");
  top(f, "Succeeded");  // even when every node looks fine
  EXPECT_EQ(f.eval().truePhase, Phase::kFailed);
}

TEST(Running, ARunThatHasNotCompletedIsNeverMisreported) {
  WfBuilder b = siblingRun("Failed", "Running");
  b.phase("Running", false);
  b.at(W + ".root")["phase"] = "Running";
  b.at(W)["phase"] = "Running";
  b.at(W + ".root.print-op")["phase"] = "Running";
  Verdict v = b.eval();
  EXPECT_FALSE(v.completed);
  EXPECT_FALSE(v.misreported);
  EXPECT_EQ(v.truePhase, Phase::kRunning);
  EXPECT_EQ(v.failures.size(), 1u);  // listed all the same
  EXPECT_FALSE(v.cause.has_value());
}

TEST(Running, FinalPhaseWithoutTheCompletedLabelIsCompleted) {
  WfBuilder b = siblingRun("Failed", "Succeeded");
  b.doc()["metadata"]["labels"].erase("workflows.argoproj.io/completed");
  Verdict v = b.eval();
  EXPECT_TRUE(v.completed);
  EXPECT_TRUE(v.misreported);
}

// ---------- pod names and JSON ----------

TEST(PodNames, V2ByDefaultV1ByAnnotation) {
  EXPECT_EQ(argoPodName("wf", "wf", "entry"), "wf");
  EXPECT_EQ(argoPodName("wf", "wf.a", "t"), "wf-t-" + std::to_string(fnv1a32("wf.a")));
  std::string longTemplate(300, 't');
  std::string p = argoPodName("wf", "wf.a", longTemplate);
  EXPECT_EQ(p.size(), kMaxPodNamePrefix + 1 + std::to_string(fnv1a32("wf.a")).size());
  EXPECT_EQ(p.substr(0, 5), "wf-tt");

  Verdict v2 = siblingRun("Failed", "Succeeded").eval();
  const std::string node = W + ".root.exit-handler-1.fail-op.executor";
  EXPECT_EQ(v2.failures.at(0).podName,
            W + "-system-container-impl-" + std::to_string(fnv1a32(node)));
  WfBuilder b = siblingRun("Failed", "Succeeded");
  b.annotation("workflows.argoproj.io/pod-name-format", "v1");
  Verdict v1 = b.eval();
  EXPECT_EQ(v1.failures.at(0).podName, argoNodeId(W, node));
}

TEST(VerdictJson, ExactKeysInOrder) {
  Verdict v = siblingRun("Failed", "Succeeded").eval();
  v.failures[0].finishedAt.clear();
  std::string line = verdictToJson(v);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  auto j = Json::parse(line);
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it)
    keys.push_back(it.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"namespace", "name", "runId", "generation",
                                            "reportedPhase", "truePhase", "misreported", "cause",
                                            "failures", "exitHandlers"}));
  EXPECT_EQ(j["namespace"], "kubeflow");
  EXPECT_EQ(j["runId"], "run-123");
  EXPECT_EQ(j["generation"], "kfp-v2-sibling");
  EXPECT_EQ(j["reportedPhase"], "Succeeded");
  EXPECT_EQ(j["truePhase"], "Failed");
  EXPECT_EQ(j["misreported"], true);
  EXPECT_EQ(j["cause"], "exit-task-masked-failure");
  std::vector<std::string> fkeys;
  for (auto it = j["failures"][0].begin(); it != j["failures"][0].end(); ++it) {
    fkeys.push_back(it.key());
  }
  EXPECT_EQ(fkeys, (std::vector<std::string>{"displayName", "message", "templateName", "phase",
                                             "podName", "finishedAt"}));
  EXPECT_TRUE(j["failures"][0]["finishedAt"].is_null());
  EXPECT_EQ(j["exitHandlers"][0],
            Json::parse(R"({"name":"run-x.root.exit-handler-1","bodyPhase":"Failed",)"
                        R"("exitTask":"run-x.root.print-op","exitTaskPhase":"Succeeded"})"));
  Verdict argo = WfBuilder("a", false).eval();
  auto ja = Json::parse(verdictToJson(argo));
  EXPECT_TRUE(ja["runId"].is_null());
  EXPECT_TRUE(ja["cause"].is_null());
  EXPECT_EQ(ja["failures"], Json::array());
  EXPECT_EQ(failuresToJson({}), "[]");
}

}  // namespace
}  // namespace exitrec
