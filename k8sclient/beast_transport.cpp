#include "k8sclient/beast_transport.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <strings.h>
#include <sys/socket.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cerrno>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <vector>

namespace exitrec {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

constexpr std::size_t kReadBlock = std::size_t{256} * 1024;

// The io_context's own executor type, not any_io_executor: the type-erased
// executor's copies were a tenth of the client's CPU (Boost 1.74).
using Executor = asio::io_context::executor_type;
using TcpStream = beast::basic_stream<tcp, Executor, beast::unlimited_rate_policy>;
using Resolver = asio::ip::basic_resolver<tcp, Executor>;

struct Target {
  bool tls = false;
  std::string host;  // without brackets
  std::string port;
  std::string origin;  // scheme://host:port as given, for messages and the pool key
  std::string path;    // path?query
  std::string hostHeader;
};

std::optional<Target> parseUrl(const std::string& url) {
  Target t;
  std::string_view rest(url);
  if (rest.starts_with("https://")) {
    t.tls = true;
    rest.remove_prefix(8);
  } else if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else {
    return std::nullopt;
  }
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  t.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (authority.empty() || authority.find('@') != std::string_view::npos)
    return std::nullopt;
  t.hostHeader = std::string(authority);
  std::string_view portText;
  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos)
      return std::nullopt;
    t.host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':')
        return std::nullopt;
      portText = authority.substr(close + 2);
    }
  } else {
    const auto colon = authority.rfind(':');
    t.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos)
      portText = authority.substr(colon + 1);
  }
  if (t.host.empty())
    return std::nullopt;
  t.port = portText.empty() ? (t.tls ? "443" : "80") : std::string(portText);
  t.origin = (t.tls ? "https://" : "http://") + t.hostHeader;
  return t;
}

std::string pathOnly(const std::string& path) {
  return path.substr(0, path.find('?'));
}

bool isIpLiteral(const std::string& host) {
  beast::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// One keep-alive connection with its own io_context, run by whichever thread
// uses the connection (one at a time): no hand-off to another thread.
struct Connection {
  explicit Connection(bool tls, ssl::context& ctx) : ioc(1) {
    if (tls)
      secure.emplace(ioc.get_executor(), ctx);
    else
      plain.emplace(ioc.get_executor());
  }
  TcpStream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }

  // Starts an async operation with `initiate(handler)` and runs this
  // connection's io_context on the calling thread until it completes.
  template <class Initiate>
  beast::error_code run(Initiate&& initiate) {
    beast::error_code result;
    bool done = false;
    initiate([&](beast::error_code ec, auto&&...) {
      result = ec;
      done = true;
    });
    ioc.restart();
    while (!done && ioc.run_one() > 0) {
    }
    return done ? result : beast::error_code(asio::error::operation_aborted);
  }

  // Calls f with the stream the HTTP layer reads and writes.
  template <class F>
  decltype(auto) withStream(F&& f) {
    if (secure)
      return f(*secure);
    return f(*plain);
  }

  asio::io_context ioc;
  std::optional<TcpStream> plain;
  std::optional<beast::ssl_stream<TcpStream>> secure;
  beast::flat_buffer buffer;
  bool reused = false;
};

// How one attempt failed, before classification.
struct Failure {
  enum Stage { kConnect, kTls, kWrite, kHeader, kBody } stage;
  beast::error_code ec;
  long verifyResult = X509_V_OK;  // TLS: the certificate check's result
};

class BeastTransport final : public HttpTransport {
 public:
  BeastTransport(TlsOptions tls, BeastTransportOptions options, std::unique_ptr<ssl::context> ctx)
      : tls_(std::move(tls)), options_(options), ctx_(std::move(ctx)) {}

  Result<HttpResponse> send(const HttpRequest& request) override {
    std::string body;
    auto r = sendChunked(request, [&](std::string_view piece) {
      body.append(piece);
      return true;
    });
    if (r && r->status >= 200 && r->status < 300)
      r->body = std::move(body);
    return r;
  }

