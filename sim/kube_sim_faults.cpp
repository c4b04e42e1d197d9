// The Kubernetes API simulator's fault injection: failNext() rules, the
// /_sim/ control endpoints (request log, state, dropped and expired watches,
// compaction, pause, seeding, token rotation) and their C++ API.
#include <algorithm>
#include <chrono>
#include <mutex>

#include "common/yaml_json.h"
#include "sim/kube_sim_internal.h"

namespace exitrec {

using namespace kubesim;  // the simulator's own internals (kube_sim_internal.h)

bool KubeApiSimulator::Impl::injectFault(HttpResponseWriter& w, const ResourceType& t,
                                         const std::string& verb, bool& injected) {
  std::optional<SimFailRule> hit;
  {
    std::lock_guard<std::mutex> lock(mu);
    for (auto it = failRules.begin(); it != failRules.end(); ++it) {
      if ((it->verb == "*" || it->verb == verb) &&
          (it->resource == "*" || it->resource == t.plural)) {
        hit = *it;
        if (--it->count <= 0)
          failRules.erase(it);
        break;
      }
    }
  }
  if (hit) {
    if (hit->delayMs > 0) {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait_for(lock, std::chrono::milliseconds(hit->delayMs), [&] { return stopping; });
    }
    if (hit->status > 0) {
      injected = true;
      ApiError e = statusForCode(hit->status, "injected failure (kube-apisim)");
      e.retryAfter = hit->retryAfterSeconds;
      if (hit->status == 429 && hit->retryAfterSeconds > 0) {
        e.details = {{"retryAfterSeconds", hit->retryAfterSeconds}};
      }
      sendError(w, e);
      return true;
    }
  }
  return false;
}

void KubeApiSimulator::Impl::handleControl(const HttpRequest& req, HttpResponseWriter& w) {
  const std::string op = req.path.substr(6);
  auto ok = [&](const json& j) { sendJson(w, 200, j.dump()); };
  json body;
  if (!req.body.empty()) {
    try {
      body = json::parse(req.body);
    } catch (const json::exception& e) {
      auto docs = parseYamlDocuments(req.body);
      if (!docs)
        return sendError(w, badRequest(std::string("invalid body: ") + e.what()));
      body = docs->size() == 1 ? (*docs)[0] : json{{"kind", "List"}, {"items", *docs}};
    }
  }
  if (req.method == "GET" && op == "requests") {
    // ?since=SEQ: only records after SEQ; ?injected=1: injected failures too;
    // ?maxBody=N: bodies cut to N bytes (bodySize keeps the full size).
    std::uint64_t since = 0;
    std::size_t maxBody = std::string::npos;
    bool withInjected = false;
    try {
      if (auto v = req.queryParam("since"))
        since = std::stoull(*v);
      if (auto v = req.queryParam("maxBody"))
        maxBody = static_cast<std::size_t>(std::stoull(*v));
    } catch (const std::exception&) {
      return sendError(w, badRequest("since and maxBody must be non-negative numbers"));
    }
    if (auto v = req.queryParam("injected"))
      withInjected = parseGoBool(*v).value_or(false);
    auto micros = [](std::chrono::system_clock::time_point tp) {
      return std::chrono::duration_cast<std::chrono::microseconds>(tp.time_since_epoch()).count();
    };
    json arr = json::array();
    std::lock_guard<std::mutex> lock(mu);
    for (std::size_t i = static_cast<std::size_t>(std::min<std::uint64_t>(since, mutations.size()));
         i < mutations.size(); ++i) {
      const SimRequestRecord& m = mutations[i];
      if (m.injected && !withInjected)
        continue;
      json rec = {{"verb", m.verb},
                  {"path", m.path},
                  {"query", m.query},
                  {"contentType", m.contentType},
                  {"body", m.body.substr(0, maxBody)},
                  {"seq", m.seq},
                  {"userAgent", m.userAgent},
                  {"client", m.client},
                  {"atUs", micros(m.at)},
                  {"doneAtUs", micros(m.doneAt)},
                  {"status", m.status},
                  {"injected", m.injected}};
      if (m.body.size() > maxBody)
        rec["bodySize"] = m.body.size();
      arr.push_back(std::move(rec));
    }
    return ok(arr);
  }
  if (req.method == "GET" && op == "state") {
    std::lock_guard<std::mutex> lock(mu);
    return ok({{"resourceVersion", std::to_string(rv)},
               {"compactedResourceVersion", std::to_string(compactedRv)},
               {"watches", watchers},
               {"pausedRequests", blockedByPause},
               {"paused", paused}});
  }
  if (req.method != "POST")
    return sendError(w, methodNotAllowed());
  if (op == "drop-watches") {
    std::string mode = req.queryParam("mode").value_or("clean");
    if (mode != "clean" && mode != "abort")
      return sendError(w, badRequest("mode must be clean or abort"));
    std::lock_guard<std::mutex> lock(mu);
    abruptDrop = mode == "abort";
    ++watchGeneration;
    cv.notify_all();
    return ok({{"dropped", watchers}});
  }
  if (op == "expire-next-watch") {
    std::string form = req.queryParam("form").value_or("http");
    if (form != "http" && form != "event") {
      return sendError(w, badRequest("form must be http or event"));
    }
    std::lock_guard<std::mutex> lock(mu);
    expireNext = form == "http" ? ExpireForm::kHttp410 : ExpireForm::kErrorEvent;
    return ok({{"form", form}});
  }
  if (op == "compact") {
    std::lock_guard<std::mutex> lock(mu);
    history.clear();
    compactedRv = rv;
    cv.notify_all();
    return ok({{"compactedResourceVersion", std::to_string(compactedRv)}});
  }
  if (op == "fail") {
    if (!body.is_object())
      return sendError(w, badRequest("body must be a JSON object"));
    SimFailRule r;
    r.verb = body.value("verb", "*");
    r.resource = body.value("resource", "*");
    r.count = body.value("count", 1);
    r.status = body.value("status", 500);
    r.retryAfterSeconds = body.value("retryAfter", 0);
    r.delayMs = body.value("delayMs", 0);
    static const std::vector<std::string> kVerbs = {"get",    "list",  "watch",  "create",
                                                    "update", "patch", "delete", "*"};
    if (std::find(kVerbs.begin(), kVerbs.end(), r.verb) == kVerbs.end()) {
      return sendError(w, badRequest("unknown verb " + r.verb));
    }
    std::lock_guard<std::mutex> lock(mu);
    failRules.push_back(r);
    return ok({{"queued", r.count}});
  }
  if (op == "pause") {
    bool p = body.is_object() ? body.value("paused", true) : true;
    std::lock_guard<std::mutex> lock(mu);
    paused = p;
    cv.notify_all();
    return ok({{"paused", p}});
  }
  if (op == "seed") {
    Status s = Status::okStatus();
    if (body.is_object() && body.contains("items") && body["items"].is_array()) {
      for (const auto& item : body["items"]) {
        s = seedOne(item);
        if (!s)
          break;
      }
    } else {
      s = seedOne(body);
    }
    if (!s)
      return sendError(w, badRequest(s.error().message));
    std::lock_guard<std::mutex> lock(mu);
    return ok({{"resourceVersion", std::to_string(rv)}});
  }
  if (op == "token") {
    if (!body.is_object() || !body.contains("token") || !body["token"].is_string()) {
      return sendError(w, badRequest("body must be {\"token\":\"...\"}"));
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      token = body["token"].get<std::string>();
    }
    writeKubeconfig();
    return ok(json::object());
  }
  sendError(w, pathNotFound());
}

void KubeApiSimulator::dropAllWatches(bool abrupt) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->abruptDrop = abrupt;
  ++impl_->watchGeneration;
  impl_->cv.notify_all();
}

void KubeApiSimulator::expireNextWatch(ExpireForm form) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->expireNext = form;
}

void KubeApiSimulator::compactHistory() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->history.clear();
  impl_->compactedRv = impl_->rv;
  impl_->cv.notify_all();
}

void KubeApiSimulator::failNext(const SimFailRule& rule) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->failRules.push_back(rule);
}

void KubeApiSimulator::pause(bool paused) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->paused = paused;
  impl_->cv.notify_all();
}

void KubeApiSimulator::setToken(const std::string& token) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->token = token;
  }
  if (impl_->server)
    impl_->writeKubeconfig();
}

}  // namespace exitrec
