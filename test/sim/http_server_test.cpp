#include "common/http_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "sim/sim_tls.h"
#include "test/sim/raw_socket.h"
#include "test/sim/test_http_client.h"

namespace exitrec {
namespace {

using testing::httpRequest;
using testing::TestHttpConnection;

TEST(UrlCodingTest, DecodesQueryPairs) {
  auto q = parseQueryString("labelSelector=a%3Db%2Cc+in+(x)&watch=True&flag&x=%zz");
  ASSERT_EQ(q.size(), 4u);
  EXPECT_EQ(q[0].first, "labelSelector");
  EXPECT_EQ(q[0].second, "a=b,c in (x)");
  EXPECT_EQ(q[1].second, "True");
  EXPECT_EQ(q[2].first, "flag");
  EXPECT_EQ(q[2].second, "");
  EXPECT_EQ(q[3].second, "%zz");  // malformed escapes pass through
  EXPECT_EQ(urlEncode("a=b c/d"), "a%3Db%20c%2Fd");
  EXPECT_EQ(urlDecode(urlEncode("k in (x,y)"), false), "k in (x,y)");
}

TEST(HttpServerTest, ServesRequestOnPortZeroWithDecodedParts) {
  HttpServer server({});
  server.handle("/echo", [](const HttpRequest& req, HttpResponseWriter& w) {
    std::string out = req.method + "|" + req.path + "|" + req.queryParam("q").value_or("-") + "|" +
                      req.header("x-CUSTOM").value_or("-") + "|" + req.body;
    w.send(201, {{"Content-Type", "text/plain"}, {"X-Reply", "yes"}}, out);
  });
  server.handle("/echo/deeper",
                [](const HttpRequest&, HttpResponseWriter& w) { w.send(200, {}, "deeper"); });
  ASSERT_TRUE(server.start().ok());
  ASSERT_GT(server.port(), 0);
  EXPECT_EQ(server.baseUrl(), "http://127.0.0.1:" + std::to_string(server.port()));

  auto r = httpRequest(server.port(), "POST", "/echo/x?q=a%20b", {{"X-Custom", "v1"}}, "payload");
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.headers["x-reply"], "yes");
  EXPECT_EQ(r.body, "POST|/echo/x|a b|v1|payload");

