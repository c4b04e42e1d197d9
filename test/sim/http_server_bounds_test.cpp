// HttpServer's bounds (common/http_server.h): dual-stack listening, timeouts
// that cut slow or idle clients, the connection limit and the worker-pool
// bound. Every wait is on an observable event (a response, the server
// closing the connection, a counter the server moves), never a sleep.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "common/http_server.h"
#include "test/sim/raw_socket.h"

namespace exitrec {
namespace {

using testing::connectTo;
using testing::eventually;
using testing::readResponse;
using testing::sendAll;
using testing::statusOf;
using testing::waitClosedByServer;

constexpr std::string_view kGet = "GET /who HTTP/1.1\r\nHost: x\r\n\r\n";

void serveWho(HttpServer& s) {
  s.handle("/who", [](const HttpRequest& req, HttpResponseWriter& w) {
    w.send(200, {}, req.remoteAddr + (req.tls ? " tls" : " plain"));
  });
}

std::string bodyOf(const std::string& response) {
  auto p = response.find("\r\n\r\n");
  return p == std::string::npos ? "" : response.substr(p + 4);
}

TEST(HttpServerListenTest, WildcardIsDualStackAndShowsTheRealPeer) {
  if (!testing::hasIpv6Loopback())
    GTEST_SKIP() << "no IPv6 loopback (::1) on this machine";
  HttpServer::Options o;
  o.address = "";  // ":0"
  HttpServer server(o);
  serveWho(server);
  ASSERT_TRUE(server.start().ok());
  EXPECT_EQ(server.baseUrl(), "http://[::1]:" + std::to_string(server.port()));
  for (std::string ip : {"127.0.0.1", "::1"}) {
    int fd = connectTo(ip, server.port());
    ASSERT_GE(fd, 0) << ip << ": " << std::strerror(errno);
    ASSERT_TRUE(sendAll(fd, kGet));
    auto r = readResponse(fd);
    EXPECT_EQ(statusOf(r), 200) << ip;
    // IPv4 peers on the dual-stack socket are shown as IPv4, not ::ffff:.
    EXPECT_EQ(bodyOf(r), ip + " plain");
    ::close(fd);
  }
}

TEST(HttpServerListenTest, Ipv4WildcardRefusesIpv6) {
  if (!testing::hasIpv6Loopback())
    GTEST_SKIP() << "no IPv6 loopback (::1) on this machine";
  HttpServer::Options o;
  o.address = "0.0.0.0";
  HttpServer server(o);
  serveWho(server);
  ASSERT_TRUE(server.start().ok());
  int v4 = connectTo("127.0.0.1", server.port());
  ASSERT_GE(v4, 0);
  ::close(v4);
  int v6 = connectTo("::1", server.port());
  EXPECT_LT(v6, 0);
  EXPECT_EQ(errno, ECONNREFUSED);
  if (v6 >= 0)
    ::close(v6);
}

TEST(HttpServerListenTest, Ipv6LoopbackOnlyRefusesIpv4) {
  if (!testing::hasIpv6Loopback())
    GTEST_SKIP() << "no IPv6 loopback (::1) on this machine";
  HttpServer::Options o;
  o.address = "::1";
  HttpServer server(o);
  serveWho(server);
  ASSERT_TRUE(server.start().ok());
  int fd = connectTo("::1", server.port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(sendAll(fd, kGet));
  EXPECT_EQ(bodyOf(readResponse(fd)), "::1 plain");
  ::close(fd);
  EXPECT_LT(connectTo("127.0.0.1", server.port()), 0);
}

TEST(HttpServerListenTest, PortInUseNamesTheAddress) {
  HttpServer first({});
  ASSERT_TRUE(first.start().ok());
  HttpServer::Options o;
  o.port = first.port();
  HttpServer second(o);
  Status s = second.start();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kTransient);
  EXPECT_NE(s.error().message.find("127.0.0.1:" + std::to_string(first.port())), std::string::npos)
      << s.error().message;
}

TEST(HttpServerBoundsTest, SlowlorisIsCutAfterTheRequestDeadlineInTotal) {
  HttpServer::Options o;
  o.requestTimeoutMs = 300;
  HttpServer server(o);
  serveWho(server);
  ASSERT_TRUE(server.start().ok());
  int fd = connectTo("127.0.0.1", server.port());
  ASSERT_GE(fd, 0);
  // One header byte every 20 ms: far inside any per-byte timeout, and the
  // header never ends. Only a deadline on the whole request cuts it.
  std::atomic<bool> closed{false};
  std::thread dribbler([&] {
    std::string header = "GET /who HTTP/1.1\r\nX-Slow: ";
    for (std::size_t i = 0; !closed; ++i) {
      char c = i < header.size() ? header[i] : 'a';
      if (!sendAll(fd, std::string_view(&c, 1)))
        return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  EXPECT_TRUE(waitClosedByServer(fd));
  closed = true;
  dribbler.join();
  ::close(fd);
  EXPECT_TRUE(eventually([&] { return server.stats().requestTimeouts == 1; }));
}

TEST(HttpServerBoundsTest, SilentConnectionIsCutAfterTheFirstByteTimeout) {
  HttpServer::Options o;
  o.firstByteTimeoutMs = 200;
  HttpServer server(o);
  serveWho(server);
  ASSERT_TRUE(server.start().ok());
  int fd = connectTo("127.0.0.1", server.port());
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(waitClosedByServer(fd));
  ::close(fd);
  EXPECT_TRUE(eventually([&] { return server.stats().firstByteTimeouts == 1; }));
}

TEST(HttpServerBoundsTest, IdleKeepAliveConnectionIsCut) {
  HttpServer::Options o;
  o.idleTimeoutMs = 200;
  HttpServer server(o);
  serveWho(server);
  ASSERT_TRUE(server.start().ok());
  int fd = connectTo("127.0.0.1", server.port());
  ASSERT_GE(fd, 0);
  for (int i = 0; i < 2; ++i) {  // kept alive between requests
    ASSERT_TRUE(sendAll(fd, kGet));
    EXPECT_EQ(statusOf(readResponse(fd)), 200);
  }
  EXPECT_TRUE(waitClosedByServer(fd));
  ::close(fd);
  EXPECT_TRUE(eventually([&] { return server.stats().idleTimeouts == 1; }));
  EXPECT_EQ(server.stats().requestTimeouts, 0u);
}

TEST(HttpServerBoundsTest, ConnectionsBeyondTheLimitAreClosedAtOnce) {
  HttpServer::Options o;
  o.maxConnections = 2;
  HttpServer server(o);
  serveWho(server);
  ASSERT_TRUE(server.start().ok());
  int a = connectTo("127.0.0.1", server.port());
  int b = connectTo("127.0.0.1", server.port());
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  ASSERT_TRUE(eventually([&] { return server.stats().openConnections == 2; }));
  int c = connectTo("127.0.0.1", server.port());
  ASSERT_GE(c, 0);  // the kernel accepts; the server closes it unread
  EXPECT_TRUE(waitClosedByServer(c));
  ::close(c);
  EXPECT_TRUE(eventually([&] { return server.stats().rejectedOverLimit == 1; }));
  // The admitted ones are served; a freed slot admits a new connection.
  ASSERT_TRUE(sendAll(a, kGet));
  EXPECT_EQ(statusOf(readResponse(a)), 200);
  ::close(b);
  ASSERT_TRUE(eventually([&] { return server.stats().openConnections == 1; }));
  int d = connectTo("127.0.0.1", server.port());
  ASSERT_TRUE(sendAll(d, kGet));
  EXPECT_EQ(statusOf(readResponse(d)), 200);
  ::close(a);
  ::close(d);
}

TEST(HttpServerBoundsTest, BusyWorkersAndFullQueueGive503NotAThread) {
  HttpServer::Options o;
  o.threads = 1;
  o.maxQueuedRequests = 1;
  HttpServer server(o);
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int> entered{0};
  server.handle("/block", [&](const HttpRequest&, HttpResponseWriter& w) {
    ++entered;
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return release; });
    w.send(200, {}, "done");
  });
  ASSERT_TRUE(server.start().ok());
  const std::string_view block = "GET /block HTTP/1.1\r\nHost: x\r\n\r\n";
  int running = connectTo("127.0.0.1", server.port());
  ASSERT_TRUE(sendAll(running, block));
  ASSERT_TRUE(eventually([&] { return entered == 1; }));  // the one worker is busy
  int queued = connectTo("127.0.0.1", server.port());
  ASSERT_TRUE(sendAll(queued, block));  // waits in the queue (size 1)
  // Connections are read concurrently: wait until this one is queued.
  ASSERT_TRUE(eventually([&] { return server.stats().queuedRequests == 1; }));
  int rejected = connectTo("127.0.0.1", server.port());
  ASSERT_TRUE(sendAll(rejected, block));
  EXPECT_EQ(statusOf(readResponse(rejected)), 503);
  EXPECT_EQ(server.stats().busyRejections, 1u);
  EXPECT_EQ(entered, 1);
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  EXPECT_EQ(statusOf(readResponse(running)), 200);
  EXPECT_EQ(statusOf(readResponse(queued)), 200);
  for (int fd : {running, queued, rejected})
    ::close(fd);
}

TEST(HttpServerBoundsTest, OversizedBodyGets413) {
  HttpServer::Options o;
  o.maxBodyBytes = 16;
  HttpServer server(o);
  std::atomic<bool> called{false};
  server.handle("/", [&](const HttpRequest&, HttpResponseWriter& w) {
    called = true;
    w.send(200, {}, "");
  });
  ASSERT_TRUE(server.start().ok());
  int fd = connectTo("127.0.0.1", server.port());
  ASSERT_TRUE(sendAll(
      fd, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\n" + std::string(17, 'x')));
  EXPECT_EQ(statusOf(readResponse(fd)), 413);
  ::close(fd);
  EXPECT_FALSE(called);
}

TEST(HttpServerBoundsTest, ClientThatStopsReadingIsCutByTheWriteTimeout) {
  HttpServer::Options o;
  o.socketTimeoutMs = 200;
  HttpServer server(o);
  std::atomic<bool> writeFailed{false};
  server.handle("/flood", [&](const HttpRequest&, HttpResponseWriter& w) {
    w.beginChunked(200, {});
    const std::string chunk(1 << 20, 'x');
    while (w.writeChunk(chunk)) {
    }
    writeFailed = true;
  });
  ASSERT_TRUE(server.start().ok());
  int fd = connectTo("127.0.0.1", server.port());
  int small = 4096;  // a small window fills at once
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  ASSERT_TRUE(sendAll(fd, "GET /flood HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(eventually([&] { return writeFailed.load(); }));  // never reads
  EXPECT_TRUE(eventually([&] { return server.stats().writeTimeouts == 1; }));
  ::close(fd);
}

TEST(HttpServerBoundsTest, StopClosesIdleConnectionsAndIsIdempotent) {
  HttpServer server({});
  serveWho(server);
  ASSERT_TRUE(server.start().ok());
  int fd = connectTo("127.0.0.1", server.port());
  ASSERT_TRUE(sendAll(fd, kGet));
  EXPECT_EQ(statusOf(readResponse(fd)), 200);  // now idle, kept alive
  const int port = server.port();
  server.stop();
  EXPECT_TRUE(waitClosedByServer(fd));
  ::close(fd);
  server.stop();
  EXPECT_LT(connectTo("127.0.0.1", port), 0);  // the port is released
}

}  // namespace
}  // namespace exitrec
