#include "k8sclient/event_recorder.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "k8sclient/leader_election.h"

namespace exitrec {

using nlohmann::json;

namespace {
// API server limit on Event messages is generous, but keep Events small.
constexpr std::size_t kMaxMessage = 1024;

std::string typeName(EventType t) {
  return t == EventType::kWarning ? "Warning" : "Normal";
}
}  // namespace

EventRecorder::EventRecorder(KubeClient& client, Clock& clock, std::string component,
                             std::string instance, std::size_t cacheSize)
    : client_(client),
      clock_(clock),
      component_(std::move(component)),
      instance_(std::move(instance)),
      cacheSize_(cacheSize == 0 ? 1 : cacheSize) {}

Status EventRecorder::record(const ObjectReference& obj, EventType type, const std::string& reason,
                             const std::string& rawMessage) {
  const std::string message = rawMessage.substr(0, kMaxMessage);
  std::string key = obj.apiVersion;
  for (const std::string* part :
       {&obj.kind, &obj.namespaceName, &obj.name, &obj.uid, &reason, &message}) {
    key += '\x1f';
    key += *part;
  }
  key += '\x1f' + typeName(type);

  std::lock_guard<std::mutex> g(mu_);
  auto it = cache_.find(key);
  if (it == cache_.end())
    return createEvent(key, obj, type, reason, message);

  Cached& c = it->second;
  lru_.splice(lru_.begin(), lru_, c.lru);
  const json patch = {{"count", c.count + 1}, {"lastTimestamp", formatRfc3339(clock_.wallNow())}};
  auto res = client_.mergePatch(resources::kEvents, c.eventNamespace, c.eventName, patch);
  if (!res) {
    if (res.error().code == ErrorCode::kNotFound) {
      // Expired or deleted: start a new Event.
      lru_.erase(c.lru);
      cache_.erase(it);
      return createEvent(key, obj, type, reason, message);
    }
    return res.error();
  }
  ++c.count;
  return Status();
}

Status EventRecorder::createEvent(const std::string& key, const ObjectReference& obj,
                                  EventType type, const std::string& reason,
                                  const std::string& message) {
  const auto wall = clock_.wallNow();
  const auto nanos =
      std::chrono::duration_cast<std::chrono::nanoseconds>(wall.time_since_epoch()).count();
  char suffix[32];
  std::snprintf(suffix, sizeof(suffix), ".%llx", static_cast<unsigned long long>(nanos));
  const std::string ns = obj.namespaceName.empty() ? "default" : obj.namespaceName;
  const std::string name = obj.name + suffix;
  const std::string ts = formatRfc3339(wall);
  json involved = {{"apiVersion", obj.apiVersion}, {"kind", obj.kind}, {"name", obj.name}};
  if (!obj.namespaceName.empty())
    involved["namespace"] = obj.namespaceName;
  if (!obj.uid.empty())
    involved["uid"] = obj.uid;
  json source = {{"component", component_}};
  if (!instance_.empty())
    source["host"] = instance_;
  json ev = {{"apiVersion", "v1"},
             {"kind", "Event"},
             {"metadata", {{"name", name}, {"namespace", ns}}},
             {"involvedObject", involved},
             {"reason", reason},
             {"message", message},
             {"type", typeName(type)},
             {"source", source},
             {"firstTimestamp", ts},
             {"lastTimestamp", ts},
             {"eventTime", nullptr},
             {"count", 1},
             {"reportingComponent", component_},
             {"reportingInstance", instance_}};
  auto res = client_.create(resources::kEvents, ns, ev);
  if (!res)
    return res.error();
  if (cache_.size() >= cacheSize_ && !lru_.empty()) {
    cache_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(key);
  cache_.emplace(key, Cached{ns, name, 1, lru_.begin()});
  return Status();
}

}  // namespace exitrec
