#include "runtime/signals.h"

#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace exitrec {
namespace {

sigset_t stopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

}  // namespace

Result<std::unique_ptr<SignalWatcher>> SignalWatcher::start(
    std::function<void(const std::string&)> onSignal) {
  const sigset_t set = stopSignals();
  if (int rc = pthread_sigmask(SIG_BLOCK, &set, nullptr); rc != 0)
    return Error(ErrorCode::kPermanent, std::string("blocking SIGTERM/SIGINT: ") + strerror(rc));
  std::unique_ptr<SignalWatcher> w(new SignalWatcher());
  w->onSignal_ = std::move(onSignal);
  w->signalFd_ = signalfd(-1, &set, SFD_CLOEXEC);
  if (w->signalFd_ < 0)
    return Error(ErrorCode::kPermanent, std::string("signalfd: ") + strerror(errno));
  w->wakeFd_ = eventfd(0, EFD_CLOEXEC);
  if (w->wakeFd_ < 0)
    return Error(ErrorCode::kPermanent, std::string("eventfd: ") + strerror(errno));
  w->thread_ = std::thread([raw = w.get()] { raw->loop(); });
  return w;
}

SignalWatcher::~SignalWatcher() {
  if (thread_.joinable()) {
    const std::uint64_t one = 1;
    if (write(wakeFd_, &one, sizeof(one)) != static_cast<ssize_t>(sizeof(one)))
      spdlog::warn("signal watcher: waking its thread failed: {}", strerror(errno));
    thread_.join();
  }
  if (signalFd_ >= 0)
    close(signalFd_);
  if (wakeFd_ >= 0)
    close(wakeFd_);
  const sigset_t set = stopSignals();
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

void SignalWatcher::loop() {
  int received = 0;
  while (true) {
    pollfd fds[2] = {{signalFd_, POLLIN, 0}, {wakeFd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      spdlog::error("signal watcher: poll: {}", strerror(errno));
      return;
    }
    if (fds[1].revents != 0)
      return;
    signalfd_siginfo info{};
    if (read(signalFd_, &info, sizeof(info)) != static_cast<ssize_t>(sizeof(info)))
      continue;
    const std::string name = info.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT";
    if (++received > 1) {
      spdlog::error("second {}: exiting at once", name);
      spdlog::default_logger()->flush();
      std::_Exit(1);
    }
    spdlog::info("{} received", name);
    onSignal_(name);
  }
}

}  // namespace exitrec
