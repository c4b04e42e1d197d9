// The pure injection core (exit_task.h, injector.h, resolver.h) against
// real-shaped pods of every KFP generation.
#include <gtest/gtest.h>

#include "common/fake_clock.h"
#include "test/webhook/test_support.h"
#include "webhook/exit_task.h"
#include "webhook/injector.h"
#include "webhook/resolver.h"

namespace exitrec::testing {
namespace {

using json = nlohmann::json;

struct Decided {
  ExitTaskDecision d;
  json pod;      // as created
  json patched;  // after applying the patch
};

Decided decideFor(const KfpRun& run, const std::string& node, const PodBuildOptions& po = {},
                  std::vector<PodObservation> pods = {}) {
  FakeStateProvider provider;
  provider.put(run);
  provider.putPods(run.name, std::move(pods));
  FakeClock clock;
  ExitTaskResolver resolver(provider, clock);
  Decided out;
  out.pod = buildArgoPod(run.json, node, po);
  out.d = resolver.decide(out.pod);
  out.patched = applyJsonPatch(out.pod, out.d.plan.patch);
  return out;
}

json failuresOf(const json& pod) {
  return json::parse(envOf(pod, "main", "KFP_WORKFLOW_FAILURES"));
}

TEST(SplitNodePath, DotsInsideParenthesesAndStepGroups) {
  EXPECT_EQ(splitNodePath("w", "w.root.a(0:x.y).executor"),
            (std::vector<std::string>{"root", "a(0:x.y)", "executor"}));
  EXPECT_EQ(splitNodePath("w", "w[0].step.onExit"),
            (std::vector<std::string>{"[0]", "step", "onExit"}));
  EXPECT_EQ(splitNodePath("my.wf", "my.wf.onExit"), (std::vector<std::string>{"onExit"}));
  EXPECT_TRUE(splitNodePath("w", "w2.root").empty());
  EXPECT_TRUE(splitNodePath("w", "w").empty());
}

TEST(KfpTaskOfNode, DropsExecutorAndDriverPlumbing) {
  EXPECT_EQ(kfpTaskOfNode("w", "w.root.exit-handler-1.fail-op.executor"), "fail-op");
  EXPECT_EQ(kfpTaskOfNode("w", "w.root.exit-handler-1.fail-op-driver"), "fail-op");
  EXPECT_EQ(kfpTaskOfNode("w", "w.root.add.executor(1)"), "add");
}

TEST(HookGeneration, BodyFailedExitTaskGetsFailedAndFailures) {
  REQUIRE_SHARED_FIXTURES("KFP >= 2.4 exit-handler hook run");
  Scenario sc;
  sc.pods["fail-op"].phase = "Failed";
  KfpRun run = makeRunFromFile(kCompiled + "/pipeline_with_exit_handler.yaml", sc);
  auto r = decideFor(run, run.node("root.exit-handler-1.onExit.print-op.executor"));
  ASSERT_EQ(r.d.outcome, ExitTaskDecision::Outcome::kInject);
  EXPECT_EQ(r.d.target->kind, ExitTaskKind::kExitHandlerHook);
  EXPECT_EQ(r.d.target->bodyNodeName, run.node("root.exit-handler-1"));

  EXPECT_EQ(envOf(r.patched, "main", "KFP_EXIT_HANDLER_STATUS"), "Failed");
  EXPECT_EQ(envOf(r.patched, "main", "KFP_WORKFLOW_STATUS"), "Failed");
  json failures = failuresOf(r.patched);
  ASSERT_TRUE(failures.is_array());
  ASSERT_EQ(failures.size(), 1u) << failures.dump();
  for (const char* key :
       {"displayName", "message", "templateName", "phase", "podName", "finishedAt"}) {
    EXPECT_TRUE(failures[0].contains(key)) << key;
  }
  EXPECT_EQ(failures[0]["phase"], "Failed");
  EXPECT_EQ(failures[0]["templateName"], "system-container-impl");

  json fs = json::parse(envOf(r.patched, "main", "KFP_PIPELINE_TASK_FINAL_STATUS"));
  EXPECT_EQ(fs["state"], "FAILED");
  EXPECT_EQ(fs["pipelineTaskName"], "exit-handler-1");
  EXPECT_EQ(fs["pipelineJobResourceName"], run.name);
  EXPECT_EQ(fs["error"]["code"], kRpcUnknown);
  EXPECT_NE(fs["error"]["message"].get<std::string>().find("fail-op"), std::string::npos);

  // Only the user container: Argo's wait sidecar and the init containers stay as they were.
  EXPECT_EQ(envOf(r.patched, "wait", "KFP_WORKFLOW_STATUS"), "");
  EXPECT_EQ(r.patched["spec"]["initContainers"], r.pod["spec"]["initContainers"]);
  EXPECT_EQ(r.patched["metadata"]["annotations"]["exit-reconciler.io/injected"], "webhook");
  EXPECT_EQ(r.patched["metadata"]["annotations"]["exit-reconciler.io/workflow-status"], "Failed");
  EXPECT_EQ(r.patched["metadata"]["annotations"]["exit-reconciler.io/injected-items"], "env");
}

TEST(HookGeneration, BodySucceeded) {
  REQUIRE_SHARED_FIXTURES("KFP >= 2.4 exit-handler hook run");
  KfpRun run = makeRunFromFile(kCompiled + "/pipeline_with_exit_handler.yaml", Scenario{});
  auto r = decideFor(run, run.node("root.exit-handler-1.onExit.print-op.executor"));
  ASSERT_EQ(r.d.outcome, ExitTaskDecision::Outcome::kInject);
  EXPECT_EQ(envOf(r.patched, "main", "KFP_EXIT_HANDLER_STATUS"), "Succeeded");
  EXPECT_EQ(envOf(r.patched, "main", "KFP_WORKFLOW_STATUS"), "Succeeded");
  EXPECT_EQ(envOf(r.patched, "main", "KFP_WORKFLOW_FAILURES"), "[]");
  json fs = json::parse(envOf(r.patched, "main", "KFP_PIPELINE_TASK_FINAL_STATUS"));
  EXPECT_EQ(fs["state"], "SUCCEEDED");
  EXPECT_EQ(fs["error"], json::object());
}

TEST(HookGeneration, DriverPodOfExitTaskIsLeftAlone) {
  REQUIRE_SHARED_FIXTURES("KFP >= 2.4 exit-handler hook run");
  Scenario sc;
  sc.pods["fail-op"].phase = "Failed";
  KfpRun run = makeRunFromFile(kCompiled + "/pipeline_with_exit_handler.yaml", sc);
  auto r = decideFor(run, run.node("root.exit-handler-1.onExit.print-op-driver"));
  EXPECT_EQ(r.d.outcome, ExitTaskDecision::Outcome::kNoUserCode);
  EXPECT_TRUE(r.d.plan.patch.empty());
}

TEST(HookGeneration, BodyPodsAreOutOfScope) {
  REQUIRE_SHARED_FIXTURES("KFP >= 2.4 exit-handler hook run");
  Scenario sc;
  sc.pods["fail-op"].phase = "Failed";
  KfpRun run = makeRunFromFile(kCompiled + "/pipeline_with_exit_handler.yaml", sc);
  for (const char* node : {"root.exit-handler-1.fail-op.executor",
                           "root.exit-handler-1.fail-op-driver", "root-driver"}) {
    auto r = decideFor(run, run.node(node));
    EXPECT_EQ(r.d.outcome, ExitTaskDecision::Outcome::kOutOfScope) << node;
    EXPECT_TRUE(r.d.plan.patch.empty()) << node;
  }
}

TEST(HookGeneration, EachOfSeveralExitHandlersSeesItsOwnBody) {
  REQUIRE_SHARED_FIXTURES("KFP >= 2.4 multiple exit handlers");
  Scenario sc;
  sc.pods["fail-op"].phase = "Failed";  // in exit-handler-1's body
  KfpRun run = makeRunFromFile(kCompiled + "/pipeline_with_multiple_exit_handlers.yaml", sc);
  auto second = decideFor(run, run.node("root.exit-handler-2.onExit.print-op-3.executor"));
  ASSERT_EQ(second.d.outcome, ExitTaskDecision::Outcome::kInject);
  EXPECT_EQ(envOf(second.patched, "main", "KFP_EXIT_HANDLER_STATUS"), "Succeeded");
  EXPECT_EQ(envOf(second.patched, "main", "KFP_WORKFLOW_STATUS"), "Failed");
  json fs = json::parse(envOf(second.patched, "main", "KFP_PIPELINE_TASK_FINAL_STATUS"));
  EXPECT_EQ(fs["state"], "SUCCEEDED");
  EXPECT_EQ(fs["pipelineTaskName"], "exit-handler-2");

  auto first = decideFor(run, run.node("root.exit-handler-1.onExit.print-op.executor"));
  EXPECT_EQ(envOf(first.patched, "main", "KFP_EXIT_HANDLER_STATUS"), "Failed");
}

TEST(HookGeneration, IgnoreUpstreamFailureHookReportsItsUpstream) {
  REQUIRE_SHARED_FIXTURES("KFP >= 2.4 ignore_upstream_failure");
  Scenario sc;
  sc.pods["fail-op"].phase = "Failed";
  KfpRun run =
      makeRunFromFile(kCompiled + "/pipeline_with_task_using_ignore_upstream_failure.yaml", sc);
  auto r = decideFor(run, run.node("root.fail-op.onExit.print-op.executor"));
  ASSERT_EQ(r.d.outcome, ExitTaskDecision::Outcome::kInject);
  EXPECT_EQ(r.d.target->kind, ExitTaskKind::kIgnoreUpstreamHook);
  EXPECT_EQ(envOf(r.patched, "main", "KFP_EXIT_HANDLER_STATUS"), "Failed");
}

TEST(FinalStatus214, LauncherExecutorInputIsRewritten) {
  REQUIRE_SHARED_FIXTURES("KFP >= 2.14 PipelineTaskFinalStatus");
  Scenario sc;
  sc.pods["fail-op"].phase = "Failed";
  KfpRun run = makeRunFromFile(kCompiled + "/pipeline_with_task_final_status.yaml", sc);
  PodBuildOptions po;
  po.mlmdState = "RUNNING";  // MLMD's stale view (#11979)
  auto r = decideFor(run, run.node("root.exit-handler-1.onExit.exit-op.executor"), po);
  ASSERT_EQ(r.d.outcome, ExitTaskDecision::Outcome::kInject);
  json before = executorInputOf(r.pod, "main");
  EXPECT_EQ(before["inputs"]["parameterValues"]["status"]["state"], "RUNNING");
  json after = executorInputOf(r.patched, "main");
  json status = after["inputs"]["parameterValues"]["status"];
  EXPECT_EQ(status["state"], "FAILED");
  EXPECT_EQ(status["pipelineTaskName"], "exit-handler-1");
  EXPECT_EQ(status["pipelineJobResourceName"], run.name);
  EXPECT_EQ(status["error"]["code"], kRpcUnknown);
  EXPECT_NE(status["error"]["message"].get<std::string>().find("fail-op"), std::string::npos);
  // Everything else in the executor input is untouched.
  EXPECT_EQ(after["inputs"]["parameterValues"]["user_input"],
            before["inputs"]["parameterValues"]["user_input"]);
  EXPECT_EQ(after["outputs"], before["outputs"]);
  // The Argo prefix and the user command are untouched.
  const json& cmd = r.patched["spec"]["containers"][1]["command"];
  EXPECT_EQ(cmd[0], "/var/run/argo/argoexec");
  EXPECT_EQ(r.patched["spec"]["containers"][1]["args"], r.pod["spec"]["containers"][1]["args"]);
  EXPECT_EQ(r.patched["metadata"]["annotations"]["exit-reconciler.io/injected-items"],
            "env,executor-input");
}

TEST(FinalStatus214, FlagsInArgsAndSucceededBody) {
  REQUIRE_SHARED_FIXTURES("KFP >= 2.14 PipelineTaskFinalStatus");
  KfpRun run = makeRunFromFile(kCompiled + "/pipeline_with_task_final_status.yaml", Scenario{});
  PodBuildOptions po;
  po.launcherFlagsInArgs = true;
  po.mlmdState = "COMPLETE";
  auto r = decideFor(run, run.node("root.exit-handler-1.onExit.exit-op.executor"), po);
  json status = executorInputOf(r.patched, "main")["inputs"]["parameterValues"]["status"];
  EXPECT_EQ(status["state"], "SUCCEEDED");
  EXPECT_EQ(status["error"], json::object());
}

TEST(FinalStatus214, SnakeCaseKeysStaySnakeCase) {
  ExitTaskState s;
  s.finalState = "FAILED";
  s.pipelineTaskName = "exit-handler-1";
  s.pipelineJobResourceName = "wf";
  s.errorCode = kRpcUnknown;
  s.errorMessage = "task fail-op failed: Error (exit code 1)";
  const std::string in =
      R"({"inputs":{"parameter_values":{"st":{"state":"COMPLETE","pipeline_task_name":"exit-handler-1","pipeline_job_resource_name":"wf"}}}})";
  bool fs = false;
  std::string out = rewriteExecutorInput(in, {}, s, {}, &fs, nullptr);
  ASSERT_TRUE(fs);
  json j = json::parse(out)["inputs"]["parameter_values"]["st"];
  EXPECT_EQ(j["state"], "FAILED");
  EXPECT_FALSE(j.contains("pipelineTaskName"));
  EXPECT_EQ(j["error"]["message"], s.errorMessage);
  // Not an executor input: untouched.
  EXPECT_EQ(rewriteExecutorInput("{{$}}", {}, s, {}, nullptr, nullptr), "");
  EXPECT_EQ(rewriteExecutorInput(R"({"inputs":{}})", {}, s, {}, nullptr, nullptr), "");
}

TEST(Placeholder, WorkflowStatusResolvedTooEarlyIsReplaced) {
  REQUIRE_SHARED_FIXTURES("KFP >= 2.4 exit-handler hook run");
  // A user wrote print_op(message='run ended: {{workflow.status}}') as the exit task.
  json spec = loadSpec(kCompiled + "/pipeline_with_exit_handler.yaml");
  bool edited = false;
  for (auto& t : spec["spec"]["templates"]) {
    if (t["name"] != "exit-hook-root-print-op")
      continue;
    for (auto& task : t["dag"]["tasks"]) {
      for (auto& p : task["arguments"]["parameters"]) {
        if (p["name"] != "task")
          continue;
        json ts = json::parse(p["value"].get<std::string>());
        ts["inputs"]["parameters"]["message"] = {
            {"runtimeValue", {{"constant", "run ended: {{workflow.status}}"}}}};
        p["value"] = ts.dump();
        edited = true;
      }
    }
  }
  ASSERT_TRUE(edited);
  Scenario sc;
  sc.pods["fail-op"].phase = "Failed";
  KfpRun run = makeRun(spec, sc);
  auto r = decideFor(run, run.node("root.exit-handler-1.onExit.print-op.executor"));
  ASSERT_EQ(r.d.outcome, ExitTaskDecision::Outcome::kInject);
  EXPECT_EQ(executorInputOf(r.pod, "main")["inputs"]["parameterValues"]["message"],
            "run ended: Running");
  EXPECT_EQ(executorInputOf(r.patched, "main")["inputs"]["parameterValues"]["message"],
            "run ended: Failed");
  EXPECT_EQ(r.patched["metadata"]["annotations"]["exit-reconciler.io/injected-items"],
            "env,placeholder");
}

TEST(SiblingGeneration, ExitTaskOf23RunGetsTheMaskedFailure) {
  Scenario sc;
  sc.pods["fail-op"].phase = "Failed";
  KfpRun run = makeRunFromFile(kOwnData + "/kfp-v2.3-sibling-exit-handler.yaml", sc);
  auto r = decideFor(run, run.node("root.print-op.executor"));
  ASSERT_EQ(r.d.outcome, ExitTaskDecision::Outcome::kInject);
  EXPECT_EQ(r.d.target->kind, ExitTaskKind::kSibling);
  EXPECT_EQ(r.d.target->bodyNodeName, run.node("root.exit-handler-1"));
  EXPECT_FALSE(r.pod["metadata"]["labels"].contains("workflows.argoproj.io/on-exit"));
  EXPECT_EQ(envOf(r.patched, "main", "KFP_EXIT_HANDLER_STATUS"), "Failed");
  EXPECT_EQ(envOf(r.patched, "main", "KFP_WORKFLOW_STATUS"), "Failed");
  EXPECT_EQ(failuresOf(r.patched).size(), 1u);
  // Body pods and the exit task's driver are not touched.
  EXPECT_EQ(decideFor(run, run.node("root.exit-handler-1.fail-op.executor")).d.outcome,
            ExitTaskDecision::Outcome::kOutOfScope);
  EXPECT_EQ(decideFor(run, run.node("root.print-op-driver")).d.outcome,
            ExitTaskDecision::Outcome::kOutOfScope);
}

TEST(V1Generation, WorkflowOnExitPod) {
  REQUIRE_SHARED_FIXTURES("KFP v1 run");
  json spec = loadSpec(kSharedFixtures + "/kfp/v1/basic.yaml");
  Scenario sc;
  sc.pods["save"].phase = "Failed";
  KfpRun run = makeRun(spec, sc);
  auto r = decideFor(run, run.node("onExit"));
  ASSERT_EQ(r.d.outcome, ExitTaskDecision::Outcome::kInject);
  EXPECT_EQ(r.d.target->kind, ExitTaskKind::kWorkflowOnExit);
  EXPECT_EQ(envOf(r.patched, "main", "KFP_EXIT_HANDLER_STATUS"), "Failed");
  EXPECT_EQ(envOf(r.patched, "main", "KFP_WORKFLOW_STATUS"), "Failed");
}

TEST(StoredWorkflowLags, PodsDecideWhenBodyNodesAreNotFinal) {
  REQUIRE_SHARED_FIXTURES("KFP >= 2.4 exit-handler hook run");
  // The stored Workflow still shows fail-op running; its pod has already failed.
  Scenario sc;
  sc.running.insert("fail-op");
  KfpRun run = makeRunFromFile(kCompiled + "/pipeline_with_exit_handler.yaml", sc);
  const std::string failedNode = run.node("root.exit-handler-1.fail-op.executor");
  ASSERT_NE(run.wf.nodeByName(failedNode), nullptr);
  PodObservation failed;
  failed.nodeName = failedNode;
  failed.nodeId = run.wf.nodeByName(failedNode)->id;
  failed.phase = Phase::kFailed;
  failed.message = "Error (exit code 1)";
  failed.finishedAt = "2026-11-28T12:05:00Z";
  const std::string exitNode = run.node("root.exit-handler-1.onExit.print-op.executor");
  auto r =
      decideFor(run, exitNode, PodBuildOptions{.templateName = "system-container-impl"}, {failed});
  ASSERT_EQ(r.d.outcome, ExitTaskDecision::Outcome::kInject);
  EXPECT_TRUE(r.d.state.usedPods);
  EXPECT_EQ(envOf(r.patched, "main", "KFP_EXIT_HANDLER_STATUS"), "Failed");
  json f = failuresOf(r.patched);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0]["message"], "Error (exit code 1)");
}