  Result<HttpResponse> sendChunked(const HttpRequest& request,
                                   const ChunkCallback& onChunk) override {
    auto target = parseUrl(request.url);
    if (!target)
      return Error(ErrorCode::kInvalidInput, "not an absolute http(s) URL: " + request.url);
    const bool idempotent = request.method == "GET" || request.method == "HEAD";
    for (int attempt = 0;; ++attempt) {
      // The retry takes a new connection: the other idle ones may be as stale.
      auto conn = acquire(*target, attempt > 0);
      if (!conn)
        return conn.error();
      HttpResponse out;
      bool anyByte = false;
      bool reusable = false;
      std::optional<Failure> failure =
          exchange(**conn, *target, request, out, onChunk, nullptr, anyByte, reusable);
      if (!failure) {
        if (reusable)
          release(*target, std::move(*conn));
        return out;
      }
      // A pooled connection the server closed while idle fails on the write
      // or before the status line: retry an idempotent request once, anew.
      if (idempotent && attempt == 0 && (*conn)->reused && !anyByte &&
          (failure->stage == Failure::kWrite || failure->stage == Failure::kHeader) &&
          failure->ec != beast::error::timeout) {
        spdlog::debug(
            "k8sclient: retrying {} {} on a new connection after a stale keep-alive "
            "one ({})",
            request.method, target->origin + pathOnly(target->path), failure->ec.message());
        continue;
      }
      return classify(*failure, request, *target);
    }
  }

  Result<StreamResult> stream(const HttpRequest& request, const LineCallback& onLine,
                              CancelSource& cancel) override {
    auto target = parseUrl(request.url);
    if (!target)
      return Error(ErrorCode::kInvalidInput, "not an absolute http(s) URL: " + request.url);
    // One connection per stream, never pooled.
    auto conn = std::make_shared<Connection>(target->tls, *ctx_);
    // cancel() may call this after removeCallback, even after the stream
    // ended: it must not keep the connection alive (a posted handler holding
    // it would be a cycle) nor touch it once gone.
    const auto cbId = cancel.onCancel([weak = std::weak_ptr<Connection>(conn)] {
      if (auto c = weak.lock())
        asio::post(c->ioc, [raw = c.get()] { raw->lowest().cancel(); });
    });
    struct Unregister {
      CancelSource& c;
      std::uint64_t id;
      ~Unregister() { c.removeCallback(id); }
    } unregister{cancel, cbId};

    StreamResult out;
    std::string pending;  // the start of a line not finished yet
    auto deliver = [&](std::string_view line) {
      if (!line.empty() && line.back() == '\r')
        line.remove_suffix(1);
      return line.empty() || onLine(line);
    };
    bool stopped = false;
    ChunkCallback onData = [&](std::string_view data) {
      for (std::size_t nl = data.find('\n'); nl != std::string_view::npos; nl = data.find('\n')) {
        bool more;
        if (pending.empty()) {
          more = deliver(data.substr(0, nl));
        } else {
          pending.append(data.substr(0, nl));
          more = deliver(pending);
          pending.clear();
        }
        if (!more) {
          stopped = true;
          return false;
        }
        data.remove_prefix(nl + 1);
      }
      pending.append(data);
      return !cancel.cancelled();
    };
    bool anyByte = false;
    bool reusable = false;
    std::optional<Failure> failure =
        exchange(*conn, *target, request, out.response, onData, &cancel, anyByte, reusable);
    if (cancel.cancelled()) {
      if (out.response.status == 0)
        return Error(ErrorCode::kCancelled, "request cancelled");
      out.end = StreamEnd::kCancelled;
      return out;
    }
    if (failure) {
      if (out.response.status != 0 && failure->stage == Failure::kBody &&
          failure->ec == beast::error::timeout) {
        out.end = StreamEnd::kIdleTimeout;  // a normal reconnect, not an error
        return out;
      }
      return classify(*failure, request, *target);
    }
    if (stopped) {
      out.end = StreamEnd::kStopped;
      return out;
    }
    if (out.response.status >= 200 && out.response.status < 300 && !deliver(pending)) {
      out.end = StreamEnd::kStopped;  // a last line without a newline still counts
      return out;
    }
    out.end = StreamEnd::kEof;
    return out;
  }

 private:
  static std::string poolKey(const Target& t) {
    return (t.tls ? "https://" : "http://") + t.host + ":" + t.port;
  }

