#include "common/http_server.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <dirent.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

namespace exitrec {
inline namespace server {  // see http_server.h
namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

std::string opensslError() {
  unsigned long e = ERR_get_error();
  if (e == 0)
    return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

std::optional<struct timespec> fileMtime(const std::string& path) {
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0)
    return std::nullopt;
  return st.st_mtim;
}

bool sameTime(const std::optional<struct timespec>& a, const std::optional<struct timespec>& b) {
  if (a.has_value() != b.has_value())
    return false;
  if (!a)
    return true;
  return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

// Finds the socket descriptor of a civetweb connection by its addresses:
// civetweb does not expose it, and we need it to notice a closed peer while
// a watch has nothing to write.
int findSocketFd(int localPort, int remotePort, const std::string& remoteAddr) {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr)
    return -1;
  int found = -1;
  while (struct dirent* entry = ::readdir(dir)) {
    char* end = nullptr;
    long fd = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0')
      continue;
    struct sockaddr_storage local {
    }, peer{};
    socklen_t llen = sizeof(local), plen = sizeof(peer);
    if (::getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&local), &llen) != 0) {
      continue;
    }
    if (::getpeername(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&peer), &plen) != 0) {
      continue;
    }
    auto portOf = [](const sockaddr_storage& s) -> int {
      if (s.ss_family == AF_INET)
        return ntohs(reinterpret_cast<const sockaddr_in&>(s).sin_port);
      if (s.ss_family == AF_INET6) {
        return ntohs(reinterpret_cast<const sockaddr_in6&>(s).sin6_port);
      }
      return -1;
    };
    if (portOf(local) != localPort || portOf(peer) != remotePort)
      continue;
    char addr[INET6_ADDRSTRLEN] = {0};
    if (peer.ss_family == AF_INET) {
      ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(peer).sin_addr, addr,
                  sizeof(addr));
    } else {
      ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(peer).sin6_addr, addr,
                  sizeof(addr));
    }
    if (remoteAddr == addr) {
      found = static_cast<int>(fd);
      break;
    }
  }
  ::closedir(dir);
  return found;
}

}  // namespace

std::string urlDecode(std::string_view in, bool plusIsSpace) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%' && i + 2 < in.size()) {
      int hi = hexValue(in[i + 1]);
      int lo = hexValue(in[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plusIsSpace && c == '+' ? ' ' : c);
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> parseQueryString(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t pos = 0;
  while (pos <= query.size()) {
    std::size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos)
      amp = query.size();
    std::string_view part = query.substr(pos, amp - pos);
    if (!part.empty()) {
      std::size_t eq = part.find('=');
      if (eq == std::string_view::npos) {
        out.emplace_back(urlDecode(part, true), "");
      } else {
        out.emplace_back(urlDecode(part.substr(0, eq), true), urlDecode(part.substr(eq + 1), true));
      }
    }
    pos = amp + 1;
  }
  return out;
}

std::optional<std::string> HttpRequest::queryParam(std::string_view name) const {
  for (const auto& [k, v] : query) {
    if (k == name)
      return v;
  }
  return std::nullopt;
}

std::optional<std::string> HttpRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name))
      return v;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------

struct HttpServer::Impl {
  HttpServer* owner = nullptr;
  std::atomic<bool> stopping{false};

  // Tells the owner (or stderr) that a request thread caught a throw.
  void reportException(const std::string& what) noexcept {
    try {
      if (owner->options_.onHandlerException) {
        owner->options_.onHandlerException(what);
      } else {
        std::fprintf(stderr, "http server: request failed with an exception: %s\n", what.c_str());
      }
    } catch (...) {
      // The barrier must not throw; nothing is left to report with.
    }
  }
  // Handlers running now; stop() lets them finish their last writes before
  // civetweb's stop flag makes every write fail.
  std::mutex activeMu;
  std::condition_variable activeCv;
  int activeHandlers = 0;

