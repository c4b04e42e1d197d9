// Unit tests of controller/cli.h: flag parsing, env-var forms, dispatch.
#include "controller/cli.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace exitrec::cli {
namespace {

class Argv {
 public:
  explicit Argv(std::vector<std::string> args) : args_(std::move(args)) {
    for (auto& a : args_)
      ptrs_.push_back(a.data());
  }
  std::span<char* const> span() const { return {ptrs_.data(), ptrs_.size()}; }
  int argc() const { return static_cast<int>(ptrs_.size()); }
  char** argv() { return ptrs_.data(); }

 private:
  std::vector<std::string> args_;
  std::vector<char*> ptrs_;
};

FlagParser makeParser() {
  FlagParser p("tool run", "[PATH...]", "Does things.");
  p.add({.name = "format",
         .valueName = "F",
         .help = "output",
         .defaultValue = "json",
         .choices = {"json", "table"}});
  p.add({.name = "namespace",
         .valueName = "NS",
         .help = "namespace to watch",
         .envVar = "EXITREC_NAMESPACE"});
  p.add({.name = "dry-run", .help = "do nothing", .envVar = "EXITREC_DRY_RUN", .isSwitch = true});
  p.add({.name = "workers", .valueName = "N", .help = "workers", .defaultValue = "4"});
  p.add({.name = "resync", .valueName = "D", .help = "resync period", .defaultValue = "30s"});
  return p;
}

EnvLookup fakeEnv(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end())
      return std::nullopt;
    return it->second;
  };
}

TEST(FlagParserTest, DefaultsFlagsAndPositionals) {
  Argv a({"--format", "table", "a.json", "--namespace=ns1", "-", "--dry-run"});
  auto r = makeParser().parse(a.span(), fakeEnv({}));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->get("format"), "table");
  EXPECT_EQ(r->get("namespace"), "ns1");
  EXPECT_TRUE(r->getSwitch("dry-run"));
  EXPECT_EQ(r->get("workers"), "4");
  EXPECT_FALSE(r->isSet("workers"));
  EXPECT_TRUE(r->isSet("format"));
  EXPECT_EQ(r->positional(), (std::vector<std::string>{"a.json", "-"}));
  EXPECT_FALSE(r->helpRequested());
}

TEST(FlagParserTest, DoubleDashEndsFlags) {
  Argv a({"--", "--format", "-h"});
  auto r = makeParser().parse(a.span(), fakeEnv({}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->positional(), (std::vector<std::string>{"--format", "-h"}));
  EXPECT_EQ(r->get("format"), "json");
}

TEST(FlagParserTest, EnvironmentVariablesComeAfterTheCommandLine) {
  Argv none({});
  auto fromEnv = makeParser().parse(
      none.span(), fakeEnv({{"EXITREC_NAMESPACE", "team-a"}, {"EXITREC_DRY_RUN", "true"}}));
  ASSERT_TRUE(fromEnv.ok());
  EXPECT_EQ(fromEnv->get("namespace"), "team-a");
  EXPECT_TRUE(fromEnv->isSet("namespace"));
  EXPECT_TRUE(fromEnv->getSwitch("dry-run"));

  Argv flag({"--namespace", "team-b", "--dry-run=false"});
  auto both = makeParser().parse(
      flag.span(), fakeEnv({{"EXITREC_NAMESPACE", "team-a"}, {"EXITREC_DRY_RUN", "true"}}));
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->get("namespace"), "team-b");
  EXPECT_FALSE(both->getSwitch("dry-run"));

  auto badEnv = makeParser().parse(none.span(), fakeEnv({{"EXITREC_DRY_RUN", "yes"}}));
  ASSERT_FALSE(badEnv.ok());
  EXPECT_NE(badEnv.error().message.find("EXITREC_DRY_RUN"), std::string::npos);
}

