#pragma once
// Informer<T>: a Reflector plus a local store of compact projections T, and
// add/update/delete handlers.
//
// Memory: the store keeps, per object, its key, uid and a shared_ptr<const T>
// produced by the transform hook from the object's raw JSON; the raw JSON is
// never kept. Choose T small (a few fields) for large objects.
//
// Semantics: a relist is diffed against the store: objects missing from the
// new list are deleted (finalStateUnknown = true), like client-go's
// DeletedFinalStateUnknown. A uid change under the same key is reported as
// delete then add. Handlers run on the reflector thread, outside the store
// lock; they must be fast (typically: enqueue the key).
//
// Thread-safety: get/keys/size/hasSynced may be called from any thread.

#include <spdlog/spdlog.h>

#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "k8sclient/reflector.h"

namespace exitrec {

// "namespace/name", or "name" for cluster-scoped objects.
inline std::string objectKey(std::string_view ns, std::string_view name) {
  if (ns.empty())
    return std::string(name);
  std::string k;
  k.reserve(ns.size() + 1 + name.size());
  k.append(ns).append("/").append(name);
  return k;
}

template <typename T>
class Informer final : private ReflectorSink {
 public:
  using Ptr = std::shared_ptr<const T>;
  // Projects one object; an error skips the object (logged).
  using Transform = std::function<Result<T>(const ObjectMeta& meta, std::string_view rawObject)>;
  struct Handlers {
    std::function<void(const std::string& key, const Ptr& obj)> onAdd;
    std::function<void(const std::string& key, const Ptr& oldObj, const Ptr& newObj)> onUpdate;
    std::function<void(const std::string& key, const Ptr& lastKnown, bool finalStateUnknown)>
        onDelete;
  };

  Informer(KubeClient& client, Clock& clock, ReflectorOptions opts, Transform transform,
           Handlers handlers, ReflectorObserver* observer = nullptr)
      : transform_(std::move(transform)),
        handlers_(std::move(handlers)),
        reflector_(client, clock, std::move(opts), *this, observer) {}

  void start() { reflector_.start(); }
  void stop() { reflector_.stop(); }
  bool hasSynced() const { return reflector_.hasSynced(); }
  Reflector& reflector() { return reflector_; }

  Ptr get(const std::string& key) const {
    std::lock_guard<std::mutex> g(mu_);
    auto it = store_.find(key);
    return it == store_.end() ? nullptr : it->second.obj;
  }
  std::vector<std::string> keys() const {
    std::lock_guard<std::mutex> g(mu_);
    std::vector<std::string> out;
    out.reserve(store_.size());
    for (const auto& [k, e] : store_)
      out.push_back(k);
    return out;
  }
  std::size_t size() const {
    std::lock_guard<std::mutex> g(mu_);
    return store_.size();
  }

 private:
  struct Entry {
    std::string uid;
    Ptr obj;
  };

  void beginReplace() override { seen_.clear(); }

  void replaceItem(const ObjectMeta& meta, std::string_view raw) override {
    const std::string key = objectKey(meta.namespaceName, meta.name);
    seen_.insert(key);
    upsert(key, meta, raw);
  }

  void endReplace() override {
    std::vector<std::pair<std::string, Ptr>> gone;
    {
      std::lock_guard<std::mutex> g(mu_);
      for (auto it = store_.begin(); it != store_.end();) {
        if (seen_.count(it->first) == 0) {
          gone.emplace_back(it->first, it->second.obj);
          it = store_.erase(it);
        } else {
          ++it;
        }
      }
    }
    seen_.clear();
    for (const auto& [k, obj] : gone) {
      if (handlers_.onDelete)
        handlers_.onDelete(k, obj, true);
    }
  }

  void abortReplace() override { seen_.clear(); }

  void watchEvent(WatchEventType type, const ObjectMeta& meta, std::string_view raw) override {
    const std::string key = objectKey(meta.namespaceName, meta.name);
    if (type == WatchEventType::kDeleted) {
      Ptr last;
      {
        std::lock_guard<std::mutex> g(mu_);
        auto it = store_.find(key);
        if (it == store_.end())
          return;
        last = it->second.obj;
        store_.erase(it);
      }
      if (handlers_.onDelete)
        handlers_.onDelete(key, last, false);
      return;
    }
    upsert(key, meta, raw);
  }

  void upsert(const std::string& key, const ObjectMeta& meta, std::string_view raw) {
    auto projected = transform_(meta, raw);
    if (!projected) {
      spdlog::warn("k8sclient: cannot project {}: {}", key, projected.error().describe());
      return;
    }
    Ptr cur = std::make_shared<const T>(std::move(projected).value());
    Ptr old;
    bool replaced = false;
    {
      std::lock_guard<std::mutex> g(mu_);
      auto it = store_.find(key);
      if (it != store_.end()) {
        old = it->second.obj;
        replaced = it->second.uid != meta.uid;
        it->second = Entry{meta.uid, cur};
      } else {
        store_.emplace(key, Entry{meta.uid, cur});
      }
    }
    if (!old) {
      if (handlers_.onAdd)
        handlers_.onAdd(key, cur);
    } else if (replaced) {
      // Deleted and recreated under the same name while we were not looking.
      if (handlers_.onDelete)
        handlers_.onDelete(key, old, true);
      if (handlers_.onAdd)
        handlers_.onAdd(key, cur);
    } else if (handlers_.onUpdate) {
      handlers_.onUpdate(key, old, cur);
    }
  }

  Transform transform_;
  Handlers handlers_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> store_;
  std::set<std::string> seen_;  // reflector thread only
  Reflector reflector_;
};

}  // namespace exitrec
