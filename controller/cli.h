#pragma once
// Small command-line helpers shared by every `exit-reconciler` subcommand:
// a flag parser (GNU-style long flags with optional environment-variable
// forms), a subcommand dispatcher and the exit-code convention.
//
// Contract:
// - Flags are `--name value` or `--name=value`; switches are `--name` (or
//   `--name=true|false`). `-h`/`--help` is always recognised. `--` ends the
//   flags; a lone `-` is a positional argument (stdin).
// - Precedence for a value: command line, then the flag's environment
//   variable (if it has one), then its default.
// - Every problem is an Error of code kInvalidInput whose message names the
//   flag (or variable) and says what is wrong; callers print it with the
//   command's usage line and exit with kExitUsage.
// - Not thread-safe; build a FlagParser per invocation.

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace exitrec::cli {

// Exit codes shared by every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFindings = 1;  // audit: at least one run is mis-reported
inline constexpr int kExitUsage = 2;     // usage error or bad input

// Looks up an environment variable; injectable for tests.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
EnvLookup processEnv();

struct FlagSpec {
  std::string name{};                  // without the leading "--"
  std::string valueName{};             // shown in help, e.g. "FORMAT"; empty for a switch
  std::string help{};                  // one line
  std::string envVar{};                // optional, e.g. "EXITREC_NAMESPACE"
  std::string defaultValue{};          // used when neither the flag nor envVar is given
  std::vector<std::string> choices{};  // if non-empty, the value must be one of them
  bool isSwitch = false;
};

// Result of a successful parse.
class ParsedArgs {
 public:
  // Value of a declared flag after precedence; "true"/"false" for switches.
  // Asking for an undeclared flag is a programming error and aborts.
  const std::string& get(std::string_view name) const;
  // True when the flag came from the command line or its environment variable.
  bool isSet(std::string_view name) const;
  bool getSwitch(std::string_view name) const { return get(name) == "true"; }
  // Integer value within [min, max], or an error naming the flag.
  Result<long long> getInt(std::string_view name, long long min, long long max) const;
  // Duration such as "30s", "5m", "1h", "250ms" or a bare number of seconds.
  Result<std::chrono::milliseconds> getDuration(std::string_view name) const;

  const std::vector<std::string>& positional() const { return positional_; }
  bool helpRequested() const { return help_; }

 private:
  friend class FlagParser;
  std::map<std::string, std::string, std::less<>> values_;
  std::map<std::string, bool, std::less<>> set_;
  std::vector<std::string> positional_;
  bool help_ = false;
};

class FlagParser {
 public:
  // `command` is the full command name ("exit-reconciler audit"), `operands`
  // describes the positional arguments for the usage line ("PATH... | -").
  FlagParser(std::string command, std::string operands, std::string description);

  FlagParser& add(FlagSpec spec);

  // Parses argv[first..argc). With --help the result has helpRequested() set
  // and the other values may be incomplete.
  Result<ParsedArgs> parse(std::span<char* const> args, const EnvLookup& env = processEnv()) const;

  std::string usageLine() const;  // "usage: <command> [flags] <operands>"
  std::string help() const;       // usage line, description and the flag table

 private:
  const FlagSpec* find(std::string_view name) const;
  std::string command_;
  std::string operands_;
  std::string description_;
  std::vector<FlagSpec> flags_;
};

// Prints `error` and the usage line to `err` and returns kExitUsage.
int usageError(std::ostream& err, const FlagParser& parser, const Error& error);

// A subcommand of a multi-command binary. `run` receives argc/argv starting at
// the subcommand name (argv[0] == name).
struct Subcommand {
  std::string_view name;
  std::string_view summary;
  int (*run)(int argc, char** argv);
};

// Dispatches argv[1] to a subcommand; handles `--help`, `-h`, `help [CMD]` and
// usage errors (unknown or missing command → usage on `err`, kExitUsage).
int dispatch(std::string_view program, std::string_view description,
             std::span<const Subcommand> commands, int argc, char** argv, std::ostream& out,
             std::ostream& err);

}  // namespace exitrec::cli
