#pragma once
// A minimal HTTPS/1.1 client for tests (OpenSSL): one fresh connection per
// request, the server verified against a CA file and a host name, so every
// call performs a new handshake (what certificate-rotation tests need).

#include <string>
#include <string_view>

namespace exitrec::testing {

struct TlsReply {
  bool ok = false;    // connected, handshake verified, response read
  std::string error;  // why not
  int status = 0;
  std::string body;
  std::string peerCertPem;  // the certificate the server presented
};

TlsReply httpsPost(int port, const std::string& caFile, const std::string& path,
                   const std::string& body, const std::string& host = "127.0.0.1");

// A kept-alive HTTPS/1.1 connection to 127.0.0.1:port (as the API server keeps
// its connections to a webhook): one handshake, then requests in sequence.
// Reconnects once when the server closed the connection. Responses must carry
// a Content-Length (the server under test always sends one). Not thread-safe.
class TlsConnection {
 public:
  TlsConnection(int port, std::string caFile);
  ~TlsConnection();
  TlsConnection(const TlsConnection&) = delete;
  TlsConnection& operator=(const TlsConnection&) = delete;
  TlsReply post(const std::string& path, const std::string& body);
  int handshakes() const { return handshakes_; }

 private:
  bool connect(std::string& error);
  void close();
  int port_;
  std::string caFile_;
  void* ctx_ = nullptr;  // SSL_CTX
  void* bio_ = nullptr;  // BIO (ssl connect)
  int handshakes_ = 0;
};

}  // namespace exitrec::testing