  // TLS material served to new handshakes; swapped when the files change.
  std::mutex tlsMu;
  X509* cert = nullptr;
  EVP_PKEY* key = nullptr;
  STACK_OF(X509) * chain = nullptr;
  std::optional<struct timespec> certMtime, keyMtime;
  std::chrono::steady_clock::time_point lastCheck{};
  // TLS front end: civetweb's TLS cannot be used with Debian's OpenSSL 3 (it
  // resolves SSL_get_peer_certificate, which OpenSSL 3 no longer exports, and
  // crashes on the first handshake). We terminate TLS ourselves and relay the
  // plaintext to civetweb listening on a loopback port.
  SSL_CTX* sslCtx = nullptr;
  int listenFd = -1;
  int wakePipe[2] = {-1, -1};
  int upstreamPort = 0;
  std::thread acceptor;
  std::mutex connMu;
  std::condition_variable connCv;
  std::set<int> clientFds;
  int activeConns = 0;
  std::atomic<bool> frontEndStopping{false};  // set once handlers are done (stop())

  Status startTlsFrontEnd(const std::string& address, int port, int& boundPort);
  void acceptLoop();
  void relay(int clientFd);
  void stopTlsFrontEnd();

  ~Impl() { clearTls(); }

  void clearTls() {
    if (cert != nullptr)
      X509_free(cert);
    if (key != nullptr)
      EVP_PKEY_free(key);
    if (chain != nullptr)
      sk_X509_pop_free(chain, X509_free);
    cert = nullptr;
    key = nullptr;
    chain = nullptr;
  }

  // Loads cert (+chain) and key from the configured files. Caller holds tlsMu.
  Status loadTlsLocked() {
    const auto& o = owner->options_;
    const std::string keyPath = o.keyFile.empty() ? o.certFile : o.keyFile;
    auto mtimeCert = fileMtime(o.certFile);
    auto mtimeKey = fileMtime(keyPath);
    BIO* cbio = BIO_new_file(o.certFile.c_str(), "r");
    if (cbio == nullptr) {
      return makeError(ErrorCode::kInvalidInput, "cannot read TLS certificate " + o.certFile);
    }
    X509* leaf = PEM_read_bio_X509(cbio, nullptr, nullptr, nullptr);
    STACK_OF(X509)* extra = sk_X509_new_null();
    while (leaf != nullptr) {
      X509* more = PEM_read_bio_X509(cbio, nullptr, nullptr, nullptr);
      if (more == nullptr)
        break;
      sk_X509_push(extra, more);
    }
    ERR_clear_error();
    BIO_free(cbio);
    if (leaf == nullptr) {
      sk_X509_pop_free(extra, X509_free);
      return makeError(ErrorCode::kInvalidInput, "no PEM certificate in " + o.certFile);
    }
    BIO* kbio = BIO_new_file(keyPath.c_str(), "r");
    EVP_PKEY* pkey =
        kbio != nullptr ? PEM_read_bio_PrivateKey(kbio, nullptr, nullptr, nullptr) : nullptr;
    if (kbio != nullptr)
      BIO_free(kbio);
    if (pkey == nullptr || X509_check_private_key(leaf, pkey) != 1) {
      std::string why = pkey == nullptr ? "no PEM private key in " + keyPath
                                        : "private key in " + keyPath + " does not match " +
                                              o.certFile + ": " + opensslError();
      if (pkey != nullptr)
        EVP_PKEY_free(pkey);
      X509_free(leaf);
      sk_X509_pop_free(extra, X509_free);
      ERR_clear_error();
      return makeError(ErrorCode::kInvalidInput, why);
    }
    clearTls();
    cert = leaf;
    key = pkey;
    chain = extra;
    certMtime = mtimeCert;
    keyMtime = mtimeKey;
    return Status::okStatus();
  }