TEST(FlagParserTest, ErrorsNameTheFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string mention;
  };
  for (const auto& c : std::vector<Case>{{{"--format", "xml"}, "--format"},
                                         {{"--format"}, "needs a value"},
                                         {{"--nope"}, "unknown flag --nope"},
                                         {{"-q"}, "unknown flag -q"},
                                         {{"--dry-run=maybe"}, "--dry-run"}}) {
    Argv a(c.args);
    auto r = makeParser().parse(a.span(), fakeEnv({}));
    ASSERT_FALSE(r.ok()) << c.mention;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidInput);
    EXPECT_NE(r.error().message.find(c.mention), std::string::npos) << r.error().message;
  }
}

TEST(FlagParserTest, IntegersAndDurations) {
  Argv a({"--workers", "12", "--resync", "5m"});
  auto r = makeParser().parse(a.span(), fakeEnv({}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->getInt("workers", 1, 64).value(), 12);
  EXPECT_FALSE(r->getInt("workers", 1, 8).ok());
  EXPECT_EQ(r->getDuration("resync").value(), std::chrono::minutes(5));

  for (const auto& [text, ms] : std::vector<std::pair<std::string, long long>>{
           {"250ms", 250}, {"30s", 30000}, {"2h", 7200000}, {"7", 7000}}) {
    Argv d({"--resync", text});
    auto p = makeParser().parse(d.span(), fakeEnv({}));
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->getDuration("resync").value().count(), ms) << text;
  }
  for (const char* bad : {"", "5x", "-1s", "s", "1.5s"}) {
    Argv d({"--resync", bad});
    auto p = makeParser().parse(d.span(), fakeEnv({}));
    ASSERT_TRUE(p.ok());
    EXPECT_FALSE(p->getDuration("resync").ok()) << bad;
  }
  Argv w({"--workers", "12abc"});
  auto p = makeParser().parse(w.span(), fakeEnv({}));
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->getInt("workers", 0, 100).ok());
}

TEST(FlagParserTest, HelpListsFlagsDefaultsAndEnv) {
  std::string help = makeParser().help();
  EXPECT_NE(help.find("usage: tool run [flags] [PATH...]"), std::string::npos) << help;
  EXPECT_NE(help.find("--format json|table"), std::string::npos) << help;
  EXPECT_NE(help.find("(default json)"), std::string::npos) << help;
  EXPECT_NE(help.find("[env EXITREC_NAMESPACE]"), std::string::npos) << help;
  EXPECT_NE(help.find("-h, --help"), std::string::npos) << help;
  Argv h({"-h"});
  auto r = makeParser().parse(h.span(), fakeEnv({}));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->helpRequested());
}

int lastArgc = 0;
std::string lastArg0;
int fakeRun(int argc, char** argv) {
  lastArgc = argc;
  lastArg0 = argv[0];
  return 7;
}

TEST(DispatchTest, RoutesToSubcommandAndHandlesHelp) {
  const Subcommand commands[] = {{"run", "run the controller", &fakeRun}};
  std::ostringstream out;
  std::ostringstream err;
  Argv a({"prog", "run", "--x"});
  EXPECT_EQ(dispatch("prog", "desc", commands, a.argc(), a.argv(), out, err), 7);
  EXPECT_EQ(lastArgc, 2);
  EXPECT_EQ(lastArg0, "run");

  Argv help({"prog", "--help"});
  EXPECT_EQ(dispatch("prog", "desc", commands, help.argc(), help.argv(), out, err), kExitOk);
  EXPECT_NE(out.str().find("run the controller"), std::string::npos);

  Argv helpRun({"prog", "help", "run"});
  EXPECT_EQ(dispatch("prog", "desc", commands, helpRun.argc(), helpRun.argv(), out, err), 7);
  EXPECT_EQ(lastArgc, 2);

  Argv bad({"prog", "nope"});
  EXPECT_EQ(dispatch("prog", "desc", commands, bad.argc(), bad.argv(), out, err), kExitUsage);
  EXPECT_NE(err.str().find("unknown command \"nope\""), std::string::npos);
  Argv none({"prog"});
  EXPECT_EQ(dispatch("prog", "desc", commands, none.argc(), none.argv(), out, err), kExitUsage);
}

}  // namespace
}  // namespace exitrec::cli
