#pragma once
// A minimal HTTPS/1.1 client for tests (OpenSSL): one fresh connection per
// request, the server verified against a CA file and a host name, so every
// call performs a new handshake (what certificate-rotation tests need).

#include <string>

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

}  // namespace exitrec::testing
