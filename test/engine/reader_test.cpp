// Readers: JSON (simdjson On-Demand), YAML, streams, field errors, indexes.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/json_reader.h"
#include "engine/workflow.h"
#include "test/engine/node_digest.h"
#include "test/engine/wf_builder.h"

namespace exitrec {
namespace {

using testing::Json;
using testing::WfBuilder;

struct Sunk {
  std::vector<std::string> origins;
  std::vector<Result<Workflow>> results;
};

Sunk readAll(std::string_view text, Status* statusOut = nullptr) {
  Sunk s;
  Status st = readWorkflows(text, [&](Result<Workflow> wf, std::string_view origin) {
    s.origins.emplace_back(origin);
    s.results.push_back(std::move(wf));
  });
  if (statusOut != nullptr)
    *statusOut = st;
  return s;
}

TEST(Fnv, ReferenceVectors) {
  EXPECT_EQ(argoNodeId("exit-handler-bug-example", "exit-handler-bug-example.step-2"),
            "exit-handler-bug-example-3054913383");
  EXPECT_EQ(argoNodeId("retry-workflow-with-failed-exit-handler",
                       "retry-workflow-with-failed-exit-handler.onExit"),
            "retry-workflow-with-failed-exit-handler-512308683");
  EXPECT_EQ(argoNodeId("wf", "wf"), "wf");
  EXPECT_EQ(fnv1a32(""), 2166136261u);
  EXPECT_EQ(fnv1a32("a"), 0xe40c292cu);
}

TEST(JsonReader, ReadsFieldsAndIgnoresUnknownOnes) {
  const char* json = R"({"apiVersion":"argoproj.io/v1alpha1","kind":"Workflow",
    "metadata":{"name":"wf","namespace":"ns","uid":"u1","resourceVersion":"7",
      "labels":{"pipeline/runid":"r1"},"annotations":{"a":"b"},"unknown":{"x":[1,2,{"y":null}]}},
    "spec":{"entrypoint":"main","onExit":"bye","shutdown":"Terminate","templates":[
      {"name":"main","dag":{"target":"b c","failFast":false,"tasks":[
        {"name":"a","template":"t","continueOn":{"failed":true},"hooks":{"exit":{"template":"h"}},
         "arguments":{"parameters":[{"name":"p","value":"v"},{"name":"n","value":3}]}},
        {"name":"b","templateRef":{"name":"wft","template":"rt"},"depends":"a.Succeeded || a.Failed"},
        {"name":"c","template":"t","dependencies":["a"],"onExit":"o"}]}},
      {"name":"t","container":{"image":"x"},"retryStrategy":{"limit":"3","retryPolicy":"Always"}},
      {"name":"s","steps":[[{"name":"x","template":"t","continueOn":{"error":true}}]]}]},
    "status":{"phase":"Succeeded","message":"m","startedAt":null,"finishedAt":"2024-01-01T00:00:00Z",
      "progress":"1/1","nodes":{"wf":{"id":"wf","name":"wf","displayName":"wf","type":"DAG",
        "templateName":"main","phase":"Succeeded","startedAt":null,"finishedAt":null,
        "children":["wf-1"],"outputs":{"parameters":[]},"nodeFlag":{"hooked":true,"retried":false},
        "extra":[[[]]]},
      "wf-1":{"id":"wf-1","name":"wf.a","displayName":"a","type":"Plugin","phase":"Error",
        "templateRef":{"name":"x","template":"ref-t"},"templateName":"ignored","boundaryID":"wf",
        "message":"boom \"quoted\" \u00e9","daemoned":true}}}})";
  auto wf = parseWorkflowJson(json);
  ASSERT_TRUE(wf.ok()) << wf.error().message;
  EXPECT_EQ(wf->name, "wf");
  EXPECT_EQ(wf->namespace_, "ns");
  EXPECT_EQ(wf->uid, "u1");
  EXPECT_EQ(wf->labels.at("pipeline/runid"), "r1");
  EXPECT_EQ(wf->onExit, "bye");
  EXPECT_TRUE(wf->hasShutdown);
  EXPECT_EQ(wf->phase, Phase::kSucceeded);
  ASSERT_EQ(wf->templates.size(), 3u);
  const Template* main = wf->templateByName("main");
  ASSERT_NE(main, nullptr);
  EXPECT_TRUE(main->isDag);
  EXPECT_EQ(main->dagTarget, "b c");
  ASSERT_TRUE(main->dagFailFast.has_value());
  EXPECT_FALSE(*main->dagFailFast);
  ASSERT_EQ(main->dagTasks.size(), 3u);
  EXPECT_TRUE(main->dagTasks[0].continueOnFailed);
  EXPECT_EQ(main->dagTasks[0].exitHookTemplate, "h");
  ASSERT_EQ(main->dagTasks[0].parameters.size(), 2u);
  EXPECT_EQ(main->dagTasks[0].parameters[1].second, "3");
  EXPECT_EQ(main->dagTasks[1].templateName, "rt");
  EXPECT_EQ(main->dagTasks[1].depends, "a.Succeeded || a.Failed");
  EXPECT_EQ(main->dagTasks[2].dependencies, std::vector<std::string>{"a"});
  EXPECT_EQ(main->dagTasks[2].exitHookTemplate, "o");
  const Template* t = wf->templateByName("t");
  ASSERT_NE(t, nullptr);
  EXPECT_TRUE(t->hasRetryStrategy);
  EXPECT_EQ(t->retryLimit, 3);
  EXPECT_EQ(t->retryPolicy, "Always");
  const Template* s = wf->templateByName("s");
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->isSteps);
  EXPECT_TRUE(s->stepGroups.at(0).at(0).continueOnError);

  ASSERT_EQ(wf->nodes.size(), 2u);
  const Node* root = wf->nodeById("wf");
  ASSERT_NE(root, nullptr);
  EXPECT_TRUE(root->hooked);
  EXPECT_TRUE(root->finishedAt.empty());
  ASSERT_EQ(root->children.size(), 1u);
  EXPECT_EQ(root->children[0], "wf-1");
  const Node* a = wf->nodeByName("wf.a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->type, NodeType::kPlugin);
  EXPECT_EQ(a->phase, Phase::kError);
  EXPECT_EQ(a->templateName, "ref-t");  // templateRef.template wins
  EXPECT_EQ(a->message, "boom \"quoted\" \xC3\xA9");
  EXPECT_TRUE(a->daemoned);
  EXPECT_FALSE(a->hooked);  // nodeFlag absent
  EXPECT_EQ(a, wf->nodeById("wf-1"));
}