TEST(OverlayPods, AddsMissingNodeUnderItsAncestor) {
  REQUIRE_SHARED_FIXTURES("KFP >= 2.4 exit-handler hook run");
  Scenario sc;
  sc.running.insert("fail-op");
  KfpRun run = makeRunFromFile(kCompiled + "/pipeline_with_exit_handler.yaml", sc);
  Workflow wf = run.wf;
  PodObservation o;
  o.nodeName = run.node("root.exit-handler-1.print-op-2.executor(1)");
  o.phase = Phase::kError;
  o.message = "pod deleted";
  EXPECT_EQ(overlayPods(wf, {o}), 1u);
  const Node* n = wf.nodeByName(o.nodeName);
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->phase, Phase::kError);
  EXPECT_EQ(n->id, argoNodeId(run.name, o.nodeName));
  const Node* parent = wf.nodeById(n->boundaryId);
  ASSERT_NE(parent, nullptr);
  EXPECT_EQ(parent->name, run.node("root.exit-handler-1.print-op-2"));
}

// ---------------------------------------------------------------------------
// KFP 2.17's default install: every template retry-wrapped (Argo v4.0.5
// templateDefaults; test/fixtures/runtime_builder.cpp execWrapped). Task
// nodes are Retry nodes, their attempts "<task>(n)" the boundaries of the
// tasks inside, the hook a Retry "<group>.onExit" with attempts "….onExit(n)".

