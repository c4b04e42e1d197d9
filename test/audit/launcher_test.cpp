// The split between the lean `exit-reconciler` launcher (audit) and the
// `exit-reconciler-operator` binary it exec()s for `run` and `backfill`:
// help listings, argv/exit-status pass-through, the error when the operator
// is missing, that the launcher links none of the operator's libraries, and
// that neither serves the sandbox (a development binary, sandbox/).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "test/audit/run_command.h"

namespace exitrec::testing {
namespace {

namespace fs = std::filesystem;

const std::string kLauncher = EXITREC_AUDIT_BIN;
const std::string kOperator = EXITREC_OPERATOR_BIN;

// A fresh directory under $TMPDIR (or /tmp), removed with the object.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "exitrec-launcher-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data()) != nullptr ? pattern : "";
  }
  ~TempDir() {
    if (!path_.empty()) {
      std::error_code ec;
      fs::remove_all(path_, ec);
    }
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(LauncherTest, HelpListsEveryCommandWithItsSummary) {
  auto r = runCommand(shellQuote(kLauncher) + " --help");
  EXPECT_EQ(r.exitCode, 0);
  EXPECT_TRUE(r.err.empty()) << r.err;
  for (const char* line :
       {"  audit      evaluate Workflows from files or stdin",
        "  backfill   correct past KFP runs whose Workflow is gone",
        "  run        run the controller: watch KFP runs, correct mis-reported ones"}) {
    EXPECT_NE(r.out.find(line), std::string::npos) << "missing \"" << line << "\" in\n" << r.out;
  }
  EXPECT_EQ(r.out.find("sandbox"), std::string::npos) << r.out;
}

TEST(LauncherTest, OperatorAnswersRunHelp) {
  auto run = runCommand(shellQuote(kLauncher) + " run --help");
  EXPECT_EQ(run.exitCode, 0) << run.err;
  EXPECT_NE(run.out.find("usage: exit-reconciler run [flags]"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("--kubeconfig PATH"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("--leader-elect"), std::string::npos) << run.out;

  // `help CMD` goes through the dispatcher's own argv, not the process's.
  auto viaHelp = runCommand(shellQuote(kLauncher) + " help run");
  EXPECT_EQ(viaHelp.exitCode, 0) << viaHelp.err;
  EXPECT_EQ(viaHelp.out, run.out);
}

// The sandbox left the product binaries: asking either of them for it is a
// usage error that names the development binary and the script starting it.
TEST(LauncherTest, SandboxIsAUsageErrorNamingTheDevelopmentBinary) {
  for (const std::string& binary : {kLauncher, kOperator}) {
    const std::string program = fs::path(binary).filename().string();
    for (const char* args :
         {" sandbox", " sandbox --help", " sandbox --exit-after-report", " help sandbox"}) {
      auto r = runCommand(shellQuote(binary) + args);
      EXPECT_EQ(r.exitCode, 2) << program << args;
      EXPECT_TRUE(r.out.empty()) << program << args << ": " << r.out;
      EXPECT_EQ(r.err.rfind(program + ": error: `sandbox` is not part of exit-reconciler", 0), 0u)
          << program << args << ": " << r.err;
      EXPECT_NE(r.err.find("exit-reconciler-sandbox"), std::string::npos) << r.err;
      EXPECT_NE(r.err.find("scripts/sandbox.sh"), std::string::npos) << r.err;
    }
  }
}

TEST(LauncherTest, OperatorGetsArgvAndItsExitStatusIsTheProcesss) {
  // The flag reaches the operator's parser unchanged; its usage error (2) is
  // the launcher process's exit status.
  auto r = runCommand(shellQuote(kLauncher) + " run --no-such-flag=1 extra");
  EXPECT_EQ(r.exitCode, 2);
  EXPECT_NE(r.err.find("unknown flag --no-such-flag"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("usage: exit-reconciler run"), std::string::npos) << r.err;
}

// Reads a /proc file of NUL-separated fields (cmdline) into a vector.
std::vector<std::string> procFields(const std::string& path) {
  std::string text = readWholeFile(path);
  std::vector<std::string> fields;
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\0') {
      fields.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  return fields;
}

TEST(LauncherTest, OperatorReplacesTheLauncherInTheSameProcess) {
  // The operator reads its kubeconfig from a FIFO, so it blocks there until
  // we open the writing end: then the launcher's PID must be running the
  // operator binary with the launcher's argv, argv[0] included.
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string fifo = dir.path() + "/kubeconfig";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  const std::vector<std::string> argv = {"custom-argv0", "run", "--kubeconfig", fifo};
  std::vector<char*> args;
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0) << std::strerror(errno);
  if (pid == 0) {
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 1);
    ::dup2(null, 2);
    ::execv(kLauncher.c_str(), args.data());
    ::_exit(127);
  }
  // O_NONBLOCK: fails with ENXIO until a reader has the FIFO open; bounded
  // so that a launcher that never starts the operator fails instead of hanging.
  int fd = -1;
  for (int attempt = 0; attempt < 20000 && fd < 0; ++attempt) {
    fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno != ENXIO)
      break;
    if (fd < 0)
      ::usleep(500);
  }
  const std::string proc = "/proc/" + std::to_string(pid);
  std::error_code ec;
  const fs::path exe = fs::read_symlink(proc + "/exe", ec);
  const std::vector<std::string> cmdline = procFields(proc + "/cmdline");
  if (fd >= 0) {
    const std::string junk = "not a kubeconfig\n";
    EXPECT_EQ(::write(fd, junk.data(), junk.size()), static_cast<ssize_t>(junk.size()));
    ::close(fd);
  } else {
    ADD_FAILURE() << "the operator never opened its kubeconfig FIFO: " << std::strerror(errno);
    ::kill(pid, SIGKILL);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(exe, fs::path(kOperator)) << ec.message();
  EXPECT_EQ(cmdline, argv);
  // runController: startup failure (unreadable kubeconfig) is exit status 1.
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
}

TEST(LauncherTest, MissingOperatorIsAUsageErrorNamingThePath) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const fs::path alone = fs::path(dir.path()) / "exit-reconciler";
  fs::copy_file(kLauncher, alone);
  const std::string expected = dir.path() + "/exit-reconciler-operator";
  for (const char* command : {"run", "backfill"}) {
    auto r = runCommand(shellQuote(alone.string()) + " " + command);
    EXPECT_EQ(r.exitCode, 2) << command;
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_NE(r.err.find(expected + ": No such file or directory"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("cannot start `" + std::string(command) + "`"), std::string::npos)
        << r.err;
  }
  // audit, --help and the sandbox's pointer need no operator.
  auto sandbox = runCommand(shellQuote(alone.string()) + " sandbox");
  EXPECT_EQ(sandbox.exitCode, 2);
  EXPECT_NE(sandbox.err.find("exit-reconciler-sandbox"), std::string::npos) << sandbox.err;
  EXPECT_EQ(sandbox.err.find("cannot start"), std::string::npos) << sandbox.err;
  auto help = runCommand(shellQuote(alone.string()) + " --help");
  EXPECT_EQ(help.exitCode, 0) << help.err;
  auto audit = runCommand(shellQuote(alone.string()) + " audit --help");
  EXPECT_EQ(audit.exitCode, 0) << audit.err;

  // Present but not executable.
  std::ofstream(expected) << "not a program\n";
  fs::permissions(expected, fs::perms::owner_read | fs::perms::owner_write);
  auto r = runCommand(shellQuote(alone.string()) + " run");
  EXPECT_EQ(r.exitCode, 2);
  EXPECT_NE(r.err.find(expected + ": Permission denied"), std::string::npos) << r.err;
}

TEST(LauncherTest, LinksNoneOfTheOperatorsLibraries) {
  if (runCommand("command -v ldd").exitCode != 0)
    GTEST_SKIP() << "ldd not found: the launcher's shared libraries were not checked";
  auto r = runCommand("ldd " + shellQuote(kLauncher));
  ASSERT_EQ(r.exitCode, 0) << r.err;
  // Positive control: the output lists what audit does need.
  EXPECT_NE(r.out.find("libsimdjson"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("libyaml-cpp"), std::string::npos) << r.out;
  for (const char* heavy : {"libcpprest", "libssl", "libcrypto", "libprometheus", "libspdlog",
                            "libfmt", "libcivetweb", "libboost"}) {
    EXPECT_EQ(r.out.find(heavy), std::string::npos) << heavy << " is linked:\n" << r.out;
  }
  // The operator is the one that has them.
  auto op = runCommand("ldd " + shellQuote(kOperator));
  ASSERT_EQ(op.exitCode, 0) << op.err;
  EXPECT_NE(op.out.find("libcpprest"), std::string::npos) << op.out;
}

TEST(OperatorBinaryTest, SitsNextToTheLauncherAndServesEveryCommand) {
  EXPECT_EQ(fs::path(kOperator).parent_path(), fs::path(kLauncher).parent_path());
  auto r = runCommand(shellQuote(kOperator) + " --help");
  EXPECT_EQ(r.exitCode, 0) << r.err;
  for (const char* name : {"  audit ", "  backfill ", "  run "})
    EXPECT_NE(r.out.find(name), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("sandbox"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace exitrec::testing
