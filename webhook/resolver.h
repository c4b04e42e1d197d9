#pragma once
// ExitTaskResolver: one decision for one pod, shared by the webhook and the
// pod-annotation channel. Reads the run's state through a RunStateProvider,
// then applies the pure logic (exit_task.h, injector.h).
//
// Reads: recentWorkflow() first; when the exit handler's body is not final in
// that copy, workflow() (a live read), and then the run's finished pods.
//
// Thread-safety: decide() may be called concurrently (the provider must allow
// it). Blocking: decide() performs the provider's I/O on the calling thread.

#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/clock.h"
#include "common/result.h"
#include "webhook/exit_task.h"
#include "webhook/injector.h"
#include "webhook/state_provider.h"

namespace exitrec {

struct ExitTaskDecision {
  enum class Outcome : std::uint8_t {
    kOutOfScope,        // not an exit-task pod: leave it alone
    kNoUserCode,        // an exit-task pod without user code (driver, importer)
    kAlreadyInjected,   // carries our annotations already
    kInject,            // `plan` holds the injection
    kStateUnavailable,  // the Workflow or the run's pods could not be read (`error`)
  };
  Outcome outcome = Outcome::kOutOfScope;
  std::optional<ExitTaskTarget> target;
  ExitTaskState state;
  InjectionPlan plan;
  std::optional<Error> error;
};

class ExitTaskResolver {
 public:
  // Both references must outlive the resolver.
  ExitTaskResolver(RunStateProvider& provider, Clock& clock) : provider_(provider), clock_(clock) {}

  // `requestNamespace` fills the pod's namespace when its metadata lacks it
  // (as in admission requests). Never throws.
  ExitTaskDecision decide(const nlohmann::json& pod, std::string_view requestNamespace = {});

  // Cheap, no I/O: false = certainly out of scope.
  static bool worthResolving(const PodIdentity& id);

  // Reviews answered from the computed-state cache (for tests and benchmarks).
  std::uint64_t stateCacheHits() const;

 private:
  // computeExitTaskState, remembered per (Workflow uid, resourceVersion, exit
  // task): repeated reviews of one stored version do not re-evaluate.
  ExitTaskState cachedState(const Workflow& wf, const ExitTaskTarget& target);
  static constexpr std::size_t kStateCacheEntries = 64;  // cleared when full

  RunStateProvider& provider_;
  Clock& clock_;
  mutable std::mutex stateMu_;
  std::unordered_map<std::string, ExitTaskState> states_;
  std::uint64_t stateHits_ = 0;
};

// ownerReferences[kind=Workflow].uid, or "".
std::string workflowOwnerUid(const nlohmann::json& pod);

}  // namespace exitrec