  void maybeReload() {
    std::lock_guard<std::mutex> lock(tlsMu);
    auto now = std::chrono::steady_clock::now();
    if (now - lastCheck < std::chrono::seconds(1))
      return;
    lastCheck = now;
    const auto& o = owner->options_;
    const std::string keyPath = o.keyFile.empty() ? o.certFile : o.keyFile;
    if (sameTime(fileMtime(o.certFile), certMtime) && sameTime(fileMtime(keyPath), keyMtime)) {
      return;
    }
    // A half-written pair fails to load and leaves the old one in place; the
    // next check (1 s later) picks up the finished files.
    (void)loadTlsLocked();
  }

  static int certCallback(SSL* ssl, void* arg) {
    auto* self = static_cast<Impl*>(arg);
    self->maybeReload();
    std::lock_guard<std::mutex> lock(self->tlsMu);
    if (self->cert == nullptr)
      return 1;
    if (SSL_use_certificate(ssl, self->cert) != 1)
      return 0;
    if (SSL_use_PrivateKey(ssl, self->key) != 1)
      return 0;
    if (SSL_set1_chain(ssl, self->chain) != 1)
      return 0;
    return 1;
  }

  static int beginRequest(struct mg_connection* conn);
  static int serve(struct mg_connection* conn);
};

namespace {

class CivetResponseWriter final : public HttpResponseWriter {
 public:
  CivetResponseWriter(mg_connection* conn, const std::atomic<bool>& stopping)
      : conn_(conn), stopping_(stopping) {}

  bool send(int status, const HttpHeaders& headers, std::string_view body) override {
    if (state_ != State::kNone)
      return false;
    state_ = State::kDone;
    status_ = status;
    if (mg_response_header_start(conn_, status) != 0)
      return false;
    for (const auto& [k, v] : headers) {
      mg_response_header_add(conn_, k.c_str(), v.c_str(), static_cast<int>(v.size()));
    }
    std::string len = std::to_string(body.size());
    mg_response_header_add(conn_, "Content-Length", len.c_str(), static_cast<int>(len.size()));
    if (mg_response_header_send(conn_) != 0)
      return false;
    return writeAll(body);
  }

  bool beginChunked(int status, const HttpHeaders& headers) override {
    if (state_ != State::kNone)
      return false;
    state_ = State::kChunked;
    status_ = status;
    if (mg_response_header_start(conn_, status) != 0)
      return false;
    for (const auto& [k, v] : headers) {
      mg_response_header_add(conn_, k.c_str(), v.c_str(), static_cast<int>(v.size()));
    }
    mg_response_header_add(conn_, "Transfer-Encoding", "chunked", -1);
    return mg_response_header_send(conn_) == 0;
  }

  bool writeChunk(std::string_view data) override {
    if (state_ != State::kChunked || failed_)
      return false;
    while (!data.empty()) {
      // Chunks are capped so one huge watch line does not need one huge write.
      std::size_t n = std::min<std::size_t>(data.size(), 1u << 20);
      if (mg_send_chunk(conn_, data.data(), static_cast<unsigned>(n)) <= 0) {
        failed_ = true;
        return false;
      }
      data.remove_prefix(n);
    }
    return true;
  }

  bool endChunked() override {
    if (state_ != State::kChunked)
      return false;
    state_ = State::kDone;
    if (failed_)
      return false;
    return mg_write(conn_, "0\r\n\r\n", 5) == 5;
  }

  bool clientGone() override {
    if (failed_)
      return true;
    if (fd_ == -2) {
      const mg_request_info* ri = mg_get_request_info(conn_);
      fd_ = findSocketFd(ri->server_port, ri->remote_port, ri->remote_addr);
    }
    if (fd_ < 0)
      return false;
    struct pollfd p {};
    p.fd = fd_;
    p.events = POLLRDHUP;
    if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0) {
      return true;
    }
    return false;
  }

  bool stopRequested() const override { return stopping_.load(); }

  void abortConnection() override {
    if (fd_ == -2) {
      const mg_request_info* ri = mg_get_request_info(conn_);
      fd_ = findSocketFd(ri->server_port, ri->remote_port, ri->remote_addr);
    }
    if (fd_ >= 0)
      ::shutdown(fd_, SHUT_RDWR);
    failed_ = true;
    state_ = State::kDone;
    if (status_ == 0)
      status_ = 499;
  }