TEST(JsonReader, RetryLimitExpressionLeavesLimitUnset) {
  WfBuilder b("wf");
  b.container("t", Json{{"limit", "{{inputs.parameters.retry-max-count}}"}});
  b.container("u", Json{{"limit", 2}});
  Workflow wf = b.build();
  EXPECT_TRUE(wf.templateByName("t")->hasRetryStrategy);
  EXPECT_FALSE(wf.templateByName("t")->retryLimit.has_value());
  EXPECT_EQ(wf.templateByName("u")->retryLimit, 2);
}

TEST(JsonReader, IllTypedFieldsNameTheirPath) {
  struct Case {
    const char* json;
    const char* expected;
  } cases[] = {
      {R"({"metadata":{"name":5}})", "metadata.name: expected a string, got a number"},
      {R"({"metadata":{"name":"w","labels":{"a":true}}})",
       "metadata.labels[\"a\"]: expected a string, got a boolean"},
      {R"({"metadata":{"name":"w"},"status":{"nodes":{"n1":{"name":"w","type":"Pod","phase":3}}}})",
       "status.nodes[\"n1\"].phase: expected a string, got a number"},
      {R"({"metadata":{"name":"w"},"status":{"nodes":{"n1":{"type":"Pod"}}}})",
       "status.nodes[\"n1\"].name: missing (required)"},
      {R"({"metadata":{"name":"w"},"status":{"nodes":{"n1":{"name":"x","type":"Pod","children":[1]}}}})",
       "status.nodes[\"n1\"].children[0]: expected a string, got a number"},
      {R"({"metadata":{"name":"w"},"spec":{"templates":[{"name":"t","dag":{"tasks":{}}}]}})",
       "spec.templates[0].dag.tasks: expected an array, got an object"},
      {R"({"metadata":{"name":"w"},"status":{"nodes":[]}})",
       "status.nodes: expected an object, got an array"},
      {R"({"metadata":{}})", "metadata.name: missing (required)"},
  };
  for (const auto& c : cases) {
    auto wf = parseWorkflowJson(c.json);
    ASSERT_FALSE(wf.ok()) << c.json;
    EXPECT_EQ(wf.error().code, ErrorCode::kInvalidInput);
    EXPECT_EQ(wf.error().message, c.expected) << c.json;
  }
}

TEST(JsonReader, GenerateNameOnlyExplainsWhy) {
  auto wf = parseWorkflowJson(R"({"metadata":{"generateName":"p-"},"spec":{}})");
  ASSERT_FALSE(wf.ok());
  EXPECT_NE(wf.error().message.find("only generateName"), std::string::npos);
}

