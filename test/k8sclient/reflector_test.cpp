#include "k8sclient/reflector.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/fake_clock.h"
#include "k8sclient/backoff.h"
#include "k8sclient/fake_http_transport.h"
#include "k8sclient/informer.h"
#include "test_util.h"

namespace exitrec {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using testing::waitFor;

TEST(BackoffTest, DoublesToCapWithJitterAndResets) {
  FakeClock clock;
  double r = 0.0;
  Backoff b(clock, BackoffOptions{}, [&] { return r; });
  std::vector<long long> got;
  for (int i = 0; i < 8; ++i)
    got.push_back(b.next().count());
  EXPECT_EQ(got, (std::vector<long long>{800, 1600, 3200, 6400, 12800, 25600, 30000, 30000}));
  // Healthy for more than 2 minutes: start over.
  clock.advance(std::chrono::minutes(2) + milliseconds(1));
  EXPECT_EQ(b.next().count(), 800);
  // Jitter factor 1.0: base + rand*base, clamped to the cap.
  r = 0.5;
  EXPECT_EQ(b.next().count(), 2400);  // base 1600
  r = 0.99;
  for (int i = 0; i < 6; ++i)
    EXPECT_LE(b.next().count(), 30000);
  // Within 2 minutes of the previous step the base is not reset.
  clock.advance(std::chrono::minutes(1));
  r = 0.0;
  EXPECT_EQ(b.next().count(), 30000);
}

struct Proj {
  std::string name;
  std::string phase;
};

struct Recorded {
  std::string what;  // add/update/delete/delete?
  std::string key;
  std::string detail;
};

class RecordingObserver : public ReflectorObserver {
 public:
  void onBackoff(std::string_view, milliseconds d) override {
    std::lock_guard<std::mutex> g(mu);
    backoffs.push_back(d);
  }
  void onWatchEvent(std::string_view, std::string_view type) override {
    std::lock_guard<std::mutex> g(mu);
    seen.push_back(std::string(type));
  }
  void onWatchClosedNormally(std::string_view) override {
    std::lock_guard<std::mutex> g(mu);
    seen.push_back("closed-normally");
  }
  void onWatchRestart(std::string_view, std::string_view reason) override {
    std::lock_guard<std::mutex> g(mu);
    seen.push_back("restart:" + std::string(reason));
  }
  std::vector<std::string> watchLog() {
    std::lock_guard<std::mutex> g(mu);
    return seen;
  }
  std::vector<std::string> seen;
  std::vector<milliseconds> get() {
    std::lock_guard<std::mutex> g(mu);
    return backoffs;
  }
  std::mutex mu;
  std::vector<milliseconds> backoffs;
};

std::string obj(const std::string& name, const std::string& uid, const std::string& rv,
                const std::string& phase = "Running") {
  return json{
      {"metadata", {{"namespace", "ns"}, {"name", name}, {"uid", uid}, {"resourceVersion", rv}}},
      {"status", {{"phase", phase}, {"nodes", {{"big", std::string(100, 'x')}}}}}}
      .dump();
}

std::string listBody(const std::string& rv, const std::vector<std::string>& items) {
  std::string out =
      R"({"kind":"WorkflowList","metadata":{"resourceVersion":")" + rv + R"("},"items":[)";
  for (std::size_t i = 0; i < items.size(); ++i)
    out += (i ? "," : "") + items[i];
  return out + "]}";
}

std::string event(const std::string& type, const std::string& object) {
  return R"({"type":")" + type + R"(","object":)" + object + "}";
}

std::string bookmark(const std::string& rv) {
  return event(
      "BOOKMARK",
      R"({"kind":"Workflow","apiVersion":"argoproj.io/v1alpha1","metadata":{"resourceVersion":")" +
          rv + R"("}})");
}

std::string status410() {
  return R"({"kind":"Status","apiVersion":"v1","status":"Failure","code":410,"reason":"Expired","message":"too old resource version"})";
}