  EXPECT_EQ(httpRequest(server.port(), "GET", "/echo/deeper/1").body, "deeper");
  EXPECT_EQ(httpRequest(server.port(), "GET", "/nothing").status, 404);
  server.stop();
  EXPECT_FALSE(server.running());
}

TEST(HttpServerTest, HandlerThatDoesNotRespondGets500AndExceptionsAre500) {
  HttpServer server({});
  server.handle("/silent", [](const HttpRequest&, HttpResponseWriter&) {});
  server.handle("/throw",
                [](const HttpRequest&, HttpResponseWriter&) { throw std::runtime_error("boom"); });
  ASSERT_TRUE(server.start().ok());
  EXPECT_EQ(httpRequest(server.port(), "GET", "/silent").status, 500);
  auto r = httpRequest(server.port(), "GET", "/throw");
  EXPECT_EQ(r.status, 500);
  EXPECT_NE(r.body.find("boom"), std::string::npos);
}

TEST(HttpServerTest, StreamsChunksAndStopEndsStreamsPromptly) {
  HttpServer server({});
  std::atomic<bool> handlerReturned{false};
  server.handle("/stream", [&](const HttpRequest&, HttpResponseWriter& w) {
    w.beginChunked(200, {{"Content-Type", "application/json"}});
    w.writeChunk("{\"n\":1}\n");
    w.writeChunk(std::string(3 << 20, 'x') + "\n");  // one 3 MiB line
    while (!w.stopRequested() && !w.clientGone()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    handlerReturned = true;
  });
  ASSERT_TRUE(server.start().ok());
  TestHttpConnection c(server.port());
  c.sendRequest("GET", "/stream");
  auto head = c.readHead();
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.headers["transfer-encoding"], "chunked");
  EXPECT_EQ(c.nextBodyLine().value_or(""), "{\"n\":1}");
  EXPECT_EQ(c.nextBodyLine().value_or("").size(), 3u << 20);
  server.stop();  // returns only once the streaming handler has returned
  EXPECT_TRUE(handlerReturned);
  EXPECT_FALSE(c.nextBodyLine().has_value());
}

TEST(HttpServerTest, DetectsClientDisconnectWithoutWriting) {
  HttpServer server({});
  std::atomic<bool> started{false}, sawGone{false};
  server.handle("/idle", [&](const HttpRequest&, HttpResponseWriter& w) {
    w.beginChunked(200, {});
    started = true;
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < end) {
      if (w.clientGone()) {
        sawGone = true;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  ASSERT_TRUE(server.start().ok());
  {
    TestHttpConnection c(server.port());
    c.sendRequest("GET", "/idle");
    c.readHead();
    while (!started)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }  // closes the socket
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!sawGone && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(sawGone);
}

class TlsFiles {
 public:
  TlsFiles() {
    dir_ = std::filesystem::temp_directory_path() /
           ("http-server-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::create_directories(dir_);
  }
  ~TlsFiles() { std::filesystem::remove_all(dir_); }
  // Writes a fresh CA + serving pair; returns the CA path for this generation.
  std::string rotate(int generation) {
    auto pki = generateSimPki({"127.0.0.1"}, {"localhost"});
    EXPECT_TRUE(pki.ok());
    std::string ca = (dir_ / ("ca" + std::to_string(generation) + ".crt")).string();
    std::ofstream(ca) << pki->caCertPem;
    // Write to temp names and rename, like a secret volume update.
    std::ofstream(cert() + ".new") << pki->serverCertPem;
    std::ofstream(key() + ".new") << pki->serverKeyPem;
    std::filesystem::rename(cert() + ".new", cert());
    std::filesystem::rename(key() + ".new", key());
    return ca;
  }
  std::string cert() const { return (dir_ / "tls.crt").string(); }
  std::string key() const { return (dir_ / "tls.key").string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path dir_;
};

TEST(HttpServerTlsTest, ServesHttpsAndPicksUpRotatedCertificate) {
  TlsFiles files;
  std::string ca1 = files.rotate(1);
  HttpServer::Options o;
  o.certFile = files.cert();
  o.keyFile = files.key();
  HttpServer server(o);
  server.handle("/", [](const HttpRequest& req, HttpResponseWriter& w) {
    w.send(200, {}, req.remoteAddr + (req.tls ? " tls" : " plain"));
  });
  ASSERT_TRUE(server.start().ok());
  EXPECT_EQ(server.baseUrl().rfind("https://127.0.0.1:", 0), 0u);
  // TLS ends in the server itself: the handler sees the real peer.
  EXPECT_EQ(httpRequest(server.port(), "GET", "/", {}, "", ca1).body, "127.0.0.1 tls");

  std::string ca2 = files.rotate(2);
  ASSERT_TRUE(server.reloadCertificates().ok());
  EXPECT_EQ(httpRequest(server.port(), "GET", "/", {}, "", ca2).status, 200);
  EXPECT_THROW(httpRequest(server.port(), "GET", "/", {}, "", ca1), std::runtime_error);
}

TEST(HttpServerTlsTest, RotationOnDiskIsNoticedWithoutExplicitReload) {
  TlsFiles files;
  std::string ca1 = files.rotate(1);
  HttpServer::Options o;
  o.certFile = files.cert();
  o.keyFile = files.key();
  HttpServer server(o);
  server.handle("/", [](const HttpRequest&, HttpResponseWriter& w) { w.send(200, {}, "ok"); });
  ASSERT_TRUE(server.start().ok());
  EXPECT_EQ(httpRequest(server.port(), "GET", "/", {}, "", ca1).status, 200);
  std::string ca2 = files.rotate(2);
  // The files are re-checked at most once a second during handshakes.
  bool switched = false;
  for (int i = 0; i < 40 && !switched; ++i) {
    try {
      switched = httpRequest(server.port(), "GET", "/", {}, "", ca2).status == 200;
    } catch (const std::runtime_error&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  EXPECT_TRUE(switched);
}

TEST(HttpServerTlsTest, BadNewPairKeepsTheOldOne) {
  TlsFiles files;
  std::string ca1 = files.rotate(1);
  HttpServer::Options o;
  o.certFile = files.cert();
  o.keyFile = files.key();
  HttpServer server(o);
  server.handle("/", [](const HttpRequest&, HttpResponseWriter& w) { w.send(200, {}, "ok"); });
  ASSERT_TRUE(server.start().ok());
  files.rotate(2);
  std::ofstream(files.key()) << "not a key";  // a broken rotation
  Status s = server.reloadCertificates();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidInput);
  EXPECT_NE(s.error().message.find(files.key()), std::string::npos) << s.error().message;
  EXPECT_EQ(httpRequest(server.port(), "GET", "/", {}, "", ca1).status, 200);
}

TEST(HttpServerTlsTest, SilentClientIsCutByTheHandshakeTimeout) {
  TlsFiles files;
  files.rotate(1);
  HttpServer::Options o;
  o.certFile = files.cert();
  o.keyFile = files.key();
  o.handshakeTimeoutMs = 200;
  HttpServer server(o);
  server.handle("/", [](const HttpRequest&, HttpResponseWriter& w) { w.send(200, {}, "ok"); });
  ASSERT_TRUE(server.start().ok());
  int fd = testing::connectTo("127.0.0.1", server.port());  // TCP only, never a ClientHello
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(testing::waitClosedByServer(fd));
  ::close(fd);
  // Counted once the server's completion handler ran (after the close).
  EXPECT_TRUE(testing::eventually([&] { return server.stats().handshakeTimeouts == 1; }));
}

TEST(HttpServerTlsTest, BadKeyIsAnInvalidInputError) {
  TlsFiles files;
  files.rotate(1);
  std::ofstream(files.key()) << "not a key";
  HttpServer::Options o;
  o.certFile = files.cert();
  o.keyFile = files.key();
  HttpServer server(o);
  Status s = server.start();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidInput);
}

}  // namespace
}  // namespace exitrec