TEST(JsonReader, TruncatedAndGarbageInputAreErrorsNotCrashes) {
  WfBuilder b("wf");
  b.node("wf", "DAG", "Succeeded", "entrypoint");
  b.node("wf.a", "Pod", "Failed", "t", "wf", "wf");
  std::string full = b.json();
  ASSERT_TRUE(parseWorkflowJson(full).ok());
  // Every prefix is either an error or (never) a crash.
  for (std::size_t cut = 0; cut < full.size(); cut += 7) {
    auto wf = parseWorkflowJson(std::string_view(full).substr(0, cut));
    EXPECT_FALSE(wf.ok()) << "prefix of " << cut << " bytes parsed";
  }
  for (const char* junk : {"", "   ", "nul", "[1,2", "{\"a\":}", "\xff\xfe{}", "{} {}", "42",
                           "{\"metadata\":{\"name\":\"w\"}} trailing"}) {
    auto wf = parseWorkflowJson(junk);
    EXPECT_FALSE(wf.ok()) << junk;
  }
  auto wf = parseWorkflowJson(std::string_view(full).substr(0, full.size() / 2));
  ASSERT_FALSE(wf.ok());
  EXPECT_NE(wf.error().message.find("invalid JSON"), std::string::npos) << wf.error().message;
}

TEST(JsonReader, IndexesByIdAndNameWithSyntheticIds) {
  WfBuilder b("wf");
  b.syntheticId("wf.a", "a-node").syntheticId("wf.b", "b-node");
  b.node("wf", "DAG", "Succeeded", "entrypoint");
  b.node("wf.a", "Pod", "Succeeded", "t", "wf", "wf");
  b.node("wf.b", "Pod", "Succeeded", "t", "wf.a", "wf");
  Workflow wf = b.build();
  const Node* a = wf.nodeByName("wf.a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->id, "a-node");
  EXPECT_EQ(wf.nodeById("a-node"), a);
  EXPECT_EQ(wf.nodeById(argoNodeId("wf", "wf.a")), nullptr);
  EXPECT_EQ(wf.nodeByName("wf.missing"), nullptr);
  EXPECT_EQ(wf.nodeById(a->children[0])->name, "wf.b");
}

// The zero-copy string path takes a string's end from the structural index
// and checks 8 bytes at a time for backslashes: cover escapes at every offset
// of a word, escaped keys, and whitespace around ':' and after values.
TEST(JsonReader, NodeStringsWithEscapesAndWhitespace) {
  const char* json = R"({"metadata":{"name":"wf"},"status":{"phase":"Running","nodes":{
    "wf" : { "id" : "wf" , "na\u006de" : "wf" , "type":"DAG" ,
      "children" : [ "wf-1" , "wf-\u0032" ] ,
      "message" : "01234567\\" ,
      "displayName"
        :
        "\"lead" } ,
    "wf-1":{"id":"wf-1","name":"wf.a","type":"Pod","phase":"Failed",
      "message":"0123456789abcdef0123456\"7","displayName":"0123456789abcdef","boundaryID":"wf",
      "templateName":"t\\"},
    "wf-2":{"id":"wf-2","name":"wf.b","type":"Pod","phase":"Failed","message":"","displayName":"x"}
  }}})";
  auto wf = parseWorkflowJson(json);
  ASSERT_TRUE(wf.ok()) << wf.error().message;
  const Node* root = wf->nodeByName("wf");
  ASSERT_NE(root, nullptr);
  EXPECT_EQ(root->type, NodeType::kDAG);
  ASSERT_EQ(root->children.size(), 2u);
  EXPECT_EQ(root->children[1], "wf-2");
  EXPECT_EQ(root->message, "01234567\\");
  EXPECT_EQ(root->displayName, "\"lead");
  const Node* a = wf->nodeById("wf-1");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->message, "0123456789abcdef0123456\"7");
  EXPECT_EQ(a->displayName, "0123456789abcdef");
  EXPECT_EQ(a->templateName, "t\\");
  EXPECT_EQ(a->boundaryId, "wf");
  const Node* b = wf->nodeById("wf-2");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->message, "");
  EXPECT_EQ(b->phase, Phase::kFailed);
}

