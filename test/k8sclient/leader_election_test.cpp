#include "k8sclient/leader_election.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "common/fake_clock.h"
#include "k8sclient/fake_http_transport.h"
#include "test_util.h"

namespace exitrec {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::waitFor;

// An in-memory Lease with resourceVersion checks, shared by several electors.
class FakeLeaseLock final : public LeaseLock {
 public:
  Result<ObservedLease> get() override {
    std::lock_guard<std::mutex> g(mu);
    ++gets;
    if (failAll)
      return Error(ErrorCode::kTransient, "apiserver down");
    if (!exists)
      return Error(ErrorCode::kNotFound, "lease not found");
    return ObservedLease{rec, std::to_string(rv)};
  }
  Result<ObservedLease> create(const LeaderElectionRecord& r) override {
    std::lock_guard<std::mutex> g(mu);
    if (failAll)
      return Error(ErrorCode::kTransient, "apiserver down");
    if (exists)
      return Error(ErrorCode::kConflict, "already exists");
    exists = true;
    rec = r;
    ++rv;
    return ObservedLease{rec, std::to_string(rv)};
  }
  Result<ObservedLease> update(const LeaderElectionRecord& r, const std::string& v) override {
    std::lock_guard<std::mutex> g(mu);
    ++updates;
    if (failAll)
      return Error(ErrorCode::kTransient, "apiserver down");
    if (!exists)
      return Error(ErrorCode::kNotFound, "lease not found");
    if (v != std::to_string(rv))
      return Error(ErrorCode::kConflict, "the object has been modified");
    rec = r;
    ++rv;
    return ObservedLease{rec, std::to_string(rv)};
  }
  std::string describe() const override { return "lease test/lock"; }

  LeaderElectionRecord snapshot() {
    std::lock_guard<std::mutex> g(mu);
    return rec;
  }
  void setFailAll(bool f) {
    std::lock_guard<std::mutex> g(mu);
    failAll = f;
  }
  // Another writer (e.g. a rival renewing) changes the record.
  void externalWrite(const LeaderElectionRecord& r) {
    std::lock_guard<std::mutex> g(mu);
    exists = true;
    rec = r;
    ++rv;
  }

