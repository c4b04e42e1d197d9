#include "k8sclient/leader_election.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/rfc3339.h"
#include "k8sclient/backoff.h"
#include "k8sclient/leadership_gate.h"

namespace exitrec {

using nlohmann::json;

// Lease times are metav1.MicroTime: RFC 3339 with microseconds (common/rfc3339.h).
std::string formatMicroTime(Clock::WallTime t) {
  return formatRfc3339Micros(t);
}

std::optional<Clock::WallTime> parseMicroTime(std::string_view s) {
  return parseRfc3339Micros(s);
}

json leaseSpecJson(const LeaderElectionRecord& rec) {
  json spec = json::object();
  spec["holderIdentity"] = rec.holderIdentity;
  spec["leaseDurationSeconds"] = rec.leaseDurationSeconds;
  spec["acquireTime"] = formatMicroTime(rec.acquireTime);
  spec["renewTime"] = formatMicroTime(rec.renewTime);
  spec["leaseTransitions"] = rec.leaseTransitions;
  return spec;
}

Result<LeaderElectionRecord> parseLeaseSpec(const json& lease) {
  LeaderElectionRecord rec;
  auto specIt = lease.find("spec");
  if (specIt == lease.end() || !specIt->is_object())
    return rec;  // empty lease: no holder
  const json& spec = *specIt;
  rec.holderIdentity = spec.value("holderIdentity", "");
  rec.leaseDurationSeconds = spec.value("leaseDurationSeconds", 0);
  rec.leaseTransitions = spec.value("leaseTransitions", 0);
  for (auto [field, out] :
       {std::pair{"acquireTime", &rec.acquireTime}, std::pair{"renewTime", &rec.renewTime}}) {
    auto it = spec.find(field);
    if (it == spec.end() || it->is_null())
      continue;
    if (!it->is_string())
      return Error(ErrorCode::kInvalidInput, std::string("lease ") + field + " is not a string");
    auto t = parseMicroTime(it->get<std::string>());
    if (!t)
      return Error(ErrorCode::kInvalidInput, std::string("lease ") + field + " is not a MicroTime");
    *out = *t;
  }
  return rec;
}

namespace {

Result<ObservedLease> toObserved(const json& obj) {
  auto rec = parseLeaseSpec(obj);
  if (!rec)
    return rec.error();
  ObservedLease o;
  o.record = *rec;
  o.resourceVersion = obj.value("/metadata/resourceVersion"_json_pointer, "");
  return o;
}

}  // namespace

Result<ObservedLease> KubeLeaseLock::get() {
  auto obj = client_.get(resources::kLeases, ns_, name_);
  if (!obj)
    return obj.error();
  last_ = *obj;
  return toObserved(*obj);
}

Result<ObservedLease> KubeLeaseLock::create(const LeaderElectionRecord& rec) {
  json obj = {{"apiVersion", "coordination.k8s.io/v1"},
              {"kind", "Lease"},
              {"metadata", {{"name", name_}, {"namespace", ns_}}},
              {"spec", leaseSpecJson(rec)}};
  auto created = client_.create(resources::kLeases, ns_, obj);
  if (!created)
    return created.error();
  last_ = *created;
  return toObserved(*created);
}

Result<ObservedLease> KubeLeaseLock::update(const LeaderElectionRecord& rec,
                                            const std::string& resourceVersion) {
  json obj = last_.is_object() ? last_
                               : json{{"apiVersion", "coordination.k8s.io/v1"},
                                      {"kind", "Lease"},
                                      {"metadata", {{"name", name_}, {"namespace", ns_}}}};
  obj["metadata"]["resourceVersion"] = resourceVersion;
  obj["spec"] = leaseSpecJson(rec);
  auto updated = client_.update(resources::kLeases, ns_, name_, obj);
  if (!updated)
    return updated.error();
  last_ = *updated;
  return toObserved(*updated);
}

Status validateLeaderElectionConfig(const LeaderElectionConfig& c) {
  using std::chrono::milliseconds;
  if (c.identity.empty())
    return Error(ErrorCode::kInvalidInput, "leader election: identity is empty");
  if (c.leaseDuration <= milliseconds(0) || c.renewDeadline <= milliseconds(0) ||
      c.retryPeriod <= milliseconds(0)) {
    return Error(ErrorCode::kInvalidInput, "leader election: durations must be positive");
  }
  if (c.leaseDuration <= c.renewDeadline) {
    return Error(ErrorCode::kInvalidInput,
                 "leader election: leaseDuration must be greater than renewDeadline");
  }
  if (static_cast<double>(c.renewDeadline.count()) <=
      1.2 * static_cast<double>(c.retryPeriod.count())) {
    return Error(ErrorCode::kInvalidInput,
                 "leader election: renewDeadline must be greater than 1.2 x retryPeriod");
  }
  return Status();
}

std::chrono::milliseconds leaseRequestTimeout(std::chrono::milliseconds renewDeadline) {
  const auto t = std::max<std::chrono::milliseconds>(renewDeadline / 2, std::chrono::seconds(1));
  return std::min(t, renewDeadline);
}

LeaderElector::LeaderElector(LeaseLock& lock, Clock& clock, LeaderElectionConfig config,
                             std::function<double()> random01)
    : lock_(lock),
      clock_(clock),
      config_(std::move(config)),
      random01_(random01 ? std::move(random01) : std::function<double()>(defaultRandom01)) {
  if (Status s = validateLeaderElectionConfig(config_); !s) {
    spdlog::critical("k8sclient: {}", s.error().message);
    std::abort();  // a broken invariant: callers validate first
  }
}

bool LeaderElector::stopped() const {
  std::lock_guard<std::mutex> g(mu_);
  return stopped_;
}

void LeaderElector::stop() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stopped_ = true;
  }
  cv_.notify_all();
}

