// libFuzzer target: AdmissionReview decoding, the first thing the webhook
// does with a request body. On arbitrary bytes it aborts when:
// - the fast out-of-scope path or the full parse throws or crashes;
// - the fast path answers with anything but one valid AdmissionReview that
//   allows the pod unchanged and echoes a uid;
// - the fast path answers for a body the full parse rejects as malformed
//   (a bad request must get its 400), or answers otherwise than the full path
//   would: a pod the full path finds in scope, or another response (duplicate
//   keys once made them read different values);
// - reading the pod (identity, owner, scope, the annotation channel's
//   wants(), observePod()) throws on the decoded request.object.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "controller/pod_annotations/pod_annotation_channel.h"
#include "webhook/admission_webhook.h"
#include "webhook/injector.h"
#include "webhook/resolver.h"
#include "webhook/state_provider.h"

namespace {

using namespace exitrec;

[[noreturn]] void broken(const char* what, const std::string& detail) {
  std::fprintf(stderr, "invariant broken: %s\n%s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  try {
    auto fast = fastOutOfScopeResponse(body);
    auto full = parseAdmissionReview(body);
    if (fast) {
      auto reply = nlohmann::json::parse(*fast, nullptr, /*allow_exceptions=*/false);
      if (!reply.is_object() || reply.value("kind", "") != "AdmissionReview" ||
          !reply.contains("response") || !reply["response"].is_object() ||
          reply["response"].value("allowed", false) != true || !reply["response"].contains("uid") ||
          reply["response"].contains("patch")) {
        broken("the fast path allows unchanged with one valid AdmissionReview", *fast);
      }
      if (!full)
        broken("the fast path never answers a malformed review", full.error().message);
      // The same decision and the same answer as the full path: out of scope by
      // its rule, and the response admissionResponse() writes.
      PodIdentity id = podIdentityOf(full->object);
      if (id.namespace_.empty())
        id.namespace_ = full->namespace_;
      const bool fullOutOfScope = full->kind != "Pod" || !full->group.empty() ||
                                  full->operation != "CREATE" ||
                                  !ExitTaskResolver::worthResolving(id);
      if (!fullOutOfScope)
        broken("the fast path answers only reviews the full path finds out of scope", *fast);
      if (reply != nlohmann::json::parse(admissionResponse(full->apiVersion, full->uid, nullptr)))
        broken("the fast path answers as admissionResponse() does", *fast);
    }
    if (full) {
      const nlohmann::json& pod = full->object;
      PodIdentity id = podIdentityOf(pod);
      (void)ExitTaskResolver::worthResolving(id);
      (void)workflowOwnerUid(pod);
      (void)PodAnnotationChannel::wants(pod);
      (void)observePod(pod);
      (void)alreadyInjected(pod);
      (void)admissionResponse(full->apiVersion, full->uid, nullptr);
    }
  } catch (const std::exception& e) {
    broken("decoding an AdmissionReview never throws", e.what());
  }
  return 0;
}
