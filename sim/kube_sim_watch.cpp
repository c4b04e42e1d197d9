// The Kubernetes API simulator's watch streams: history replay from a
// resourceVersion, selectors, bookmarks, expiry (410 Gone) and the stream's
// lifetime.
#include <algorithm>
#include <chrono>
#include <mutex>
#include <random>

#include "sim/kube_sim_internal.h"

namespace exitrec {

using namespace kubesim;  // the simulator's own internals (kube_sim_internal.h)

void KubeApiSimulator::Impl::doWatch(const HttpRequest& req, HttpResponseWriter& w,
                                     const ResourceType& t, const std::string& ns) {
  auto ls = LabelSelector::parse(req.queryParam("labelSelector").value_or(""));
  if (!ls)
    return sendError(w, badRequest(ls.error().message));
  auto fsel = FieldSelector::parse(req.queryParam("fieldSelector").value_or(""));
  if (!fsel)
    return sendError(w, badRequest(fsel.error().message));
  bool bookmarks = false;
  if (auto b = req.queryParam("allowWatchBookmarks")) {
    auto v = parseGoBool(*b);
    if (!v)
      return sendError(w, badRequest("invalid value for allowWatchBookmarks: " + *b));
    bookmarks = *v;
  }
  std::chrono::steady_clock::duration lifetime;
  if (auto ts = req.queryParam("timeoutSeconds")) {
    try {
      lifetime = std::chrono::seconds(std::stoll(*ts));
    } catch (const std::exception&) {
      return sendError(w, badRequest("invalid timeoutSeconds: " + *ts));
    }
  } else {
    std::mt19937_64 rng(std::random_device{}());
    auto base = opts.minRequestTimeout.count();
    lifetime =
        std::chrono::seconds(base + static_cast<long long>(rng() % std::max<long long>(1, base)));
  }
  const auto deadline = std::chrono::steady_clock::now() + lifetime;
  std::string rvParam = req.queryParam("resourceVersion").value_or("");
  std::uint64_t startRv = 0;
  if (!rvParam.empty() && rvParam != "0") {
    try {
      std::size_t used = 0;
      startRv = std::stoull(rvParam, &used);
      if (used != rvParam.size())
        throw std::invalid_argument("trailing characters");
    } catch (const std::exception&) {
      return sendError(w, badRequest("resourceVersion: Invalid value: \"" + rvParam +
                                     "\": invalid resource version"));
    }
  }

  const std::string listKind = t.kind;
  auto line = [](const char* type, const std::string& obj) {
    std::string s;
    s.reserve(obj.size() + 32);
    s += "{\"type\":\"";
    s += type;
    s += "\",\"object\":";
    s += obj;
    s += "}\n";
    return s;
  };
  auto bookmarkLine = [&](std::uint64_t at) {
    json obj = {
        {"kind", t.kind},
        {"apiVersion", t.apiVersion()},
        {"metadata", {{"resourceVersion", std::to_string(at)}, {"creationTimestamp", nullptr}}}};
    return line("BOOKMARK", obj.dump());
  };
  auto matches = [&](const std::string& ons, const std::string& oname, const Labels& labels,
                     const std::string& data) {
    if (!ns.empty() && ons != ns)
      return false;
    return ls->matches(labels) && fieldsMatch(*fsel, ons, oname, data);
  };
  HttpHeaders h = {{"Content-Type", "application/json"}, {"Cache-Control", "no-cache, private"}};

  std::vector<std::string> initial;
  std::uint64_t pos = 0;
  std::uint64_t generation = 0;
  std::optional<ApiError> tooOld;
  {
    std::unique_lock<std::mutex> lock(mu);
    generation = watchGeneration;
    std::uint64_t tooOldAt = startRv;
    if (expireNext) {
      ExpireForm form = *expireNext;
      expireNext.reset();
      ApiError e = expired("too old resource version: " + rvParam + " (" +
                           std::to_string(compactedRv + 1) + ")");
      if (form == ExpireForm::kHttp410) {
        lock.unlock();
        return sendError(w, e);
      }
      tooOld = e;
    } else if (startRv != 0 && startRv < compactedRv) {
      tooOld = expired("too old resource version: " + std::to_string(tooOldAt) + " (" +
                       std::to_string(compactedRv + 1) + ")");
    } else if (startRv > rv) {
      // kube-apiserver waits ~3 s for its cache to reach the version, then gives up with
      // 504 "Too large resource version"; the simulator is never behind, so it answers at once.
      ApiError e{504,
                 "Timeout",
                 "Too large resource version: " + std::to_string(startRv) +
                     ", current: " + std::to_string(rv),
                 {{"causes", json::array({{{"reason", "ResourceVersionTooLarge"},
                                           {"message", "Too large resource version"}}})},
                  {"retryAfterSeconds", 1}}};
      lock.unlock();
      return sendError(w, e);
    }
    if (!tooOld) {
      if (startRv == 0) {
        for (const auto& [key, so] : store[&t]) {
          if (matches(key.first, key.second, so.labels, *so.data)) {
            initial.push_back(line("ADDED", *so.data));
          }
        }
        pos = rv;
      } else {
        pos = startRv;
      }
      ++watchers;
    }
  }
  if (tooOld) {
    // The watch cache reports a too-old resourceVersion inside a 200 stream.
    if (!w.beginChunked(200, h))
      return;
    w.writeChunk(line("ERROR", statusJson(*tooOld).dump()));
    w.endChunked();
    return;
  }
  struct WatcherCount {
    Impl* self;
    ~WatcherCount() {
      std::lock_guard<std::mutex> lock(self->mu);
      --self->watchers;
    }
  } counted{this};

  if (!w.beginChunked(200, h))
    return;
  for (const auto& l : initial) {
    if (!w.writeChunk(l))
      return;
  }
  initial.clear();
  auto nextBookmark = std::chrono::steady_clock::now() + opts.bookmarkInterval;
  for (;;) {
    std::vector<std::string> out;
    bool expiredNow = false;
    bool end = false;
    {
      std::unique_lock<std::mutex> lock(mu);
      auto wakeAt =
          std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(250));
      if (bookmarks)
        wakeAt = std::min(wakeAt, nextBookmark);
      cv.wait_until(lock, wakeAt, [&] {
        return stopping || watchGeneration != generation ||
               (!history.empty() && history.back().rv > pos);
      });
      if (stopping)
        return;
      if (watchGeneration != generation) {
        if (abruptDrop)
          w.abortConnection();
        return;
      }
      if (pos < compactedRv) {
        expiredNow = true;
      } else {
        auto it = std::upper_bound(history.begin(), history.end(), pos,
                                   [](std::uint64_t v, const WatchEvent& e) { return v < e.rv; });
        std::size_t bytes = 0;
        for (; it != history.end() && bytes < (8u << 20); ++it) {
          const WatchEvent& ev = *it;
          pos = ev.rv;
          if (ev.res != &t)
            continue;
          bool now = matches(ev.ns, ev.name, ev.labels, *ev.data);
          const char* type = ev.type;
          if (ev.oldLabels) {
            bool before = (ns.empty() || ev.ns == ns) && ls->matches(*ev.oldLabels) &&
                          fieldsMatch(*fsel, ev.ns, ev.name, *ev.data);
            if (now && !before)
              type = "ADDED";
            if (!now && before)
              type = "DELETED";
            if (!now && !before)
              continue;
          } else if (!now) {
            continue;
          }
          out.push_back(line(type, *ev.data));
          bytes += out.back().size();
        }
        if (it == history.end())
          pos = std::max(pos, rv);
      }
      end = std::chrono::steady_clock::now() >= deadline;
    }
    if (expiredNow) {
      ApiError e = expired("too old resource version: " + std::to_string(pos) + " (" +
                           std::to_string(compactedRv + 1) + ")");
      w.writeChunk(line("ERROR", statusJson(e).dump()));
      return;
    }
    for (const auto& l : out) {
      if (!w.writeChunk(l))
        return;
    }
    auto now = std::chrono::steady_clock::now();
    if (bookmarks && (now >= nextBookmark || end)) {
      if (!w.writeChunk(bookmarkLine(pos)))
        return;
      nextBookmark = now + opts.bookmarkInterval;
    }
    if (end || w.stopRequested() || w.clientGone())
      return;
  }
}

}  // namespace exitrec