Scenario retryWrapped() {
  Scenario sc;
  sc.templateDefaultsRetry = true;
  return sc;
}

TEST(SplitNodePath, EntryAttemptOfARetriedEntrypoint) {
  EXPECT_EQ(splitNodePath("w", "w(0).root(0).exit-handler-1.onExit(0).print-op(0).executor(0)"),
            (std::vector<std::string>{"(0)", "root(0)", "exit-handler-1", "onExit(0)",
                                      "print-op(0)", "executor(0)"}));
  EXPECT_EQ(kfpTaskOfNode("w", "w(0).root(0).exit-handler-1(0).fail-op(0).executor(0)"), "fail-op");
}

TEST(RetryWrapped217, HookExitTaskSeesItsFailedBody) {
  REQUIRE_SHARED_FIXTURES("KFP >= 2.4 exit-handler hook run");
  Scenario sc = retryWrapped();
  sc.pods["fail-op"].phase = "Failed";
  KfpRun run = makeRunFromFile(kCompiled + "/pipeline_with_exit_handler.yaml", sc);
  const std::string W = run.name;
  auto r = decideFor(run, W + "(0).root(0).exit-handler-1.onExit(0).print-op(0).executor(0)");
  ASSERT_EQ(r.d.outcome, ExitTaskDecision::Outcome::kInject);
  EXPECT_EQ(r.d.target->kind, ExitTaskKind::kExitHandlerHook);
  EXPECT_EQ(r.d.target->bodyNodeName, W + "(0).root(0).exit-handler-1");
  EXPECT_EQ(r.d.target->bodyTaskName, "exit-handler-1");
  EXPECT_EQ(r.d.target->exitTaskNodeName, W + "(0).root(0).exit-handler-1.onExit");
  EXPECT_EQ(envOf(r.patched, "main", "KFP_EXIT_HANDLER_STATUS"), "Failed");
  json failures = failuresOf(r.patched);
  ASSERT_EQ(failures.size(), 1u) << failures.dump();
  json fs = json::parse(envOf(r.patched, "main", "KFP_PIPELINE_TASK_FINAL_STATUS"));
  EXPECT_EQ(fs["pipelineTaskName"], "exit-handler-1");
  EXPECT_NE(fs["error"]["message"].get<std::string>().find("fail-op"), std::string::npos);
  // Body pods and the exit task's driver stay out of scope / untouched.
  EXPECT_EQ(decideFor(run, W + "(0).root(0).exit-handler-1(0).fail-op(0).executor(0)").d.outcome,
            ExitTaskDecision::Outcome::kOutOfScope);
  EXPECT_EQ(decideFor(run, W + "(0).root(0).exit-handler-1.onExit(0).print-op-driver(0)").d.outcome,
            ExitTaskDecision::Outcome::kNoUserCode);
}

