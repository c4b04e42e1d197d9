#pragma once
// `exit-reconciler audit`: reads Workflows from files or stdin, evaluates
// each with the outcome engine and prints one verdict per workflow.
//
//   exit-reconciler audit [--format json|table] [--exit-task-failure ignore|fail] PATH... | -
//
// Input per PATH (or `-` for stdin): one Workflow (JSON or YAML), a List
// (`items`), NDJSON or multi-document YAML; see engine readWorkflows().
// Exit status: 0 no run mis-reported, 1 at least one mis-reported, 2 usage
// error or any bad input (every readable workflow is still evaluated and
// printed). Verdicts go to stdout, diagnostics to stderr.

#include <istream>
#include <memory>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "engine/outcome.h"

namespace exitrec {

// Subcommand entry point (argv[0] == "audit"), using the process's stdio.
int runAudit(int argc, char** argv);

// Same, with injected streams (tests). `args` excludes the subcommand name.
int runAudit(std::span<char* const> args, std::istream& in, std::ostream& out, std::ostream& err);

// Input read whole into one buffer followed by simdjson's padding (zeroed),
// so the JSON fast path can parse it in place without another copy.
class InputBuffer {
 public:
  static constexpr std::size_t kPadding = 64;  // == SIMDJSON_PADDING

  // Reads a regular file, FIFO or device. Errors name the path and errno.
  // A large regular file is mapped read-only instead of copied: its page
  // cache pages are parsed in place (a 25 MB read() costs a copy plus fresh
  // zeroed pages). Like any reader of a mapping, a file truncated by another
  // process while it is being audited may end the process with SIGBUS.
  static Result<InputBuffer> readFile(const std::string& path);
  // Reads a stream to its end (stdin).
  static Result<InputBuffer> readStream(std::istream& in);

  std::string_view view() const { return {data_, size_}; }
  std::size_t capacity() const { return capacity_; }  // size + padding, at least
  bool mapped() const { return mapping_ != nullptr; }

 private:
  struct Unmap {
    std::size_t length;  // no initializer: keeps it default-constructible here
    void operator()(char* address) const;
  };
  static Result<InputBuffer> mapFile(int fd, const std::string& path, std::size_t size);
  // Grows to at least `needed` bytes (uninitialised), keeping the content.
  void reserve(std::size_t needed);
  std::unique_ptr<char[]> heap_;  // no zero-fill: inputs can be tens of MB
  std::unique_ptr<char, Unmap> mapping_;
  const char* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

// Renders verdicts as an aligned table, one run a row, plus a summary line.
void writeVerdictTable(std::ostream& out, const std::vector<Verdict>& verdicts);

}  // namespace exitrec
