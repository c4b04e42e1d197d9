// One HTTP connection of HttpServer (common/http_server.h): reading on the
// I/O strand, handlers on the worker pool, writes posted back to the strand.
#include <poll.h>
#include <sys/socket.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <future>
#include <type_traits>

#include "common/http_server_impl.h"

namespace exitrec {
inline namespace server {
namespace detail {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using error_code = boost::system::error_code;
using ms = std::chrono::milliseconds;

// Header values come from our handlers, but a CR or LF would split the
// response; they become spaces.
std::string headerSafe(std::string_view v) {
  std::string out(v);
  for (char& c : out) {
    if (c == '\r' || c == '\n')
      c = ' ';
  }
  return out;
}

bool ieq(std::string_view a, std::string_view b) {
  return beast::iequals(beast::string_view(a.data(), a.size()),
                        beast::string_view(b.data(), b.size()));
}

std::string responseHead(int status, const HttpHeaders& headers, bool chunked, std::size_t length,
                         bool close) {
  std::string reason(http::obsolete_reason(http::int_to_status(static_cast<unsigned>(status))));
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\n";
  for (const auto& [k, v] : headers) {
    // The framing headers are ours.
    if (ieq(k, "Content-Length") || ieq(k, "Transfer-Encoding") || ieq(k, "Connection"))
      continue;
    out += headerSafe(k) + ": " + headerSafe(v) + "\r\n";
  }
  if (chunked)
    out += "Transfer-Encoding: chunked\r\n";
  else
    out += "Content-Length: " + std::to_string(length) + "\r\n";
  if (close)
    out += "Connection: close\r\n";
  out += "\r\n";
  return out;
}

std::string peerAddress(const tcp::socket& s) {
  error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (ec)
    return "";
  auto a = ep.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).to_string();
  return a.to_string();
}

template <bool kTls>
class Session;

// The writer a handler gets; every write is posted to the connection's strand
// and waited for (bounded by socketTimeoutMs).
template <bool kTls>
class Writer final : public HttpResponseWriter {
 public:
  Writer(std::shared_ptr<Session<kTls>> s, bool head, bool close)
      : s_(std::move(s)), head_(head), close_(close) {}

  bool send(int status, const HttpHeaders& headers, std::string_view body) override {
    if (state_ != State::kNone)
      return false;
    state_ = State::kDone;
    status_ = status;
    std::string out = responseHead(status, headers, false, body.size(), close_);
    if (!head_)
      out.append(body);
    return write(std::move(out));
  }

  bool beginChunked(int status, const HttpHeaders& headers) override {
    if (state_ != State::kNone)
      return false;
    state_ = State::kChunked;
    status_ = status;
    return write(responseHead(status, headers, true, 0, close_));
  }

  bool writeChunk(std::string_view data) override {
    if (state_ != State::kChunked || failed_)
      return false;
    if (data.empty())
      return true;
    char size[32];
    int n = std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
    std::string out;
    out.reserve(data.size() + static_cast<std::size_t>(n) + 2);
    out.append(size, static_cast<std::size_t>(n)).append(data).append("\r\n");
    return write(std::move(out));
  }

  bool endChunked() override {
    if (state_ != State::kChunked)
      return false;
    state_ = State::kDone;
    if (failed_)
      return false;
    return write("0\r\n\r\n");
  }

  bool clientGone() override;
  bool stopRequested() const override;
  void abortConnection() override;

  bool responded() const { return state_ != State::kNone; }
  bool chunkedOpen() const { return state_ == State::kChunked; }
  bool reusable() const { return !failed_ && !aborted_ && !close_; }

 private:
  bool write(std::string data);

  enum class State { kNone, kChunked, kDone };
  std::shared_ptr<Session<kTls>> s_;
  bool head_, close_;
  State state_ = State::kNone;
  bool failed_ = false, aborted_ = false;
  int status_ = 0;
};

template <bool kTls>
class Session final : public Connection, public std::enable_shared_from_this<Session<kTls>> {
 public:
  using Stream = std::conditional_t<kTls, beast::ssl_stream<beast::tcp_stream>, beast::tcp_stream>;

  Session(HttpServer::Impl& server, tcp::socket socket, std::shared_ptr<asio::ssl::context> ctx)
      : server_(server), ctx_(std::move(ctx)), stream_(makeStream(std::move(socket))) {
    ++server_.openConnections;
  }
  ~Session() override {
    --server_.openConnections;
    server_.unregisterConnection(this);
  }

  void run() {
    auto& sock = lowest().socket();
    fd_ = sock.native_handle();
    remoteAddr_ = peerAddress(sock);
    error_code ec;
    // Small replies written in pieces: no Nagle + delayed-ACK stall.
    sock.set_option(tcp::no_delay(true), ec);
    server_.registerConnection(this->shared_from_this());
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->begin(); });
  }