  Result<std::shared_ptr<Connection>> acquire(const Target& t, bool fresh) {
    if (!fresh) {
      std::lock_guard<std::mutex> g(mu_);
      auto it = idle_.find(poolKey(t));
      if (it != idle_.end() && !it->second.empty()) {
        auto conn = std::move(it->second.back());  // the most recently used
        it->second.pop_back();
        conn->reused = true;
        return conn;
      }
    }
    return std::make_shared<Connection>(t.tls, *ctx_);
  }

  void release(const Target& t, std::shared_ptr<Connection> conn) {
    std::lock_guard<std::mutex> g(mu_);
    auto& idle = idle_[poolKey(t)];
    if (idle.size() < options_.maxIdlePerHost)
      idle.push_back(std::move(conn));
  }

  std::optional<Failure> connect(Connection& c, const Target& t) {
    TcpStream& s = c.lowest();
    s.expires_after(options_.connectTimeout);
    Resolver resolver(c.ioc.get_executor());
    Resolver::results_type endpoints;
    beast::error_code ec = c.run([&](auto handler) {
      resolver.async_resolve(t.host, t.port,
                             [&, handler](beast::error_code e, Resolver::results_type r) {
                               endpoints = std::move(r);
                               handler(e);
                             });
    });
    if (!ec)
      ec = c.run([&](auto handler) { s.async_connect(endpoints, handler); });
    if (ec)
      return Failure{Failure::kConnect, ec};
    s.socket().set_option(tcp::no_delay(true), ec);
    if (!c.secure)
      return std::nullopt;
    auto& stream = *c.secure;
    if (!isIpLiteral(t.host))
      SSL_set_tlsext_host_name(stream.native_handle(), t.host.c_str());  // SNI
    if (!tls_.insecureSkipVerify) {
      stream.set_verify_mode(ssl::verify_peer);
      stream.set_verify_callback(ssl::host_name_verification(t.host));
    } else {
      stream.set_verify_mode(ssl::verify_none);
    }
    ec = c.run([&](auto handler) { stream.async_handshake(ssl::stream_base::client, handler); });
    if (ec)
      return Failure{Failure::kTls, ec, SSL_get_verify_result(stream.native_handle())};
    return std::nullopt;
  }