// What readWorkflows makes of `text`, with the nodes map read by the fast
// structural-index scan or by the validating decoder: per workflow either its
// node digest or its error.
std::string readDigest(std::string_view text, bool fastScan) {
  setNodeScanFastPath(fastScan);
  std::string out;
  Status st = readWorkflows(text, [&](Result<Workflow> wf, std::string_view origin) {
    out.append(origin).append(" => ");
    out.append(wf.ok() ? testing::nodeDigest(*wf) : "error: " + wf.error().message);
    out.push_back('\n');
  });
  setNodeScanFastPath(true);
  if (!st.ok())
    out.append("stream error: ").append(st.error().message);
  return out;
}

// The fast scan is in the build exactly when CMake found the simdjson release
// it was verified with (and EXITREC_FORCE_PUBLIC_JSON_DECODER is off).
TEST(NodeScan, CompiledExactlyWhenTheBuildSaysSo) {
  EXPECT_EQ(nodeScanFastPathCompiled(), EXITREC_EXPECT_FAST_NODE_SCAN != 0);
}

// With the scan compiled in, it (not the fallback) reads a plain nodes map;
// without it, or turned off, the validating decoder reads the same nodes.
TEST(NodeScan, ReadsPlainNodesMapsOnlyWhenCompiledAndOn) {
  const std::string doc = R"({"metadata":{"name":"wf"},"status":{"phase":"Running","nodes":)"
                          R"({"wf":{"name":"wf","type":"DAG","children":["wf-1"]},)"
                          R"("wf-1":{"name":"wf.a","type":"Pod","phase":"Failed"}}}})";
  for (bool on : {true, false}) {
    setNodeScanFastPath(on);
    const std::uint64_t before = nodeScanFastPathReads();
    auto wf = parseWorkflowJson(doc);
    const std::uint64_t after = nodeScanFastPathReads();
    setNodeScanFastPath(true);
    ASSERT_TRUE(wf.ok()) << wf.error().message;
    ASSERT_EQ(wf->nodes.size(), 2u);
    ASSERT_NE(wf->nodeByName("wf.a"), nullptr);
    EXPECT_EQ(wf->nodeByName("wf.a")->phase, Phase::kFailed);
    EXPECT_EQ(after - before, on && nodeScanFastPathCompiled() ? 1u : 0u) << "on=" << on;
  }
}

TEST(NodeScan, SameNodesAsTheValidatingDecoderOnEdgeCases) {
  const std::string pre = R"({"metadata":{"name":"wf"},"status":{"phase":"Running","nodes":)";
  const std::string post = R"(,"phase":"Failed"}})";
  const std::vector<std::string> maps = {
      R"({})",
      R"({"a":{"name":"wf.a","type":"Pod","phase":null,"finishedAt":null,"children":null}})",
      R"({"a":{"name":"wf.a","type":"Pod","nodeFlag":null,"templateRef":null}})",
      R"({"a":{"name":"wf.a","type":"Pod","templateName":"t","templateRef":{"name":"r","template":"rt"}}})",
      R"({"a":{"name":"wf.a","type":"Pod","templateRef":{"template":""},"templateName":"t"}})",
      R"({"a":{"name":"wf.a","type":"Pod","templateRef":{"template":"rt"},"templateName":"t"}})",
      R"({"a":{"name":"wf.a","type":"Pod","nodeFlag":{"hooked":true,"retried":false,"x":[{}]}}})",
      R"({"a":{"name":"wf.a","type":"Pod","daemoned":true,"outputs":{"p":[1,{"q":"]"}]},"n":-1.5e3}})",
      R"({"a":{"name":"x","name":"wf.dup","type":"Pod","type":"DAG"}})",
      R"({"a":{"name":"wf.a","type":"Pod","message":"say \"hi\"\n\u00e9\\"}})",
      R"({"a\u0031":{"name":"wf.a","type":"Pod"}})",
      R"({"a":{"na\u006de":"wf.a","type":"Pod"}})",
      R"({"a":{"name":"wf.a","na\u006de":"wf.b","type":"Pod"}})",
      R"({"a":{"name":"wf.a","type":"Pod","children":["b","c\"d",""]}})",
      R"({"a":{"name":"wf.a"}})",
      R"({"a":{"type":"Pod"}})",
      R"({"a":{"name":null,"type":"Pod"}})",
      R"({"a":{"name":"wf.a","type":"Pod","phase":5}})",
      R"({"a":{"name":"wf.a","type":"Pod","hooked":tru}})",
      R"({"a":{"name":"wf.a","type":"Pod","nodeFlag":{"hooked":"yes"}}})",
      R"({"a":{"name":"wf.a","type":"Pod","children":["b",null]}})",
      // Children of several nodes, a repeated key (the last wins), null after an array.
      R"({"a":{"name":"wf.a","type":"Pod","children":["x"],"children":["y","z"]},)"
      R"("b":{"name":"wf.b","type":"Pod"},"c":{"name":"wf.c","children":["a","b"],"type":"DAG"}})",
      R"({"a":{"name":"wf.a","type":"Pod","children":["x"],"children":null}})",
      R"({"a":{"name":"wf.a","type":"Pod","children":[]},"b":{"name":"wf.b","type":"Pod","children":["a"]}})",
      // Space between a string and the token after it.
      R"({"a":{"name":"wf.a"  ,"type" :"Pod","children":["b" ,"c"  ]} })",
      R"({"a":{"name":"wf.a","type":"Pod","children":"b"}})",
      R"({"a":{"name":"wf.a","type":"Pod"},"b":7})",
      R"({"a":{"name":"wf.a","type":"Pod"} "b":{"name":"wf.b","type":"Pod"}})",
      R"({"a":{"name":"wf.a","type":"Pod",}})",
      R"({"a":{"name":"wf.a","type":"Pod","x":{"y":[}]}})",
      R"({"a":{"name" "wf.a","type":"Pod"}})",
      R"([{"name":"wf.a","type":"Pod"}])",
      "{ \"a\" :\n { \"name\" : \"wf.a\" ,\t\"type\"\r\n:\"Pod\" } \n}",
  };
  for (const std::string& m : maps) {
    const std::string doc = pre + m + post;
    EXPECT_EQ(readDigest(doc, true), readDigest(doc, false)) << doc;
  }
  // Truncated anywhere inside the nodes map.
  const std::string full =
      pre +
      R"({"a":{"name":"wf.a","type":"Pod","children":["b"]},"b":{"name":"wf.b","type":"Pod"}})" +
      post;
  for (std::size_t cut = pre.size(); cut < full.size(); ++cut) {
    const std::string doc = full.substr(0, cut);
    EXPECT_EQ(readDigest(doc, true), readDigest(doc, false)) << doc;
  }
}

