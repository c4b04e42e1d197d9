# The operator (`exit-reconciler run`, `backfill`, `audit --kfp-api-url`);
# included from controller/CMakeLists.txt. The sandbox (both simulators and the
# controller in-process) is a development binary in sandbox/, not linked here.

# exitrec_reconcile: the correction state machine and the reconciler (pure
# decisions + execution through interfaces; no HTTP, no metrics library).
add_library(exitrec_reconcile STATIC correction.cpp kfp_report_body.cpp reconciler.cpp
  workflow_record.cpp)
target_link_libraries(exitrec_reconcile
  PUBLIC exitrec_options exitrec_common exitrec_engine
  PRIVATE nlohmann_json::nlohmann_json spdlog::spdlog)

# exitrec_kfp_client: the KFP report/run API client over k8sclient's HttpTransport.
add_library(exitrec_kfp_client STATIC kfp_client.cpp)
target_link_libraries(exitrec_kfp_client
  PUBLIC exitrec_reconcile exitrec_k8s
  PRIVATE nlohmann_json::nlohmann_json)

# exitrec_operator: the controller runtime and the `run` subcommand.
# metrics_bridge.cpp is the only file here that sees metrics/metrics.h.
add_library(exitrec_operator STATIC
  controller.cpp
  health_server.cpp
  logging.cpp
  metrics_bridge.cpp
  run_command.cpp
  run_config.cpp)
target_link_libraries(exitrec_operator
  PUBLIC exitrec_reconcile exitrec_kfp_client exitrec_k8s exitrec_cli exitrec_options
         exitrec_webhook exitrec_history exitrec_runtime
         exitrec_pod_annotations
  PRIVATE exitrec_metrics exitrec_http_server nlohmann_json::nlohmann_json spdlog::spdlog)

# exit-reconciler-operator: `run`, `backfill` (and `audit`). Built next to the
# launcher, which exec()s it; the dependency makes every consumer of
# exit-reconciler (tests, scripts, the image) get the operator too.
add_executable(exit-reconciler-operator operator_main.cpp)
target_link_libraries(exit-reconciler-operator
  PRIVATE exitrec_audit exitrec_operator exitrec_cli exitrec_options)
add_dependencies(exit-reconciler exit-reconciler-operator)
