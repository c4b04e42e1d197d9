#include "test/webhook/tls_client.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <memory>

namespace exitrec::testing {

namespace {

std::string sslErr() {
  unsigned long e = ERR_get_error();
  if (e == 0)
    return "unknown TLS error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

}  // namespace

TlsReply httpsPost(int port, const std::string& caFile, const std::string& path,
                   const std::string& body, const std::string& host) {
  TlsReply r;
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        SSL_CTX_free);
  if (!ctx) {
    r.error = sslErr();
    return r;
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_load_verify_locations(ctx.get(), caFile.c_str(), nullptr) != 1) {
    r.error = "load CA: " + sslErr();
    return r;
  }
  std::unique_ptr<BIO, decltype(&BIO_free_all)> bio(BIO_new_ssl_connect(ctx.get()), BIO_free_all);
  SSL* ssl = nullptr;
  BIO_get_ssl(bio.get(), &ssl);
  SSL_set_mode(ssl, SSL_MODE_AUTO_RETRY);
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  if (host == "127.0.0.1") {
    X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
  } else {
    X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
    SSL_set_tlsext_host_name(ssl, host.c_str());
  }
  const std::string target = "127.0.0.1:" + std::to_string(port);
  BIO_set_conn_hostname(bio.get(), target.c_str());
  if (BIO_do_connect(bio.get()) <= 0 || BIO_do_handshake(bio.get()) <= 0) {
    r.error = "connect/handshake: " + sslErr();
    return r;
  }
  if (SSL_get_verify_result(ssl) != X509_V_OK) {
    r.error = "verify failed";
    return r;
  }
  if (X509* peer = SSL_get1_peer_certificate(ssl)) {
    BIO* mem = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(mem, peer);
    char* data = nullptr;
    long n = BIO_get_mem_data(mem, &data);
    r.peerCertPem.assign(data, static_cast<std::size_t>(n));
    BIO_free(mem);
    X509_free(peer);
  }
  std::string req = "POST " + path + " HTTP/1.1\r\nHost: " + host +
                    "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body;
  if (BIO_write(bio.get(), req.data(), static_cast<int>(req.size())) !=
      static_cast<int>(req.size())) {
    r.error = "write: " + sslErr();
    return r;
  }
  std::string resp;
  char buf[16384];
  while (true) {
    int n = BIO_read(bio.get(), buf, sizeof buf);
    if (n <= 0)
      break;
    resp.append(buf, static_cast<std::size_t>(n));
  }
  auto headerEnd = resp.find("\r\n\r\n");
  if (resp.rfind("HTTP/1.", 0) != 0 || headerEnd == std::string::npos) {
    r.error = "bad response: " + resp.substr(0, 200);
    return r;
  }
  r.status = std::stoi(resp.substr(9, 3));
  std::string headers = resp.substr(0, headerEnd);
  std::string rest = resp.substr(headerEnd + 4);
  // De-chunk if needed.
  std::string lower;
  for (char c : headers)
    lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower.find("transfer-encoding: chunked") != std::string::npos) {
    std::string out;
    std::size_t pos = 0;
    while (pos < rest.size()) {
      auto eol = rest.find("\r\n", pos);
      if (eol == std::string::npos)
        break;
      std::size_t len = std::stoul(rest.substr(pos, eol - pos), nullptr, 16);
      if (len == 0)
        break;
      out += rest.substr(eol + 2, len);
      pos = eol + 2 + len + 2;
    }
    rest = out;
  }
  r.body = rest;
  r.ok = true;
  return r;
}

TlsConnection::TlsConnection(int port, std::string caFile)
    : port_(port), caFile_(std::move(caFile)) {}

TlsConnection::~TlsConnection() {
  close();
  if (ctx_ != nullptr)
    SSL_CTX_free(static_cast<SSL_CTX*>(ctx_));
}

void TlsConnection::close() {
  if (bio_ != nullptr)
    BIO_free_all(static_cast<BIO*>(bio_));
  bio_ = nullptr;
}

bool TlsConnection::connect(std::string& error) {
  if (ctx_ == nullptr) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == nullptr) {
      error = sslErr();
      return false;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    if (SSL_CTX_load_verify_locations(ctx, caFile_.c_str(), nullptr) != 1) {
      error = "load CA: " + sslErr();
      SSL_CTX_free(ctx);
      return false;
    }
    ctx_ = ctx;
  }
  BIO* bio = BIO_new_ssl_connect(static_cast<SSL_CTX*>(ctx_));
  SSL* ssl = nullptr;
  BIO_get_ssl(bio, &ssl);
  SSL_set_mode(ssl, SSL_MODE_AUTO_RETRY);
  X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1");
  const std::string target = "127.0.0.1:" + std::to_string(port_);
  BIO_set_conn_hostname(bio, target.c_str());
  if (BIO_do_connect(bio) <= 0 || BIO_do_handshake(bio) <= 0 ||
      SSL_get_verify_result(ssl) != X509_V_OK) {
    error = "connect/handshake: " + sslErr();
    BIO_free_all(bio);
    return false;
  }
  // Small requests and replies: no Nagle delay on our side.
  int fd = -1;
  BIO_get_fd(bio, &fd);
  if (fd >= 0) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  bio_ = bio;
  ++handshakes_;
  return true;
}

TlsReply TlsConnection::post(const std::string& path, const std::string& body) {
  TlsReply r;
  const std::string req = "POST " + path +
                          " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          "Content-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (bio_ == nullptr && !connect(r.error))
      return r;
    BIO* bio = static_cast<BIO*>(bio_);
    if (BIO_write(bio, req.data(), static_cast<int>(req.size())) != static_cast<int>(req.size())) {
      close();  // the server closed an idle connection: reconnect once
      continue;
    }
    std::string resp;
    char buf[16384];
    std::size_t headerEnd = std::string::npos, want = 0;
    while (true) {
      int n = BIO_read(bio, buf, sizeof buf);
      if (n <= 0)
        break;
      resp.append(buf, static_cast<std::size_t>(n));
      if (headerEnd == std::string::npos) {
        headerEnd = resp.find("\r\n\r\n");
        if (headerEnd != std::string::npos) {
          std::string lower;
          for (std::size_t i = 0; i < headerEnd; ++i)
            lower += static_cast<char>(std::tolower(static_cast<unsigned char>(resp[i])));
          auto cl = lower.find("content-length:");
          if (cl == std::string::npos) {
            r.error = "response without Content-Length";
            close();
            return r;
          }
          want = headerEnd + 4 + std::stoul(lower.substr(cl + 15));
        }
      }
      if (headerEnd != std::string::npos && resp.size() >= want)
        break;
    }
    if (headerEnd == std::string::npos || resp.size() < want) {
      close();
      if (resp.empty())
        continue;  // closed before answering: retry on a new connection
      r.error = "truncated response";
      return r;
    }
    r.status = std::stoi(resp.substr(9, 3));
    r.body = resp.substr(headerEnd + 4, want - headerEnd - 4);
    r.ok = true;
    return r;
  }
  r.error = "connection closed twice";
  return r;
}

}  // namespace exitrec::testing