  std::mutex mu;
  bool exists = false;
  bool failAll = false;
  LeaderElectionRecord rec;
  int rv = 0;
  int gets = 0, updates = 0;
};

LeaderElectionConfig cfg(const std::string& id) {
  LeaderElectionConfig c;
  c.identity = id;
  return c;
}

TEST(LeaderElectionTest, Validation) {
  EXPECT_TRUE(validateLeaderElectionConfig(cfg("a")).ok());  // defaults 15/10/2
  auto c = cfg("a");
  EXPECT_EQ(c.leaseDuration, seconds(15));
  EXPECT_EQ(c.renewDeadline, seconds(10));
  EXPECT_EQ(c.retryPeriod, seconds(2));
  c.renewDeadline = seconds(15);
  EXPECT_FALSE(validateLeaderElectionConfig(c).ok());  // lease must exceed renew deadline
  c = cfg("a");
  c.retryPeriod = milliseconds(8400);  // 1.2 x 8.4 s = 10.08 s >= 10 s
  EXPECT_FALSE(validateLeaderElectionConfig(c).ok());
  c.retryPeriod = milliseconds(8000);
  EXPECT_TRUE(validateLeaderElectionConfig(c).ok());
  c.retryPeriod = milliseconds(0);
  EXPECT_FALSE(validateLeaderElectionConfig(c).ok());
  EXPECT_FALSE(validateLeaderElectionConfig(cfg("")).ok());
}

TEST(LeaderElectionTest, CreateThenRenewKeepsAcquireTimeAndTransitions) {
  FakeClock clock;
  FakeLeaseLock lock;
  LeaderElector a(lock, clock, cfg("a"));
  ASSERT_TRUE(a.tryAcquireOrRenew());
  auto r1 = lock.snapshot();
  EXPECT_EQ(r1.holderIdentity, "a");
  EXPECT_EQ(r1.leaseDurationSeconds, 15);
  EXPECT_EQ(r1.leaseTransitions, 0);
  EXPECT_EQ(r1.acquireTime, clock.wallNow());
  clock.advance(seconds(2));
  ASSERT_TRUE(a.tryAcquireOrRenew());
  auto r2 = lock.snapshot();
  EXPECT_EQ(r2.acquireTime, r1.acquireTime);
  EXPECT_EQ(r2.renewTime, clock.wallNow());
  EXPECT_EQ(r2.leaseTransitions, 0);
  EXPECT_EQ(a.leader(), "a");
}

TEST(LeaderElectionTest, ExpiryJudgedOnLocalClockFromLastChange) {
  FakeClock clock;
  FakeLeaseLock lock;
  // The rival's renewTime is an hour in the past (skewed clock): irrelevant.
  LeaderElectionRecord rival{"b", 15, clock.wallNow() - std::chrono::hours(1),
                             clock.wallNow() - std::chrono::hours(1), 3};
  lock.externalWrite(rival);
  LeaderElector a(lock, clock, cfg("a"));
  EXPECT_FALSE(a.tryAcquireOrRenew());  // first observation starts the local timer
  EXPECT_EQ(a.leader(), "b");
  clock.advance(seconds(10));
  // The rival renews: the record changed, so the timer restarts.
  rival.renewTime += seconds(10);
  lock.externalWrite(rival);
  EXPECT_FALSE(a.tryAcquireOrRenew());
  clock.advance(seconds(14));
  EXPECT_FALSE(a.tryAcquireOrRenew());  // 14 s since the change: still valid
  clock.advance(seconds(1) + milliseconds(1));
  EXPECT_TRUE(a.tryAcquireOrRenew());  // expired: take over
  auto r = lock.snapshot();
  EXPECT_EQ(r.holderIdentity, "a");
  EXPECT_EQ(r.leaseTransitions, 4);
  EXPECT_EQ(r.acquireTime, clock.wallNow());
}

TEST(LeaderElectionTest, ConcurrentTakeoverLoserGetsConflict) {
  FakeClock clock;
  FakeLeaseLock lock;
  lock.externalWrite({"old", 15, clock.wallNow(), clock.wallNow(), 0});
  LeaderElector a(lock, clock, cfg("a"));
  LeaderElector b(lock, clock, cfg("b"));
  EXPECT_FALSE(a.tryAcquireOrRenew());
  EXPECT_FALSE(b.tryAcquireOrRenew());
  clock.advance(seconds(16));
  // Interleave: both read the same expired record; a writes first, b's PUT
  // carries the stale resourceVersion and gets 409.
  struct RacingLock final : LeaseLock {
    FakeLeaseLock& inner;
    std::function<void()> beforeUpdate;
    explicit RacingLock(FakeLeaseLock& l) : inner(l) {}
    Result<ObservedLease> get() override { return inner.get(); }
    Result<ObservedLease> create(const LeaderElectionRecord& r) override { return inner.create(r); }
    Result<ObservedLease> update(const LeaderElectionRecord& r, const std::string& v) override {
      if (beforeUpdate)
        beforeUpdate();
      return inner.update(r, v);
    }
    std::string describe() const override { return "racing"; }
  } racing(lock);
  LeaderElector b2(racing, clock, cfg("b"));
  EXPECT_FALSE(b2.tryAcquireOrRenew());  // observe "old"
  clock.advance(seconds(16));
  racing.beforeUpdate = [&] {
    racing.beforeUpdate = nullptr;
    EXPECT_TRUE(a.tryAcquireOrRenew());
  };
  EXPECT_FALSE(b2.tryAcquireOrRenew());
  auto r = lock.snapshot();
  EXPECT_EQ(r.holderIdentity, "a");
  EXPECT_EQ(r.leaseTransitions, 1);
}

TEST(LeaderElectionTest, RunLeadsReleasesOnStopAndSuccessorTakesOverAtOnce) {
  FakeClock clock;
  FakeLeaseLock lock;
  std::atomic<int> started{0}, stopped{0};
  auto c = cfg("a");
  c.onStartedLeading = [&] { ++started; };
  c.onStoppedLeading = [&] { ++stopped; };
  LeaderElector a(lock, clock, c, [] { return 0.0; });
  std::thread t([&] { a.run(); });
  ASSERT_TRUE(waitFor([&] { return started.load() == 1; }));
  EXPECT_TRUE(a.isLeader());
  // Renewals every retry period.
  for (int i = 0; i < 3; ++i) {
    const auto waits = clock.waitsStarted();
    clock.advance(seconds(2));
    ASSERT_TRUE(waitFor([&] { return clock.waitsStarted() > waits; }));
  }
  ASSERT_TRUE(waitFor([&] { return lock.snapshot().renewTime == clock.wallNow(); }));
  a.stop();
  t.join();
  EXPECT_EQ(stopped.load(), 1);
  EXPECT_FALSE(a.isLeader());
  auto r = lock.snapshot();
  EXPECT_EQ(r.holderIdentity, "");
  EXPECT_EQ(r.leaseDurationSeconds, 1);
  // A successor does not have to wait out the lease.
  LeaderElector b(lock, clock, cfg("b"));
  EXPECT_TRUE(b.tryAcquireOrRenew());
  EXPECT_EQ(lock.snapshot().leaseTransitions, 1);
}

TEST(LeaderElectionTest, FailingRenewalsLoseLeadershipAfterRenewDeadline) {
  FakeClock clock;
  FakeLeaseLock lock;
  std::atomic<int> stopped{0};
  auto c = cfg("a");
  c.onStoppedLeading = [&] { ++stopped; };
  LeaderElector a(lock, clock, c, [] { return 0.0; });
  std::thread t([&] { a.run(); });
  ASSERT_TRUE(waitFor([&] { return a.isLeader() && clock.waiterCount() == 1; }));
  lock.setFailAll(true);
  // Renewed at T0, sleeping until T0+2; renewals fail from then on, so the
  // deadline (T0+2 + 10 s) passes without a success.
  const auto lostAt = clock.now() + seconds(2) + seconds(10);
  while (stopped.load() == 0) {
    ASSERT_LE(clock.now(), lostAt) << "did not give up after the renew deadline";
    const auto waits = clock.waitsStarted();
    clock.advance(seconds(2));
    ASSERT_TRUE(waitFor([&] { return clock.waitsStarted() > waits || stopped.load() == 1; }));
  }
  t.join();
  EXPECT_GE(clock.now(), lostAt);
  EXPECT_FALSE(a.isLeader());
  // No release after losing the lease: the record still names "a".
  EXPECT_EQ(lock.snapshot().holderIdentity, "a");
}

TEST(LeaderElectionTest, StopWhileCampaigningReturnsWithoutCallbacks) {
  FakeClock clock;
  FakeLeaseLock lock;
  lock.externalWrite({"b", 15, clock.wallNow(), clock.wallNow(), 0});
  std::atomic<int> calls{0};
  auto c = cfg("a");
  c.onStartedLeading = [&] { ++calls; };
  c.onStoppedLeading = [&] { ++calls; };
  LeaderElector a(lock, clock, c);
  std::thread t([&] { a.run(); });
  ASSERT_TRUE(waitFor([&] { return clock.waiterCount() == 1; }));
  a.stop();
  t.join();
  EXPECT_EQ(calls.load(), 0);
  EXPECT_EQ(lock.snapshot().holderIdentity, "b");
}

TEST(LeaseLockTest, MicroTimeRoundTrip) {
  const Clock::WallTime t{std::chrono::microseconds(1798000000123456LL)};
  EXPECT_EQ(formatMicroTime(t), "2026-12-23T04:26:40.123456Z");
  EXPECT_EQ(*parseMicroTime("2026-12-23T04:26:40.123456Z"), t);
  EXPECT_EQ(*parseMicroTime("2026-12-23T05:26:40.123456+01:00"), t);
  EXPECT_EQ(parseMicroTime("2026-12-23T04:26:40Z")->time_since_epoch(),
            std::chrono::seconds(1798000000));
  EXPECT_FALSE(parseMicroTime("yesterday").has_value());
}

TEST(LeaseLockTest, KubeLeaseLockSpeaksLeaseJson) {
  auto transport = std::make_shared<FakeHttpTransport>();
  KubeClient client(transport, "https://api", TokenSource());
  KubeLeaseLock lock(client, "kubeflow", "exit-reconciler");
  transport->pushResponse(fakeResponse(404, R"({"kind":"Status","code":404,"reason":"NotFound"})"));
  auto g = lock.get();
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().code, ErrorCode::kNotFound);

