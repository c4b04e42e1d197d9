// BeastTransport (k8sclient/beast_transport.h) against a raw loopback HTTP
// server whose every byte and connection the test controls (keep-alive,
// stale connections, chunked bodies, size cap, timeout), and against the
// Kubernetes simulator's TLS (verification with the right and a wrong CA).

#include "k8sclient/beast_transport.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sim/kube_api_simulator.h"

namespace exitrec {
namespace {

using std::chrono::milliseconds;

// What the raw server does with one request.
struct Reply {
  std::string bytes;        // written as is
  bool closeAfter = false;  // close the connection after writing (no header says so)
  bool hang = false;        // write nothing; wait for the client to give up
};

// A blocking loopback server: a thread per connection, each request's head
// passed to `respond`. Counts accepted and closed connections.
class RawServer {
 public:
  using Respond = std::function<Reply(const std::string& head)>;
  explicit RawServer(Respond respond) : respond_(std::move(respond)) {
    listen_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listen_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listen_, 16), 0);
    socklen_t len = sizeof addr;
    ::getsockname(listen_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { acceptLoop(); });
  }
  ~RawServer() {
    stopping_ = true;
    ::shutdown(listen_, SHUT_RDWR);
    ::close(listen_);
    acceptor_.join();
    {
      std::lock_guard<std::mutex> g(mu_);
      for (int fd : open_)
        ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : workers_)
      t.join();
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int accepted() const { return accepted_.load(); }
  // Waits until the server has closed `n` connections itself.
  void waitClosed(int n) {
    std::unique_lock<std::mutex> g(mu_);
    cv_.wait(g, [&] { return closed_ >= n; });
  }

 private:
  void acceptLoop() {
    while (!stopping_) {
      int fd = ::accept(listen_, nullptr, nullptr);
      if (fd < 0)
        return;
      ++accepted_;
      std::lock_guard<std::mutex> g(mu_);
      open_.push_back(fd);
      workers_.emplace_back([this, fd] { serve(fd); });
    }
  }
  void serve(int fd) {
    std::string in;
    char buf[4096];
    while (true) {
      auto end = in.find("\r\n\r\n");
      if (end == std::string::npos) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
          return;
        in.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      std::string head = in.substr(0, end + 4);
      in.erase(0, end + 4);
      Reply r = respond_(head);
      if (r.hang) {
        while (::recv(fd, buf, sizeof buf, 0) > 0) {
        }
        return;
      }
      std::size_t off = 0;
      while (off < r.bytes.size()) {
        ssize_t n = ::send(fd, r.bytes.data() + off, r.bytes.size() - off, MSG_NOSIGNAL);
        if (n <= 0)
          return;
        off += static_cast<std::size_t>(n);
      }
      if (r.closeAfter) {
        ::shutdown(fd, SHUT_RDWR);
        std::lock_guard<std::mutex> g(mu_);
        ++closed_;
        cv_.notify_all();
        return;
      }
    }
  }

  Respond respond_;
  int listen_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::condition_variable cv_;
  int closed_ = 0;
  std::vector<int> open_;
  std::vector<std::thread> workers_;
};

std::string okResponse(const std::string& body) {
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string chunked(const std::vector<std::string>& pieces) {
  std::string out = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  char size[32];
  for (const auto& p : pieces) {
    std::snprintf(size, sizeof size, "%zx\r\n", p.size());
    out += size + p + "\r\n";
  }
  return out + "0\r\n\r\n";
}

std::unique_ptr<HttpTransport> makeTransport(BeastTransportOptions o = {}) {
  auto t = makeBeastTransport(TlsOptions{}, o);
  EXPECT_TRUE(t.ok()) << t.error().describe();
  return std::move(t).value();
}

HttpRequest get(const std::string& url) {
  HttpRequest r;
  r.url = url;
  r.headers.set("Authorization", "Bearer secret-token-123");
  return r;
}

TEST(BeastTransportTest, KeepAliveReusesOneConnection) {
  RawServer server([](const std::string& head) {
    return Reply{okResponse("{\"path\":\"" + head.substr(4, head.find(' ', 4) - 4) + "\"}")};
  });
  auto t = makeTransport();
  for (int i = 0; i < 5; ++i) {
    auto r = t->send(get(server.url("/r/" + std::to_string(i))));
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "{\"path\":\"/r/" + std::to_string(i) + "\"}");
    ASSERT_NE(r->headers.find("content-type"), nullptr);
  }
  EXPECT_EQ(server.accepted(), 1);
}

TEST(BeastTransportTest, ChunkedBodyIsReassembledAndTheConnectionKept) {
  RawServer server([](const std::string&) { return Reply{chunked({"{\"a\":", "[1,2,", "3]}"})}; });
  auto t = makeTransport();
  auto r = t->send(get(server.url("/c")));
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->body, "{\"a\":[1,2,3]}");
  std::string pieces;
  auto c = t->sendChunked(get(server.url("/c")), [&](std::string_view p) {
    pieces.append(p);
    return true;
  });
  ASSERT_TRUE(c.ok()) << c.error().describe();
  EXPECT_TRUE(c->body.empty());
  EXPECT_EQ(pieces, "{\"a\":[1,2,3]}");
  EXPECT_EQ(server.accepted(), 1);
}

