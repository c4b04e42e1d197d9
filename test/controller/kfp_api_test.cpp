// The KFP API simulator (sim/kfp) and the KFP client (controller/kfp_client.h)
// against it over loopback HTTP.

#include <gtest/gtest.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/fake_clock.h"
#include "controller/kfp_client.h"
#include "controller/kfp_report_body.h"
#include "k8sclient/cpprest_transport.h"
#include "sim/kfp/kfp_api_simulator.h"
#include "sim/kfp/kfp_run_factory.h"

namespace exitrec {
namespace {

using nlohmann::json;

std::string workflowWithPhase(const std::string& phase, const std::string& runId = "run-1") {
  json wf = {{"apiVersion", "argoproj.io/v1alpha1"},
             {"kind", "Workflow"},
             {"metadata",
              {{"name", "wf"},
               {"namespace", "kubeflow"},
               {"uid", "uid-1"},
               {"resourceVersion", "77"},
               {"labels", {{"pipeline/runid", runId}}}}},
             {"status", {{"phase", phase}, {"finishedAt", "2026-11-28T10:05:00Z"}}}};
  return wf.dump();
}

std::string literal(const std::string& s) {
  return json(s).dump();
}

// Runs exist only once KFP created them (the simulator no longer creates one
// on a first report, as KFP does not).
void createRun(KfpApiSimulator& sim, const std::string& runId = "run-1",
               const std::string& workflow = "wf") {
  KfpApiSimulator::CreateRunRequest req;
  req.runId = runId;
  req.ns = "kubeflow";
  req.workflowName = workflow;
  ASSERT_TRUE(sim.createRun(req).ok());
}

TEST(KfpApiSimulatorTest, ReportBodyMustBeAStringHoldingAWorkflow) {
  KfpApiSimulator sim({});
  const std::string path = "/apis/v1beta1/workflows";
  // A raw object (not a string literal) is rejected, like grpc-gateway does.
  auto r = sim.handle("POST", path, std::nullopt, workflowWithPhase("Failed"));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(json::parse(r.body)["message"].get<std::string>().find("JSON string"),
            std::string::npos);
  r = sim.handle("POST", path, std::nullopt, literal("not json"));
  EXPECT_EQ(r.status, 400);
  json noUid = json::parse(workflowWithPhase("Failed"));
  noUid["metadata"].erase("uid");
  r = sim.handle("POST", path, std::nullopt, literal(noUid.dump()));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("uid"), std::string::npos);
  json noRun = json::parse(workflowWithPhase("Failed"));
  noRun["metadata"]["labels"].erase("pipeline/runid");
  r = sim.handle("POST", path, std::nullopt, literal(noRun.dump()));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("missing the Run ID label"), std::string::npos);
  EXPECT_EQ(sim.acceptedReports(), 0u);
  EXPECT_EQ(sim.reports().size(), 4u);  // rejected reports are logged too
  EXPECT_FALSE(sim.run("run-1").has_value());
}

TEST(KfpApiSimulatorTest, RunStateFollowsTheReportedPhaseLikeKfp) {
  KfpApiSimulator sim({});
  createRun(sim);
  for (const auto& [phase, state] :
       std::vector<std::pair<std::string, std::string>>{{"Running", "RUNNING"},
                                                        {"Succeeded", "SUCCEEDED"},
                                                        {"Succeeded", "SUCCEEDED"},
                                                        {"Failed", "FAILED"},
                                                        {"Error", "FAILED"},
                                                        {"Pending", "PENDING"},
                                                        {"", "RUNTIME_STATE_UNSPECIFIED"}}) {
    for (const char* path : {"/apis/v1beta1/workflows", "/apis/v2beta1/workflows"}) {
      auto r = sim.handle("POST", path, std::nullopt, literal(workflowWithPhase(phase)));
      ASSERT_EQ(r.status, 200) << r.body;
      EXPECT_EQ(r.body, "{}");
      auto got = sim.handle("GET", "/apis/v2beta1/runs/run-1", std::nullopt, "");
      ASSERT_EQ(got.status, 200);
      EXPECT_EQ(json::parse(got.body)["state"], state) << phase;
    }
  }
  json run = json::parse(sim.handle("GET", "/apis/v2beta1/runs/run-1", std::nullopt, "").body);
  // snake_case proto names; history appended only on change.
  EXPECT_EQ(run["run_id"], "run-1");
  EXPECT_EQ(run["finished_at"], "2026-11-28T10:05:00Z");
  std::vector<std::string> states;
  for (const auto& h : run["state_history"]) {
    EXPECT_TRUE(h.contains("update_time"));
    states.push_back(h["state"]);
  }
  EXPECT_EQ(states, (std::vector<std::string>{"PENDING", "RUNNING", "SUCCEEDED", "FAILED",
                                              "PENDING", "RUNTIME_STATE_UNSPECIFIED"}));
  EXPECT_EQ(sim.handle("GET", "/apis/v2beta1/runs/nope", std::nullopt, "").status, 404);
}