bool LeaderElector::isLeader() const {
  return leading_.load();
}

std::string LeaderElector::leader() const {
  std::lock_guard<std::mutex> g(mu_);
  return observed_ ? observed_->holderIdentity : "";
}

bool LeaderElector::sleepFor(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  clock_.waitUntil(lock, cv_, clock_.now() + d, [this] { return stopped_; });
  return !stopped_;
}

void LeaderElector::observe(const LeaderElectionRecord& rec, const std::string& rv) {
  std::string newLeader;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (!observed_ || !(*observed_ == rec))
      observedTime_ = clock_.now();
    observed_ = rec;
    observedRv_ = rv;
    if (rec.holderIdentity != reportedLeader_) {
      reportedLeader_ = rec.holderIdentity;
      newLeader = rec.holderIdentity;
    }
  }
  if (!newLeader.empty()) {
    spdlog::info("k8sclient: {}: leader is now {}", lock_.describe(), newLeader);
    if (config_.onNewLeader)
      config_.onNewLeader(newLeader);
  }
}

bool LeaderElector::tryAcquireOrRenew() {
  const auto wallNow = clock_.wallNow();
  const auto now = clock_.now();
  LeaderElectionRecord rec;
  rec.holderIdentity = config_.identity;
  rec.leaseDurationSeconds = static_cast<int>(
      std::chrono::duration_cast<std::chrono::seconds>(config_.leaseDuration).count());
  if (rec.leaseDurationSeconds < 1)
    rec.leaseDurationSeconds = 1;
  rec.acquireTime = wallNow;
  rec.renewTime = wallNow;

  auto leaseValid = [&](const LeaderElectionRecord& r, Clock::SteadyTime observedAt) {
    return observedAt + std::chrono::seconds(r.leaseDurationSeconds) > now;
  };

  // 1. Fast path: we lead and our lease is still valid -> optimistic update.
  std::optional<LeaderElectionRecord> observed;
  std::string observedRv;
  Clock::SteadyTime observedAt;
  {
    std::lock_guard<std::mutex> g(mu_);
    observed = observed_;
    observedRv = observedRv_;
    observedAt = observedTime_;
  }
  if (observed && observed->holderIdentity == config_.identity &&
      leaseValid(*observed, observedAt)) {
    LeaderElectionRecord renewed = rec;
    renewed.acquireTime = observed->acquireTime;
    renewed.leaseTransitions = observed->leaseTransitions;
    auto res = lock_.update(renewed, observedRv);
    if (res) {
      observe(res->record, res->resourceVersion);
      return true;
    }
    spdlog::warn("k8sclient: {}: renewal failed: {}", lock_.describe(), res.error().describe());
    // Fall through to the slow path (re-read the record).
  }
  // One round never outlives the renew deadline (a hung call already took it).
  auto pastDeadline = [&] { return clock_.now() - now >= config_.renewDeadline; };
  if (pastDeadline())
    return false;

  // 2. Read the current record; create it if absent.
  auto current = lock_.get();
  if (!current) {
    if (current.error().code != ErrorCode::kNotFound) {
      spdlog::warn("k8sclient: {}: get failed: {}", lock_.describe(), current.error().describe());
      return false;
    }
    if (pastDeadline())
      return false;
    auto created = lock_.create(rec);
    if (!created) {
      spdlog::info("k8sclient: {}: create failed: {}", lock_.describe(),
                   created.error().describe());
      return false;
    }
    observe(created->record, created->resourceVersion);
    return true;
  }

  // 3. Record exists. Note when it last changed (local clock).
  observe(current->record, current->resourceVersion);
  {
    std::lock_guard<std::mutex> g(mu_);
    observedAt = observedTime_;
  }
  const LeaderElectionRecord& old = current->record;
  const bool weHold = old.holderIdentity == config_.identity;
  if (!old.holderIdentity.empty() && leaseValid(old, observedAt) && !weHold)
    return false;

  // 4. Acquire or renew, guarded by the resourceVersion we just read.
  if (pastDeadline())
    return false;
  if (weHold) {
    rec.acquireTime = old.acquireTime;
    rec.leaseTransitions = old.leaseTransitions;
  } else {
    rec.leaseTransitions = old.leaseTransitions + 1;
  }
  auto updated = lock_.update(rec, current->resourceVersion);
  if (!updated) {
    spdlog::info("k8sclient: {}: update failed: {}", lock_.describe(), updated.error().describe());
    return false;
  }
  observe(updated->record, updated->resourceVersion);
  return true;
}