  void close() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] { self->closeNow(); });
  }

 private:
  friend class Writer<kTls>;
  enum class Wait { kFirst, kIdle };

  Stream makeStream(tcp::socket socket) {
    if constexpr (kTls)
      return Stream(std::move(socket), *ctx_);
    else
      return Stream(std::move(socket));
  }
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }
  const HttpServer::Options& opts() const { return server_.options; }

  void begin() {
    if constexpr (kTls) {
      lowest().expires_after(ms(opts().handshakeTimeoutMs));
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](error_code ec) {
                                if (ec) {
                                  ++(ec == beast::error::timeout ? self->server_.handshakeTimeouts
                                                                 : self->server_.handshakeFailures);
                                  return self->closeNow();
                                }
                                self->waitForRequest(Wait::kFirst);
                              });
    } else {
      waitForRequest(Wait::kFirst);
    }
  }

  // Waits for the first byte of the next request (first-byte or idle
  // timeout), then reads header and body under one request deadline.
  void waitForRequest(Wait wait) {
    if (server_.stopping)
      return closeNow();
    parser_.emplace();
    parser_->body_limit(opts().maxBodyBytes);
    parser_->header_limit(static_cast<std::uint32_t>(opts().maxHeaderBytes));
    if (buffer_.size() > 0)
      return readHeader();  // pipelined bytes already here
    lowest().expires_after(
        ms(wait == Wait::kFirst ? opts().firstByteTimeoutMs : opts().idleTimeoutMs));
    stream_.async_read_some(buffer_.prepare(4096), [self = this->shared_from_this(), wait](
                                                       error_code ec, std::size_t n) {
      if (ec) {
        if (ec == beast::error::timeout)
          ++(wait == Wait::kFirst ? self->server_.firstByteTimeouts : self->server_.idleTimeouts);
        return self->closeNow();
      }
      self->buffer_.commit(n);
      self->readHeader();
    });
  }

  void readHeader() {
    lowest().expires_after(ms(opts().requestTimeoutMs));
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = this->shared_from_this()](error_code ec, std::size_t) {
                              if (ec)
                                return self->onReadError(ec);
                              self->onHeader();
                            });
  }

  void onHeader() {
    auto& req = parser_->get();
    auto expect = req[http::field::expect];
    if (!expect.empty() && ieq(std::string_view(expect.data(), expect.size()), "100-continue")) {
      // Same deadline: the body must still arrive within requestTimeoutMs.
      auto cont = std::make_shared<std::string>("HTTP/1.1 100 Continue\r\n\r\n");
      asio::async_write(stream_, asio::buffer(*cont),
                        [self = this->shared_from_this(), cont](error_code ec, std::size_t) {
                          if (ec)
                            return self->closeNow();
                          self->readBody();
                        });
      return;
    }
    readBody();
  }

  void readBody() {
    if (parser_->is_done())
      return onRequest();
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](error_code ec, std::size_t) {
                       if (ec)
                         return self->onReadError(ec);
                       self->onRequest();
                     });
  }

  void onReadError(error_code ec) {
    if (ec == beast::error::timeout) {
      ++server_.requestTimeouts;
      return closeNow();
    }
    if (ec == http::error::body_limit)
      return answerAndClose(413, "request body too large\n");
    if (ec == http::error::header_limit)
      return answerAndClose(431, "request header too large\n");
    if (ec == http::error::end_of_stream || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
        ec.category() == asio::error::get_ssl_category() ||
        ec == asio::ssl::error::stream_truncated)
      return closeNow();
    answerAndClose(400, "bad request: " + ec.message() + "\n");
  }

  // A response written from the strand (no worker involved), then close.
  void answerAndClose(int status, std::string body) {
    auto out = std::make_shared<std::string>(
        responseHead(status, {{"Content-Type", "text/plain"}}, false, body.size(), true) + body);
    lowest().expires_after(ms(opts().socketTimeoutMs));
    asio::async_write(
        stream_, asio::buffer(*out),
        [self = this->shared_from_this(), out](error_code, std::size_t) { self->closeNow(); });
  }

  void onRequest() {
    lowest().expires_never();
    auto& msg = parser_->get();
    auto req = std::make_shared<HttpRequest>();
    req->method = std::string(msg.method_string());
    std::string_view target(msg.target().data(), msg.target().size());
    auto q = target.find('?');
    req->path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) {
      req->rawQuery = std::string(target.substr(q + 1));
      req->query = parseQueryString(req->rawQuery);
    }
    for (const auto& f : msg) {
      req->headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    }
    req->body = std::move(msg.body());
    req->remoteAddr = remoteAddr_;
    req->tls = kTls;
    const bool keepAlive = msg.keep_alive();
    parser_.reset();
    auto self = this->shared_from_this();
    if (!server_.workers.tryPost([self, req, keepAlive] { self->serve(*req, keepAlive); })) {
      ++server_.busyRejections;
      answerAndClose(503, "server busy\n");
    }
  }

  // On a worker: the handler behind the exception barrier, then back to the
  // strand for the next request or the close.
  void serve(const HttpRequest& req, bool keepAlive) {
    {
      std::lock_guard<std::mutex> lock(server_.activeMu);
      ++server_.activeHandlers;
    }
    bool reusable = false;
    try {
      Writer<kTls> w(this->shared_from_this(), req.method == "HEAD",
                     !keepAlive || server_.stopping);
      runHandler(req, w);
      reusable = w.reusable();
    } catch (const std::exception& e) {  // e.g. out of memory while answering
      server_.reportException(e.what());
    } catch (...) {
      server_.reportException("non-standard exception");
    }
    {
      std::lock_guard<std::mutex> lock(server_.activeMu);
      --server_.activeHandlers;
    }
    server_.activeCv.notify_all();
    asio::post(stream_.get_executor(), [self = this->shared_from_this(), reusable] {
      if (reusable && !self->closed_)
        self->waitForRequest(Wait::kIdle);
      else
        self->closeNow();
    });
  }

  void runHandler(const HttpRequest& req, Writer<kTls>& w) {
    const HttpHandler* handler = server_.route(req.path);
    if (handler == nullptr) {
      w.send(404, {{"Content-Type", "text/plain"}}, "404 page not found\n");
      return;
    }
    try {
      (*handler)(req, w);
    } catch (const std::exception& e) {
      server_.reportException(req.method + " " + req.path + ": " + e.what());
      if (!w.responded())
        w.send(500, {{"Content-Type", "text/plain"}},
               std::string("internal error: ") + e.what() + "\n");
    } catch (...) {
      server_.reportException(req.method + " " + req.path + ": non-standard exception");
      if (!w.responded())
        w.send(500, {{"Content-Type", "text/plain"}}, "internal error\n");
    }
    if (w.chunkedOpen())
      w.endChunked();
    if (!w.responded())
      w.send(500, {{"Content-Type", "text/plain"}}, "handler did not respond\n");
  }

  // On the strand. Without a TLS close_notify: the peer sees the TCP close.
  void closeNow() {
    if (closed_)
      return;
    closed_ = true;
    error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
    lowest().close();
  }

  HttpServer::Impl& server_;
  std::shared_ptr<asio::ssl::context> ctx_;  // before stream_: the stream refers to it
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string remoteAddr_;
  int fd_ = -1;
  std::atomic<bool> closed_{false};
};

