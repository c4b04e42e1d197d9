#pragma once
// Builds a ready KubeClient from a RestConfig: the cpprest transport with
// the config's TLS settings and a TokenSource (fixed token, token file
// re-read every minute on `clock`, or none).

#include <memory>

#include "common/clock.h"
#include "common/result.h"
#include "k8sclient/kube_client.h"
#include "k8sclient/kube_config.h"

namespace exitrec {

TokenSource tokenSourceFor(const RestConfig& cfg, Clock& clock);

// kInvalidInput when a TLS file is unreadable or the server is not http(s).
Result<std::unique_ptr<KubeClient>> makeKubeClient(const RestConfig& cfg, Clock& clock,
                                                   KubeClientOptions options = {});

}  // namespace exitrec