  bool responded() const { return state_ != State::kNone; }
  bool chunkedOpen() const { return state_ == State::kChunked; }
  int status() const { return status_; }

 private:
  bool writeAll(std::string_view body) {
    while (!body.empty()) {
      std::size_t n = std::min<std::size_t>(body.size(), 1u << 20);
      int w = mg_write(conn_, body.data(), n);
      if (w <= 0) {
        failed_ = true;
        return false;
      }
      body.remove_prefix(static_cast<std::size_t>(w));
    }
    return true;
  }

  enum class State { kNone, kChunked, kDone };
  mg_connection* conn_;
  const std::atomic<bool>& stopping_;
  State state_ = State::kNone;
  bool failed_ = false;
  int fd_ = -2;  // -2: not looked up yet, -1: not found
  int status_ = 0;
};

}  // namespace

int HttpServer::Impl::beginRequest(struct mg_connection* conn) {
  // civetweb's worker threads have small stacks (Debian builds them with
  // 100 KiB); JSON and YAML parsing in handlers needs more. Each request runs
  // on its own thread with a default-size stack while the worker waits.
  auto* self = static_cast<Impl*>(mg_get_request_info(conn)->user_data);
  {
    std::lock_guard<std::mutex> lock(self->activeMu);
    ++self->activeHandlers;
  }
  int result = 500;
  // serve() catches what handlers throw; this catches the rest (e.g. out of
  // memory while reading the request), which would otherwise end the process.
  auto guardedServe = [&]() noexcept {
    try {
      result = serve(conn);
    } catch (const std::exception& e) {
      self->reportException(e.what());
    } catch (...) {
      self->reportException("non-standard exception");
    }
  };
  if (self->owner->options_.inlineHandlers) {
    guardedServe();
  } else {
    std::thread worker(guardedServe);
    worker.join();
  }
  {
    std::lock_guard<std::mutex> lock(self->activeMu);
    --self->activeHandlers;
  }
  self->activeCv.notify_all();
  return result;
}

int HttpServer::Impl::serve(struct mg_connection* conn) {
  const mg_request_info* ri = mg_get_request_info(conn);
  auto* self = static_cast<Impl*>(ri->user_data);
  HttpServer* server = self->owner;

  HttpRequest req;
  req.method = ri->request_method != nullptr ? ri->request_method : "";
  const char* uri = ri->local_uri_raw != nullptr ? ri->local_uri_raw : ri->local_uri;
  req.path = uri != nullptr ? uri : "/";
  if (ri->query_string != nullptr) {
    req.rawQuery = ri->query_string;
    req.query = parseQueryString(req.rawQuery);
  }
  for (int i = 0; i < ri->num_headers; ++i) {
    req.headers.emplace_back(ri->http_headers[i].name, ri->http_headers[i].value);
  }
  req.remoteAddr = ri->remote_addr;
  req.tls = ri->is_ssl != 0;

  CivetResponseWriter writer(conn, self->stopping);
  if (ri->content_length > static_cast<long long>(server->options_.maxBodyBytes)) {
    writer.send(413, {{"Content-Type", "text/plain"}}, "request body too large\n");
    return 413;
  }
  if (ri->content_length > 0 || (ri->content_length < 0 && req.header("Transfer-Encoding"))) {
    std::string buf(65536, '\0');
    for (;;) {
      int n = mg_read(conn, buf.data(), buf.size());
      if (n <= 0)
        break;
      req.body.append(buf.data(), static_cast<std::size_t>(n));
      if (req.body.size() > server->options_.maxBodyBytes) {
        writer.send(413, {{"Content-Type", "text/plain"}}, "request body too large\n");
        return 413;
      }
    }
  }

  const HttpHandler* best = nullptr;
  std::size_t bestLen = 0;
  for (const auto& [prefix, handler] : server->handlers_) {
    if (req.path.compare(0, prefix.size(), prefix) == 0 &&
        (best == nullptr || prefix.size() > bestLen)) {
      best = &handler;
      bestLen = prefix.size();
    }
  }
  if (best == nullptr) {
    writer.send(404, {{"Content-Type", "text/plain"}}, "404 page not found\n");
    return 404;
  }
  try {
    (*best)(req, writer);
  } catch (const std::exception& e) {
    self->reportException(std::string(req.method + " " + req.path + ": ") + e.what());
    if (!writer.responded()) {
      writer.send(500, {{"Content-Type", "text/plain"}},
                  std::string("internal error: ") + e.what() + "\n");
      return 500;
    }
  } catch (...) {
    self->reportException(req.method + " " + req.path + ": non-standard exception");
    if (!writer.responded()) {
      writer.send(500, {{"Content-Type", "text/plain"}}, "internal error\n");
      return 500;
    }
  }
  if (writer.chunkedOpen())
    writer.endChunked();
  if (!writer.responded()) {
    writer.send(500, {{"Content-Type", "text/plain"}}, "handler did not respond\n");
    return 500;
  }
  return writer.status() > 0 ? writer.status() : 200;
}