template <bool kTls>
bool Writer<kTls>::write(std::string data) {
  if (failed_)
    return false;
  std::promise<error_code> done;
  auto result = done.get_future();
  auto buf = std::make_shared<std::string>(std::move(data));
  auto* s = s_.get();
  asio::post(s->stream_.get_executor(), [s, buf, &done] {
    if (s->closed_) {
      done.set_value(asio::error::operation_aborted);
      return;
    }
    s->lowest().expires_after(ms(s->opts().socketTimeoutMs));
    asio::async_write(s->stream_, asio::buffer(*buf), [s, buf, &done](error_code ec, std::size_t) {
      if (ec == beast::error::timeout)
        ++s->server_.writeTimeouts;
      else if (!s->closed_)
        s->lowest().expires_never();
      done.set_value(ec);
    });
  });
  if (result.get()) {
    failed_ = true;
    return false;
  }
  return true;
}

template <bool kTls>
bool Writer<kTls>::clientGone() {
  if (failed_ || s_->closed_)
    return true;
  // The peer's FIN (or RST) is visible on the socket without reading, so a
  // watch with nothing to write still notices a closed client.
  struct pollfd p {};
  p.fd = s_->fd_;
  p.events = POLLRDHUP;
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

template <bool kTls>
bool Writer<kTls>::stopRequested() const {
  return s_->server_.stopping.load();
}

template <bool kTls>
void Writer<kTls>::abortConnection() {
  failed_ = aborted_ = true;
  state_ = State::kDone;
  if (status_ == 0)
    status_ = 499;
  s_->close();
}

}  // namespace

void startConnection(HttpServer::Impl& server, tcp::socket socket,
                     std::shared_ptr<asio::ssl::context> tls) {
  if (tls)
    std::make_shared<Session<true>>(server, std::move(socket), std::move(tls))->run();
  else
    std::make_shared<Session<false>>(server, std::move(socket), nullptr)->run();
}

}  // namespace detail
}  // namespace server
}  // namespace exitrec
