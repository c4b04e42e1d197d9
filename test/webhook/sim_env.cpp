#include "test/webhook/sim_env.h"

#include <gtest/gtest.h>

#include "k8sclient/cpprest_transport.h"
#include "k8sclient/kube_client.h"
#include "sim/kube_api_simulator.h"

namespace exitrec::testing {

namespace {

ResourceRef refOf(const std::string& plural) {
  if (plural == "workflows")
    return resources::kWorkflows;
  return ResourceRef{"", "v1", plural, plural != "namespaces"};
}

class SimEnvImpl final : public SimEnv {
 public:
  Status init(const std::string& stateDir, const std::string& ns) {
    KubeApiSimulator::Options o;
    o.stateDir = stateDir;
    sim_ = std::make_unique<KubeApiSimulator>(o);
    Status s = sim_->start();
    if (!s.ok())
      return s;
    s = sim_->seed({{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
    if (!s.ok())
      return s;
    auto t = makeCpprestTransport(TlsOptions{});
    if (!t.ok())
      return t.error();
    client_ = std::make_unique<KubeClient>(std::shared_ptr<HttpTransport>(std::move(t).value()),
                                           sim_->baseUrl(), TokenSource());
    provider_ = std::make_unique<KubeRunStateProvider>(*client_, SystemClock::instance());
    writer_ = std::make_unique<KubeAnnotationWriter>(*client_);
    return Status();
  }
  ~SimEnvImpl() override {
    if (sim_)
      sim_->stop();
  }
  Status seed(const nlohmann::json& obj) override { return sim_->seed(obj); }
  Result<nlohmann::json> create(const std::string& plural, const std::string& ns,
                                const nlohmann::json& obj) override {
    return client_->create(refOf(plural), ns, obj);
  }
  Result<nlohmann::json> get(const std::string& plural, const std::string& ns,
                             const std::string& name) override {
    return client_->get(refOf(plural), ns, name);
  }
  void failNext(const std::string& verb, const std::string& resource, int count,
                int status) override {
    SimFailRule r;
    r.verb = verb;
    r.resource = resource;
    r.count = count;
    r.status = status;
    sim_->failNext(r);
  }
  RunStateProvider& provider() override { return *provider_; }
  std::unique_ptr<PodWatch> makePodWatch(PodAnnotationChannel& channel,
                                         PodWatchOptions options) override {
    return std::make_unique<PodWatch>(*client_, SystemClock::instance(), channel,
                                      std::move(options));
  }
  std::unique_ptr<KubeRunStateProvider> makeProvider(
      const KubeRunStateProvider::Options& options) override {
    return std::make_unique<KubeRunStateProvider>(*client_, SystemClock::instance(), options);
  }
  AnnotationWriter& writer() override { return *writer_; }

 private:
  std::unique_ptr<KubeApiSimulator> sim_;
  std::unique_ptr<KubeClient> client_;
  std::unique_ptr<KubeRunStateProvider> provider_;
  std::unique_ptr<KubeAnnotationWriter> writer_;
};

}  // namespace

std::unique_ptr<SimEnv> SimEnv::start(const std::string& stateDir, const std::string& ns) {
  auto env = std::make_unique<SimEnvImpl>();
  Status s = env->init(stateDir, ns);
  if (!s.ok()) {
    ADD_FAILURE_AT(__FILE__, __LINE__) << "simulator: " << s.error().message;
    return nullptr;
  }
  return env;
}

}  // namespace exitrec::testing
