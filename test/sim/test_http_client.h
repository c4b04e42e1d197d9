#pragma once
// A tiny blocking HTTP/1.1 client for the simulator and HTTP server tests:
// one connection per request, plain or TLS (verifying against a CA file),
// Content-Length and chunked bodies, and a streaming mode that returns a watch
// body line by line. Test-only; not thread-safe.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace exitrec::testing {

struct HttpResult {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

class TestHttpConnection {
 public:
  // caFile empty: plain HTTP. Throws std::runtime_error on connect/TLS failure.
  TestHttpConnection(int port, const std::string& caFile = "") {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      ::close(fd_);
      throw std::runtime_error("connect failed");
    }
    if (!caFile.empty()) {
      ctx_ = SSL_CTX_new(TLS_client_method());
      SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
      if (SSL_CTX_load_verify_locations(ctx_, caFile.c_str(), nullptr) != 1) {
        release();  // a throwing constructor runs no destructor
        throw std::runtime_error("cannot load CA " + caFile);
      }
      ssl_ = SSL_new(ctx_);
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), "127.0.0.1");
      SSL_set_fd(ssl_, fd_);
      if (SSL_connect(ssl_) != 1) {
        ERR_clear_error();
        release();
        throw std::runtime_error("TLS handshake failed");
      }
    }
  }
  ~TestHttpConnection() { release(); }
  TestHttpConnection(const TestHttpConnection&) = delete;
  TestHttpConnection& operator=(const TestHttpConnection&) = delete;

  void sendRequest(const std::string& method, const std::string& target,
                   const std::vector<std::pair<std::string, std::string>>& headers = {},
                   const std::string& body = "") {
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    for (const auto& [k, v] : headers)
      req += k + ": " + v + "\r\n";
    if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
      req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    }
    req += "Connection: close\r\n\r\n" + body;
    writeAll(req);
  }

  // Reads status line and headers.
  HttpResult readHead() {
    HttpResult r;
    std::string line = readLine();
    if (line.size() < 12)
      throw std::runtime_error("bad status line: " + line);
    r.status = std::stoi(line.substr(9, 3));
    for (;;) {
      line = readLine();
      if (line.empty())
        break;
      auto colon = line.find(':');
      std::string k = line.substr(0, colon);
      for (auto& c : k)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string v = line.substr(colon + 1);
      while (!v.empty() && v.front() == ' ')
        v.erase(0, 1);
      r.headers[k] = v;
    }
    chunked_ = r.headers.count("transfer-encoding") && r.headers["transfer-encoding"] == "chunked";
    if (r.headers.count("content-length"))
      remaining_ = std::stoll(r.headers["content-length"]);
    return r;
  }

  // Next body line (without '\n') of a chunked stream; nullopt at the end.
  std::optional<std::string> nextBodyLine() {
    for (;;) {
      auto nl = decoded_.find('\n');
      if (nl != std::string::npos) {
        std::string line = decoded_.substr(0, nl);
        decoded_.erase(0, nl + 1);
        return line;
      }
      if (!readChunk()) {
        if (decoded_.empty())
          return std::nullopt;
        std::string rest;
        rest.swap(decoded_);
        return rest;
      }
    }
  }

  std::string readBody() {
    if (chunked_) {
      while (readChunk()) {
      }
      std::string out;
      out.swap(decoded_);
      return out;
    }
    std::string out;
    if (remaining_ >= 0) {
      while (static_cast<long long>(out.size()) < remaining_) {
        if (!buffered_.empty()) {
          std::size_t n = std::min<std::size_t>(buffered_.size(), remaining_ - out.size());
          out += buffered_.substr(0, n);
          buffered_.erase(0, n);
        } else if (!fill()) {
          break;
        }
      }
      return out;
    }
    while (fill()) {
    }
    out.swap(buffered_);
    return out;
  }

  // True if the server closed the connection within `timeout`.
  bool closedWithin(std::chrono::milliseconds timeout) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) > 0) {
        if (!fill())
          return true;
      }
    }
    return false;
  }

 private:
  void release() {
    if (ssl_ != nullptr)
      SSL_free(ssl_);
    if (ctx_ != nullptr)
      SSL_CTX_free(ctx_);
    ssl_ = nullptr;
    ctx_ = nullptr;
    ::close(fd_);
  }
  bool readChunk() {
    if (lastChunkSeen_)
      return false;
    std::string sizeLine = readLine();
    if (sizeLine.empty() && !eof_)
      sizeLine = readLine();
    if (sizeLine.empty())
      throw std::runtime_error("connection closed before the last chunk");
    std::size_t size = std::stoul(sizeLine, nullptr, 16);
    if (size == 0) {
      readLine();
      lastChunkSeen_ = true;
      return false;
    }
    while (buffered_.size() < size + 2) {
      if (!fill())
        throw std::runtime_error("truncated chunk");
    }
    decoded_ += buffered_.substr(0, size);
    buffered_.erase(0, size + 2);
    return true;
  }

  std::string readLine() {
    for (;;) {
      auto pos = buffered_.find("\r\n");
      if (pos != std::string::npos) {
        std::string line = buffered_.substr(0, pos);
        buffered_.erase(0, pos + 2);
        return line;
      }
      if (!fill()) {
        std::string rest;
        rest.swap(buffered_);
        return rest;
      }
    }
  }

  bool fill() {
    if (eof_)
      return false;
    char buf[65536];
    int n = ssl_ != nullptr ? SSL_read(ssl_, buf, sizeof(buf))
                            : static_cast<int>(::read(fd_, buf, sizeof(buf)));
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    buffered_.append(buf, static_cast<std::size_t>(n));
    return true;
  }

  void writeAll(const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
      int n = ssl_ != nullptr
                  ? SSL_write(ssl_, data.data() + off, static_cast<int>(data.size() - off))
                  : static_cast<int>(::write(fd_, data.data() + off, data.size() - off));
      if (n <= 0)
        throw std::runtime_error("write failed");
      off += static_cast<std::size_t>(n);
    }
  }

  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  std::string buffered_;
  std::string decoded_;
  bool chunked_ = false;
  bool eof_ = false;
  bool lastChunkSeen_ = false;
  long long remaining_ = -1;
};

// One complete request on a fresh connection.
inline HttpResult httpRequest(int port, const std::string& method, const std::string& target,
                              const std::vector<std::pair<std::string, std::string>>& headers = {},
                              const std::string& body = "", const std::string& caFile = "") {
  TestHttpConnection c(port, caFile);
  c.sendRequest(method, target, headers, body);
  HttpResult r = c.readHead();
  r.body = c.readBody();
  return r;
}

}  // namespace exitrec::testing