class ReflectorTest : public ::testing::Test {
 protected:
  ReflectorTest() {
    ReflectorOptions opts;
    opts.resource = resources::kWorkflows;
    opts.random01 = [] { return 0.5; };
    informer = std::make_unique<Informer<Proj>>(
        client, clock, opts,
        [](const ObjectMeta& meta, std::string_view raw) -> Result<Proj> {
          auto j = json::parse(raw);
          return Proj{meta.name, j["status"].value("phase", "")};
        },
        Informer<Proj>::Handlers{
            [this](const std::string& k, const Informer<Proj>::Ptr& o) {
              record("add", k, o->phase);
            },
            [this](const std::string& k, const Informer<Proj>::Ptr&, const Informer<Proj>::Ptr& n) {
              record("update", k, n->phase);
            },
            [this](const std::string& k, const Informer<Proj>::Ptr& o, bool unknown) {
              record(unknown ? "delete?" : "delete", k, o->phase);
            }},
        &observer);
  }
  ~ReflectorTest() override { informer->stop(); }

  void record(const std::string& what, const std::string& key, const std::string& detail) {
    std::lock_guard<std::mutex> g(mu);
    events.push_back({what, key, detail});
  }
  std::vector<std::string> eventStrings() {
    std::lock_guard<std::mutex> g(mu);
    std::vector<std::string> out;
    for (const auto& e : events)
      out.push_back(e.what + " " + e.key + " " + e.detail);
    return out;
  }
  void clearEvents() {
    std::lock_guard<std::mutex> g(mu);
    events.clear();
  }
  // Waits until the reflector is parked in watch number `n` (1-based).
  bool waitForWatch(std::size_t n) {
    return waitFor([&] {
      return transport->streamRequests().size() == n && transport->waitingStreams() == 1;
    });
  }
  bool waitForClockWaiter() {
    return waitFor([&] { return clock.waiterCount() > 0; });
  }
  std::string streamUrl(std::size_t i) { return transport->streamRequests().at(i).url; }

  std::shared_ptr<FakeHttpTransport> transport = std::make_shared<FakeHttpTransport>();
  FakeClock clock;
  KubeClient client{transport, "https://api", TokenSource()};
  RecordingObserver observer;
  std::mutex mu;
  std::vector<Recorded> events;
  std::unique_ptr<Informer<Proj>> informer;
};

TEST_F(ReflectorTest, ListThenWatchFromListRvBookmarksAdvanceCleanCloseRewatches) {
  transport->pushResponse(
      fakeResponse(200, listBody("100", {obj("a", "u1", "90"), obj("b", "u2", "95")})));
  FakeStream s;
  s.lines = {event("ADDED", obj("c", "u3", "101")), bookmark("105"),
             event("MODIFIED", obj("a", "u1", "106", "Succeeded"))};
  transport->pushStream(s);
  informer->start();
  ASSERT_TRUE(waitForWatch(2));
  EXPECT_TRUE(informer->hasSynced());
  // One list only; it asked for a consistent paginated read.
  ASSERT_EQ(transport->requests().size(), 1u);
  EXPECT_EQ(transport->requests()[0].url,
            "https://api/apis/argoproj.io/v1alpha1/workflows?limit=500");
  EXPECT_EQ(streamUrl(0),
            "https://api/apis/argoproj.io/v1alpha1/workflows?watch=true&resourceVersion=100"
            "&allowWatchBookmarks=true&timeoutSeconds=450");
  // Client idle timeout above the server's timeoutSeconds.
  EXPECT_GT(transport->streamRequests()[0].timeout, std::chrono::seconds(450));
  // Clean close: re-watch from the last event's RV, no relist.
  EXPECT_NE(streamUrl(1).find("resourceVersion=106&"), std::string::npos) << streamUrl(1);
  EXPECT_EQ(eventStrings(),
            (std::vector<std::string>{"add ns/a Running", "add ns/b Running", "add ns/c Running",
                                      "update ns/a Succeeded"}));
  EXPECT_EQ(informer->get("ns/a")->phase, "Succeeded");
  EXPECT_EQ(informer->size(), 3u);

  // A stream with only a bookmark still advances the RV.
  FakeStream b;
  b.lines = {bookmark("200")};
  transport->pushStream(b);
  ASSERT_TRUE(waitForWatch(3));
  EXPECT_NE(streamUrl(2).find("resourceVersion=200&"), std::string::npos) << streamUrl(2);
  EXPECT_EQ(informer->reflector().lastSyncResourceVersion(), "200");
  EXPECT_EQ(informer->reflector().restartCounts()["closed"], 2);
  EXPECT_EQ(informer->reflector().listCount(), 1);
  EXPECT_TRUE(observer.get().empty());  // no backoff on healthy closes
}

