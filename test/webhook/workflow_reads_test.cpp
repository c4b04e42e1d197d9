// WorkflowReads: concurrent reads of one Workflow share a GET that started
// after each caller arrived; recent copies are reused within maxAge; the
// cache is bounded. Time is a FakeClock; fetches block on the test's gates.
#include "webhook/workflow_reads.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "common/fake_clock.h"

namespace exitrec::testing {
namespace {

using namespace std::chrono_literals;

// A fetch whose calls are numbered (resourceVersion = the call number) and
// can be held until the test opens the gate.
class GatedFetch {
 public:
  Result<std::shared_ptr<const Workflow>> operator()(std::string_view ns, std::string_view name) {
    std::unique_lock<std::mutex> lk(mu_);
    const int n = ++calls_;
    cv_.notify_all();
    cv_.wait(lk, [&] { return open_ || n > held_; });
    if (fail_)
      return Error(ErrorCode::kTransient, "api down");
    auto wf = std::make_shared<Workflow>();
    wf->namespace_ = std::string(ns);
    wf->name = std::string(name);
    wf->uid = uid_;
    wf->resourceVersion = std::to_string(n);
    return std::shared_ptr<const Workflow>(wf);
  }
  void holdFirst(int n) {
    std::lock_guard<std::mutex> g(mu_);
    held_ = n;
    open_ = false;
  }
  void open() {
    std::lock_guard<std::mutex> g(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void waitCalls(int n) {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return calls_ >= n; });
  }
  int calls() {
    std::lock_guard<std::mutex> g(mu_);
    return calls_;
  }
  void setFail(bool f) {
    std::lock_guard<std::mutex> g(mu_);
    fail_ = f;
  }
  void setUid(std::string uid) {
    std::lock_guard<std::mutex> g(mu_);
    uid_ = std::move(uid);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int calls_ = 0;
  int held_ = 0;
  bool open_ = true;
  bool fail_ = false;
  std::string uid_ = "uid-1";
};

WorkflowReads::Options quiet() {
  WorkflowReads::Options o;
  o.maxAge = 1000ms;
  o.refreshAfter = 250ms;
  o.backgroundRefresh = false;
  return o;
}

void waitFor(const std::function<bool()>& cond) {
  // Thread hand-off only (no timing assertion): yield until the other
  // threads reached the state under test.
  for (int i = 0; i < 2'000'000 && !cond(); ++i)
    std::this_thread::yield();
  ASSERT_TRUE(cond());
}

TEST(WorkflowReadsTest, CallersArrivingDuringAGetShareTheNextOne) {
  GatedFetch fetch;
  FakeClock clock;
  WorkflowReads reads([&](auto ns, auto name) { return fetch(ns, name); }, clock, quiet());
  fetch.holdFirst(1);
  auto first = std::async(std::launch::async, [&] { return reads.fresh("ns", "wf"); });
  fetch.waitCalls(1);  // GET #1 is in flight
  auto b = std::async(std::launch::async, [&] { return reads.fresh("ns", "wf"); });
  auto c = std::async(std::launch::async, [&] { return reads.fresh("ns", "wf"); });
  waitFor([&] { return reads.stats().calls == 3; });
  fetch.open();
  auto r1 = first.get(), rb = b.get(), rc = c.get();
  ASSERT_TRUE(r1.ok() && rb.ok() && rc.ok());
  // B and C arrived after GET #1 started: they never get its (older) result.
  EXPECT_EQ(r1.value()->resourceVersion, "1");
  EXPECT_EQ(rb.value()->resourceVersion, "2");
  EXPECT_EQ(rb.value().get(), rc.value().get());  // one shared GET
  EXPECT_EQ(fetch.calls(), 2);
  EXPECT_EQ(reads.stats().gets, 2u);
  EXPECT_GE(reads.stats().sharedWaits, 1u);
}

TEST(WorkflowReadsTest, FreshAlwaysStartsANewGetWhenNoneIsInFlight) {
  GatedFetch fetch;
  FakeClock clock;
  WorkflowReads reads([&](auto ns, auto name) { return fetch(ns, name); }, clock, quiet());
  EXPECT_EQ(reads.fresh("ns", "wf").value()->resourceVersion, "1");
  EXPECT_EQ(reads.fresh("ns", "wf").value()->resourceVersion, "2");
}

TEST(WorkflowReadsTest, RecentReusesACopyWithinMaxAgeOnly) {
  GatedFetch fetch;
  FakeClock clock;
  WorkflowReads reads([&](auto ns, auto name) { return fetch(ns, name); }, clock, quiet());
  EXPECT_EQ(reads.recent("ns", "wf", "uid-1").value()->resourceVersion, "1");
  clock.advance(900ms);
  EXPECT_EQ(reads.recent("ns", "wf", "uid-1").value()->resourceVersion, "1");
  EXPECT_EQ(reads.recent("ns", "wf", "").value()->resourceVersion, "1");
  clock.advance(200ms);  // the copy's GET started 1.1 s ago
  EXPECT_EQ(reads.recent("ns", "wf", "uid-1").value()->resourceVersion, "2");
  EXPECT_EQ(fetch.calls(), 2);
  EXPECT_EQ(reads.stats().recentHits, 2u);
}

TEST(WorkflowReadsTest, RecentRejectsACopyOfAnotherWorkflowWithTheSameName) {
  GatedFetch fetch;
  FakeClock clock;
  WorkflowReads reads([&](auto ns, auto name) { return fetch(ns, name); }, clock, quiet());
  ASSERT_TRUE(reads.recent("ns", "wf", "uid-1").ok());
  fetch.setUid("uid-2");  // deleted and re-created
  auto r = reads.recent("ns", "wf", "uid-2");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value()->uid, "uid-2");
  EXPECT_EQ(fetch.calls(), 2);
}

TEST(WorkflowReadsTest, ErrorsAreSharedButNeverServedAsRecent) {
  GatedFetch fetch;
  FakeClock clock;
  WorkflowReads reads([&](auto ns, auto name) { return fetch(ns, name); }, clock, quiet());
  fetch.setFail(true);
  auto r = reads.recent("ns", "wf", "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kTransient);
  fetch.setFail(false);
  EXPECT_TRUE(reads.recent("ns", "wf", "").ok());
  EXPECT_EQ(fetch.calls(), 2);
}

TEST(WorkflowReadsTest, AtMostMaxEntriesWorkflowsAreKept) {
  GatedFetch fetch;
  FakeClock clock;
  auto o = quiet();
  o.maxEntries = 2;
  WorkflowReads reads([&](auto ns, auto name) { return fetch(ns, name); }, clock, o);
  ASSERT_TRUE(reads.recent("ns", "a", "").ok());
  clock.advance(1ms);
  ASSERT_TRUE(reads.recent("ns", "b", "").ok());
  clock.advance(1ms);
  ASSERT_TRUE(reads.recent("ns", "c", "").ok());  // evicts a (least recently used)
  EXPECT_EQ(reads.stats().entries, 2u);
  ASSERT_TRUE(reads.recent("ns", "c", "").ok());
  EXPECT_EQ(fetch.calls(), 3);
  ASSERT_TRUE(reads.recent("ns", "a", "").ok());  // read again
  EXPECT_EQ(fetch.calls(), 4);
}

TEST(WorkflowReadsTest, AnAgingCopyIsRefreshedInTheBackground) {
  GatedFetch fetch;
  FakeClock clock;
  auto o = quiet();
  o.backgroundRefresh = true;
  WorkflowReads reads([&](auto ns, auto name) { return fetch(ns, name); }, clock, o);
  EXPECT_EQ(reads.recent("ns", "wf", "").value()->resourceVersion, "1");
  clock.advance(100ms);  // younger than refreshAfter: no refresh
  EXPECT_EQ(reads.recent("ns", "wf", "").value()->resourceVersion, "1");
  clock.advance(200ms);  // older than refreshAfter: served, and re-read behind it
  EXPECT_EQ(reads.recent("ns", "wf", "").value()->resourceVersion, "1");
  fetch.waitCalls(2);
  waitFor([&] { return reads.stats().refreshes == 1 && reads.stats().gets == 2; });
  waitFor([&] { return reads.recent("ns", "wf", "").value()->resourceVersion == "2"; });
}

TEST(WorkflowReadsTest, IdleCopiesAreDroppedInTheBackground) {
  GatedFetch fetch;
  FakeClock clock;
  auto o = quiet();
  o.backgroundRefresh = true;
  WorkflowReads reads([&](auto ns, auto name) { return fetch(ns, name); }, clock, o);
  waitFor([&] { return clock.waiterCount() == 1; });  // the refresher is parked
  ASSERT_TRUE(reads.recent("ns", "wf", "").ok());
  EXPECT_EQ(reads.stats().entries, 1u);
  clock.advance(500ms);  // still in use recently
  EXPECT_EQ(reads.stats().entries, 1u);
  clock.advance(1100ms);  // idle past maxAge, and the refresher's period elapsed
  waitFor([&] { return reads.stats().entries == 0; });
  EXPECT_EQ(fetch.calls(), 1);
}

}  // namespace
}  // namespace exitrec::testing
