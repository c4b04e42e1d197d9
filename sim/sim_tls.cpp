#include "sim/sim_tls.h"

#include <chrono>

#include "certs/certificates.h"

namespace exitrec {

Result<SimPki> generateSimPki(const std::vector<std::string>& ipSans,
                              const std::vector<std::string>& dnsSans) {
  constexpr std::chrono::hours kValidity{24 * 10};
  auto ca = generateCa("kube-apisim-ca", kValidity);
  if (!ca)
    return ca.error();
  CertificateRequest req;
  req.commonName = "kube-apisim";
  req.dnsNames = dnsSans;
  req.ipAddresses = ipSans;
  req.validity = kValidity;
  auto server = generateServingCertificate(*ca, req);
  if (!server)
    return server.error();
  return SimPki{ca->certPem, server->certPem, server->keyPem};
}

}  // namespace exitrec