TEST_F(ReflectorTest, Http410RelistsWithEmptyRvAndDiffsDeletesAndUidChanges) {
  transport->pushResponse(fakeResponse(
      200, listBody("10", {obj("a", "u1", "1"), obj("b", "u2", "2"), obj("c", "u3", "3")})));
  FakeStream gone;
  gone.status = 410;
  gone.body = status410();
  transport->pushStream(gone);
  informer->start();
  ASSERT_TRUE(waitForClockWaiter());  // backing off before the relist
  clearEvents();
  // During the gap: b deleted, c deleted and recreated (new uid), a changed.
  transport->pushResponse(
      fakeResponse(200, listBody("50", {obj("a", "u1", "40", "Failed"), obj("c", "u9", "45")})));
  clock.advance(std::chrono::seconds(30));
  ASSERT_TRUE(waitForWatch(2));
  auto got = eventStrings();
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::string>{"add ns/c Running", "delete? ns/b Running",
                                           "delete? ns/c Running", "update ns/a Failed"}));
  ASSERT_EQ(transport->requests().size(), 2u);
  EXPECT_EQ(transport->requests()[1].url.find("resourceVersion"), std::string::npos);
  EXPECT_NE(streamUrl(1).find("resourceVersion=50&"), std::string::npos);
  EXPECT_EQ(informer->reflector().restartCounts()["gone_http"], 1);
  EXPECT_EQ(informer->size(), 2u);
  EXPECT_EQ(informer->get("ns/b"), nullptr);
}

TEST_F(ReflectorTest, ErrorEvent410Relists) {
  transport->pushResponse(
      fakeResponse(200, listBody("10", {obj("a", "u1", "1"), obj("b", "u2", "2")})));
  FakeStream s;
  s.lines = {event("MODIFIED", obj("a", "u1", "11", "Succeeded")), event("ERROR", status410()),
             event("DELETED", obj("a", "u1", "12"))};  // after ERROR: never delivered
  transport->pushStream(s);
  informer->start();
  ASSERT_TRUE(waitForClockWaiter());
  transport->pushResponse(fakeResponse(200, listBody("30", {obj("a", "u1", "11", "Succeeded")})));
  clock.advance(std::chrono::seconds(30));
  ASSERT_TRUE(waitForWatch(2));
  EXPECT_EQ(informer->reflector().restartCounts()["gone_event"], 1);
  EXPECT_EQ(informer->reflector().listCount(), 2);
  EXPECT_NE(streamUrl(1).find("resourceVersion=30&"), std::string::npos);
  auto got = eventStrings();
  EXPECT_NE(std::find(got.begin(), got.end(), "delete? ns/b Running"), got.end());
  EXPECT_EQ(std::count(got.begin(), got.end(), "delete ns/a Running"), 0);
  EXPECT_NE(informer->get("ns/a"), nullptr);
}