  // One request/response on `c`. 2xx bodies go to onChunk; others into
  // out.body. With `cancel` (a stream), the request's timeout is the idle
  // timeout of each read; otherwise it bounds the whole exchange.
  std::optional<Failure> exchange(Connection& c, const Target& t, const HttpRequest& request,
                                  HttpResponse& out, const ChunkCallback& onChunk,
                                  CancelSource* cancel, bool& anyByte, bool& reusable) {
    const Failure aborted{Failure::kBody, asio::error::operation_aborted};
    if (!c.reused) {
      if (auto f = connect(c, t))
        return f;
    }
    // A cancel that fired before an operation was pending cancelled nothing.
    if (cancel && cancel->cancelled())
      return aborted;
    http::request<http::string_body> req;
    req.method_string(request.method);
    req.target(t.path);
    req.version(11);
    req.set(http::field::host, t.hostHeader);
    bool haveType = false;
    for (const auto& [name, value] : request.headers.entries) {
      haveType = haveType || strcasecmp(name.c_str(), "Content-Type") == 0;
      req.set(name, value);
    }
    if (!request.body.empty() || request.method == "POST" || request.method == "PUT" ||
        request.method == "PATCH") {
      if (!haveType)
        req.set(http::field::content_type, "application/json");
      req.body() = request.body;
      req.prepare_payload();
    }
    c.lowest().expires_after(request.timeout);
    const auto deadline = std::chrono::steady_clock::now() + request.timeout;
    beast::error_code ec =
        c.withStream([&](auto& s) { return c.run([&](auto h) { http::async_write(s, req, h); }); });
    if (ec)
      return Failure{Failure::kWrite, ec};

    http::response_parser<http::buffer_body> parser;
    parser.header_limit(64 * 1024);
    // Streams are unbounded (their lines are bounded by the reader).
    parser.body_limit(cancel ? std::numeric_limits<std::uint64_t>::max()
                             : options_.maxResponseBytes);
    if (request.method == "HEAD")
      parser.skip(true);
    const std::size_t before = c.buffer.size();
    ec = c.withStream([&](auto& s) {
      return c.run([&](auto h) { http::async_read_header(s, c.buffer, parser, h); });
    });
    if (ec) {
      anyByte = c.buffer.size() > before;
      return Failure{Failure::kHeader, ec};
    }
    anyByte = true;
    const auto& head = parser.get();
    out.status = static_cast<int>(head.result_int());
    for (const auto& field : head)
      out.headers.set(std::string(field.name_string()), std::string(field.value()));
    const bool ok = out.status >= 200 && out.status < 300;
    thread_local std::vector<char> block(kReadBlock);
    bool stopped = false;
    // A plain Content-Length body of a short request is read with recv()
    // straight into the block: Beast's per-read operation (executor, timer,
    // parser) cost more than the bytes for 300 KB bodies.
    bool bodyRead = parser.is_done();
    if (c.plain && !cancel && !bodyRead && !parser.chunked() && parser.content_length()) {
      bodyRead = true;
      auto f =
          readPlainBody(c, *parser.content_length(), deadline, block, [&](std::string_view piece) {
            if (!ok) {
              out.body.append(piece);
              return true;
            }
            stopped = !onChunk(piece);
            return !stopped;
          });
      if (f)
        return f;
    }
    while (!stopped && !bodyRead && !parser.is_done()) {
      auto& body = parser.get().body();
      body.data = block.data();
      body.size = block.size();
      if (cancel)
        c.lowest().expires_after(request.timeout);
      // A stream's lines go out as they arrive; a short body fills the block.
      ec = c.withStream([&](auto& s) {
        return c.run([&](auto h) {
          if (cancel)
            http::async_read_some(s, c.buffer, parser, h);
          else
            http::async_read(s, c.buffer, parser, h);
        });
      });
      if (ec == http::error::need_buffer)
        ec = {};
      if (cancel && cancel->cancelled())
        return aborted;
      if (ec)
        return Failure{Failure::kBody, ec};
      const std::size_t n = block.size() - parser.get().body().size;
      if (n == 0)
        continue;
      const std::string_view piece(block.data(), n);
      if (!ok) {
        out.body.append(piece);
      } else if (!onChunk(piece)) {
        stopped = true;  // the rest is not read: the connection cannot be reused
        break;
      }
    }
    if (!stopped && !cancel && parser.keep_alive()) {
      c.lowest().expires_never();
      reusable = true;
    }
    return std::nullopt;
  }

  // Reads the `length` bytes of a body from a plain connection: first what
  // the head's read already buffered, then recv() until done, polling until
  // `deadline`. onPiece returns false to stop (the rest stays unread).
  static std::optional<Failure> readPlainBody(
      Connection& c, std::uint64_t length, std::chrono::steady_clock::time_point deadline,
      std::vector<char>& block, const std::function<bool(std::string_view)>& onPiece) {
    const std::size_t buffered =
        static_cast<std::size_t>(std::min<std::uint64_t>(c.buffer.size(), length));
    if (buffered > 0) {
      const bool more =
          onPiece(std::string_view(static_cast<const char*>(c.buffer.data().data()), buffered));
      c.buffer.consume(buffered);
      length -= buffered;
      if (!more)
        return std::nullopt;
    }
    const int fd = c.plain->socket().native_handle();
    while (length > 0) {
      const ssize_t n = ::recv(
          fd, block.data(), static_cast<std::size_t>(std::min<std::uint64_t>(block.size(), length)),
          MSG_DONTWAIT);
      if (n > 0) {
        length -= static_cast<std::uint64_t>(n);
        if (!onPiece(std::string_view(block.data(), static_cast<std::size_t>(n))))
          return std::nullopt;
        continue;
      }
      if (n == 0)
        return Failure{Failure::kBody, http::error::partial_message};
      if (errno == EINTR)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        return Failure{Failure::kBody, beast::error_code(errno, beast::system_category())};
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{fd, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count()) + 1) == 0)
        return Failure{Failure::kBody, beast::error::timeout};
    }
    return std::nullopt;
  }

  Error classify(const Failure& f, const HttpRequest& request, const Target& t) const {
    const std::string what = request.method + " " + t.origin + pathOnly(t.path);
    if (f.ec == http::error::body_limit) {
      return Error(ErrorCode::kInvalidInput, what + ": the response body exceeds the limit of " +
                                                 std::to_string(options_.maxResponseBytes) +
                                                 " bytes");
    }
    if (f.ec == beast::error::timeout) {
      const auto ms = f.stage == Failure::kConnect || f.stage == Failure::kTls
                          ? options_.connectTimeout
                          : request.timeout;
      return Error(ErrorCode::kTransient,
                   what + " failed: " +
                       (f.stage == Failure::kConnect ? "connecting"
                        : f.stage == Failure::kTls   ? "the TLS handshake"
                                                     : "no complete response") +
                       " within " + std::to_string(ms.count()) + " ms");
    }
    if (f.stage == Failure::kTls) {
      std::string msg = "TLS handshake with " + t.origin + " failed (" + tls_.describeCa() +
                        "): " + f.ec.message();
      if (f.verifyResult != X509_V_OK)
        msg += std::string(": certificate verification: ") +
               X509_verify_cert_error_string(f.verifyResult);
      return Error(ErrorCode::kTransient, std::move(msg));
    }
    const char* stage = f.stage == Failure::kConnect  ? "connect"
                        : f.stage == Failure::kWrite  ? "sending the request"
                        : f.stage == Failure::kHeader ? "reading the response head"
                                                      : "reading the response body";
    return Error(ErrorCode::kTransient, what + " failed: " + stage + ": " + f.ec.message());
  }

  TlsOptions tls_;
  BeastTransportOptions options_;
  std::unique_ptr<ssl::context> ctx_;
  std::mutex mu_;
  std::map<std::string, std::vector<std::shared_ptr<Connection>>> idle_;
};