TEST(RetryWrapped217, BodyPodStillRunningUnderAnAttemptNeedsPods) {
  REQUIRE_SHARED_FIXTURES("KFP >= 2.4 exit-handler hook run");
  Scenario sc = retryWrapped();
  sc.pods["fail-op"].phase = "Failed";
  KfpRun run = makeRunFromFile(kCompiled + "/pipeline_with_exit_handler.yaml", sc);
  const std::string W = run.name;
  PodIdentity id;
  id.runId = "r";
  id.workflowName = W;
  id.nodeName = W + "(0).root(0).exit-handler-1.onExit(0).print-op(0).executor(0)";
  id.onExitLabel = true;
  auto target = identifyExitTask(run.wf, id);
  ASSERT_TRUE(target.has_value());
  EXPECT_FALSE(bodyNeedsPods(run.wf, *target));
  // The stored copy lags: the body's pod, inside attempt (0), is not final yet.
  json lagging = run.json;
  const std::string pod = W + "(0).root(0).exit-handler-1(0).fail-op(0).executor(0)";
  lagging["status"]["nodes"][testNodeId(W, pod)]["phase"] = "Running";
  auto wf = parseWorkflowJson(lagging.dump());
  ASSERT_TRUE(wf.ok());
  EXPECT_TRUE(bodyNeedsPods(*wf, *target));
}