TEST_F(ReflectorTest, UidChangeInWatchIsDeleteThenAdd) {
  transport->pushResponse(fakeResponse(200, listBody("10", {obj("a", "u1", "1")})));
  FakeStream s;
  s.lines = {event("MODIFIED", obj("a", "u2", "11", "Pending")),
             event("DELETED", obj("a", "u2", "12", "Pending"))};
  transport->pushStream(s);
  informer->start();
  ASSERT_TRUE(waitForWatch(2));
  EXPECT_EQ(eventStrings(), (std::vector<std::string>{"add ns/a Running", "delete? ns/a Running",
                                                      "add ns/a Pending", "delete ns/a Pending"}));
  EXPECT_EQ(informer->size(), 0u);
}

TEST_F(ReflectorTest, ImmediateEmptyCloseBacksOffExponentially) {
  transport->pushResponse(fakeResponse(200, listBody("10", {})));
  transport->pushStream(FakeStream{});  // closes at once with no events
  informer->start();
  ASSERT_TRUE(waitForClockWaiter());
  EXPECT_EQ(observer.get(), (std::vector<milliseconds>{milliseconds(1200)}));  // 800 + 0.5*800
  transport->pushStream(FakeStream{});
  clock.advance(milliseconds(1100));
  // Still backing off: the only waiter's deadline is ahead of the clock.
  EXPECT_EQ(clock.waiterCount(), 1u);
  EXPECT_EQ(clock.dueWaiters(), 0u);
  EXPECT_EQ(transport->streamRequests().size(), 1u);
  clock.advance(milliseconds(100));
  ASSERT_TRUE(waitFor([&] { return observer.get().size() == 2; }));
  EXPECT_EQ(observer.get()[1], milliseconds(2400));
  EXPECT_EQ(transport->streamRequests().size(), 2u);
  EXPECT_EQ(informer->reflector().restartCounts()["short_watch"], 2);
  // It re-watches from the same RV without relisting.
  EXPECT_EQ(transport->requests().size(), 1u);
}

TEST_F(ReflectorTest, TransientWatchErrorsRewatchAndHonourRetryAfter) {
  transport->pushResponse(fakeResponse(200, listBody("10", {obj("a", "u1", "1")})));
  FakeStream busy;
  busy.status = 429;
  busy.headers.set("Retry-After", "7");
  busy.body = R"({"kind":"Status","code":429,"reason":"TooManyRequests","message":"slow down"})";
  transport->pushStream(busy);
  informer->start();
  ASSERT_TRUE(waitForClockWaiter());
  EXPECT_EQ(observer.get(), (std::vector<milliseconds>{milliseconds(7000)}));
  FakeStream down;
  down.error = Error(ErrorCode::kTransient, "connection refused");
  transport->pushStream(down);
  clock.advance(milliseconds(7000));
  ASSERT_TRUE(waitFor([&] { return observer.get().size() == 2; }));
  clock.advance(std::chrono::seconds(30));
  ASSERT_TRUE(waitForWatch(3));
  EXPECT_EQ(informer->reflector().restartCounts()["watch_error"], 2);
  EXPECT_EQ(transport->requests().size(), 1u);  // no relist for transient errors
  EXPECT_NE(streamUrl(2).find("resourceVersion=10&"), std::string::npos);
}

TEST_F(ReflectorTest, ListFailureBacksOffAndRetries) {
  transport->pushResponse(fakeResponse(503, R"({"kind":"Status","code":503,"message":"etcd"})"));
  informer->start();
  ASSERT_TRUE(waitForClockWaiter());
  EXPECT_FALSE(informer->hasSynced());
  transport->pushResponse(fakeResponse(200, listBody("5", {obj("a", "u1", "1")})));
  clock.advance(std::chrono::seconds(30));
  ASSERT_TRUE(waitForWatch(1));
  EXPECT_TRUE(informer->hasSynced());
  EXPECT_EQ(informer->reflector().restartCounts()["list_error"], 1);
}

