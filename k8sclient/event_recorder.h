#pragma once
// EventRecorder: core/v1 Events about objects, aggregating repeats like
// client-go's event correlator: the same (object, type, reason, message)
// seen again PATCHes the existing Event's count and lastTimestamp instead of
// creating a new Event. If that Event is gone (404), a new one is created.
//
// Writes are synchronous (one API call per record()); the aggregation cache
// is bounded (LRU). Thread-safe: concurrent record() calls for the same
// event are serialized. Errors are classified API errors; callers usually
// just log them (an Event is best-effort).

#include <list>
#include <mutex>
#include <string>
#include <unordered_map>

#include "common/clock.h"
#include "common/result.h"
#include "k8sclient/kube_client.h"

namespace exitrec {

struct ObjectReference {
  std::string apiVersion;  // e.g. "argoproj.io/v1alpha1"
  std::string kind;        // e.g. "Workflow"
  std::string namespaceName;
  std::string name;
  std::string uid;
};

enum class EventType { kNormal, kWarning };

// The Event name for an object: "<objectName><suffix>" (suffix ".<hex nanos>"),
// shortened with a hash of objectName to fit 253 characters. Exposed for tests.
std::string eventName(std::string_view objectName, std::string_view suffix);

class EventRecorder {
 public:
  // `client` and `clock` must outlive the recorder. `component` is the
  // source.component / reportingComponent; `instance` e.g. the pod name.
  EventRecorder(KubeClient& client, Clock& clock, std::string component, std::string instance = "",
                std::size_t cacheSize = 4096);

  Status record(const ObjectReference& obj, EventType type, const std::string& reason,
                const std::string& message);

 private:
  struct Cached {
    std::string eventNamespace;
    std::string eventName;
    int count = 0;
    std::list<std::string>::iterator lru;
  };
  Status createEvent(const std::string& key, const ObjectReference& obj, EventType type,
                     const std::string& reason, const std::string& message);

  KubeClient& client_;
  Clock& clock_;
  std::string component_;
  std::string instance_;
  std::size_t cacheSize_;
  std::mutex mu_;
  std::unordered_map<std::string, Cached> cache_;
  std::list<std::string> lru_;  // front = most recent
};

}  // namespace exitrec