TEST(RetryWrapped217, StoredWorkflowLagsAndPodsDecide) {
  REQUIRE_SHARED_FIXTURES("KFP >= 2.4 exit-handler hook run");
  Scenario sc = retryWrapped();
  sc.running.insert("fail-op");
  KfpRun run = makeRunFromFile(kCompiled + "/pipeline_with_exit_handler.yaml", sc);
  const std::string failedNode = run.name + "(0).root(0).exit-handler-1(0).fail-op(0).executor(0)";
  ASSERT_NE(run.wf.nodeByName(failedNode), nullptr);
  PodObservation failed;
  failed.nodeName = failedNode;
  failed.nodeId = run.wf.nodeByName(failedNode)->id;
  failed.phase = Phase::kFailed;
  failed.message = "Error (exit code 1)";
  failed.finishedAt = "2026-11-28T12:05:00Z";
  const std::string exitNode =
      run.name + "(0).root(0).exit-handler-1.onExit(0).print-op(0).executor(0)";
  auto r =
      decideFor(run, exitNode, PodBuildOptions{.templateName = "system-container-impl"}, {failed});
  ASSERT_EQ(r.d.outcome, ExitTaskDecision::Outcome::kInject);
  EXPECT_TRUE(r.d.state.usedPods);
  EXPECT_EQ(envOf(r.patched, "main", "KFP_EXIT_HANDLER_STATUS"), "Failed");
}

