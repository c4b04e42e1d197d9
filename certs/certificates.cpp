#include "certs/certificates.h"

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>
#include <sstream>

namespace exitrec {

namespace {

struct Deleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};
template <typename T>
using Ptr = std::unique_ptr<T, Deleter>;

Error sslError(const std::string& what) {
  return Error(ErrorCode::kPermanent, "certificates: " + what + " failed");
}

Ptr<EVP_PKEY> newKey() {
  Ptr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_EC, nullptr));
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) <= 0 ||
      EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx.get(), NID_X9_62_prime256v1) <= 0) {
    return nullptr;
  }
  EVP_PKEY* key = nullptr;
  if (EVP_PKEY_keygen(ctx.get(), &key) <= 0)
    return nullptr;
  return Ptr<EVP_PKEY>(key);
}

std::string bioString(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

Result<std::string> certPem(X509* cert) {
  Ptr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1)
    return sslError("PEM_write_bio_X509");
  return bioString(bio.get());
}

Result<std::string> keyPem(EVP_PKEY* key) {
  Ptr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return sslError("PEM_write_bio_PrivateKey");
  }
  return bioString(bio.get());
}

Ptr<X509> readCert(const std::string& pem) {
  Ptr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio)
    return nullptr;
  return Ptr<X509>(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

Ptr<EVP_PKEY> readKey(const std::string& pem) {
  Ptr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio)
    return nullptr;
  return Ptr<EVP_PKEY>(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

bool addExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  Ptr<X509_EXTENSION> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  return ext && X509_add_ext(cert, ext.get(), -1) == 1;
}

Result<Ptr<X509>> newCert(EVP_PKEY* key, const std::string& cn, std::chrono::hours validity,
                          std::chrono::minutes backdate,
                          std::optional<std::chrono::system_clock::time_point> issuedAt) {
  Ptr<X509> cert(X509_new());
  if (!cert)
    return sslError("X509_new");
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1)
    return sslError("RAND_bytes");
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  ASN1_INTEGER* sn = BN_to_ASN1_INTEGER(bn, nullptr);
  BN_free(bn);
  X509_set_serialNumber(cert.get(), sn);
  ASN1_INTEGER_free(sn);
  time_t from =
      std::chrono::system_clock::to_time_t(issuedAt.value_or(std::chrono::system_clock::now()));
  if (!X509_time_adj(X509_getm_notBefore(cert.get()),
                     -static_cast<long>(std::chrono::seconds(backdate).count()), &from) ||
      !X509_time_adj(X509_getm_notAfter(cert.get()),
                     static_cast<long>(std::chrono::seconds(validity).count()), &from)) {
    return sslError("X509_time_adj");
  }
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  return cert;
}

// Signs `cert` with `signer` and returns it with its own key, as PEM.
Result<PemPair> signedPair(X509* cert, EVP_PKEY* key, EVP_PKEY* signer) {
  if (X509_sign(cert, signer, EVP_sha256()) <= 0)
    return sslError("X509_sign");
  auto cp = certPem(cert);
  if (!cp.ok())
    return cp.error();
  auto kp = keyPem(key);
  if (!kp.ok())
    return kp.error();
  return PemPair{cp.value(), kp.value()};
}

}  // namespace

