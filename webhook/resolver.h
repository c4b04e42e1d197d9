#pragma once
// ExitTaskResolver: one decision for one pod, shared by the webhook and the
// pod-annotation channel. Reads the run's state through a RunStateProvider,
// then applies the pure logic (exit_task.h, injector.h).
//
// Thread-safety: decide() may be called concurrently (the provider must allow
// it). Blocking: decide() performs the provider's I/O on the calling thread.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

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

 private:
  RunStateProvider& provider_;
  Clock& clock_;
};

// ownerReferences[kind=Workflow].uid, or "".
std::string workflowOwnerUid(const nlohmann::json& pod);

}  // namespace exitrec
