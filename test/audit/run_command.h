#pragma once
// Runs a command line through /bin/sh with optional stdin text and captures
// stdout, stderr and the exit status. For tests that spawn built binaries.

#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace exitrec::testing {

struct CommandResult {
  int exitCode = -1;  // -1 when the process did not exit normally
  std::string out;
  std::string err;
};

inline std::string readWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string shellQuote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') {
      q += "'\\''";
    } else {
      q += c;
    }
  }
  return q + "'";
}

// `command` is a shell command line; stdin, if given, is written to a temp
// file and redirected. Temp files live in $TMPDIR (or /tmp) and are removed.
inline CommandResult runCommand(const std::string& command,
                                const std::string* stdinText = nullptr) {
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = tmp != nullptr ? tmp : "/tmp";
  std::string base = dir + "/exitrec-cmd-" + std::to_string(::getpid()) + "-" +
                     std::to_string(reinterpret_cast<std::uintptr_t>(&command));
  std::string inPath = base + ".in";
  std::string outPath = base + ".out";
  std::string errPath = base + ".err";
  std::string line = command;
  if (stdinText != nullptr) {
    std::ofstream(inPath, std::ios::binary) << *stdinText;
    line += " < " + shellQuote(inPath);
  } else {
    line += " < /dev/null";
  }
  line += " > " + shellQuote(outPath) + " 2> " + shellQuote(errPath);
  int status = std::system(line.c_str());  // NOLINT(cert-env33-c): test helper
  CommandResult r;
  if (status != -1 && WIFEXITED(status))
    r.exitCode = WEXITSTATUS(status);
  r.out = readWholeFile(outPath);
  r.err = readWholeFile(errPath);
  std::remove(inPath.c_str());
  std::remove(outPath.c_str());
  std::remove(errPath.c_str());
  return r;
}

}  // namespace exitrec::testing
