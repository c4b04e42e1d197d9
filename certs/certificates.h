#pragma once
// Certificates (OpenSSL): a self-signed CA and a serving certificate signed by
// it, as PEM text; reading a certificate's expiry. Used by the webhook's
// self-signed bootstrap and by the simulators' test PKI.
//
// Keys are ECDSA P-256; certificates are X.509 v3 with SANs
// (DNS names and IP addresses), serverAuth EKU for serving certificates.
// Pure apart from reading files in certificateNotAfter/writeFileAtomic.
// Thread-safe.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base64.h"  // base64Encode, for callers that build Secret data
#include "common/result.h"

namespace exitrec {

struct PemPair {
  std::string certPem;
  std::string keyPem;  // PKCS#8 "PRIVATE KEY"
};

struct CertificateRequest {
  std::string commonName;
  std::vector<std::string> dnsNames;
  std::vector<std::string> ipAddresses;  // e.g. "127.0.0.1"
  std::chrono::hours validity{24 * 365};
  // Start the validity this far in the past (clock skew between nodes).
  std::chrono::minutes backdate{5};
  // The validity counts from here (default: the system clock now); callers
  // with an injected Clock pass its wallNow().
  std::optional<std::chrono::system_clock::time_point> issuedAt;
};

// A self-signed CA (basicConstraints CA:TRUE, keyCertSign), valid from
// `issuedAt` (default: now) minus 5 minutes for `validity`.
Result<PemPair> generateCa(
    const std::string& commonName, std::chrono::hours validity,
    std::optional<std::chrono::system_clock::time_point> issuedAt = std::nullopt);

// A serving certificate for `req`, signed by `ca`.
Result<PemPair> generateServingCertificate(const PemPair& ca, const CertificateRequest& req);

// The PEM certificates of a bundle, in order (each with its BEGIN/END lines
// and a final newline). Text outside certificate blocks is dropped.
std::vector<std::string> splitPemCertificates(const std::string& bundle);

// True if `keyPem` is the private key of the first certificate in `certPem`.
bool keyMatchesCertificate(const std::string& certPem, const std::string& keyPem);

// notAfter of the first certificate in a PEM text / file, as Unix seconds.
Result<double> certificateNotAfterPem(const std::string& pem);
Result<double> certificateNotAfter(const std::string& path);

// True if the PEM certificate is valid for `dnsName` (SAN match) until at
// least `now + margin`, and `caPem` signed it.
bool certificateUsable(const std::string& certPem, const std::string& caPem,
                       const std::string& dnsName, std::chrono::system_clock::time_point now,
                       std::chrono::hours margin);

// Writes `content` to `path` through a temporary file and rename(2), so a
// reader never sees a half-written file. `mode` as for chmod.
Status writeFileAtomic(const std::string& path, const std::string& content, unsigned mode = 0600);

}  // namespace exitrec
