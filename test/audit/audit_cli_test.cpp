// End-to-end tests of the `exit-reconciler` binary and its `audit` command:
// exit codes, output formats, input forms and error reporting. Inputs are
// synthesized from our own specs in test/fixtures/data (hermetic).
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "test/audit/run_command.h"
#include "test/fixtures/runtime_builder.h"

namespace exitrec::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kBin = EXITREC_AUDIT_BIN;
const std::string kData = std::string(EXITREC_SOURCE_DIR) + "/test/fixtures/data";
const std::string kSibling = kData + "/kfp-v2.3-sibling-exit-handler.yaml";
const std::string kNested = kData + "/kfp-v2.4-nested-exit-handlers.yaml";

json build(const std::string& spec, const Scenario& sc) {
  auto b = RuntimeBuilder::fromFile(spec);
  if (!b.ok()) {
    ADD_FAILURE() << b.error().message;
    return json::object();
  }
  return b->build(sc);
}

json maskedRun(const std::string& name = "masked-run") {
  Scenario sc;
  sc.name = name;
  sc.pods["exit-handler-1.fail-op"].phase = "Failed";
  return build(kSibling, sc);
}

json healthyRun(const std::string& name = "healthy-run") {
  Scenario sc;
  sc.name = name;
  return build(kNested, sc);
}

// Block-style YAML as `kubectl -o yaml` writes it: strings quoted when needed
// (here always), maps and sequences in block style.
void emitYaml(YAML::Emitter& out, const json& j) {
  switch (j.type()) {
    case json::value_t::object:
      out << YAML::BeginMap;
      for (const auto& [k, v] : j.items()) {
        out << YAML::Key << k << YAML::Value;
        emitYaml(out, v);
      }
      out << YAML::EndMap;
      break;
    case json::value_t::array:
      out << YAML::BeginSeq;
      for (const auto& v : j)
        emitYaml(out, v);
      out << YAML::EndSeq;
      break;
    case json::value_t::string:
      out << YAML::DoubleQuoted << j.get<std::string>();
      break;
    case json::value_t::null:
      out << YAML::Null;
      break;
    default:
      out << j.dump();
  }
}

std::string blockYaml(const json& j) {
  YAML::Emitter out;
  emitYaml(out, j);
  return out.c_str();
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "exitrec-audit-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string write(const std::string& name, const std::string& content) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }

 private:
  std::string path_;
};

std::vector<json> jsonLines(const std::string& out) {
  std::vector<json> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    EXPECT_FALSE(line.empty());
    lines.push_back(json::parse(line));
  }
  return lines;
}

std::set<std::string> keysOf(const json& obj) {
  std::set<std::string> keys;
  for (const auto& [k, v] : obj.items())
    keys.insert(k);
  return keys;
}

CommandResult audit(const std::string& args, const std::string* in = nullptr) {
  return runCommand(shellQuote(kBin) + " audit " + args, in);
}

// ---------------------------------------------------------------------------

TEST(BinaryTest, HelpListsCommands) {
  auto r = runCommand(shellQuote(kBin) + " --help");
  EXPECT_EQ(r.exitCode, 0);
  EXPECT_NE(r.out.find("audit"), std::string::npos) << r.out;
  EXPECT_TRUE(r.err.empty());
  auto h = runCommand(shellQuote(kBin) + " help audit");
  EXPECT_EQ(h.exitCode, 0);
  EXPECT_NE(h.out.find("--exit-task-failure"), std::string::npos) << h.out;
}

TEST(BinaryTest, MissingOrUnknownCommandIsAUsageError) {
  auto none = runCommand(shellQuote(kBin));
  EXPECT_EQ(none.exitCode, 2);
  EXPECT_TRUE(none.out.empty());
  EXPECT_NE(none.err.find("missing command"), std::string::npos) << none.err;
  auto unknown = runCommand(shellQuote(kBin) + " frobnicate");
  EXPECT_EQ(unknown.exitCode, 2);
  EXPECT_NE(unknown.err.find("unknown command \"frobnicate\""), std::string::npos) << unknown.err;
}

