#include "sim/sim_tls.h"

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

namespace exitrec {
namespace {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;

Error sslError(const std::string& what) {
  unsigned long e = ERR_get_error();
  char buf[256] = "unknown";
  if (e != 0)
    ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return makeError(ErrorCode::kTransient, what + ": " + buf);
}

PkeyPtr newKey() {
  return PkeyPtr(EVP_EC_gen("P-256"));
}

bool addExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr)
    return false;
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

Result<X509Ptr> makeCert(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuerKey,
                         bool isCa, const std::string& san) {
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof(serial));
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 10L * 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* iss = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(iss));
  bool ok = true;
  if (isCa) {
    ok = ok && addExt(cert.get(), iss, NID_basic_constraints, "critical,CA:TRUE");
    ok = ok &&
         addExt(cert.get(), iss, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
    ok = ok && addExt(cert.get(), iss, NID_subject_key_identifier, "hash");
  } else {
    ok = ok && addExt(cert.get(), iss, NID_basic_constraints, "critical,CA:FALSE");
    ok = ok && addExt(cert.get(), iss, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    ok = ok && addExt(cert.get(), iss, NID_ext_key_usage, "serverAuth");
    ok = ok && addExt(cert.get(), iss, NID_subject_alt_name, san);
    ok = ok && addExt(cert.get(), iss, NID_authority_key_identifier, "keyid:always");
  }
  if (!ok)
    return sslError("cannot add certificate extension");
  if (X509_sign(cert.get(), issuerKey, EVP_sha256()) == 0)
    return sslError("cannot sign certificate");
  return cert;
}

std::string certPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string keyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

}  // namespace

Result<SimPki> generateSimPki(const std::vector<std::string>& ipSans,
                              const std::vector<std::string>& dnsSans) {
  PkeyPtr caKey = newKey();
  PkeyPtr srvKey = newKey();
  if (!caKey || !srvKey)
    return sslError("cannot generate EC key");
  auto ca = makeCert(caKey.get(), "kube-apisim-ca", nullptr, caKey.get(), true, "");
  if (!ca)
    return ca.error();
  std::string san;
  for (const auto& ip : ipSans)
    san += (san.empty() ? "" : ",") + std::string("IP:") + ip;
  for (const auto& dns : dnsSans)
    san += (san.empty() ? "" : ",") + std::string("DNS:") + dns;
  auto srv = makeCert(srvKey.get(), "kube-apisim", ca->get(), caKey.get(), false, san);
  if (!srv)
    return srv.error();
  SimPki pki;
  pki.caCertPem = certPem(ca->get());
  pki.serverCertPem = certPem(srv->get());
  pki.serverKeyPem = keyPem(srvKey.get());
  return pki;
}

}  // namespace exitrec
