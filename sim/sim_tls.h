#pragma once
// Test PKI for the simulator: a fresh self-signed CA and a serving certificate
// signed by it, valid for the given IP addresses and DNS names (SANs), with
// serverAuth extended key usage. EC P-256 keys, valid for 10 days. A thin
// wrapper over certs/certificates.h.

#include <string>
#include <vector>

#include "common/result.h"

namespace exitrec {

struct SimPki {
  std::string caCertPem;
  std::string serverCertPem;
  std::string serverKeyPem;
};

// The errors of generateCa / generateServingCertificate (certs/certificates.h).
Result<SimPki> generateSimPki(const std::vector<std::string>& ipSans,
                              const std::vector<std::string>& dnsSans);

}  // namespace exitrec
