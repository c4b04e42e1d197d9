#include "certs/self_signed_bootstrap.h"

#include <spdlog/spdlog.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "certs/certificates.h"
#include "common/base64.h"
#include "k8sclient/kube_client.h"

namespace exitrec {

namespace {

const ResourceRef kSecrets{"", "v1", "secrets", true};
const ResourceRef kMutatingWebhookConfigurations{"admissionregistration.k8s.io", "v1",
                                                 "mutatingwebhookconfigurations", false};

std::string dataField(const nlohmann::json& secret, const char* key) {
  auto data = secret.find("data");
  if (data == secret.end() || !data->is_object())
    return {};
  auto it = data->find(key);
  if (it == data->end() || !it->is_string())
    return {};
  auto decoded = base64Decode(it->get<std::string>());
  return decoded.ok() ? std::move(decoded).value() : std::string();
}

// What the Secret holds; anything unreadable is empty.
struct StoredTls {
  std::vector<std::string> cas;  // ca.crt, current first
  std::string caKey;
  std::string cert;
  std::string key;

  const std::string& currentCa() const {
    static const std::string kNone;
    return cas.empty() ? kNone : cas.front();
  }
  std::string bundle() const {
    std::string b;
    for (const auto& c : cas)
      b += c;
    return b;
  }
};

StoredTls readStored(const nlohmann::json& secret) {
  return {splitPemCertificates(dataField(secret, "ca.crt")), dataField(secret, "ca.key"),
          dataField(secret, "tls.crt"), dataField(secret, "tls.key")};
}

double unixSeconds(Clock::WallTime t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

// The certificate is valid until at least `until` (false if unreadable).
bool validUntil(const std::string& pem, Clock::WallTime until) {
  auto notAfter = certificateNotAfterPem(pem);
  return notAfter.ok() && notAfter.value() >= unixSeconds(until);
}

bool servingUsable(const StoredTls& t, const std::string& host, Clock::WallTime now,
                   std::chrono::hours renewBefore) {
  return !t.cert.empty() && !t.key.empty() && keyMatchesCertificate(t.cert, t.key) &&
         certificateUsable(t.cert, t.currentCa(), host, now, renewBefore);
}

// The current CA can sign a serving certificate that expires before it does.
bool caUsable(const StoredTls& t, Clock::WallTime now, std::chrono::hours servingValidity) {
  return !t.currentCa().empty() && keyMatchesCertificate(t.currentCa(), t.caKey) &&
         validUntil(t.currentCa(), now + servingValidity);
}

// A new serving certificate (and, when needed, a new CA) for `current`.
Result<StoredTls> renew(const StoredTls& current, const SelfSignedOptions& o,
                        const std::vector<std::string>& names, Clock::WallTime now,
                        bool& caRotated) {
  StoredTls next;
  PemPair ca{current.currentCa(), current.caKey};
  caRotated = !caUsable(current, now, o.validity);
  if (caRotated) {
    auto newCa = generateCa(o.serviceName + "-webhook-ca", o.caValidity, now);
    if (!newCa.ok())
      return newCa.error();
    ca = newCa.value();
    next.caKey = ca.keyPem;
    next.cas = splitPemCertificates(ca.certPem);
    // Keep trusting the previous CA while it lasts: replicas that have not
    // synced yet still serve certificates it signed.
    if (!current.currentCa().empty() && validUntil(current.currentCa(), now))
      next.cas.push_back(current.currentCa());
  } else {
    next.caKey = current.caKey;
    for (const auto& c : current.cas) {
      if (validUntil(c, now))
        next.cas.push_back(c);
    }
  }
  CertificateRequest req;
  req.commonName = names[2];
  req.dnsNames = names;
  req.validity = o.validity;
  req.issuedAt = now;
  auto serving = generateServingCertificate(ca, req);
  if (!serving.ok())
    return serving.error();
  next.cert = serving->certPem;
  next.key = serving->keyPem;
  return next;
}

// Step 1: the Secret's pair, renewed when due (optimistic concurrency).
Result<StoredTls> ensureSecret(KubeClient& client, Clock& clock, const SelfSignedOptions& o,
                               BootstrapResult& result) {
  const auto names = serviceDnsNames(o.serviceName, o.namespace_);
  const std::string& host = names[2];  // what the API server dials: <svc>.<ns>.svc
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto secret = client.get(kSecrets, o.namespace_, o.secretName);
    if (!secret.ok())
      return secret.error();
    nlohmann::json s = std::move(secret).value();
    StoredTls stored = readStored(s);
    const auto now = clock.wallNow();
    if (servingUsable(stored, host, now, o.renewBefore))
      return stored;
    bool caRotated = false;
    auto next = renew(stored, o, names, now, caRotated);
    if (!next.ok())
      return next.error();
    s["type"] = s.value("type", "Opaque");
    s["data"] = {{"ca.crt", base64Encode(next->bundle())},
                 {"ca.key", base64Encode(next->caKey)},
                 {"tls.crt", base64Encode(next->cert)},
                 {"tls.key", base64Encode(next->key)}};
    auto updated = client.update(kSecrets, o.namespace_, o.secretName, s);
    if (updated.ok()) {
      result.generated = true;
      result.caRotated = caRotated;
      spdlog::info("webhook TLS: stored a new serving certificate for {}{} in Secret {}/{}", host,
                   caRotated ? " and a new CA" : "", o.namespace_, o.secretName);
      return next;
    }
    if (updated.error().code != ErrorCode::kConflict)
      return updated.error();
    // Another replica stored its pair first: read and use it.
  }
  return Error(ErrorCode::kConflict,
               "webhook TLS: Secret " + o.secretName + " kept changing; no usable certificate");
}

std::string stringField(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Step 2: caBundle = the trusted CAs.
Result<int> ensureCaBundle(KubeClient& client, const SelfSignedOptions& o,
                           const std::string& bundlePem) {
  auto config = client.get(kMutatingWebhookConfigurations, "", o.configurationName);
  if (!config.ok())
    return config.error();
  if (!config.value().is_object())
    return Error(ErrorCode::kInvalidInput, o.configurationName + ": not an object");
  const std::string bundle = base64Encode(bundlePem);
  nlohmann::json ops = nlohmann::json::array();
  int patched = 0;
  const auto hooks = config.value().value("webhooks", nlohmann::json::array());
  if (!hooks.is_array())
    return Error(ErrorCode::kInvalidInput, o.configurationName + ": webhooks is not a list");
  for (std::size_t i = 0; i < hooks.size(); ++i) {
    if (!hooks[i].is_object())
      continue;
    const auto cc = hooks[i].value("clientConfig", nlohmann::json::object());
    const auto svc =
        cc.is_object() ? cc.value("service", nlohmann::json::object()) : nlohmann::json::object();
    if (!svc.is_object() || stringField(svc, "name") != o.serviceName ||
        stringField(svc, "namespace") != o.namespace_) {
      continue;
    }
    const std::string path = "/webhooks/" + std::to_string(i) + "/clientConfig/caBundle";
    if (cc.contains("caBundle")) {
      if (cc["caBundle"] == bundle)
        continue;
      ops.push_back({{"op", "test"}, {"path", path}, {"value", cc["caBundle"]}});
      ops.push_back({{"op", "replace"}, {"path", path}, {"value", bundle}});
    } else {
      ops.push_back({{"op", "add"}, {"path", path}, {"value", bundle}});
    }
    ++patched;
  }
  if (!ops.empty()) {
    auto r = client.jsonPatch(kMutatingWebhookConfigurations, "", o.configurationName, ops);
    if (!r.ok())
      return r.error();
    spdlog::info("webhook TLS: caBundle of {} webhook(s) in {} updated", patched,
                 o.configurationName);
  }
  return patched;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Step 3: the files the HTTPS server reloads, when they differ.
Result<bool> ensureFiles(const SelfSignedOptions& o, const StoredTls& t) {
  if (readFile(o.certFile) == t.cert && readFile(o.keyFile) == t.key)
    return false;
  Status w = writeFileAtomic(o.keyFile, t.key, 0600);
  if (w.ok())
    w = writeFileAtomic(o.certFile, t.cert, 0644);
  if (!w.ok())
    return w.error();
  return true;
}

}  // namespace

std::vector<std::string> serviceDnsNames(const std::string& service, const std::string& ns) {
  return {service, service + "." + ns, service + "." + ns + ".svc",
          service + "." + ns + ".svc.cluster.local"};
}

Result<BootstrapResult> syncSelfSignedTls(KubeClient& client, Clock& clock,
                                          const SelfSignedOptions& o) {
  BootstrapResult result;
  auto stored = ensureSecret(client, clock, o, result);
  if (!stored.ok())
    return stored.error();
  result.caPem = stored->bundle();
  result.servingPem = stored->cert;
  auto patched = ensureCaBundle(client, o, result.caPem);
  if (!patched.ok())
    return patched.error();
  result.webhooksPatched = patched.value();
  auto written = ensureFiles(o, stored.value());
  if (!written.ok())
    return written.error();
  result.filesWritten = written.value();
  return result;
}

}  // namespace exitrec