HttpServer::HttpServer(Options options) : options_(std::move(options)), impl_(new Impl) {
  impl_->owner = this;
}

HttpServer::~HttpServer() {
  stop();
}

void HttpServer::handle(std::string prefix, HttpHandler handler) {
  handlers_.emplace_back(std::move(prefix), std::move(handler));
}

void HttpServer::onStopping(std::function<void()> hook) {
  stopHooks_.push_back(std::move(hook));
}

std::string HttpServer::baseUrl() const {
  std::string host = options_.address;
  if (host.find(':') != std::string::npos)
    host = "[" + host + "]";
  return std::string(tls() ? "https://" : "http://") + host + ":" + std::to_string(port_);
}

Status HttpServer::reloadCertificates() {
  if (!tls())
    return makeError(ErrorCode::kInvalidInput, "server has no TLS configured");
  std::lock_guard<std::mutex> lock(impl_->tlsMu);
  return impl_->loadTlsLocked();
}

Status HttpServer::start() {
  if (ctx_ != nullptr)
    return Status::okStatus();
  static std::once_flag initOnce;
  std::call_once(initOnce, [] { mg_init_library(0); });
  impl_->stopping = false;
  impl_->frontEndStopping = false;
  if (tls()) {
    std::lock_guard<std::mutex> lock(impl_->tlsMu);
    if (Status s = impl_->loadTlsLocked(); !s)
      return s;
  }
  // civetweb (built without IPv6) serves plaintext; with TLS it listens on a
  // loopback port behind our TLS front end.
  std::string listen =
      tls() ? std::string("127.0.0.1:0") : options_.address + ":" + std::to_string(options_.port);
  if (!tls() && options_.address.find(':') != std::string::npos) {
    return makeError(ErrorCode::kUnsupported,
                     "plain HTTP on IPv6 is not supported (civetweb built without IPv6); "
                     "use TLS, which listens on any address");
  }
  std::string threads = std::to_string(std::max(1, options_.threads));
  std::string timeout = std::to_string(options_.socketTimeoutMs);
  const char* opts[] = {"listening_ports",
                        listen.c_str(),
                        "num_threads",
                        threads.c_str(),
                        "request_timeout_ms",
                        timeout.c_str(),
                        "enable_keep_alive",
                        "yes",
                        "keep_alive_timeout_ms",
                        "60000",
                        "tcp_nodelay",  // see below
                        "1",
                        nullptr};
  // tcp_nodelay: kept-alive connections carry small replies written in pieces;
  // without it, Nagle plus the peer's delayed ACK holds a reply's tail ~40 ms.
  mg_callbacks callbacks{};
  callbacks.begin_request = &Impl::beginRequest;
  callbacks.log_message = [](const mg_connection*, const char*) { return 1; };
  char errbuf[256] = {0};
  mg_init_data init{};
  init.callbacks = &callbacks;
  init.user_data = impl_.get();
  init.configuration_options = opts;
  mg_error_data err{};
  err.text = errbuf;
  err.text_buffer_size = sizeof(errbuf);
  ctx_ = mg_start2(&init, &err);
  if (ctx_ == nullptr) {
    return makeError(ErrorCode::kTransient,
                     "cannot start HTTP server on " + listen + ": " + std::string(errbuf));
  }
  mg_server_port ports[4];
  int n = mg_get_server_ports(ctx_, 4, ports);
  int civetPort = n > 0 ? ports[0].port : 0;
  impl_->upstreamPort = civetPort;
  if (!tls()) {
    port_ = civetPort;
    return Status::okStatus();
  }
  if (Status s = impl_->startTlsFrontEnd(options_.address, options_.port, port_); !s) {
    mg_stop(ctx_);
    ctx_ = nullptr;
    return s;
  }
  return Status::okStatus();
}

