#include "sandbox/sandbox_history.h"

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/base64.h"
#include "controller/backfill.h"
#include "controller/history_audit.h"
#include "engine/outcome.h"
#include "engine/workflow.h"
#include "k8sclient/cpprest_transport.h"
#include "k8sclient/kube_client.h"
#include "sim/kfp/kfp_history_api.h"
#include "sim/kfp/kfp_run_factory.h"
#include "sim/kfp/kfp_workflow_fields.h"

namespace exitrec {
namespace {

using nlohmann::json;

constexpr std::array<const char*, 3> kNamespaces = {"team-a", "team-b", "team-c"};

// Argo's status.compressedNodes: gzip, then standard base64
// (argo-workflows v3.5.5 util/file/fileutil.go CompressEncodeString).
std::string gzipBase64(const std::string& text) {
  z_stream zs{};
  std::string gz;
  if (deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return {};
  gz.resize(deflateBound(&zs, static_cast<uLong>(text.size())) + 32);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  zs.avail_in = static_cast<uInt>(text.size());
  zs.next_out = reinterpret_cast<Bytef*>(gz.data());
  zs.avail_out = static_cast<uInt>(gz.size());
  const int rc = deflate(&zs, Z_FINISH);
  gz.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END)
    return {};
  return base64Encode(gz);
}

std::optional<Verdict> verdictOf(const json& doc) {
  auto wf = parseWorkflowJson(doc.dump());
  if (!wf)
    return std::nullopt;
  return evaluate(*wf);
}

// A failed pod under a Succeeded run, as Argo leaves it when a task's
// failure does not fail the run (e.g. continueOn): the first Succeeded pod
// whose failure the engine then counts. False when none does.
bool maskFailure(json& doc) {
  json* nodes = doc.contains("status") ? &doc["status"]["nodes"] : nullptr;
  if (nodes == nullptr || !nodes->is_object())
    return false;
  for (auto& [id, node] : nodes->items()) {
    if (node.value("type", "") != "Pod" || node.value("phase", "") != "Succeeded")
      continue;
    json trial = doc;
    trial["status"]["nodes"][id]["phase"] = "Failed";
    trial["status"]["nodes"][id]["message"] = "Error (exit code 1)";
    auto v = verdictOf(trial);
    if (v && v->misreported) {
      doc = std::move(trial);
      return true;
    }
  }
  return false;
}

// KFP's run state for a reported Workflow phase (kubeflow/pipelines 2.4.0
// resource/resource_manager.go ReportWorkflowResource: RuntimeState(status
// .phase).ToV2(), model/run.go: Succeeded → SUCCEEDED, Failed and Error →
// FAILED, Running → RUNNING).
std::string kfpStateFor(const std::string& phase) {
  if (phase == "Succeeded")
    return "SUCCEEDED";
  if (phase == "Failed" || phase == "Error")
    return "FAILED";
  return "RUNNING";
}

std::map<std::string, json> linesByRun(const std::string& text) {
  std::map<std::string, json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    json j = json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("kfpRunId") && j["kfpRunId"].is_string())
      out[j["kfpRunId"].get<std::string>()] = j;
  }
  return out;
}

int runCommand(int (*command)(std::span<char* const>, std::ostream&, std::ostream&),
               std::vector<std::string> args, std::string& out, std::string& err) {
  std::vector<char*> argv;
  argv.reserve(args.size());
  for (auto& a : args)
    argv.push_back(a.data());
  std::ostringstream o, e;
  const int rc = command(argv, o, e);
  out = o.str();
  err = e.str();
  return rc;
}

}  // namespace

SandboxHistory::SandboxHistory(KfpHistoryApi& api, std::string kubeApiUrl) : api_(api) {
  auto transport = makeCpprestTransport(TlsOptions{});
  if (transport) {
    kube_ =
        std::make_unique<KubeClient>(std::shared_ptr<HttpTransport>(std::move(transport).value()),
                                     std::move(kubeApiUrl), TokenSource());
  }
  // KFP's workflow client: a CR exists or not; a delete is only counted (a
  // history run's CR is gone, and backfill must never ask for one).
  KfpHistoryApi::Cluster cluster;
  cluster.exists = [this](const std::string& ns, const std::string& name) {
    return kube_ && kube_->get(resources::kWorkflows, ns, name).ok();
  };
  cluster.remove = [this](const std::string& ns, const std::string& name) {
    ++deleteRequests_;
    return kube_ && kube_->get(resources::kWorkflows, ns, name).ok();
  };
  api_.setCluster(cluster);
}

