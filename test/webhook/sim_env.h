#pragma once
// The Kubernetes API simulator plus a real KubeClient and the production
// adapters (KubeRunStateProvider, KubeAnnotationWriter), behind an opaque
// type (sim_env.cpp includes k8sclient and the simulator).

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"
#include "controller/pod_annotations/pod_watch.h"
#include "webhook/state_provider.h"

namespace exitrec::testing {

class SimEnv {
 public:
  // Starts the simulator (plain HTTP on 127.0.0.1:0) with namespace `ns`.
  static std::unique_ptr<SimEnv> start(const std::string& stateDir, const std::string& ns);
  virtual ~SimEnv() = default;

  virtual Status seed(const nlohmann::json& objectOrList) = 0;
  // POST the object (as the API server stores an admitted pod).
  virtual Result<nlohmann::json> create(const std::string& plural, const std::string& ns,
                                        const nlohmann::json& obj) = 0;
  virtual Result<nlohmann::json> get(const std::string& plural, const std::string& ns,
                                     const std::string& name) = 0;
  // The next `count` requests of `verb` on `resource` answer `status`.
  virtual void failNext(const std::string& verb, const std::string& resource, int count,
                        int status) = 0;
  virtual RunStateProvider& provider() = 0;
  // A pod watch over the simulator (not started).
  virtual std::unique_ptr<PodWatch> makePodWatch(PodAnnotationChannel& channel,
                                                 PodWatchOptions options) = 0;
  // Another production provider over the same client (e.g. without caching).
  virtual std::unique_ptr<KubeRunStateProvider> makeProvider(
      const KubeRunStateProvider::Options& options) = 0;
  virtual AnnotationWriter& writer() = 0;
};

}  // namespace exitrec::testing