// The fast scan hashes ids, names and child ids as it reads them and the
// index trusts those hashes: every length (each tail size of the 8-byte
// steps) and escaped keys must hash exactly as lookups do.
TEST(NodeScan, IndexFindsEveryNodeByIdNameAndChildLink) {
  std::string nodes;
  std::vector<std::pair<std::string, std::string>> keys;  // id, name (unescaped)
  for (int len = 1; len <= 41; ++len) {
    std::string id = std::string(static_cast<std::size_t>(len), 'i') + std::to_string(len);
    std::string name = "wf." + std::string(static_cast<std::size_t>(len), 'n');
    keys.emplace_back(id, name);
  }
  keys.emplace_back("", "wf.esc\\aped");
  // Escapes in names and child ids are undone (and the text hashed) on the
  // fast path; escaped map keys send the whole map to the validating path,
  // so the ids here have none, and child ids spell every other byte as \u00XX.
  auto quoted = [](const std::string& text, bool unicodeEscapes) {
    std::string out = "\"";
    for (std::size_t i = 0; i < text.size(); ++i) {
      char c = text[i];
      if (c == '"' || c == '\\') {
        out.push_back('\\');
        out.push_back(c);
      } else if (unicodeEscapes && i % 2 == 1) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "\\u%04x", static_cast<unsigned char>(c));
        out += hex;
      } else {
        out.push_back(c);
      }
    }
    return out + "\"";
  };
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (i > 0)
      nodes += ",";
    const std::string& child = keys[(i + 1) % keys.size()].first;
    nodes += quoted(keys[i].first, false) + ":{\"name\":" + quoted(keys[i].second, false) +
             ",\"type\":\"Pod\",\"children\":[" + quoted(child, i % 2 == 0) + ",\"missing\"]}";
  }
  const std::string doc =
      R"({"metadata":{"name":"wf"},"status":{"phase":"Running","nodes":{)" + nodes + "}}}";
  for (bool fast : {true, false}) {
    setNodeScanFastPath(fast);
    auto wf = parseWorkflowJson(doc);
    setNodeScanFastPath(true);
    ASSERT_TRUE(wf.ok()) << wf.error().message;
    ASSERT_EQ(wf->nodes.size(), keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) {
      const Node* byId = wf->nodeById(keys[i].first);
      ASSERT_NE(byId, nullptr) << "fast=" << fast << " id " << keys[i].first;
      EXPECT_EQ(byId, wf->nodeByName(keys[i].second)) << "fast=" << fast << " " << keys[i].second;
      auto children = wf->childNodes(*byId);
      ASSERT_EQ(children.size(), 2u);
      EXPECT_EQ(children[0], wf->nodeById(keys[(i + 1) % keys.size()].first));
      EXPECT_NE(children[0], nullptr);
      EXPECT_EQ(children[1], nullptr);
    }
  }
}