TEST(KfpApiSimulatorTest, RunJsonUsesTheSwaggerPropertyNames) {
  const std::string swagger =
      std::string(EXITREC_SHARED_DIR) + "/fixtures/kfp/api/v2beta1-run.swagger.json";
  if (!std::filesystem::exists(swagger)) {
    GTEST_SKIP() << "shared fixtures not found at " << swagger
                 << ": skipping the run JSON vs swagger property check";
  }
  json doc = json::parse(std::ifstream(swagger));
  const json& props = doc["definitions"]["v2beta1Run"]["properties"];
  ASSERT_TRUE(props.is_object());
  KfpApiSimulator sim({});
  createRun(sim);
  ASSERT_EQ(sim.handle("POST", "/apis/v1beta1/workflows", std::nullopt,
                       literal(workflowWithPhase("Failed")))
                .status,
            200);
  json run = json::parse(sim.handle("GET", "/apis/v2beta1/runs/run-1", std::nullopt, "").body);
  for (const auto& [key, value] : run.items()) {
    EXPECT_TRUE(props.contains(key)) << "run JSON key not in v2beta1Run: " << key;
  }
  // The report path and its string body, as in the report swagger.
  const std::string report =
      std::string(EXITREC_SHARED_DIR) + "/fixtures/kfp/api/v1beta1-report.swagger.json";
  json rdoc = json::parse(std::ifstream(report));
  const json& params = rdoc["paths"]["/apis/v1beta1/workflows"]["post"]["parameters"];
  ASSERT_EQ(params.size(), 1u);
  EXPECT_EQ(params[0]["in"], "body");
  EXPECT_EQ(params[0]["schema"]["type"], "string");
}

TEST(KfpApiSimulatorTest, BearerTokenAndFaults) {
  KfpApiSimulator sim({"127.0.0.1", 0, "secret"});
  createRun(sim);
  const std::string body = literal(workflowWithPhase("Failed"));
  EXPECT_EQ(sim.handle("POST", "/apis/v1beta1/workflows", std::nullopt, body).status, 401);
  EXPECT_EQ(sim.handle("POST", "/apis/v1beta1/workflows", "Bearer wrong", body).status, 401);
  EXPECT_EQ(sim.handle("GET", "/apis/v1beta1/healthz", std::nullopt, "").status, 200);
  sim.failNext(2, 503);
  EXPECT_EQ(sim.handle("POST", "/apis/v1beta1/workflows", "Bearer secret", body).status, 503);
  EXPECT_EQ(sim.handle("GET", "/apis/v2beta1/runs/run-1", "Bearer secret", "").status, 503);
  EXPECT_EQ(sim.handle("POST", "/apis/v1beta1/workflows", "Bearer secret", body).status, 200);
  EXPECT_EQ(sim.acceptedReports(), 1u);
  // Control endpoint (for child-process use).
  EXPECT_EQ(sim.handle("POST", "/_kfp/fail", "Bearer secret", R"({"count":1,"status":500})").status,
            200);
  EXPECT_EQ(sim.handle("POST", "/apis/v1beta1/workflows", "Bearer secret", body).status, 500);
  auto log = json::parse(sim.handle("GET", "/_kfp/reports", "Bearer secret", "").body);
  ASSERT_EQ(log.size(), 3u);
  EXPECT_EQ(log[1]["status"], 200);
  EXPECT_EQ(log[1]["runId"], "run-1");
  EXPECT_EQ(log[1]["phase"], "Failed");
  EXPECT_EQ(sim.handle("POST", "/_kfp/fail", "Bearer secret", R"({"count":"x"})").status, 400);
}

class KfpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("kfp-client-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    tokenFile_ = (dir_ / "token").string();
    writeToken("token-a");
    sim_ = std::make_unique<KfpApiSimulator>(KfpApiSimulator::Options{"127.0.0.1", 0, "token-a"});
    ASSERT_TRUE(sim_->start().ok());
    createRun(*sim_);
    createRun(*sim_, "6f1f0c1e-0000-4000-8000-000000000001", "masked");
    auto t = makeCpprestTransport(TlsOptions{});
    ASSERT_TRUE(t.ok());
    transport_ = std::move(t).value();
    client_ = std::make_unique<KfpClient>(
        *transport_, TokenSource::file(tokenFile_, clock_, std::chrono::seconds(3600)),
        KfpClient::Options{sim_->baseUrl() + "/", std::chrono::seconds(5)},
        [this](std::string_view op, int status, double) {
          calls_.push_back(std::string(op) + ":" + std::to_string(status));
        });
  }
  void TearDown() override {
    sim_->stop();
    std::filesystem::remove_all(dir_);
  }
  void writeToken(const std::string& t) { std::ofstream(tokenFile_) << t << "\n"; }

  std::filesystem::path dir_;
  std::string tokenFile_;
  FakeClock clock_;
  std::unique_ptr<KfpApiSimulator> sim_;
  std::unique_ptr<HttpTransport> transport_;
  std::unique_ptr<KfpClient> client_;
  std::vector<std::string> calls_;
};

TEST_F(KfpClientTest, ReportsTheWorkflowAsAStringLiteralAndReadsTheRunState) {
  KfpRunSpec spec;
  spec.name = "masked";
  spec.runId = "6f1f0c1e-0000-4000-8000-000000000001";
  json wf = json::parse(makeKfpRunJson(spec));
  wf["metadata"]["resourceVersion"] = "123";
  wf["status"]["phase"] = "Failed";
  ASSERT_TRUE(client_->reportWorkflow(wf.dump()).ok());
  auto state = client_->runState(spec.runId);
  ASSERT_TRUE(state.ok()) << state.error().describe();
  EXPECT_EQ(*state, "FAILED");
  auto reports = sim_->reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].resourceVersion, "123");
  EXPECT_EQ(reports[0].name, "masked");
  EXPECT_EQ(calls_, (std::vector<std::string>{"report:200", "get_run:200"}));
}