TEST(RetryWrapped217, SiblingExitTaskOf23Layout) {
  Scenario sc = retryWrapped();
  sc.pods["fail-op"].phase = "Failed";
  KfpRun run = makeRunFromFile(kOwnData + "/kfp-v2.3-sibling-exit-handler.yaml", sc);
  const std::string W = run.name;
  auto r = decideFor(run, W + "(0).root(0).print-op(0).executor(0)");
  ASSERT_EQ(r.d.outcome, ExitTaskDecision::Outcome::kInject);
  EXPECT_EQ(r.d.target->kind, ExitTaskKind::kSibling);
  EXPECT_EQ(r.d.target->bodyNodeName, W + "(0).root(0).exit-handler-1");
  EXPECT_EQ(r.d.target->exitTaskNodeName, W + "(0).root(0).print-op");
  EXPECT_EQ(envOf(r.patched, "main", "KFP_EXIT_HANDLER_STATUS"), "Failed");
  EXPECT_EQ(failuresOf(r.patched).size(), 1u);
}

TEST(RetryWrapped217, V1WorkflowOnExitAttemptPod) {
  REQUIRE_SHARED_FIXTURES("KFP v1 run");
  Scenario sc = retryWrapped();
  sc.pods["save"].phase = "Failed";
  KfpRun run = makeRun(loadSpec(kSharedFixtures + "/kfp/v1/basic.yaml"), sc);
  auto r = decideFor(run, run.name + ".onExit(0)");
  ASSERT_EQ(r.d.outcome, ExitTaskDecision::Outcome::kInject);
  EXPECT_EQ(r.d.target->kind, ExitTaskKind::kWorkflowOnExit);
  EXPECT_EQ(r.d.target->exitTaskNodeName, run.name + ".onExit");
  EXPECT_EQ(envOf(r.patched, "main", "KFP_EXIT_HANDLER_STATUS"), "Failed");
}