SandboxHistory::~SandboxHistory() = default;

std::size_t SandboxHistory::seed(
    const std::vector<std::pair<std::string, std::string>>& documents) {
  std::vector<json> sources;
  const json* kfpV2 = nullptr;
  for (const auto& [origin, text] : documents) {
    json doc = json::parse(text, nullptr, false);
    auto v = doc.is_discarded() ? std::nullopt : verdictOf(doc);
    if (!v || !v->runId || !v->completed)
      continue;  // plain Argo, or still running: not in KFP's finished history
    sources.push_back(std::move(doc));
  }
  for (const json& doc : sources) {
    auto v = verdictOf(doc);
    if (v && v->generation == Generation::kKfpV2 && kfpV2 == nullptr)
      kfpV2 = &doc;
  }
  // kfp-v1 and kfp-v2 (no exit handler) are mis-reported only by a masked
  // failure: synthesize one of each.
  std::vector<json> masked;
  {
    KfpRunSpec v1;
    v1.shape = RunShape::kV1;
    v1.name = "nightly-etl-continue-on-r8s2d";
    json doc = json::parse(makeKfpRunJson(v1));
    if (maskFailure(doc))
      masked.push_back(std::move(doc));
  }
  if (kfpV2 != nullptr) {
    json doc = *kfpV2;
    if (maskFailure(doc))
      masked.push_back(std::move(doc));
  }
  sources.insert(sources.end(), masked.begin(), masked.end());

  std::set<std::string> used;  // ns/name
  auto add = [&](json doc, std::size_t i, const std::string& kind) {
    std::string ns = kNamespaces[i % kNamespaces.size()];
    const std::string name = doc["metadata"].value("name", "");
    auto key = [&name](std::string_view space) {
      std::string k(space);
      k += '/';
      k += name;
      return k;
    };
    for (std::size_t k = 1; used.count(key(ns)) != 0 && k < kNamespaces.size(); ++k)
      ns = kNamespaces[(i + k) % kNamespaces.size()];
    used.insert(key(ns));
    char id[64];
    std::snprintf(id, sizeof id, "a17e%04zx-0000-4000-8000-%012zx", i, i);
    doc["metadata"]["namespace"] = ns;
    doc["metadata"]["labels"]["pipeline/runid"] = id;
    std::string manifestKind = kind;
    if (kind.empty()) {
      // Every other stored manifest still has KFP's label; every third has
      // its nodes compressed as Argo does past its size limit.
      const bool labelled = i % 2 == 0;
      const bool compress = i % 3 == 1 && doc["status"].contains("nodes");
      if (labelled)
        doc["metadata"]["labels"]["pipeline/persistedFinalState"] = "true";
      if (compress) {
        doc["status"]["compressedNodes"] = gzipBase64(doc["status"]["nodes"].dump());
        doc["status"].erase("nodes");
      }
      manifestKind = compress                                    ? "compressed"
                     : doc["status"].contains("compressedNodes") ? "compressed"
                                                                 : "nodes";
      if (labelled)
        manifestKind += "+label";
    }
    Row row;
    row.runId = id;
    row.ns = ns;
    row.name = name;
    row.manifest = manifestKind;
    auto v = verdictOf(doc);
    row.evaluable = v && v->evaluable;
    row.misreported = v && v->misreported;
    row.generation = v ? std::string(generationName(v->generation)) : "?";
    const std::string phase = doc["status"].value("phase", "");
    KfpHistoryApi::HistoryRun run;
    run.runId = id;
    run.displayName = name;
    run.ns = ns;
    run.state = kfpStateFor(phase);
    run.finishedAt = kfpsim::finishedAtSeconds(doc);
    run.createdAt = run.finishedAt > 600 ? run.finishedAt - 600 : 0;
    run.manifest = doc.dump();
    row.kfpBefore = run.state;
    api_.addRun(std::move(run));
    rows_.push_back(std::move(row));
  };
  std::size_t i = 0;
  for (json& doc : sources) {
    add(doc, i, "");
    ++i;
  }
  // A mis-reported run whose node status Argo had offloaded: gone with the CR.
  for (const json& doc : sources) {
    auto v = verdictOf(doc);
    if (!v || !v->misreported)
      continue;
    json off = doc;
    off["status"].erase("nodes");
    off["status"].erase("compressedNodes");
    off["status"]["offloadNodeStatusVersion"] = "fnv-2214470453";
    add(std::move(off), i++, "offloaded");
    break;
  }
  return rows_.size();
}

