// exit-reconciler: the command users and the container image run.
//
// It serves `audit` itself and links only what audit needs (engine, simdjson,
// yaml-cpp, zlib/zstd/brotli): audit is a short-lived CLI, and loading the
// operator's shared libraries (cpprest, OpenSSL, prometheus-cpp, Boost.Asio,
// spdlog, fmt, ...) at start-up cost more than auditing a small workflow.
// `run` and `backfill` live in the sibling binary exit-reconciler-operator,
// installed in the same directory; as git does with its helpers, this process
// exec()s it with argv unchanged. Same PID, so signals, PID 1 in a container
// and the exit status are the operator's own.
#include <unistd.h>

#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "controller/audit.h"
#include "controller/cli.h"
#include "controller/subcommands.h"

namespace {

namespace sub = exitrec::subcommands;

// The process's own argv[0], passed on to the operator unchanged.
char* gArgv0 = nullptr;

int failToStart(std::string_view command, const std::string& reason) {
  std::cerr << sub::kLauncher << ": cannot start `" << command << "`: " << reason << "\n";
  return exitrec::cli::kExitUsage;
}

// Replaces this process with the operator binary next to our own executable.
// `argv` starts at the subcommand name (argv[0] == "run"); the operator gets
// our full argv. Returns only on failure.
int execOperator(int argc, char** argv) {
  std::array<char, PATH_MAX + 1> self{};
  ssize_t n = ::readlink("/proc/self/exe", self.data(), self.size());
  if (n < 0)
    return failToStart(argv[0], std::string("readlink /proc/self/exe: ") + std::strerror(errno));
  if (static_cast<std::size_t>(n) >= self.size())
    return failToStart(argv[0], "readlink /proc/self/exe: path too long");
  std::string path(self.data(), static_cast<std::size_t>(n));
  path.erase(path.rfind('/') + 1);  // the kernel's path is absolute: a '/' exists
  path += sub::kOperator;

  std::vector<char*> args;
  args.reserve(static_cast<std::size_t>(argc) + 2);
  args.push_back(gArgv0);
  args.insert(args.end(), argv, argv + argc);
  args.push_back(nullptr);
  ::execv(path.c_str(), args.data());
  const int e = errno;
  return failToStart(argv[0], path + ": " + std::strerror(e) + " (" + std::string(sub::kOperator) +
                                  " must be installed next to " + std::string(sub::kLauncher) +
                                  ")");
}

// `audit --kfp-api-url` needs the HTTP stack: the operator serves it.
int runAuditOrHistory(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i] == nullptr ? std::string_view() : std::string_view(argv[i]);
    if (arg == "--")
      break;
    if (arg == "--kfp-api-url" || arg.starts_with("--kfp-api-url="))
      return execOperator(argc, argv);
  }
  return exitrec::runAudit(argc, argv);
}

constexpr std::array kCommands = {
    exitrec::cli::Subcommand{sub::kAudit, sub::kAuditSummary, &runAuditOrHistory},
    exitrec::cli::Subcommand{sub::kBackfill, sub::kBackfillSummary, &execOperator},
    exitrec::cli::Subcommand{sub::kRun, sub::kRunSummary, &execOperator},
};

}  // namespace

int main(int argc, char** argv) {
  static char fallbackName[] = "exit-reconciler";
  gArgv0 = argc > 0 && argv[0] != nullptr ? argv[0] : fallbackName;
  if (sub::asksForSandbox(argc, argv)) {
    std::cerr << sub::kLauncher << ": error: " << sub::kSandboxMoved << "\n";
    return exitrec::cli::kExitUsage;
  }
  return exitrec::cli::dispatch(sub::kLauncher, sub::kDescription, kCommands, argc, argv, std::cout,
                                std::cerr);
}