void LeaderElector::release() {
  std::optional<LeaderElectionRecord> observed;
  std::string rv;
  {
    std::lock_guard<std::mutex> g(mu_);
    observed = observed_;
    rv = observedRv_;
  }
  if (!observed || observed->holderIdentity != config_.identity)
    return;
  LeaderElectionRecord rec;
  rec.leaseTransitions = observed->leaseTransitions;
  rec.leaseDurationSeconds = 1;
  rec.acquireTime = rec.renewTime = clock_.wallNow();
  auto res = lock_.update(rec, rv);
  if (!res) {
    spdlog::warn("k8sclient: {}: release failed: {}", lock_.describe(), res.error().describe());
    return;
  }
  observe(res->record, res->resourceVersion);
  spdlog::info("k8sclient: {}: released", lock_.describe());
}

void LeaderElector::run() {
  // Acquire. The fence is granted from the start of the successful round.
  while (true) {
    if (stopped())
      return;
    const auto attemptStart = clock_.now();
    if (tryAcquireOrRenew()) {
      if (config_.fence != nullptr)
        config_.fence->grant(attemptStart + config_.renewDeadline);
      break;
    }
    const auto jittered = std::chrono::milliseconds(static_cast<long long>(
        static_cast<double>(config_.retryPeriod.count()) * (1.0 + 1.2 * random01_())));
    if (!sleepFor(jittered))
      return;
  }
  spdlog::info("k8sclient: {}: acquired by {}", lock_.describe(), config_.identity);
  leading_ = true;
  if (config_.onStartedLeading)
    config_.onStartedLeading();

  // Renew until the deadline passes without a success, or stop().
  bool lost = false;
  while (!stopped()) {
    const auto deadline = clock_.now() + config_.renewDeadline;
    bool renewed = false;
    while (!stopped()) {
      const auto attemptStart = clock_.now();
      if (tryAcquireOrRenew()) {
        if (config_.fence != nullptr)
          config_.fence->grant(attemptStart + config_.renewDeadline);
        renewed = true;
        break;
      }
      if (clock_.now() >= deadline)
        break;
      if (!sleepFor(config_.retryPeriod))
        break;
    }
    if (stopped())
      break;
    if (!renewed) {
      lost = true;
      break;
    }
    if (!sleepFor(config_.retryPeriod))
      break;
  }
  // Close the fence first: nothing may be written from here on.
  if (config_.fence != nullptr)
    config_.fence->revoke();
  if (lost) {
    spdlog::error("k8sclient: {}: failed to renew within {} ms: leadership lost", lock_.describe(),
                  config_.renewDeadline.count());
  } else if (config_.releaseOnCancel) {
    release();
  }
  leading_ = false;
  if (config_.onStoppedLeading)
    config_.onStoppedLeading();
}

}  // namespace exitrec
