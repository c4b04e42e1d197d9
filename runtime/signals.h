#pragma once
// SignalWatcher: SIGTERM and SIGINT taken synchronously, through signalfd(2),
// so no asynchronous handler runs and nothing polls a flag.
//
// - start() blocks both signals in the calling thread. Call it on the main
//   thread before any other thread exists: threads created afterwards
//   inherit the mask, so the signals stay pending for the process and only
//   the watcher's thread, reading the signalfd, receives them.
// - The first signal calls onSignal(name) (e.g. StopSource::requestStop).
//   A second one exits the process at once with status 1, like
//   controller-runtime's SetupSignalHandler (pkg/manager/signals).
// - Destruction stops the thread and restores the signal mask of the thread
//   that called start().

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/result.h"

namespace exitrec {

class SignalWatcher {
 public:
  static Result<std::unique_ptr<SignalWatcher>> start(
      std::function<void(const std::string& signalName)> onSignal);
  ~SignalWatcher();

  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

 private:
  SignalWatcher() = default;
  void loop();

  std::function<void(const std::string&)> onSignal_;
  int signalFd_ = -1;
  int wakeFd_ = -1;  // eventfd: tells the thread to end
  std::thread thread_;
};

}  // namespace exitrec