  LeaderElectionRecord rec{"me", 15, Clock::WallTime(seconds(1798000000)),
                           Clock::WallTime(seconds(1798000000)), 0};
  json created = {{"apiVersion", "coordination.k8s.io/v1"},
                  {"kind", "Lease"},
                  {"metadata",
                   {{"name", "exit-reconciler"},
                    {"namespace", "kubeflow"},
                    {"resourceVersion", "7"},
                    {"labels", {{"keep", "me"}}}}},
                  {"spec", leaseSpecJson(rec)}};
  transport->pushResponse(fakeResponse(201, created.dump()));
  auto c = lock.create(rec);
  ASSERT_TRUE(c.ok()) << c.error().describe();
  EXPECT_EQ(c->resourceVersion, "7");
  EXPECT_EQ(c->record, rec);

  rec.renewTime += seconds(2);
  created["metadata"]["resourceVersion"] = "8";
  created["spec"] = leaseSpecJson(rec);
  transport->pushResponse(fakeResponse(200, created.dump()));
  auto u = lock.update(rec, "7");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->resourceVersion, "8");

  auto reqs = transport->requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[1].method, "POST");
  EXPECT_EQ(reqs[1].url, "https://api/apis/coordination.k8s.io/v1/namespaces/kubeflow/leases");
  auto body = json::parse(reqs[1].body);
  EXPECT_EQ(body["spec"]["holderIdentity"], "me");
  EXPECT_EQ(body["spec"]["leaseDurationSeconds"], 15);
  EXPECT_EQ(body["spec"]["acquireTime"], "2026-12-23T04:26:40.000000Z");
  EXPECT_EQ(reqs[2].method, "PUT");
  EXPECT_EQ(reqs[2].url,
            "https://api/apis/coordination.k8s.io/v1/namespaces/kubeflow/leases/exit-reconciler");
  auto put = json::parse(reqs[2].body);
  EXPECT_EQ(put["metadata"]["resourceVersion"], "7");
  EXPECT_EQ(put["metadata"]["labels"]["keep"], "me");  // PUT keeps what it read
  EXPECT_EQ(put["spec"]["renewTime"], "2026-12-23T04:26:42.000000Z");

  transport->pushResponse(fakeResponse(409, R"({"kind":"Status","code":409,"reason":"Conflict"})"));
  auto conflict = lock.update(rec, "7");
  ASSERT_FALSE(conflict.ok());
  EXPECT_EQ(conflict.error().code, ErrorCode::kConflict);
}

}  // namespace
}  // namespace exitrec