TEST(Resolver, AlreadyInjectedPodIsNotPatchedTwice) {
  REQUIRE_SHARED_FIXTURES("KFP >= 2.4 exit-handler hook run");
  KfpRun run = makeRunFromFile(kCompiled + "/pipeline_with_exit_handler.yaml", Scenario{});
  auto first = decideFor(run, run.node("root.exit-handler-1.onExit.print-op.executor"));
  FakeStateProvider provider;
  provider.put(run);
  FakeClock clock;
  ExitTaskResolver resolver(provider, clock);
  EXPECT_EQ(resolver.decide(first.patched).outcome, ExitTaskDecision::Outcome::kAlreadyInjected);
}

TEST(Resolver, ApiErrorsAreReportedNotGuessed) {
  REQUIRE_SHARED_FIXTURES("KFP >= 2.4 exit-handler hook run");
  KfpRun run = makeRunFromFile(kCompiled + "/pipeline_with_exit_handler.yaml", Scenario{});
  FakeStateProvider provider;
  provider.put(run);
  provider.failWith(Error(ErrorCode::kTransient, "connection refused"));
  FakeClock clock;
  ExitTaskResolver resolver(provider, clock);
  auto d = resolver.decide(
      buildArgoPod(run.json, run.node("root.exit-handler-1.onExit.print-op.executor")));
  EXPECT_EQ(d.outcome, ExitTaskDecision::Outcome::kStateUnavailable);
  ASSERT_TRUE(d.error.has_value());
  EXPECT_EQ(d.error->code, ErrorCode::kTransient);
}