TEST(NodeScan, SameNodesAsTheValidatingDecoderOnTheSamples) {
  const std::filesystem::path dir = std::filesystem::path(EXITREC_SOURCE_DIR) / "samples";
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".json")
      continue;
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    std::string fast = readDigest(text.str(), true);
    EXPECT_EQ(fast, readDigest(text.str(), false)) << entry.path();
    EXPECT_EQ(fast.find("error"), std::string::npos) << entry.path();
    ++files;
  }
  EXPECT_GE(files, 8);
}

TEST(Workflow, CopiesOwnTheirStrings) {
  WfBuilder b("wf");
  b.node("wf", "DAG", "Succeeded", "entrypoint");
  b.node("wf.a", "Pod", "Failed", "t", "wf", "wf");
  std::optional<Workflow> original(b.build());
  Workflow copy = *original;
  Workflow assigned;
  assigned = *original;
  Workflow moved = std::move(*original);
  original.reset();  // the source buffers of `moved` survive; the copies own theirs
  for (const Workflow* w : {&copy, &assigned, &moved}) {
    const Node* a = w->nodeByName("wf.a");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->phase, Phase::kFailed);
    EXPECT_EQ(a->message, "Error (exit code 1)");
    EXPECT_EQ(w->nodeById(w->nodeByName("wf")->children[0]), a);
  }
}

TEST(Workflow, HandBuiltNodesViaAddNode) {
  Workflow wf;
  wf.name = "w";
  std::string temp = "w.a";
  Node n;
  n.id = "w-1";
  n.name = temp;
  n.type = NodeType::kPod;
  n.phase = Phase::kFailed;
  wf.addNode(n);
  temp = "overwritten";  // addNode interned its own copy
  wf.buildIndex();
  ASSERT_NE(wf.nodeByName("w.a"), nullptr);
  EXPECT_EQ(wf.nodeById("w-1")->name, "w.a");
}

TEST(Workflow, PhaseAndNodeTypeNamesRoundTrip) {
  for (int i = 0; i <= static_cast<int>(Phase::kUnknown); ++i) {
    const auto phase = static_cast<Phase>(i);
    EXPECT_EQ(parsePhase(phaseName(phase)), phase) << phaseName(phase);
  }
  for (int i = 0; i <= static_cast<int>(NodeType::kPlugin); ++i) {
    const auto type = static_cast<NodeType>(i);
    EXPECT_EQ(parseNodeType(nodeTypeName(type)), type) << nodeTypeName(type);
  }
  // Same length or same first letter as a real name is not enough.
  for (std::string_view text : {"Errors", "Erro", "error", "Failes", "Pendinh", "Omitter",
                                "Succeedes", "Skipper", "Runnin ", "Unknown"}) {
    EXPECT_EQ(parsePhase(text), Phase::kUnknown) << text;
  }
  for (std::string_view text : {"Poe", "DAF", "HTTQ", "Stepz", "Retrx", "Plugim", "Skippee",
                                "Suspenf", "Containes", "TaskGroux", "StepGroux", ""}) {
    EXPECT_EQ(parseNodeType(text), NodeType::kUnknown) << text;
  }
}

// isHookNodeName scans 16 bytes at a time: check every placement and length
// against the plain definition.
TEST(Workflow, HookNodeNamesAtEveryOffsetAndLength) {
  auto reference = [](std::string_view name) {
    return name.ends_with(".onExit") || name.find(".hooks.") != std::string_view::npos;
  };
  int hooks = 0;
  for (std::string_view part : {".hooks.", ".hooks", "hooks.", ".hook.", ".Hooks.", ".onExit",
                                ".onExi", "..hooks..", ".h.hooks.x"}) {
    for (std::size_t before = 0; before < 40; ++before) {
      for (std::size_t after = 0; after < 20; ++after) {
        std::string name = std::string(before, 'a') + std::string(part) + std::string(after, 'b');
        // Dots elsewhere, so the candidate check runs often.
        for (std::size_t i = 3; i < before; i += 4)
          name[i] = '.';
        const bool expected = reference(name);
        hooks += expected ? 1 : 0;
        ASSERT_EQ(isHookNodeName(name), expected) << name;
      }
    }
  }
  EXPECT_GT(hooks, 1000);  // both outcomes were exercised
  EXPECT_FALSE(isHookNodeName(""));
  EXPECT_TRUE(isHookNodeName(".hooks."));
  EXPECT_TRUE(isHookNodeName("wf.onExit"));
}

