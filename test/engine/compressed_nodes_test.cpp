// status.compressedNodes: base64 + gzip/zstd/brotli, errors and bombs;
// offloaded node status.
#include <brotli/encode.h>
#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <string>

#include "common/base64.h"
#include "engine/outcome.h"
#include "engine/workflow.h"
#include "test/engine/wf_builder.h"

namespace exitrec {
namespace {

using testing::Json;
using testing::WfBuilder;

// Argo's base64, optionally wrapped at 76 columns with CRLF (accepted too).
std::string base64(std::string_view in, bool wrap = false) {
  std::string flat = base64Encode(in);
  if (!wrap)
    return flat;
  std::string out;
  for (std::size_t i = 0; i < flat.size(); i += 76)
    out += flat.substr(i, 76) + (i + 76 < flat.size() ? "\r\n" : "");
  return out;
}

std::string gzipCompress(std::string_view in) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, in.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string zstdCompress(std::string_view in) {
  std::string out(ZSTD_compressBound(in.size()), '\0');
  std::size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

std::string brotliCompress(std::string_view in) {
  std::size_t size = BrotliEncoderMaxCompressedSize(in.size()) + 64;
  std::string out(size, '\0');
  EXPECT_TRUE(BrotliEncoderCompress(
      BROTLI_DEFAULT_QUALITY, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_GENERIC, in.size(),
      reinterpret_cast<const uint8_t*>(in.data()), &size, reinterpret_cast<uint8_t*>(out.data())));
  out.resize(size);
  return out;
}

// A KFP ≥2.4 run whose body failed; nodes will be moved into compressedNodes.
WfBuilder failedBodyRun() {
  WfBuilder b("wf");
  b.phase("Failed");
  b.node("wf", "DAG", "Failed", "entrypoint");
  b.node("wf.root", "DAG", "Failed", "root", "wf", "wf");
  b.node("wf.root.exit-handler-1", "DAG", "Failed", "comp-exit-handler-1", "wf.root", "wf.root");
  b.node("wf.root.exit-handler-1.fail-op", "Pod", "Failed", "system-container-impl",
         "wf.root.exit-handler-1", "wf.root.exit-handler-1");
  return b;
}

class CompressedNodes : public ::testing::TestWithParam<std::string> {};

TEST_P(CompressedNodes, DecodeLikeInlineNodes) {
  WfBuilder b = failedBodyRun();
  std::string nodesJson = b.doc()["status"]["nodes"].dump();
  std::string packed;
  if (GetParam() == "gzip")
    packed = gzipCompress(nodesJson);
  if (GetParam() == "zstd")
    packed = zstdCompress(nodesJson);
  if (GetParam() == "brotli")
    packed = brotliCompress(nodesJson);
  Json doc = b.doc();
  doc["status"]["nodes"] = Json::object();
  doc["status"]["compressedNodes"] = base64(packed, /*wrap=*/true);
  auto wf = parseWorkflowJson(doc.dump());
  ASSERT_TRUE(wf.ok()) << wf.error().message;
  EXPECT_TRUE(wf->nodesWereCompressed);
  ASSERT_EQ(wf->nodes.size(), 4u);
  const Node* pod = wf->nodeByName("wf.root.exit-handler-1.fail-op");
  ASSERT_NE(pod, nullptr);
  EXPECT_EQ(pod->phase, Phase::kFailed);
  Verdict v = evaluate(*wf);
  ASSERT_EQ(v.failures.size(), 1u);
  EXPECT_EQ(v.failures[0].displayName, "fail-op");
  // Views into the decompressed buffer outlive the parse (and a copy).
  Workflow copy = *wf;
  EXPECT_EQ(copy.nodeByName("wf.root")->templateName, "root");
  auto direct = decompressNodes(base64(packed));
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ(*direct, nodesJson);
}

INSTANTIATE_TEST_SUITE_P(Algorithms, CompressedNodes, ::testing::Values("gzip", "zstd", "brotli"));

TEST(CompressedNodesErrors, Base64Problems) {
  auto bad = decompressNodes("H4sI$$$$");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "status.compressedNodes: invalid base64 at offset 4");
  auto afterPad = decompressNodes("QQ==QQ");
  ASSERT_FALSE(afterPad.ok());
  EXPECT_NE(afterPad.error().message.find("after '=' padding"), std::string::npos);
  auto cut = decompressNodes(
      "QUJD"
      "Q");
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.error().message.find("truncated base64"), std::string::npos);
  auto empty = decompressNodes("  \n ");
  ASSERT_FALSE(empty.ok());
  // Unpadded input is fine.
  std::string z = zstdCompress("{}");
  std::string enc = base64(z);
  while (!enc.empty() && enc.back() == '=')
    enc.pop_back();
  auto ok = decompressNodes(enc);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(*ok, "{}");
}

TEST(CompressedNodesErrors, TruncatedAndCorruptStreams) {
  std::string data(5000, 'x');
  for (std::size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<char>('a' + (i * 7) % 26);
  for (const std::string& packed : {gzipCompress(data), zstdCompress(data), brotliCompress(data)}) {
    auto half = decompressNodes(base64(packed.substr(0, packed.size() / 2)));
    ASSERT_FALSE(half.ok());
    EXPECT_EQ(half.error().message.rfind("status.compressedNodes: ", 0), 0u)
        << half.error().message;
  }
  std::string corrupt = gzipCompress(data);
  corrupt[12] = static_cast<char>(corrupt[12] ^ 0x55);
  corrupt[13] = static_cast<char>(corrupt[13] ^ 0x55);
  EXPECT_FALSE(decompressNodes(base64(corrupt)).ok());
  auto garbage = decompressNodes(base64("this is not compressed at all"));
  ASSERT_FALSE(garbage.ok());
  EXPECT_NE(garbage.error().message.find("brotli"), std::string::npos);
}

TEST(CompressedNodesErrors, BombsStopAtTheCap) {
  std::string zeros(8 << 20, '\0');  // 8 MiB → a few KiB compressed
  const std::size_t cap = 1 << 20;
  for (const std::string& packed :
       {gzipCompress(zeros), zstdCompress(zeros), brotliCompress(zeros)}) {
    ASSERT_LT(packed.size(), 64u << 10);
    auto r = decompressNodes(base64(packed), cap);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("exceeds the limit of 1048576 bytes"), std::string::npos)
        << r.error().message;
    EXPECT_TRUE(decompressNodes(base64(packed), zeros.size()).ok());
  }
}

TEST(CompressedNodesErrors, BadPayloadInsideAWorkflowNamesTheField) {
  WfBuilder b("wf");
  b.doc()["status"]["compressedNodes"] = base64(zstdCompress(R"({"n1":{"name":"wf","type":7}})"));
  auto wf = parseWorkflowJson(b.json());
  ASSERT_FALSE(wf.ok());
  EXPECT_NE(wf.error().message.find("status.compressedNodes"), std::string::npos)
      << wf.error().message;
  EXPECT_NE(wf.error().message.find("type: expected a string"), std::string::npos)
      << wf.error().message;
  b.doc()["status"]["compressedNodes"] = "!!!";
  auto wf2 = parseWorkflowJson(b.json());
  ASSERT_FALSE(wf2.ok());
  EXPECT_EQ(wf2.error().message.rfind("status.compressedNodes: invalid base64", 0), 0u);
  b.doc()["status"]["compressedNodes"] = base64(gzipCompress("[1,2]"));
  EXPECT_FALSE(parseWorkflowJson(b.json()).ok());
}

TEST(CompressedNodesErrors, OnlyTheBoundSetsOverLimit) {
  std::string zeros(2 << 20, '\0');
  bool overLimit = false;
  EXPECT_FALSE(decompressNodes(base64(gzipCompress(zeros)), 1 << 20, overLimit).ok());
  EXPECT_TRUE(overLimit);
  EXPECT_FALSE(decompressNodes(base64("not compressed"), 1 << 20, overLimit).ok());
  EXPECT_FALSE(overLimit);
  EXPECT_TRUE(decompressNodes(base64(gzipCompress(zeros)), 4 << 20, overLimit).ok());
  EXPECT_FALSE(overLimit);
}

// The readers obey the process-wide bound (--max-node-status-bytes): a run
// over it is read without nodes and is not evaluable, with the reason; it is
// never guessed healthy or mis-reported.
TEST(CompressedNodesBound, ARunOverTheBoundIsNotEvaluable) {
  const std::size_t previous = maxDecompressedNodeBytes();
  WfBuilder b = failedBodyRun();
  Json nodes = b.doc()["status"]["nodes"];
  nodes.begin().value()["unreadField"] = std::string(3 << 20, 'a');  // unknown: ignored
  Json doc = b.doc();
  doc["status"]["nodes"] = Json::object();
  doc["status"]["compressedNodes"] = base64(gzipCompress(nodes.dump()));
  ASSERT_LT(doc.dump().size(), 64u << 10);

  setMaxDecompressedNodeBytes(1 << 20);
  auto wf = parseWorkflowJson(doc.dump());
  setMaxDecompressedNodeBytes(previous);
  ASSERT_TRUE(wf.ok()) << wf.error().message;
  EXPECT_TRUE(wf->nodes.empty());
  EXPECT_TRUE(wf->nodesWereCompressed);
  EXPECT_NE(wf->nodeStatusOverLimit.find("exceeds the limit of 1048576 bytes"), std::string::npos)
      << wf->nodeStatusOverLimit;
  EXPECT_EQ(Workflow(*wf).nodeStatusOverLimit, wf->nodeStatusOverLimit);  // copies keep it
  Verdict v = evaluate(*wf);
  EXPECT_FALSE(v.evaluable);
  EXPECT_FALSE(v.misreported);
  EXPECT_EQ(v.cause, "node-status-too-large");
  EXPECT_EQ(v.truePhase, v.reportedPhase);
  EXPECT_EQ(v.notEvaluableReason, wf->nodeStatusOverLimit);

  // Under a larger bound the same document is read and evaluated.
  auto read = parseWorkflowJson(doc.dump());
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_TRUE(read->nodeStatusOverLimit.empty());
  EXPECT_TRUE(evaluate(*read).evaluable);
}

TEST(Offloaded, IsNotEvaluableAndNeverGuessed) {
  WfBuilder b("wf");
  b.phase("Succeeded");
  b.doc()["status"]["offloadNodeStatusVersion"] = "fnv:1234567";
  Verdict v = b.eval();
  EXPECT_FALSE(v.evaluable);
  EXPECT_FALSE(v.misreported);
  EXPECT_EQ(v.cause, "node-status-offloaded");
  EXPECT_EQ(v.truePhase, Phase::kSucceeded);
  EXPECT_TRUE(v.failures.empty());
  EXPECT_NE(v.notEvaluableReason.find("offloaded"), std::string::npos);
  // With nodes present (hydrated), the version is irrelevant.
  WfBuilder h = failedBodyRun();
  h.doc()["status"]["offloadNodeStatusVersion"] = "fnv:1234567";
  EXPECT_TRUE(h.eval().evaluable);
}

}  // namespace
}  // namespace exitrec