TEST(AuditFlagsTest, Help) {
  auto r = audit("--help");
  EXPECT_EQ(r.exitCode, 0);
  EXPECT_NE(r.out.find("usage: exit-reconciler audit [flags] PATH... | -"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("--format json|table"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--exit-task-failure ignore|fail"), std::string::npos) << r.out;
  EXPECT_TRUE(r.err.empty());
}

TEST(AuditFlagsTest, BadFlagsAreUsageErrors) {
  struct Case {
    std::string args;
    std::string mention;
  };
  for (const auto& c : std::vector<Case>{{"--format xml -", "--format"},
                                         {"--format=yaml -", "--format"},
                                         {"--exit-task-failure maybe -", "--exit-task-failure"},
                                         {"--bogus -", "--bogus"},
                                         {"--format", "--format"},
                                         {"-x -", "-x"},
                                         {"", "no input"},
                                         {"- -", "stdin"}}) {
    SCOPED_TRACE(c.args);
    std::string in = maskedRun().dump();
    auto r = audit(c.args, &in);
    EXPECT_EQ(r.exitCode, 2);
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_NE(r.err.find(c.mention), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("usage: exit-reconciler audit"), std::string::npos) << r.err;
  }
}

TEST(AuditJsonTest, MisreportedRunExitsOneWithExactKeys) {
  TempDir dir;
  std::string path = dir.write("masked.json", maskedRun().dump(2));
  auto r = audit(shellQuote(path));
  EXPECT_EQ(r.exitCode, 1) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  auto lines = jsonLines(r.out);
  ASSERT_EQ(lines.size(), 1u);
  const json& v = lines[0];
  EXPECT_EQ(keysOf(v), (std::set<std::string>{"namespace", "name", "runId", "generation",
                                              "reportedPhase", "truePhase", "misreported", "cause",
                                              "failures", "exitHandlers"}));
  EXPECT_EQ(v["namespace"], Scenario{}.namespace_);
  EXPECT_EQ(v["name"], "masked-run");
  EXPECT_EQ(v["runId"], Scenario{}.runId);
  EXPECT_EQ(v["generation"], "kfp-v2-sibling");
  EXPECT_EQ(v["reportedPhase"], "Succeeded");
  EXPECT_EQ(v["truePhase"], "Failed");
  EXPECT_EQ(v["misreported"], true);
  EXPECT_EQ(v["cause"], "exit-task-masked-failure");
  ASSERT_EQ(v["failures"].size(), 1u);
  EXPECT_EQ(keysOf(v["failures"][0]),
            (std::set<std::string>{"displayName", "message", "templateName", "phase", "podName",
                                   "finishedAt"}));
  EXPECT_EQ(v["failures"][0]["displayName"], "executor");
  EXPECT_EQ(v["failures"][0]["templateName"], "system-container-impl");
  EXPECT_EQ(v["failures"][0]["phase"], "Failed");
  ASSERT_EQ(v["exitHandlers"].size(), 1u);
  EXPECT_EQ(keysOf(v["exitHandlers"][0]),
            (std::set<std::string>{"name", "bodyPhase", "exitTask", "exitTaskPhase"}));
  EXPECT_EQ(v["exitHandlers"][0]["name"], "masked-run.root.exit-handler-1");
  EXPECT_EQ(v["exitHandlers"][0]["bodyPhase"], "Failed");
}

// Files of a megabyte and more are mapped, not copied. The parser reads up to
// 64 bytes past the end: cover a file whose last page leaves less room than
// that, one that ends exactly on a page, and one cut off mid-string there.
TEST(AuditInputTest, LargeMappedFilesGiveTheSameVerdicts) {
  TempDir dir;
  const std::string run = maskedRun().dump();
  const auto small = audit(shellQuote(dir.write("small.json", run)));
  ASSERT_EQ(small.exitCode, 1) << small.err;
  const std::size_t page = 4096;
  const std::size_t base = (std::size_t{1} << 20) + 10 * page;
  for (std::size_t size : {base - 1, base, base - 63, base - 64}) {
    std::string text = run;
    text.append(size - run.size() - 1, ' ');
    text.push_back('\n');
    ASSERT_EQ(text.size(), size);
    const auto big = audit(shellQuote(dir.write("big.json", text)));
    EXPECT_EQ(big.exitCode, 1) << "size " << size << ": " << big.err;
    EXPECT_EQ(big.out, small.out) << "size " << size;
  }
  // A string that runs to the very end of the file: an error, not a crash.
  std::string text = R"({"metadata":{"name":")";
  text.append(base - text.size(), 'x');
  const auto cut = audit(shellQuote(dir.write("cut.json", text)));
  EXPECT_EQ(cut.exitCode, 2);
  EXPECT_NE(cut.err.find("cut.json"), std::string::npos) << cut.err;
}

TEST(AuditJsonTest, HealthyRunExitsZeroWithNullCause) {
  TempDir dir;
  std::string path = dir.write("ok.json", healthyRun().dump());
  auto r = audit("--format json " + shellQuote(path));
  EXPECT_EQ(r.exitCode, 0) << r.err;
  auto lines = jsonLines(r.out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(lines[0]["cause"].is_null());
  EXPECT_EQ(lines[0]["misreported"], false);
  EXPECT_EQ(lines[0]["generation"], "kfp-v2-hook");
  EXPECT_EQ(lines[0]["exitHandlers"].size(), 3u);
}

TEST(AuditJsonTest, PlainArgoWorkflowHasNullRunId) {
  Scenario sc;
  sc.name = "plain";
  sc.runId.clear();
  std::string in = build(kSibling, sc).dump();
  auto r = audit("-", &in);
  EXPECT_EQ(r.exitCode, 0) << r.err;
  auto lines = jsonLines(r.out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(lines[0]["runId"].is_null());
  EXPECT_EQ(lines[0]["generation"], "argo");
}

TEST(AuditJsonTest, ExitTaskFailurePolicy) {
  Scenario sc;
  sc.name = "hook-exit-fails";
  sc.pods["notify"].phase = "Failed";
  std::string in = build(kNested, sc).dump();
  auto ignore = audit("-", &in);
  EXPECT_EQ(ignore.exitCode, 0) << ignore.out << ignore.err;
  auto fail = audit("--exit-task-failure fail -", &in);
  EXPECT_EQ(fail.exitCode, 1) << fail.out << fail.err;
  auto lines = jsonLines(fail.out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["cause"], "exit-task-failed");
  auto eq = audit("--exit-task-failure=fail -", &in);
  EXPECT_EQ(eq.exitCode, 1);
}

// ---------------------------------------------------------------------------
// Input forms: kubectl -o json (List), -o yaml (List), NDJSON, multi-doc YAML.

TEST(AuditInputTest, KubectlListJsonOnStdin) {
  json list = {{"apiVersion", "v1"},
               {"kind", "List"},
               {"metadata", {{"resourceVersion", ""}}},
               {"items", {maskedRun("a"), healthyRun("b"), maskedRun("c")}}};
  std::string in = list.dump(4);
  auto r = audit("-", &in);
  EXPECT_EQ(r.exitCode, 1) << r.err;
  auto lines = jsonLines(r.out);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["name"], "a");
  EXPECT_EQ(lines[1]["name"], "b");
  EXPECT_EQ(lines[2]["name"], "c");
  EXPECT_EQ(lines[1]["misreported"], false);
}

TEST(AuditInputTest, EmptyListIsFine) {
  std::string in =
      R"({"apiVersion":"v1","items":[],"kind":"List","metadata":{"resourceVersion":""}})";
  auto r = audit("-", &in);
  EXPECT_EQ(r.exitCode, 0) << r.err;
  EXPECT_TRUE(r.out.empty());
}

TEST(AuditInputTest, KubectlListYamlOnStdin) {
  json list = {
      {"apiVersion", "v1"}, {"kind", "List"}, {"items", {healthyRun("y1"), maskedRun("y2")}}};
  std::string in = blockYaml(list);
  ASSERT_EQ(in.rfind("apiVersion: ", 0), 0u) << "block style expected: " << in.substr(0, 80);
  auto r = audit("--format json -", &in);
  EXPECT_EQ(r.exitCode, 1) << r.err;
  auto lines = jsonLines(r.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1]["name"], "y2");
  EXPECT_EQ(lines[1]["misreported"], true);
}

TEST(AuditInputTest, NdjsonStream) {
  std::string in = healthyRun("n1").dump() + "\n" + maskedRun("n2").dump() + "\n" +
                   healthyRun("n3").dump() + "\n";
  auto r = audit("-", &in);
  EXPECT_EQ(r.exitCode, 1) << r.err;
  auto lines = jsonLines(r.out);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[2]["name"], "n3");
}

TEST(AuditInputTest, MultiDocumentYamlFile) {
  TempDir dir;
  std::string path = dir.write("runs.yaml", "---\n" + blockYaml(maskedRun("m1")) + "\n---\n" +
                                                blockYaml(healthyRun("m2")) + "\n");
  auto r = audit(shellQuote(path));
  EXPECT_EQ(r.exitCode, 1) << r.err;
  auto lines = jsonLines(r.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["name"], "m1");
  EXPECT_EQ(lines[0]["truePhase"], "Failed");
  EXPECT_EQ(lines[1]["name"], "m2");
}

TEST(AuditInputTest, BadWorkflowInStreamIsReportedAndOthersEvaluated) {
  json bad = healthyRun("broken");
  bad["status"]["phase"] = 42;  // ill-typed field that matters
  std::string in =
      maskedRun("s1").dump() + "\n" + bad.dump() + "\n" + healthyRun("s3").dump() + "\n";
  auto r = audit("-", &in);
  EXPECT_EQ(r.exitCode, 2) << "bad input wins over mis-reported";
  auto lines = jsonLines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  EXPECT_EQ(lines[0]["name"], "s1");
  EXPECT_EQ(lines[1]["name"], "s3");
  EXPECT_NE(r.err.find("<stdin>"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("status.phase"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find('2'), std::string::npos) << "names the line/position: " << r.err;
}

TEST(AuditInputTest, MissingFileAndNonWorkflowKind) {
  TempDir dir;
  std::string good = dir.write("good.json", maskedRun("g").dump());
  std::string cm =
      dir.write("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata: {}\n");
  auto r = audit(shellQuote(good) + " /nonexistent/wf.json " + shellQuote(cm));
  EXPECT_EQ(r.exitCode, 2);
  auto lines = jsonLines(r.out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["name"], "g");
  EXPECT_NE(r.err.find("/nonexistent/wf.json"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(cm), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ConfigMap"), std::string::npos) << r.err;
}

TEST(AuditInputTest, NotJsonOrYamlAtAll) {
  std::string in = "{\"kind\": \"Workflow\", \"metadata\": ";
  auto r = audit("-", &in);
  EXPECT_EQ(r.exitCode, 2);
  EXPECT_TRUE(r.out.empty());
  EXPECT_NE(r.err.find("<stdin>"), std::string::npos) << r.err;
}

// ---------------------------------------------------------------------------
// Table format.

TEST(AuditTableTest, AlignedOneRowPerRun) {
  json list = {{"kind", "List"},
               {"items", {maskedRun("t-masked"), healthyRun("t-healthy-longer-name")}}};
  std::string in = list.dump();
  auto r = audit("--format table -", &in);
  EXPECT_EQ(r.exitCode, 1) << r.err;
  std::istringstream s(r.out);
  std::vector<std::string> lines;
  for (std::string l; std::getline(s, l);)
    lines.push_back(l);
  ASSERT_GE(lines.size(), 5u) << r.out;
  const std::string& header = lines[0];
  for (const char* col : {"NAMESPACE", "NAME", "GENERATION", "REPORTED", "TRUE", "MISREPORTED",
                          "CAUSE", "FAILURES", "EXIT HANDLERS"}) {
    EXPECT_NE(header.find(col), std::string::npos) << col;
  }
  // Columns line up: each row has its generation where the header has GENERATION.
  std::size_t gen = header.find("GENERATION");
  EXPECT_EQ(lines[1].find("kfp-v2-sibling"), gen) << r.out;
  EXPECT_EQ(lines[2].find("kfp-v2-hook"), gen) << r.out;
  std::size_t mis = header.find("MISREPORTED");
  EXPECT_EQ(lines[1].substr(mis, 3), "YES");
  EXPECT_EQ(lines[2].substr(mis, 2), "no");
  EXPECT_NE(lines[1].find("exit-task-masked-failure"), std::string::npos);
  EXPECT_NE(lines[1].find("root.exit-handler-1: body Failed"), std::string::npos) << lines[1];
  EXPECT_NE(r.out.find("2 runs, 1 mis-reported"), std::string::npos) << r.out;
}

// KFP 2.17: node paths start "<wf>(0)." (the retried entrypoint's attempt);
// under `fail` the failed exit task is what the FAILURES column names.
TEST(AuditTableTest, RetryWrappedPathsAreRelativeAndFailPolicyNamesTheExitTask) {
  const std::string sample =
      std::string(EXITREC_SOURCE_DIR) + "/samples/kfp-2.17-hook-exit-task-failed.json";
  auto r = audit("--format table --exit-task-failure fail " + shellQuote(sample));
  EXPECT_EQ(r.exitCode, 1) << r.err;
  EXPECT_NE(r.out.find("1: (0).root(0).exit-handler-1.onExit(0).cleanup(0).executor(0) Failed"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("(0).root(0).exit-handler-1: body Succeeded"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("train-with-cleanup-e5r2t(0)"), std::string::npos) << r.out;
}

// ---------------------------------------------------------------------------
// The bundled samples (README's main command) find the mis-reported runs.

TEST(SamplesTest, AuditOfBundledSamples) {
  std::string dir = std::string(EXITREC_SOURCE_DIR) + "/samples";
  std::string files;
  std::size_t count = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".json" || e.path().extension() == ".yaml") {
      files += " " + shellQuote(e.path().string());
      ++count;
    }
  }
  ASSERT_GE(count, 8u);
  auto r = audit(files);
  EXPECT_EQ(r.exitCode, 1) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  auto lines = jsonLines(r.out);
  ASSERT_EQ(lines.size(), count);
  std::set<std::string> generations;
  std::size_t misreported = 0;
  for (const auto& v : lines) {
    generations.insert(v["generation"].get<std::string>());
    misreported += v["misreported"].get<bool>() ? 1 : 0;
  }
  EXPECT_EQ(generations,
            (std::set<std::string>{"kfp-v1", "kfp-v2-sibling", "kfp-v2-hook", "kfp-v2", "argo"}));
  EXPECT_GE(misreported, 2u);
}

}  // namespace
}  // namespace exitrec::testing