Result<std::string> readFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Error(ErrorCode::kInvalidInput, std::string("cannot read ") + what + " " + path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Builds the TLS context once: verification settings, trust anchors, client
// certificate. A bad PEM is reported here, naming what it was.
Result<std::unique_ptr<ssl::context>> makeContext(const TlsOptions& tls) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  beast::error_code ec;
  auto load = [&](const std::string& pem, const char* what, auto&& apply) -> Status {
    if (pem.empty())
      return Status();
    apply(asio::buffer(pem), ec);
    if (ec)
      return Error(ErrorCode::kInvalidInput, std::string("invalid ") + what + ": " + ec.message());
    return Status();
  };
  auto pemOf = [](const std::string& file, const std::string& inMemory,
                  const char* what) -> Result<std::string> {
    if (!file.empty())
      return readFile(file, what);
    return inMemory;
  };
  auto ca = pemOf(tls.caFile, tls.caPem, "CA file");
  auto cert = pemOf(tls.clientCertFile, tls.clientCertPem, "client certificate");
  auto key = pemOf(tls.clientKeyFile, tls.clientKeyPem, "client key");
  for (auto* r : {&ca, &cert, &key}) {
    if (!*r)
      return r->error();
  }
  if (!tls.insecureSkipVerify) {
    ctx->set_verify_mode(ssl::verify_peer);
    if (ca->empty()) {
      ctx->set_default_verify_paths(ec);
      if (ec)
        return Error(ErrorCode::kInvalidInput,
                     "cannot load the system trust store: " + ec.message());
    } else if (Status s = load(*ca, tls.describeCa().c_str(),
                               [&](auto b, auto& e) { ctx->add_certificate_authority(b, e); });
               !s) {
      return s.error();
    }
  }
  if (Status s = load(*cert, "client certificate",
                      [&](auto b, auto& e) { ctx->use_certificate_chain(b, e); });
      !s)
    return s.error();
  if (Status s = load(*key, "client key",
                      [&](auto b, auto& e) { ctx->use_private_key(b, ssl::context::pem, e); });
      !s)
    return s.error();
  return ctx;
}

}  // namespace

Result<std::unique_ptr<HttpTransport>> makeBeastTransport(const TlsOptions& tls,
                                                          BeastTransportOptions options) {
  auto ctx = makeContext(tls);
  if (!ctx)
    return ctx.error();
  if (tls.insecureSkipVerify) {
    spdlog::warn(
        "k8sclient: insecure-skip-tls-verify is set: the server's certificate is NOT verified");
  }
  if (options.maxIdlePerHost == 0)
    options.maxIdlePerHost = 1;
  return std::unique_ptr<HttpTransport>(
      std::make_unique<BeastTransport>(tls, options, std::move(*ctx)));
}

}  // namespace exitrec