// The readers derive Node::hookName; hand-built nodes get it from buildIndex.
TEST(Workflow, HookNameIsSetByEveryReader) {
  WfBuilder b("wf");
  b.node("wf", "DAG", "Succeeded", "entrypoint");
  b.node("wf.a", "Pod", "Succeeded", "t", "wf", "wf");
  b.node("wf.a.hooks.exit", "Pod", "Failed", "t", "wf", "wf");
  b.node("wf.onExit", "Pod", "Succeeded", "t");
  const std::string json = b.json();
  auto fromJson = parseWorkflowJson(json);
  ASSERT_TRUE(fromJson.ok()) << fromJson.error().message;
  setNodeScanFastPath(false);
  auto validating = parseWorkflowJson(json);
  setNodeScanFastPath(true);
  ASSERT_TRUE(validating.ok());
  Workflow handBuilt;
  handBuilt.name = "wf";
  for (const Node& n : fromJson->nodes) {
    Node copy = n;
    copy.hookName = false;
    handBuilt.addNode(copy);
  }
  handBuilt.buildIndex();
  for (const Workflow* wf : {&*fromJson, &*validating, &handBuilt}) {
    EXPECT_FALSE(wf->nodeByName("wf")->hookName);
    EXPECT_FALSE(wf->nodeByName("wf.a")->hookName);
    EXPECT_TRUE(wf->nodeByName("wf.a.hooks.exit")->hookName);
    EXPECT_TRUE(wf->nodeByName("wf.onExit")->hookName);
  }
}

TEST(ReadWorkflows, ListWithABadItem) {
  WfBuilder good("good");
  Json list;
  list["apiVersion"] = "v1";
  list["items"] = Json::array();
  list["items"].push_back(good.doc());
  Json bad = good.doc();
  bad["metadata"]["name"] = 12;
  list["items"].push_back(bad);
  list["items"].push_back("not an object");
  Json good2 = good.doc();
  good2["metadata"]["name"] = "good2";
  list["items"].push_back(good2);
  list["kind"] = "List";
  list["metadata"]["resourceVersion"] = "";
  Status st;
  Sunk s = readAll(list.dump(2), &st);
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(s.results.size(), 4u);
  EXPECT_EQ(s.origins, (std::vector<std::string>{"items[0]", "items[1]", "items[2]", "items[3]"}));
  EXPECT_TRUE(s.results[0].ok());
  ASSERT_FALSE(s.results[1].ok());
  EXPECT_EQ(s.results[1].error().message, "metadata.name: expected a string, got a number");
  ASSERT_FALSE(s.results[2].ok());
  EXPECT_NE(s.results[2].error().message.find("expected a Workflow object"), std::string::npos);
  ASSERT_TRUE(s.results[3].ok());
  EXPECT_EQ(s.results[3]->name, "good2");
}

TEST(ReadWorkflows, EmptyListSinksNothing) {
  Status st;
  Sunk s = readAll(R"({"apiVersion":"v1","items":[],"kind":"List"})", &st);
  EXPECT_TRUE(st.ok());
  EXPECT_TRUE(s.results.empty());
}

TEST(ReadWorkflows, TruncatedListIsAStreamError) {
  WfBuilder a("a");
  Json list;
  list["items"] = Json::array({a.doc(), a.doc()});
  std::string text = list.dump();
  Status st;
  Sunk s = readAll(std::string_view(text).substr(0, text.size() - 40), &st);
  EXPECT_FALSE(st.ok());
}

TEST(ReadWorkflows, NdjsonWithABrokenLine) {
  WfBuilder a("a");
  WfBuilder b("b");
  std::string text = a.json() + "\n" + R"({"metadata":{"name":[]}})" + "\n\n" + b.json() + "\n";
  Status st;
  Sunk s = readAll(text, &st);
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(s.results.size(), 3u);
  EXPECT_EQ(s.origins, (std::vector<std::string>{"line 1", "line 2", "line 4"}));
  EXPECT_TRUE(s.results[0].ok());
  EXPECT_FALSE(s.results[1].ok());
  ASSERT_TRUE(s.results[2].ok());
  EXPECT_EQ(s.results[2]->name, "b");
}

TEST(ReadWorkflows, NdjsonTruncatedLastLine) {
  WfBuilder a("a");
  std::string text = a.json() + "\n" + a.json().substr(0, 30);
  Status st;
  Sunk s = readAll(text, &st);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("line 2"), std::string::npos) << st.error().message;
  ASSERT_EQ(s.results.size(), 1u);
  EXPECT_TRUE(s.results[0].ok());
}

