// `exit-reconciler run` flags: env forms, defaults, validation messages.

#include "controller/run_config.h"

#include <gtest/gtest.h>

#include <map>

namespace exitrec {
namespace {

Result<RunConfig> parse(std::vector<std::string> args,
                        std::map<std::string, std::string> env = {}) {
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  cli::FlagParser parser = runFlagParser();
  auto parsed = parser.parse(std::span<char* const>(argv.data(), argv.size()),
                             [&](const std::string& name) -> std::optional<std::string> {
                               auto it = env.find(name);
                               if (it == env.end())
                                 return std::nullopt;
                               return it->second;
                             });
  if (!parsed)
    return parsed.error();
  return parseRunConfig(*parsed);
}

TEST(RunConfigTest, DefaultsWatchOnlyCompletedKfpRunsAndReportThroughTheAgent) {
  auto c = parse({});
  ASSERT_TRUE(c.ok()) << c.error().describe();
  EXPECT_EQ(c->labelSelector(), "workflows.argoproj.io/completed=true,pipeline/runid");
  EXPECT_TRUE(c->correction.correct);
  EXPECT_TRUE(c->leaderElect);
  EXPECT_EQ(c->workers, 2);
  EXPECT_EQ(c->correction.kfpReport, KfpReportMode::kPersistenceAgent);
  EXPECT_FALSE(c->correction.kfpReverify);  // no KFP state to read again
  EXPECT_EQ(c->correction.exitTaskFailure, ExitTaskFailurePolicy::kIgnore);
  EXPECT_EQ(c->healthAddr, ":8081");
  EXPECT_EQ(c->metricsAddr, ":8080");
}

TEST(RunConfigTest, KfpUrlMakesDirectTheDefaultAndEnvFormsWork) {
  auto c = parse({"--kfp-api-url", "http://ml-pipeline:8888/"},
                 {{"EXIT_RECONCILER_WORKERS", "7"},
                  {"EXIT_RECONCILER_ALL_WORKFLOWS", "true"},
                  {"EXIT_RECONCILER_CORRECT", "false"},
                  {"EXIT_RECONCILER_EXIT_TASK_FAILURE", "fail"}});
  ASSERT_TRUE(c.ok()) << c.error().describe();
  EXPECT_EQ(c->correction.kfpReport, KfpReportMode::kDirect);
  EXPECT_TRUE(c->correction.kfpReverify);
  EXPECT_EQ(c->kfpApiUrl, "http://ml-pipeline:8888");
  EXPECT_EQ(c->workers, 7);
  EXPECT_FALSE(c->correction.correct);
  EXPECT_EQ(c->correction.exitTaskFailure, ExitTaskFailurePolicy::kFail);
  EXPECT_EQ(c->labelSelector(), "workflows.argoproj.io/completed=true");
  // The flag beats the environment.
  c = parse({"--workers=3"}, {{"EXIT_RECONCILER_WORKERS", "7"}});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->workers, 3);
}

TEST(RunConfigTest, BadValuesAreNamed) {
  struct Case {
    std::vector<std::string> args;
    std::string expect;
  };
  for (const Case& k : std::vector<Case>{
           {{"--workers", "0"}, "--workers"},
           {{"--kfp-report", "direct"}, "--kfp-api-url"},
           {{"--kfp-report", "carrier-pigeon"}, "carrier-pigeon"},
           {{"--kfp-api-url", "ml-pipeline:8888"}, "ml-pipeline:8888"},
           {{"--kfp-token-file", "/nonexistent/token"}, "/nonexistent/token"},
           {{"--log-format", "xml"}, "xml"},
           {{"--health-addr", "localhost"}, "localhost"},
           {{"--metrics-addr", ":99999"}, ":99999"},
           {{"--leader-election-lease-duration", "5s", "--leader-election-renew-deadline", "10s"},
            "renew-deadline"},
           {{"--max-retry-delay", "soon"}, "soon"},
       }) {
    auto c = parse(k.args);
    ASSERT_FALSE(c.ok()) << k.args[0];
    EXPECT_NE(c.error().message.find(k.expect), std::string::npos) << c.error().message;
  }
}

TEST(RunConfigTest, HistorySweepIsOffByDefaultAndNeedsKfpApiUrl) {
  auto c = parse({});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->historySweepPeriod.count(), 0);
  EXPECT_EQ(c->historySweepWindow, std::chrono::hours(48));
  c = parse({"--kfp-api-url", "http://kfp:8888", "--kfp-history-sweep", "30m"},
            {{"EXIT_RECONCILER_KFP_HISTORY_WINDOW", "6h"}});
  ASSERT_TRUE(c.ok()) << c.error().describe();
  EXPECT_EQ(c->historySweepPeriod, std::chrono::minutes(30));
  EXPECT_EQ(c->historySweepWindow, std::chrono::hours(6));
  EXPECT_TRUE(c->historySweepNamespaces.empty());
  c = parse({"--namespace", "team-a"});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->historySweepNamespaces, std::vector<std::string>{"team-a"});
  c = parse({"--namespace", "team-a", "--kfp-history-namespaces", "team-a,team-b"});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->historySweepNamespaces, (std::vector<std::string>{"team-a", "team-b"}));
  struct Case {
    std::vector<std::string> args;
    std::string expect;
  };
  for (const Case& k : std::vector<Case>{
           {{"--kfp-history-sweep", "1h"}, "--kfp-history-sweep needs --kfp-api-url"},
           {{"--kfp-api-url", "http://kfp:8888", "--kfp-history-sweep", "hourly"},
            "--kfp-history-sweep: expected a duration like 250ms, 30s, 5m or 1h, got \"hourly\""},
           {{"--kfp-api-url", "http://kfp:8888", "--kfp-history-sweep", "500ms"},
            "--kfp-history-sweep: at least 10s"},
           {{"--kfp-api-url", "http://kfp:8888", "--kfp-history-sweep", "1h",
             "--kfp-history-window", "0"},
            "--kfp-history-window: must be positive"},
           {{"--kfp-history-window", "two days"}, "--kfp-history-window: expected a duration"},
           {{"--kfp-history-namespaces", "a,,b"}, "--kfp-history-namespaces: empty namespace"},
       }) {
    auto bad = parse(k.args);
    ASSERT_FALSE(bad.ok()) << k.args[1];
    EXPECT_NE(bad.error().message.find(k.expect), std::string::npos) << bad.error().message;
  }
}

TEST(RunConfigTest, HelpListsEveryFlagWithItsEnvironmentForm) {
  const std::string help = runFlagParser().help();
  for (const char* f :
       {"kubeconfig", "namespace", "all-workflows", "workers", "correct", "kfp-report",
        "kfp-api-url", "kfp-token-file", "exit-task-failure", "leader-elect",
        "leader-election-name", "leader-election-namespace", "health-addr", "metrics-addr",
        "log-format", "log-level", "kfp-history-sweep", "kfp-history-window"}) {
    EXPECT_NE(help.find(std::string("--") + f), std::string::npos) << f;
  }
  EXPECT_NE(help.find("EXIT_RECONCILER_KFP_API_URL"), std::string::npos);
}

}  // namespace
}  // namespace exitrec