int SandboxHistory::run(const std::string& kfpUrl, const std::string& kfpTokenFile,
                        const std::string& kubeconfig, std::ostream& out) {
  std::string auditOut, auditErr, backfillOut, backfillErr;
  const int auditRc = runCommand(runHistoryAudit,
                                 {"--kfp-api-url", kfpUrl, "--kfp-token-file", kfpTokenFile,
                                  // The KFP simulator has 8 handler workers, shared with
                                  // the controller.
                                  "--concurrency", "2"},
                                 auditOut, auditErr);
  const int backfillRc = runCommand(runBackfill,
                                    {"--kfp-api-url", kfpUrl, "--kfp-token-file", kfpTokenFile,
                                     "--kubeconfig", kubeconfig, "--apply", "--qps", "200"},
                                    backfillOut, backfillErr);
  const auto audited = linesByRun(auditOut);
  const auto backfilled = linesByRun(backfillOut);

  int problems = 0;
  int auditMisreported = 0, auditErrors = 0, corrected = 0;
  for (Row& r : rows_) {
    auto a = audited.find(r.runId);
    if (a == audited.end()) {
      r.audit = "(not listed)";
    } else if (a->second.contains("error")) {
      r.audit = "error";
      ++auditErrors;
    } else if (a->second.value("misreported", false)) {
      r.audit = "mis-reported";
      ++auditMisreported;
    } else {
      r.audit = "ok";
    }
    auto b = backfilled.find(r.runId);
    r.backfill = b == backfilled.end() ? "-" : b->second.value("action", "?");
    auto after = api_.run(r.runId);
    r.kfpAfter = after ? after->state : "?";
    if (r.backfill == "corrected")
      ++corrected;
    bool ok = false;
    if (!r.evaluable) {
      ok = r.audit == "error" && r.kfpAfter == r.kfpBefore;  // unrecoverable: left as is
    } else if (r.misreported) {
      ok = r.audit == "mis-reported" && r.backfill == "corrected" && r.kfpAfter == "FAILED";
    } else {
      ok = r.audit == "ok" && r.kfpAfter == r.kfpBefore;
    }
    if (!ok)
      ++problems;
  }
  int labelled = 0;
  for (const auto& report : api_.reports()) {
    if (report.hadFinalStateLabel || report.deletedWorkflow)
      ++labelled;
  }
  problems += labelled + deleteRequests_.load();

  const std::vector<std::string> header = {"HISTORY RUN", "GENERATION", "MANIFEST",   "TRUE",
                                           "AUDIT",       "BACKFILL",   "KFP BEFORE", "KFP AFTER"};
  std::vector<std::vector<std::string>> cells;
  for (const Row& r : rows_) {
    cells.push_back({r.ns + "/" + r.name, r.generation, r.manifest,
                     !r.evaluable    ? "unknown"
                     : r.misreported ? "mis-reported"
                                     : "as reported",
                     r.audit, r.backfill, r.kfpBefore, r.kfpAfter});
  }
  std::vector<std::size_t> width(header.size());
  for (std::size_t i = 0; i < header.size(); ++i)
    width[i] = header[i].size();
  for (const auto& c : cells)
    for (std::size_t i = 0; i < c.size(); ++i)
      width[i] = std::max(width[i], c[i].size());
  auto print = [&](const std::vector<std::string>& c) {
    for (std::size_t i = 0; i < c.size(); ++i)
      out << std::left << std::setw(static_cast<int>(width[i]) + 2) << c[i];
    out << "\n";
  };
  out << "\nKFP run history (Workflows gone): exit-reconciler audit --kfp-api-url, then "
         "backfill --apply\n\n";
  print(header);
  for (const auto& c : cells)
    print(c);
  out << "\nHistory audit (exit " << auditRc << "): " << rows_.size() << " runs, "
      << auditMisreported << " mis-reported, " << auditErrors << " unreadable\n"
      << "History backfill --apply (exit " << backfillRc << "): " << corrected
      << " corrected and verified FAILED in KFP\n"
      << "History reports carrying pipeline/persistedFinalState: " << labelled
      << "; Workflow deletions asked of KFP: " << deleteRequests_.load() << "\n"
      << "History runs not as expected: " << problems << "\n";
  if (problems != 0)
    out << "audit stderr:\n" << auditErr << "backfill stderr:\n" << backfillErr;
  return problems;
}

}  // namespace exitrec