TEST(ReadWorkflows, SingleObjectHasNoOrigin) {
  WfBuilder a("a");
  Sunk s = readAll("\xEF\xBB\xBF  " + a.json());
  ASSERT_EQ(s.results.size(), 1u);
  EXPECT_EQ(s.origins[0], "");
  EXPECT_TRUE(s.results[0].ok());
}

constexpr const char* kYamlWorkflow = R"(apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  name: y1
  labels:
    pipeline/runid: "abc"
    workflows.argoproj.io/completed: "true"
spec:
  entrypoint: main
  templates:
  - name: t
    retryStrategy:
      limit: 2
status:
  phase: Succeeded
  finishedAt: null
  nodes:
    y1:
      id: y1
      name: y1
      type: DAG
      phase: Succeeded
      children: [y1-2]
      finishedAt: 2019-06-26T09:11:58Z
    y1-2:
      id: y1-2
      name: y1.a
      type: Pod
      phase: Failed
      message: 'it said: "no"'
      boundaryID: y1
)";

TEST(YamlReader, SingleDocument) {
  auto wf = parseWorkflowYaml(kYamlWorkflow);
  ASSERT_TRUE(wf.ok()) << wf.error().message;
  EXPECT_EQ(wf->name, "y1");
  EXPECT_EQ(wf->labels.at("workflows.argoproj.io/completed"), "true");
  EXPECT_EQ(wf->templateByName("t")->retryLimit, 2);
  ASSERT_NE(wf->nodeByName("y1.a"), nullptr);
  EXPECT_EQ(wf->nodeByName("y1.a")->message, "it said: \"no\"");
  EXPECT_EQ(wf->nodeById("y1")->finishedAt, "2019-06-26T09:11:58Z");
}

TEST(YamlReader, MultiDocumentStreamAndList) {
  std::string text = std::string("---\n") + kYamlWorkflow + "---\n" + "metadata: {name: 7}\n" +
                     "---\n" + "apiVersion: v1\nkind: List\nitems:\n" +
                     "- metadata: {name: l1}\n- metadata: {name: l2}\n...\n";
  Status st;
  Sunk s = readAll(text, &st);
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(s.results.size(), 4u);
  EXPECT_EQ(s.origins, (std::vector<std::string>{"document 1", "document 2", "document 3: items[0]",
                                                 "document 3: items[1]"}));
  EXPECT_TRUE(s.results[0].ok());
  ASSERT_FALSE(s.results[1].ok());
  EXPECT_EQ(s.results[1].error().message, "metadata.name: expected a string, got a number");
  ASSERT_TRUE(s.results[3].ok());
  EXPECT_EQ(s.results[3]->name, "l2");
}

TEST(YamlReader, SyntaxErrorNamesTheLine) {
  std::string text = std::string(kYamlWorkflow) + "---\nmetadata:\n  name: [unclosed\n";
  Status st;
  Sunk s = readAll(text, &st);
  ASSERT_EQ(s.results.size(), 2u);
  EXPECT_TRUE(s.results[0].ok());
  ASSERT_FALSE(s.results[1].ok());
  EXPECT_NE(s.results[1].error().message.find("invalid YAML"), std::string::npos);
  auto single = parseWorkflowYaml("metadata: {name: [x}\n");
  ASSERT_FALSE(single.ok());
  EXPECT_NE(single.error().message.find("line"), std::string::npos) << single.error().message;
}

TEST(YamlReader, PlainScalarsKeepTheirYamlType) {
  // A plain `true` label is a boolean, hence an error; quoted it is a string.
  auto bad = parseWorkflowYaml("metadata:\n  name: w\n  labels:\n    x: true\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "metadata.labels[\"x\"]: expected a string, got a boolean");
  auto good = parseWorkflowYaml("metadata:\n  name: '007'\n  labels:\n    x: 'true'\n");
  ASSERT_TRUE(good.ok()) << good.error().message;
  EXPECT_EQ(good->name, "007");
}

TEST(YamlReader, AliasBombIsBounded) {
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  char prev = 'a';
  for (char c = 'b'; c <= 'k'; ++c) {
    bomb += std::string(1, c) + ": &" + c + " [*" + prev + ", *" + prev + ", *" + prev + ", *" +
            prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev +
            ", *" + prev + "]\n";
    prev = c;
  }
  auto wf = parseWorkflowYaml(bomb);
  ASSERT_FALSE(wf.ok());
  EXPECT_NE(wf.error().message.find("too large"), std::string::npos) << wf.error().message;
}

}  // namespace
}  // namespace exitrec
