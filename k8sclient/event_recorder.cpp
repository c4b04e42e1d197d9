#include "k8sclient/event_recorder.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
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

// At most `max` bytes of `text`, never ending inside a UTF-8 sequence (a cut
// sequence makes the JSON encoder throw).
std::string utf8Prefix(const std::string& text, std::size_t max) {
  if (text.size() <= max)
    return text;
  std::size_t end = max;
  // Back up over continuation bytes (10xxxxxx) to the start of the sequence.
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80)
    --end;
  return text.substr(0, end);
}

std::uint32_t fnv1a(std::string_view s) {
  std::uint32_t h = 2166136261u;
  for (unsigned char c : s) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

}  // namespace

// client-go names an Event "<object name>.<unix nanos in hex>"
// (tools/record/event.go, recorderImpl.makeEvent; tools/events does the same)
// and never shortens it; a Workflow name of up to 253 characters then gives an
// Event name past the 253 a name may have. A name that does not fit keeps a
// prefix, ended by an alphanumeric (DNS subdomain rule), plus the FNV-1a hash
// of the whole name, so two long names with the same prefix stay apart.
std::string eventName(std::string_view objectName, std::string_view suffix) {
  constexpr std::size_t kMaxName = 253;
  if (objectName.size() + suffix.size() <= kMaxName)
    return std::string(objectName).append(suffix);
  char hash[16];
  std::snprintf(hash, sizeof(hash), "-%08x", static_cast<unsigned>(fnv1a(objectName)));
  std::size_t keep = kMaxName - suffix.size() - std::strlen(hash);
  std::string_view prefix = objectName.substr(0, std::min(keep, objectName.size()));
  while (!prefix.empty() && !std::isalnum(static_cast<unsigned char>(prefix.back())))
    prefix.remove_suffix(1);
  return std::string(prefix).append(hash).append(suffix);
}

EventRecorder::EventRecorder(KubeClient& client, Clock& clock, std::string component,
                             std::string instance, std::size_t cacheSize)
    : client_(client),
      clock_(clock),
      component_(std::move(component)),
      instance_(std::move(instance)),
      cacheSize_(cacheSize == 0 ? 1 : cacheSize) {}

Status EventRecorder::record(const ObjectReference& obj, EventType type, const std::string& reason,
                             const std::string& rawMessage) {
  const std::string message = utf8Prefix(rawMessage, kMaxMessage);
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
  const std::string name = eventName(obj.name, suffix);
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