TEST(BeastTransportTest, NonSuccessBodyIsInTheResponse) {
  RawServer server([](const std::string&) {
    return Reply{"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found"};
  });
  auto t = makeTransport();
  bool called = false;
  auto r = t->sendChunked(get(server.url("/x")), [&](std::string_view) {
    called = true;
    return true;
  });
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->body, "not found");
  EXPECT_FALSE(called);
}

TEST(BeastTransportTest, StaleKeepAliveConnectionIsRetriedOnceForGet) {
  // Every response leaves the connection looking alive, then the server
  // closes it: the next request on it finds a closed socket.
  RawServer server([](const std::string&) { return Reply{okResponse("{}"), true}; });
  auto t = makeTransport();
  ASSERT_TRUE(t->send(get(server.url("/1"))).ok());
  server.waitClosed(1);
  auto r = t->send(get(server.url("/2")));
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->body, "{}");
  EXPECT_EQ(server.accepted(), 2);

  // A POST is not repeated: it might have been applied.
  server.waitClosed(2);
  HttpRequest post = get(server.url("/3"));
  post.method = "POST";
  post.body = "{}";
  auto p = t->send(post);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, ErrorCode::kTransient);
  EXPECT_NE(p.error().message.find("POST " + server.url("/3")), std::string::npos)
      << p.error().message;
  EXPECT_EQ(p.error().message.find("secret-token"), std::string::npos);
  EXPECT_EQ(server.accepted(), 2);
}

TEST(BeastTransportTest, TheRetryTakesANewConnectionNotAnotherStaleOne) {
  // Two requests in flight at once leave two pooled connections, both of
  // which the server then closes.
  std::mutex mu;
  std::condition_variable cv;
  int arrived = 0;
  RawServer server([&](const std::string&) {
    std::unique_lock<std::mutex> g(mu);
    ++arrived;
    cv.notify_all();
    cv.wait(g, [&] { return arrived >= 2; });
    return Reply{okResponse("{}"), true};
  });
  auto t = makeTransport();
  std::thread other([&] { EXPECT_TRUE(t->send(get(server.url("/a"))).ok()); });
  EXPECT_TRUE(t->send(get(server.url("/b"))).ok());
  other.join();
  server.waitClosed(2);
  auto r = t->send(get(server.url("/c")));
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(server.accepted(), 3);
}

TEST(BeastTransportTest, ResponseLargerThanTheCapFailsClearly) {
  const std::string big(5000, 'x');
  RawServer server([&](const std::string& head) {
    return Reply{head.starts_with("GET /chunked") ? chunked({big.substr(0, 600), big.substr(600)})
                                                  : okResponse(big)};
  });
  BeastTransportOptions o;
  o.maxResponseBytes = 1000;
  auto t = makeTransport(o);
  for (const char* path : {"/length?q=1", "/chunked"}) {
    auto r = t->send(get(server.url(path)));
    ASSERT_FALSE(r.ok()) << path;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidInput) << path;
    EXPECT_NE(r.error().message.find("exceeds the limit of 1000 bytes"), std::string::npos)
        << r.error().message;
    EXPECT_EQ(r.error().message.find("q=1"), std::string::npos) << r.error().message;
  }
  // Exactly the cap is fine.
  o.maxResponseBytes = 5000;
  auto exact = makeTransport(o)->send(get(server.url("/length")));
  ASSERT_TRUE(exact.ok()) << exact.error().describe();
  EXPECT_EQ(exact->body.size(), 5000u);
}

TEST(BeastTransportTest, UnansweredRequestTimesOut) {
  RawServer server([](const std::string&) { return Reply{"", false, true}; });
  auto t = makeTransport();
  HttpRequest r = get(server.url("/slow"));
  r.timeout = milliseconds(200);
  auto resp = t->send(r);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.error().code, ErrorCode::kTransient);
  EXPECT_NE(resp.error().message.find("within 200 ms"), std::string::npos) << resp.error().message;
  // The timed-out connection is not reused: the next request connects anew.
  EXPECT_FALSE(t->send(r).ok());
  EXPECT_EQ(server.accepted(), 2);
}

TEST(BeastTransportTest, ConnectionRefusedIsTransientAndNamesTheUrl) {
  int port;
  {
    RawServer gone([](const std::string&) { return Reply{}; });
    port = std::stoi(gone.url("").substr(17));
  }
  auto r = makeTransport()->send(get("http://127.0.0.1:" + std::to_string(port) + "/p?x=1"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kTransient);
  EXPECT_NE(r.error().message.find("GET http://127.0.0.1:" + std::to_string(port) + "/p failed"),
            std::string::npos)
      << r.error().message;
}

TEST(BeastTransportTest, StreamDeliversLinesAcrossChunks) {
  RawServer server([](const std::string&) {
    return Reply{chunked({"{\"a\":1}\n{\"b\"", ":2}\r\n", "{\"c\":3}"}), true};
  });
  auto t = makeTransport();
  CancelSource cancel;
  std::vector<std::string> lines;
  auto r = t->stream(
      get(server.url("/watch")),
      [&](std::string_view l) {
        lines.emplace_back(l);
        return true;
      },
      cancel);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->end, StreamEnd::kEof);
  EXPECT_EQ(lines, (std::vector<std::string>{"{\"a\":1}", "{\"b\":2}", "{\"c\":3}"}));
}