TEST_F(KfpClientTest, ErrorsAreClassifiedOnce) {
  json bad = json::parse(workflowWithPhase("Failed"));
  bad["metadata"]["labels"].erase("pipeline/runid");
  Status s = client_->reportWorkflow(bad.dump());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(s.error().httpStatus, 400);
  EXPECT_NE(s.error().message.find("missing the Run ID label"), std::string::npos);

  sim_->failNext(1, 503);
  s = client_->reportWorkflow(workflowWithPhase("Failed"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kTransient);
  EXPECT_TRUE(s.error().retryable());

  auto missing = client_->runState("no-such-run");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

TEST_F(KfpClientTest, A401RereadsTheTokenFileAndRetriesOnce) {
  ASSERT_TRUE(client_->reportWorkflow(workflowWithPhase("Failed")).ok());
  // The token rotates: the server now wants b, the file already has it.
  sim_->setToken("token-b");
  writeToken("token-b");
  calls_.clear();
  ASSERT_TRUE(client_->reportWorkflow(workflowWithPhase("Failed")).ok());
  EXPECT_EQ(calls_, (std::vector<std::string>{"report:401", "report:200"}));
  // A token nobody accepts: one retry, then kUnauthorized.
  sim_->setToken("token-c");
  calls_.clear();
  Status s = client_->reportWorkflow(workflowWithPhase("Failed"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kUnauthorized);
  EXPECT_EQ(calls_.size(), 2u);
}

TEST_F(KfpClientTest, UnreachableServerIsTransient) {
  sim_->stop();
  Status s = client_->reportWorkflow(workflowWithPhase("Failed"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kTransient);
}

// --- The report body and KFP's 404s, over a transport that records requests.

class RecordingTransport : public HttpTransport {
 public:
  Result<HttpResponse> send(const HttpRequest& request) override {
    requests.push_back(request);
    if (responses.empty())
      return HttpResponse{200, {}, "{}"};
    HttpResponse r = responses.front();
    responses.pop_front();
    return r;
  }
  Result<StreamResult> stream(const HttpRequest&, const LineCallback&, CancelSource&) override {
    return Error(ErrorCode::kUnsupported, "no streams here");
  }
  std::vector<HttpRequest> requests;
  std::deque<HttpResponse> responses;
};

json labelledWorkflow() {
  json wf = json::parse(workflowWithPhase("Failed"));
  wf["metadata"]["labels"]["pipeline/persistedFinalState"] = "true";
  wf["metadata"]["labels"]["other"] = "kept";
  return wf;
}

TEST(KfpReportBodyTest, StripsTheFinalStateLabelAndNothingElse) {
  const json wf = labelledWorkflow();
  ASSERT_TRUE(carriesPersistedFinalState(wf.dump()));
  Result<std::string> out = kfpReportableWorkflow(wf.dump());
  ASSERT_TRUE(out.ok()) << out.error().describe();
  EXPECT_FALSE(carriesPersistedFinalState(*out));
  json expected = wf;
  expected["metadata"]["labels"].erase("pipeline/persistedFinalState");
  EXPECT_EQ(json::parse(*out), expected);  // resourceVersion "77" kept, the rest untouched
  // The backfill's variant drops the resourceVersion too.
  json noRv = json::parse(*kfpReportableWorkflow(wf.dump(), {/*keepResourceVersion=*/false}));
  EXPECT_FALSE(noRv["metadata"].contains("resourceVersion"));
  EXPECT_FALSE(noRv["metadata"]["labels"].contains("pipeline/persistedFinalState"));
  // The HTTP body is the stripped Workflow as a JSON string literal.
  Result<std::string> body = kfpReportBody(wf.dump());
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(json::parse(json::parse(*body).get<std::string>()), expected);
}

TEST(KfpReportBodyTest, BadInputIsAnErrorNamingWhatWasWrong) {
  for (const auto& [input, words] : std::vector<std::pair<std::string, std::string>>{
           {"not json", "not a JSON object"},
           {"[1]", "not a JSON object"},
           {R"({"metadata": 5})", "no metadata object"},
           {R"({"metadata": {"labels": "x"}})", "metadata.labels is not an object"}}) {
    Result<std::string> out = kfpReportableWorkflow(input);
    ASSERT_FALSE(out.ok()) << input;
    EXPECT_EQ(out.error().code, ErrorCode::kInvalidInput);
    EXPECT_NE(out.error().message.find(words), std::string::npos) << out.error().message;
  }
  EXPECT_TRUE(kfpReportableWorkflow(R"({"metadata": {}})").ok());  // no labels at all
  EXPECT_FALSE(carriesPersistedFinalState("garbage"));
}

TEST(KfpClientBodyTest, TheClientNeverSendsTheFinalStateLabelWhateverItIsGiven) {
  RecordingTransport transport;
  KfpClient client(transport, TokenSource::fixed(""), {"http://kfp:8888", std::chrono::seconds(5)});
  ASSERT_TRUE(client.reportWorkflow(labelledWorkflow().dump()).ok());
  ASSERT_EQ(transport.requests.size(), 1u);
  EXPECT_EQ(transport.requests[0].url, "http://kfp:8888/apis/v1beta1/workflows");
  const json sent = json::parse(json::parse(transport.requests[0].body).get<std::string>());
  EXPECT_FALSE(sent["metadata"]["labels"].contains("pipeline/persistedFinalState"));
  EXPECT_EQ(sent["metadata"]["labels"]["other"], "kept");
  EXPECT_EQ(sent["metadata"]["resourceVersion"], "77");
  // A body that is not a Workflow is refused before anything is sent.
  Status bad = client.reportWorkflow("[]");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidInput);
  EXPECT_EQ(transport.requests.size(), 1u);
}

TEST(KfpClientBodyTest, ARunIdCannotChangeThePath) {
  RecordingTransport transport;
  KfpClient client(transport, TokenSource::fixed(""), {"http://kfp:8888", std::chrono::seconds(5)});
  transport.responses.push_back(HttpResponse{200, {}, R"({"state":"FAILED"})"});
  ASSERT_TRUE(client.runState("6f1f0c1e-0000-4000-8000-000000000001").ok());
  transport.responses.push_back(HttpResponse{200, {}, R"({"state":"FAILED"})"});
  ASSERT_TRUE(client.runState("../v1beta1/runs/x?y=z#f").ok());
  ASSERT_EQ(transport.requests.size(), 2u);
  EXPECT_EQ(transport.requests[0].url,
            "http://kfp:8888/apis/v2beta1/runs/6f1f0c1e-0000-4000-8000-000000000001");
  EXPECT_EQ(transport.requests[1].url,
            "http://kfp:8888/apis/v2beta1/runs/..%2Fv1beta1%2Fruns%2Fx%3Fy%3Dz%23f");
}

TEST(KfpClientBodyTest, A404IsTheRunOnlyWithKfpsOwnNotFoundStatus) {
  RecordingTransport transport;
  KfpClient client(transport, TokenSource::fixed(""), {"http://kfp:8888", std::chrono::seconds(5)});
  auto answer = [&](std::string body) {
    transport.responses.push_back(HttpResponse{404, {}, std::move(body)});
  };
  // KFP's NotFound, grpc-gateway v1 (2.0–2.15) and v2 (2.16+) shapes.
  answer(R"({"error":"Failed to get a run: NotFound","code":5,"message":"Failed to get a run",)"
         R"("details":[]})");
  answer(R"({"code":5,"message":"Failed to report workflow: run not found","details":[]})");
  // No KFP API at the URL: gorilla's 404, grpc-gateway v1's routing text,
  // grpc-gateway v2's routing status (DefaultRoutingErrorHandler), an ingress.
  answer("404 page not found\n");
  answer("Not Found\n");
  answer(R"({"code":5,"message":"Not Found","details":[]})");
  answer("<html><body><h1>404 Not Found</h1>nginx</body></html>");

  Result<std::string> run = client.runState("r1");
  ASSERT_FALSE(run.ok());
  EXPECT_EQ(run.error().code, ErrorCode::kNotFound);
  Status report = client.reportWorkflow(workflowWithPhase("Failed"));
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.error().code, ErrorCode::kNotFound);
  EXPECT_FALSE(isKfpEndpointMissing(report.error()));
  for (int i = 0; i < 4; ++i) {
    Status s = i % 2 == 0 ? client.reportWorkflow(workflowWithPhase("Failed"))
                          : Status(client.runState("r1").error());
    ASSERT_FALSE(s.ok()) << i;
    EXPECT_TRUE(isKfpEndpointMissing(s.error())) << i << ": " << s.error().describe();
    EXPECT_TRUE(s.error().retryable()) << i;
    EXPECT_NE(s.error().message.find("--kfp-api-url"), std::string::npos);
  }
}

}  // namespace
}  // namespace exitrec