TEST(Resolver, NonKfpPodNeedsNoState) {
  FakeStateProvider provider;
  FakeClock clock;
  ExitTaskResolver resolver(provider, clock);
  json pod = {
      {"metadata", {{"name", "nginx"}, {"namespace", "default"}, {"labels", {{"app", "web"}}}}},
      {"spec", {{"containers", json::array({{{"name", "nginx"}}})}}}};
  EXPECT_EQ(resolver.decide(pod).outcome, ExitTaskDecision::Outcome::kOutOfScope);
  // An on-exit pod of a plain Argo workflow (no pipeline/runid) is not ours either.
  pod["metadata"]["labels"] = {{"workflows.argoproj.io/on-exit", "true"},
                               {"workflows.argoproj.io/workflow", "w"}};
  pod["metadata"]["annotations"] = {{"workflows.argoproj.io/node-name", "w.onExit"}};
  EXPECT_EQ(resolver.decide(pod).outcome, ExitTaskDecision::Outcome::kOutOfScope);
  EXPECT_EQ(provider.workflowCalls(), 0);
}

TEST(ObservePod, MapsPhasesAndMessages) {
  json pod = {
      {"metadata",
       {{"name", "p"},
        {"annotations",
         {{"workflows.argoproj.io/node-name", "w.a"}, {"workflows.argoproj.io/node-id", "w-1"}}}}},
      {"status",
       {{"phase", "Failed"},
        {"containerStatuses", json::array({{{"name", "wait"}},
                                           {{"name", "main"},
                                            {"state",
                                             {{"terminated",
                                               {{"exitCode", 137},
                                                {"reason", "OOMKilled"},
                                                {"finishedAt", "2026-11-28T12:00:00Z"}}}}}}})}}}};
  auto o = observePod(pod);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->phase, Phase::kFailed);
  EXPECT_EQ(o->message, "OOMKilled (exit code 137)");
  EXPECT_EQ(o->nodeId, "w-1");
  pod["status"]["phase"] = "Running";
  EXPECT_FALSE(observePod(pod).has_value());
}

}  // namespace
}  // namespace exitrec::testing
