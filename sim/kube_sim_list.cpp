// The Kubernetes API simulator's collection verbs: list with label and field
// selectors, limit/continue pagination and streaming of large lists, and
// deletecollection.

#include <mutex>

#include "common/base64.h"
#include "sim/kube_sim_internal.h"

namespace exitrec {

using namespace kubesim;  // the simulator's own internals (kube_sim_internal.h)

namespace {

// Continue tokens are base64 of a small JSON document, like kube-apiserver's.
std::string base64(const std::string& in) {
  return base64Encode(in);
}

std::optional<std::string> unbase64(const std::string& in) {
  auto decoded = base64Decode(in);
  if (in.empty() || !decoded)
    return std::nullopt;
  return std::move(decoded).value();
}

}  // namespace

void KubeApiSimulator::Impl::doList(const HttpRequest& req, HttpResponseWriter& w,
                                    const ResourceType& t, const std::string& ns) {
  auto ls = LabelSelector::parse(req.queryParam("labelSelector").value_or(""));
  if (!ls)
    return sendError(w, badRequest(ls.error().message));
  auto fsel = FieldSelector::parse(req.queryParam("fieldSelector").value_or(""));
  if (!fsel)
    return sendError(w, badRequest(fsel.error().message));
  if (t.custom) {
    for (const auto& r : fsel->requirements()) {
      if (r.field != "metadata.name" && r.field != "metadata.namespace") {
        return sendError(w, badRequest("field label not supported: " + r.field));
      }
    }
  }
  std::string rvParam = req.queryParam("resourceVersion").value_or("");
  long long limit = 0;
  if (auto l = req.queryParam("limit")) {
    try {
      limit = std::stoll(*l);
    } catch (const std::exception&) {
      return sendError(w, badRequest("invalid limit: " + *l));
    }
  }
  // The watch cache serves RV=0 lists whole: it ignores limit (kube-apiserver 1.32).
  if (rvParam == "0")
    limit = 0;
  std::string cont = req.queryParam("continue").value_or("");

  std::vector<std::shared_ptr<const std::string>> items;
  std::uint64_t listRv = 0;
  std::string nextContinue;
  long long remaining = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    listRv = rv;
    ObjectKey after;
    bool hasAfter = false;
    if (!cont.empty()) {
      auto decoded = unbase64(cont);
      json tok;
      try {
        if (decoded)
          tok = json::parse(*decoded);
      } catch (const json::exception&) {
      }
      if (!tok.is_object() || !tok.contains("rv") || !tok.contains("start")) {
        return sendError(w, badRequest("continue key is not valid: incorrect encoded start "
                                       "resourceVersion (version meta.k8s.io/v1)"));
      }
      std::uint64_t tokRv = tok["rv"].get<std::uint64_t>();
      auto issued = std::chrono::system_clock::time_point(
          std::chrono::seconds(tok.value("ts", static_cast<long long>(0))));
      if (tokRv < compactedRv || std::chrono::system_clock::now() - issued > opts.continueTtl) {
        return sendError(
            w, expired("The provided continue parameter is too old to display a consistent list "
                       "result. You can start a new list without the continue parameter, or use "
                       "the continue token in this response to retrieve the remainder of the "
                       "results. Continuing with the provided token results in an inconsistent "
                       "list - objects that were created, modified, or deleted between the time "
                       "the first chunk was returned and now may show up in the list."));
      }
      listRv = tokRv;
      std::string start = tok["start"].get<std::string>();
      std::size_t sep = start.find('\x1f');
      after = {start.substr(0, sep), sep == std::string::npos ? "" : start.substr(sep + 1)};
      hasAfter = true;
    }
    auto& bucket = store[&t];
    auto it = hasAfter ? bucket.upper_bound(after) : bucket.begin();
    ObjectKey last;
    for (; it != bucket.end(); ++it) {
      const auto& [key, so] = *it;
      if (!ns.empty() && key.first != ns)
        continue;
      if (!ls->matches(so.labels) || !fieldsMatch(*fsel, key.first, key.second, *so.data))
        continue;
      if (limit > 0 && static_cast<long long>(items.size()) >= limit) {
        ++remaining;
        continue;
      }
      items.push_back(so.data);
      last = key;
    }
    if (remaining > 0) {
      json tok = {{"v", "meta.k8s.io/v1"},
                  {"rv", listRv},
                  {"start", last.first + '\x1f' + last.second},
                  {"ts", std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count()}};
      nextContinue = base64(tok.dump());
    }
  }
  json meta = {{"resourceVersion", std::to_string(listRv)}};
  if (!nextContinue.empty()) {
    meta["continue"] = nextContinue;
    if (ls->empty() && fsel->empty())
      meta["remainingItemCount"] = remaining;
  }
  std::string head = "{\"apiVersion\":" + json(t.apiVersion()).dump() + ",\"items\":[";
  std::string tail =
      "],\"kind\":" + json(t.kind + "List").dump() + ",\"metadata\":" + meta.dump() + "}";
  std::size_t total = head.size() + tail.size();
  for (const auto& s : items)
    total += s->size() + 1;
  HttpHeaders h = {{"Content-Type", "application/json"}, {"Cache-Control", "no-cache, private"}};
  constexpr std::size_t kStreamAbove = 4u << 20;
  if (total <= kStreamAbove) {
    std::string body;
    body.reserve(total);
    body += head;
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (i)
        body += ',';
      body += *items[i];
    }
    body += tail;
    w.send(200, h, body);
    return;
  }
  // Large lists stream in ~1 MiB chunks: no giant response string.
  if (!w.beginChunked(200, h))
    return;
  std::string buf = head;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i)
      buf += ',';
    if (buf.size() + items[i]->size() > (1u << 20)) {
      if (!buf.empty() && !w.writeChunk(buf))
        return;
      buf.clear();
      if (items[i]->size() > (1u << 20)) {
        if (!w.writeChunk(*items[i]))
          return;
        continue;
      }
    }
    buf += *items[i];
  }
  buf += tail;
  w.writeChunk(buf);
  w.endChunked();
}

void KubeApiSimulator::Impl::serveDeleteCollection(const HttpRequest& req, HttpResponseWriter& w,
                                                   const ResourceType& t, const std::string& ns,
                                                   bool dryRun) {
  auto ls = LabelSelector::parse(req.queryParam("labelSelector").value_or(""));
  if (!ls)
    return sendError(w, badRequest(ls.error().message));
  auto fsel = FieldSelector::parse(req.queryParam("fieldSelector").value_or(""));
  if (!fsel)
    return sendError(w, badRequest(fsel.error().message));
  std::lock_guard<std::mutex> lock(mu);
  std::vector<ObjectKey> victims;
  for (const auto& [key, so] : store[&t]) {
    if (key.first == ns && ls->matches(so.labels) &&
        fieldsMatch(*fsel, key.first, key.second, *so.data)) {
      victims.push_back(key);
    }
  }
  json items = json::array();
  for (const auto& key : victims) {
    json cur = json::parse(*store[&t][key].data);
    if (!dryRun)
      cur = commitLocked(t, key.first, key.second, std::move(cur), "DELETED", std::nullopt);
    items.push_back(std::move(cur));
  }
  json list = {{"kind", t.kind + "List"},
               {"apiVersion", t.apiVersion()},
               {"metadata", {{"resourceVersion", std::to_string(rv)}}},
               {"items", items}};
  return sendJson(w, 200, list.dump());
}

}  // namespace exitrec