TEST_F(ReflectorTest, IdleTimeoutRewatchesAndNon410ErrorEventBacksOff) {
  transport->pushResponse(fakeResponse(200, listBody("10", {obj("a", "u1", "1")})));
  FakeStream idle;
  idle.lines = {bookmark("11")};
  idle.end = StreamEnd::kIdleTimeout;
  transport->pushStream(idle);
  FakeStream err;
  err.lines = {
      event("ERROR", R"({"kind":"Status","code":500,"reason":"InternalError","message":"boom"})")};
  transport->pushStream(err);
  informer->start();
  ASSERT_TRUE(waitForClockWaiter());  // after the ERROR event: backing off
  EXPECT_EQ(informer->reflector().restartCounts()["idle_timeout"], 1);
  EXPECT_EQ(informer->reflector().restartCounts()["error_event"], 1);
  EXPECT_NE(streamUrl(1).find("resourceVersion=11&"), std::string::npos);  // no relist needed
  clock.advance(std::chrono::seconds(30));
  ASSERT_TRUE(waitForWatch(3));
  EXPECT_EQ(transport->requests().size(), 1u);  // a 5xx ERROR event re-watches, no relist
  EXPECT_NE(streamUrl(2).find("resourceVersion=11&"), std::string::npos);
}

// Activity (reflector.h): lists, events (bookmarks too) and normal closes. A
// watch the server never closes is stalled, and health() says so once the
// silence outlasts the longest healthy quiet watch (max timeout + margin).
TEST_F(ReflectorTest, BookmarksAndNormalClosesAreActivityASilentWatchIsStalled) {
  transport->pushResponse(fakeResponse(200, listBody("10", {})));
  FakeStream quiet;  // a quiet cluster: one bookmark, then the server's timeout
  quiet.lines = {bookmark("11")};
  transport->pushStream(quiet);
  FakeStream errorEvent;
  errorEvent.lines = {event("ERROR", status410())};
  transport->pushStream(errorEvent);
  informer->start();
  ASSERT_TRUE(waitForClockWaiter());  // backing off before the relist
  EXPECT_EQ(observer.watchLog(),
            (std::vector<std::string>{"BOOKMARK", "closed-normally", "restart:closed", "ERROR",
                                      "restart:gone_event"}));
  EXPECT_TRUE(informer->reflector().health().ok());

  transport->pushResponse(fakeResponse(200, listBody("20", {})));
  clock.advance(std::chrono::seconds(30));  // the backoff: relist (activity), then watch
  ASSERT_TRUE(waitForWatch(3));
  // The server accepted the watch and said nothing for 600 s, until our idle
  // timer ended it: not activity.
  clock.advance(std::chrono::seconds(600));
  FakeStream silent;
  silent.end = StreamEnd::kIdleTimeout;
  transport->pushStream(silent);
  ASSERT_TRUE(waitForWatch(4));
  auto log = observer.watchLog();
  ASSERT_EQ(log.size(), 6u);
  EXPECT_EQ(log.back(), "restart:idle_timeout");
  // Silent since the relist: healthy up to maxWatchTimeout + margin (660 s).
  clock.advance(std::chrono::seconds(60));
  EXPECT_TRUE(informer->reflector().health().ok());
  clock.advance(milliseconds(1));
  Status h = informer->reflector().health();
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.error().message.find("workflows watch"), std::string::npos) << h.error().message;
  EXPECT_NE(h.error().message.find("stalled"), std::string::npos) << h.error().message;
}

TEST_F(ReflectorTest, StopCancelsAnOpenWatch) {
  transport->pushResponse(fakeResponse(200, listBody("5", {})));
  FakeStream open;
  open.lines = {bookmark("6")};
  open.holdOpen = true;
  transport->pushStream(open);
  informer->start();
  ASSERT_TRUE(waitFor([&] { return informer->reflector().lastSyncResourceVersion() == "6"; }));
  // Returns only if the open watch was cancelled (held open, it would block
  // until ctest's timeout).
  informer->stop();
  EXPECT_EQ(informer->reflector().restartCounts().count("closed"), 0u);
}

}  // namespace
}  // namespace exitrec
