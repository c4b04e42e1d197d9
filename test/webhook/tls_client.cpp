#include "test/webhook/tls_client.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

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

}  // namespace exitrec::testing