Result<PemPair> generateCa(const std::string& commonName, std::chrono::hours validity,
                           std::optional<std::chrono::system_clock::time_point> issuedAt) {
  Ptr<EVP_PKEY> key = newKey();
  if (!key)
    return sslError("EC key generation");
  auto cert = newCert(key.get(), commonName, validity, std::chrono::minutes(5), issuedAt);
  if (!cert.ok())
    return cert.error();
  X509* c = cert.value().get();
  X509_set_issuer_name(c, X509_get_subject_name(c));
  if (!addExt(c, c, NID_basic_constraints, "critical,CA:TRUE") ||
      !addExt(c, c, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature") ||
      !addExt(c, c, NID_subject_key_identifier, "hash")) {
    return sslError("CA extensions");
  }
  return signedPair(c, key.get(), key.get());
}

Result<PemPair> generateServingCertificate(const PemPair& ca, const CertificateRequest& req) {
  Ptr<X509> caCert = readCert(ca.certPem);
  Ptr<EVP_PKEY> caKey = readKey(ca.keyPem);
  if (!caCert || !caKey)
    return Error(ErrorCode::kInvalidInput, "certificates: unreadable CA PEM");
  Ptr<EVP_PKEY> key = newKey();
  if (!key)
    return sslError("EC key generation");
  auto cert = newCert(key.get(), req.commonName, req.validity, req.backdate, req.issuedAt);
  if (!cert.ok())
    return cert.error();
  X509* c = cert.value().get();
  X509_set_issuer_name(c, X509_get_subject_name(caCert.get()));
  std::string san;
  for (const auto& d : req.dnsNames)
    san += (san.empty() ? "" : ",") + std::string("DNS:") + d;
  for (const auto& ip : req.ipAddresses)
    san += (san.empty() ? "" : ",") + std::string("IP:") + ip;
  if (san.empty())
    return Error(ErrorCode::kInvalidInput, "certificates: no DNS name or IP given");
  if (!addExt(c, caCert.get(), NID_basic_constraints, "critical,CA:FALSE") ||
      !addExt(c, caCert.get(), NID_key_usage, "critical,digitalSignature,keyEncipherment") ||
      !addExt(c, caCert.get(), NID_ext_key_usage, "serverAuth") ||
      !addExt(c, caCert.get(), NID_subject_alt_name, san)) {
    return sslError("serving certificate extensions");
  }
  return signedPair(c, key.get(), caKey.get());
}

std::vector<std::string> splitPemCertificates(const std::string& bundle) {
  static constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
  static constexpr std::string_view kEnd = "-----END CERTIFICATE-----";
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (true) {
    const auto b = bundle.find(kBegin, pos);
    if (b == std::string::npos)
      break;
    const auto e = bundle.find(kEnd, b + kBegin.size());
    if (e == std::string::npos)
      break;
    out.push_back(bundle.substr(b, e + kEnd.size() - b) + "\n");
    pos = e + kEnd.size();
  }
  return out;
}

bool keyMatchesCertificate(const std::string& certPemText, const std::string& keyPemText) {
  Ptr<X509> cert = readCert(certPemText);
  Ptr<EVP_PKEY> key = readKey(keyPemText);
  return cert && key && X509_check_private_key(cert.get(), key.get()) == 1;
}

Result<double> certificateNotAfterPem(const std::string& pem) {
  Ptr<X509> cert = readCert(pem);
  if (!cert)
    return Error(ErrorCode::kInvalidInput, "certificates: no PEM certificate found");
  struct tm tm {};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert.get()), &tm) != 1) {
    return Error(ErrorCode::kInvalidInput, "certificates: unreadable notAfter");
  }
  return static_cast<double>(timegm(&tm));
}

Result<double> certificateNotAfter(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Error(ErrorCode::kInvalidInput, "certificates: cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return certificateNotAfterPem(ss.str());
}

bool certificateUsable(const std::string& certPemText, const std::string& caPem,
                       const std::string& dnsName, std::chrono::system_clock::time_point now,
                       std::chrono::hours margin) {
  Ptr<X509> cert = readCert(certPemText);
  Ptr<X509> ca = readCert(caPem);
  if (!cert || !ca)
    return false;
  Ptr<EVP_PKEY> caKey(X509_get_pubkey(ca.get()));
  if (!caKey || X509_verify(cert.get(), caKey.get()) != 1)
    return false;
  if (X509_check_host(cert.get(), dnsName.c_str(), dnsName.size(), 0, nullptr) != 1)
    return false;
  const time_t until = std::chrono::system_clock::to_time_t(now + margin);
  time_t t = until;
  if (X509_cmp_time(X509_get0_notAfter(cert.get()), &t) <= 0)
    return false;
  time_t n = std::chrono::system_clock::to_time_t(now);
  return X509_cmp_time(X509_get0_notBefore(cert.get()), &n) < 0;
}

Status writeFileAtomic(const std::string& path, const std::string& content, unsigned mode) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out)
      return Error(ErrorCode::kPermanent, "cannot write " + tmp);
    out << content;
    out.flush();
    if (!out)
      return Error(ErrorCode::kPermanent, "cannot write " + tmp);
  }
  ::chmod(tmp.c_str(), static_cast<mode_t>(mode));
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return Error(ErrorCode::kPermanent, "cannot rename " + tmp + " to " + path);
  }
  return Status();
}

}  // namespace exitrec