TEST(BeastTransportTest, StreamIdleTimeoutAndCancel) {
  RawServer server([](const std::string&) {
    // The head and one line, then silence.
    return Reply{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabc\n\r\n"};
  });
  auto t = makeTransport();
  CancelSource none;
  HttpRequest r = get(server.url("/watch"));
  r.timeout = milliseconds(200);
  std::vector<std::string> lines;
  auto idle = t->stream(
      r,
      [&](std::string_view l) {
        lines.emplace_back(l);
        return true;
      },
      none);
  ASSERT_TRUE(idle.ok()) << idle.error().describe();
  EXPECT_EQ(idle->end, StreamEnd::kIdleTimeout);
  EXPECT_EQ(lines, std::vector<std::string>{"abc"});

  // Cancelled from the line callback's side: the blocked read ends.
  CancelSource cancel;
  r.timeout = std::chrono::hours(1);
  std::thread canceller;
  auto c = t->stream(
      r,
      [&](std::string_view) {
        if (!canceller.joinable())
          canceller = std::thread([&] { cancel.cancel(); });
        return true;
      },
      cancel);
  canceller.join();
  ASSERT_TRUE(c.ok()) << c.error().describe();
  EXPECT_EQ(c->end, StreamEnd::kCancelled);
}

TEST(BeastTransportTest, TlsVerifiesTheServerAndRefusesAWrongCaClearly) {
  KubeApiSimulator::Options o;
  o.tls = true;
  o.addr = "0.0.0.0";  // also reachable as 127.0.0.2, a name its certificate lacks
  KubeApiSimulator sim(o);
  ASSERT_TRUE(sim.start().ok());
  KubeApiSimulator::Options otherOpts;
  otherOpts.tls = true;
  KubeApiSimulator other(otherOpts);
  ASSERT_TRUE(other.start().ok());
  ASSERT_EQ(sim.baseUrl().rfind("https://", 0), 0u) << sim.baseUrl();
  const std::string port = sim.baseUrl().substr(sim.baseUrl().rfind(':') + 1);
  const std::string origin = "https://127.0.0.1:" + port;
  const std::string url = origin + "/version";

  TlsOptions right;
  right.caFile = sim.caCertPath();
  auto good = makeBeastTransport(right);
  ASSERT_TRUE(good.ok());
  auto ok = (*good)->send(get(url));
  ASSERT_TRUE(ok.ok()) << ok.error().describe();
  EXPECT_NE(ok->status, 0);

  // By DNS name (SNI, the certificate's DNS SAN) too.
  auto byName = (*good)->send(get("https://localhost:" + port + "/version"));
  ASSERT_TRUE(byName.ok()) << byName.error().describe();

  // The right CA, the wrong host: the certificate does not name 127.0.0.2.
  auto otherHost = (*good)->send(get("https://127.0.0.2:" + port + "/version"));
  ASSERT_FALSE(otherHost.ok());
  EXPECT_EQ(otherHost.error().code, ErrorCode::kTransient);
  EXPECT_NE(otherHost.error().message.find("TLS handshake with https://127.0.0.2:" + port),
            std::string::npos)
      << otherHost.error().message;

  TlsOptions wrong;
  wrong.caFile = other.caCertPath();
  auto bad = makeBeastTransport(wrong);
  ASSERT_TRUE(bad.ok());
  auto r = (*bad)->send(get(url));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kTransient);
  EXPECT_NE(r.error().message.find("TLS handshake with " + origin), std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find(other.caCertPath()), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("certificate verification: "), std::string::npos)
      << r.error().message;

  // The system store does not know the simulator's CA either.
  auto system = makeBeastTransport(TlsOptions{});
  ASSERT_TRUE(system.ok());
  EXPECT_FALSE((*system)->send(get(url)).ok());

  // insecureSkipVerify is honoured.
  TlsOptions insecure;
  insecure.insecureSkipVerify = true;
  auto skip = makeBeastTransport(insecure);
  ASSERT_TRUE(skip.ok());
  EXPECT_TRUE((*skip)->send(get(url)).ok());

  // An unreadable CA file is reported up front, naming the path.
  TlsOptions missing;
  missing.caFile = "/nonexistent/ca.crt";
  auto m = makeBeastTransport(missing);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("/nonexistent/ca.crt"), std::string::npos);
  other.stop();
  sim.stop();
}

}  // namespace
}  // namespace exitrec
