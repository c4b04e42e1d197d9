#include "webhook/self_signed_bootstrap.h"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "common/certificates.h"
#include "k8sclient/kube_client.h"

namespace exitrec {

namespace {

const ResourceRef kSecrets{"", "v1", "secrets", true};
const ResourceRef kMutatingWebhookConfigurations{"admissionregistration.k8s.io", "v1",
                                                 "mutatingwebhookconfigurations", false};

// Secret data values are base64; decode with OpenSSL's EVP (strict alphabet).
std::string base64Decode(const std::string& in) {
  if (in.empty())
    return {};
  std::string out(3 * (in.size() / 4) + 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0)
    return {};
  std::size_t len = static_cast<std::size_t>(n);
  // EVP_DecodeBlock counts padding bytes as output; drop them.
  if (in.size() >= 1 && in[in.size() - 1] == '=')
    --len;
  if (in.size() >= 2 && in[in.size() - 2] == '=')
    --len;
  out.resize(len);
  return out;
}

std::string dataField(const nlohmann::json& secret, const char* key) {
  auto data = secret.find("data");
  if (data == secret.end() || !data->is_object())
    return {};
  auto it = data->find(key);
  if (it == data->end() || !it->is_string())
    return {};
  return base64Decode(it->get<std::string>());
}

}  // namespace

std::vector<std::string> serviceDnsNames(const std::string& service, const std::string& ns) {
  return {service, service + "." + ns, service + "." + ns + ".svc",
          service + "." + ns + ".svc.cluster.local"};
}

Result<BootstrapResult> bootstrapSelfSignedTls(KubeClient& client, Clock& clock,
                                               const SelfSignedOptions& o) {
  BootstrapResult result;
  const auto names = serviceDnsNames(o.serviceName, o.namespace_);
  const std::string& host = names[2];  // what the API server dials: <svc>.<ns>.svc
  PemPair ca;
  PemPair serving;

  for (int attempt = 0; attempt < 3; ++attempt) {
    auto secret = client.get(kSecrets, o.namespace_, o.secretName);
    if (!secret.ok())
      return secret.error();
    nlohmann::json s = std::move(secret).value();
    ca = {dataField(s, "ca.crt"), dataField(s, "ca.key")};
    serving = {dataField(s, "tls.crt"), dataField(s, "tls.key")};
    if (!serving.certPem.empty() && !serving.keyPem.empty() &&
        certificateUsable(serving.certPem, ca.certPem, host, clock.wallNow(), o.renewBefore)) {
      break;  // reuse
    }
    auto newCa = generateCa(o.serviceName + "-webhook-ca", o.validity);
    if (!newCa.ok())
      return newCa.error();
    CertificateRequest req;
    req.commonName = host;
    req.dnsNames = names;
    req.validity = o.validity;
    auto newServing = generateServingCertificate(newCa.value(), req);
    if (!newServing.ok())
      return newServing.error();
    s["type"] = s.value("type", "Opaque");
    s["data"] = {{"ca.crt", base64Encode(newCa->certPem)},
                 {"ca.key", base64Encode(newCa->keyPem)},
                 {"tls.crt", base64Encode(newServing->certPem)},
                 {"tls.key", base64Encode(newServing->keyPem)}};
    auto updated = client.update(kSecrets, o.namespace_, o.secretName, s);
    if (updated.ok()) {
      ca = newCa.value();
      serving = newServing.value();
      result.generated = true;
      spdlog::info("webhook TLS: generated a CA and a serving certificate for {} in Secret {}/{}",
                   host, o.namespace_, o.secretName);
      break;
    }
    if (updated.error().code != ErrorCode::kConflict)
      return updated.error();
    // Another replica stored its pair first: read and reuse it.
    serving = {};
  }
  if (serving.certPem.empty()) {
    return Error(ErrorCode::kConflict,
                 "webhook TLS: Secret " + o.secretName + " kept changing; no usable certificate");
  }

  Status w = writeFileAtomic(o.keyFile, serving.keyPem, 0600);
  if (w.ok())
    w = writeFileAtomic(o.certFile, serving.certPem, 0644);
  if (!w.ok())
    return w.error();
  result.caPem = ca.certPem;

  auto config = client.get(kMutatingWebhookConfigurations, "", o.configurationName);
  if (!config.ok())
    return config.error();
  const std::string bundle = base64Encode(ca.certPem);
  nlohmann::json ops = nlohmann::json::array();
  const auto& hooks = config.value().value("webhooks", nlohmann::json::array());
  for (std::size_t i = 0; i < hooks.size(); ++i) {
    const auto& cc = hooks[i].value("clientConfig", nlohmann::json::object());
    const auto svc = cc.value("service", nlohmann::json::object());
    if (svc.value("name", "") != o.serviceName || svc.value("namespace", "") != o.namespace_)
      continue;
    const std::string path = "/webhooks/" + std::to_string(i) + "/clientConfig/caBundle";
    if (cc.contains("caBundle")) {
      if (cc["caBundle"] == bundle)
        continue;
      ops.push_back({{"op", "test"}, {"path", path}, {"value", cc["caBundle"]}});
      ops.push_back({{"op", "replace"}, {"path", path}, {"value", bundle}});
    } else {
      ops.push_back({{"op", "add"}, {"path", path}, {"value", bundle}});
    }
    ++result.webhooksPatched;
  }
  if (!ops.empty()) {
    auto patched = client.jsonPatch(kMutatingWebhookConfigurations, "", o.configurationName, ops);
    if (!patched.ok())
      return patched.error();
    spdlog::info("webhook TLS: caBundle of {} webhook(s) in {} updated", result.webhooksPatched,
                 o.configurationName);
  }
  return result;
}

}  // namespace exitrec