void HttpServer::stop() {
  if (ctx_ == nullptr)
    return;
  impl_->stopping = true;
  for (auto& hook : stopHooks_)
    hook();
  {
    // Handlers see stopRequested() (and owners' hooks) and return; give them a
    // moment to send their final bytes, then stop regardless.
    std::unique_lock<std::mutex> lock(impl_->activeMu);
    impl_->activeCv.wait_for(lock, std::chrono::seconds(2),
                             [&] { return impl_->activeHandlers == 0; });
  }
  if (tls())
    impl_->stopTlsFrontEnd();
  // civetweb's master thread polls its listening socket in 2 s quanta before
  // it notices the stop flag; a few loopback connects wake it at once.
  std::atomic<bool> stopped{false};
  const int civetPort = impl_->upstreamPort;
  std::string host = options_.address == "0.0.0.0" || tls() ? "127.0.0.1" : options_.address;
  std::thread waker([&] {
    while (!stopped) {
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      struct sockaddr_in a {};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(civetPort));
      ::inet_pton(AF_INET, host.c_str(), &a.sin_addr);
      (void)::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
      ::close(fd);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  mg_stop(ctx_);
  stopped = true;
  waker.join();
  ctx_ = nullptr;
}

// ---------------------------------------------------------------------------
// TLS front end

Status HttpServer::Impl::startTlsFrontEnd(const std::string& address, int port, int& boundPort) {
  sslCtx = SSL_CTX_new(TLS_server_method());
  if (sslCtx == nullptr)
    return makeError(ErrorCode::kTransient, "SSL_CTX_new: " + opensslError());
  SSL_CTX_set_min_proto_version(sslCtx, TLS1_2_VERSION);
  SSL_CTX_set_cert_cb(sslCtx, &Impl::certCallback, this);

  struct addrinfo hints {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
  struct addrinfo* res = nullptr;
  std::string portStr = std::to_string(port);
  if (::getaddrinfo(address.c_str(), portStr.c_str(), &hints, &res) != 0 || res == nullptr) {
    return makeError(ErrorCode::kInvalidInput, "not a numeric IP address: " + address);
  }
  listenFd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listenFd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (listenFd < 0 || ::bind(listenFd, res->ai_addr, res->ai_addrlen) != 0 ||
      ::listen(listenFd, 128) != 0) {
    std::string why = std::strerror(errno);
    ::freeaddrinfo(res);
    if (listenFd >= 0)
      ::close(listenFd);
    listenFd = -1;
    return makeError(ErrorCode::kTransient,
                     "cannot listen on " + address + ":" + portStr + ": " + why);
  }
  ::freeaddrinfo(res);
  struct sockaddr_storage bound {};
  socklen_t blen = sizeof(bound);
  ::getsockname(listenFd, reinterpret_cast<sockaddr*>(&bound), &blen);
  boundPort = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6&>(bound).sin6_port)
                                          : ntohs(reinterpret_cast<sockaddr_in&>(bound).sin_port);
  if (::pipe2(wakePipe, O_CLOEXEC) != 0) {
    return makeError(ErrorCode::kTransient, "pipe2 failed");
  }
  acceptor = std::thread([this] { acceptLoop(); });
  return Status::okStatus();
}

void HttpServer::Impl::acceptLoop() {
  for (;;) {
    struct pollfd p[2] = {{listenFd, POLLIN, 0}, {wakePipe[0], POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      return;
    }
    if (p[1].revents != 0)
      return;
    if ((p[0].revents & POLLIN) == 0)
      continue;
    int fd = ::accept4(listenFd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0)
      continue;
    {
      std::lock_guard<std::mutex> lock(connMu);
      if (stopping) {
        ::close(fd);
        continue;
      }
      clientFds.insert(fd);
      ++activeConns;
    }
    std::thread([this, fd] {
      relay(fd);
      std::lock_guard<std::mutex> lock(connMu);
      clientFds.erase(fd);
      ::close(fd);
      --activeConns;
      connCv.notify_all();
    }).detach();
  }
}

void HttpServer::Impl::relay(int clientFd) {
  // The handshake must not hang forever on a silent client.
  struct timeval tv {
    10, 0
  };
  ::setsockopt(clientFd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  int one = 1;  // relay each TLS record at once (see tcp_nodelay above)
  ::setsockopt(clientFd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  SSL* ssl = SSL_new(sslCtx);
  SSL_set_fd(ssl, clientFd);
  if (SSL_accept(ssl) != 1) {
    ERR_clear_error();
    SSL_free(ssl);
    return;
  }
  struct timeval none {
    0, 0
  };
  ::setsockopt(clientFd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
  int up = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in addr {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(upstreamPort));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (up < 0 || ::connect(up, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (up >= 0)
      ::close(up);
    SSL_free(ssl);
    return;
  }
  ::setsockopt(up, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  std::string buf(1 << 16, '\0');
  bool open = true;
  while (open && !frontEndStopping) {
    if (SSL_pending(ssl) == 0) {
      struct pollfd p[2] = {{clientFd, POLLIN, 0}, {up, POLLIN, 0}};
      if (::poll(p, 2, 500) < 0 && errno != EINTR)
        break;
      if ((p[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        ssize_t n = ::read(up, buf.data(), buf.size());
        if (n <= 0)
          break;
        for (ssize_t off = 0; off < n;) {
          int w = SSL_write(ssl, buf.data() + off, static_cast<int>(n - off));
          if (w <= 0) {
            open = false;
            break;
          }
          off += w;
        }
        continue;
      }
      if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0)
        continue;
    }
    int n = SSL_read(ssl, buf.data(), static_cast<int>(buf.size()));
    if (n <= 0) {
      int e = SSL_get_error(ssl, n);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        continue;
      break;
    }
    for (int off = 0; off < n;) {
      ssize_t w = ::write(up, buf.data() + off, static_cast<std::size_t>(n - off));
      if (w <= 0) {
        open = false;
        break;
      }
      off += static_cast<int>(w);
    }
  }
  ERR_clear_error();
  ::shutdown(up, SHUT_RDWR);
  ::close(up);
  SSL_shutdown(ssl);
  SSL_free(ssl);
}

void HttpServer::Impl::stopTlsFrontEnd() {
  frontEndStopping = true;
  if (acceptor.joinable()) {
    (void)!::write(wakePipe[1], "x", 1);
    acceptor.join();
  }
  {
    std::unique_lock<std::mutex> lock(connMu);
    for (int fd : clientFds)
      ::shutdown(fd, SHUT_RDWR);
    connCv.wait(lock, [&] { return activeConns == 0; });
  }
  for (int& fd : wakePipe) {
    if (fd >= 0)
      ::close(fd);
    fd = -1;
  }
  if (listenFd >= 0)
    ::close(listenFd);
  listenFd = -1;
  if (sslCtx != nullptr)
    SSL_CTX_free(sslCtx);
  sslCtx = nullptr;
}

}  // namespace server
}  // namespace exitrec
