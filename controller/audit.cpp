#include "controller/audit.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>

#include "controller/cli.h"
#include "engine/workflow.h"

namespace exitrec {
namespace {

constexpr std::string_view kDescription =
    "Evaluates KFP/Argo Workflows and reports, per run, the phase Argo reported, the true\n"
    "outcome, whether the run is mis-reported and why, its significant failures and its\n"
    "exit handlers.\n"
    "\n"
    "Each PATH (or - for stdin) holds one Workflow (JSON or YAML), a List with `items`,\n"
    "NDJSON, or multi-document YAML, e.g.\n"
    "  kubectl get workflows -A -o json | exit-reconciler audit -\n"
    "\n"
    "Exit status: 0 no run is mis-reported; 1 at least one run is mis-reported;\n"
    "2 usage error or bad input (the other workflows are still evaluated).";

cli::FlagParser makeParser() {
  cli::FlagParser parser("exit-reconciler audit", "PATH... | -", std::string(kDescription));
  parser.add({.name = "format",
              .valueName = "FORMAT",
              .help = "json: one JSON object per line; table: aligned, for people",
              .defaultValue = "json",
              .choices = {"json", "table"}});
  parser.add({.name = "exit-task-failure",
              .valueName = "POLICY",
              .help = "whether a failed exit task makes the run's true phase Failed",
              .defaultValue = "ignore",
              .choices = {"ignore", "fail"}});
  return parser;
}

Error ioError(const std::string& what, int errnum) {
  return makeError(ErrorCode::kInvalidInput, what + ": " + std::strerror(errnum));
}

// Node path relative to the workflow: "wf.root.x" → "root.x"; under a
// retried entrypoint (KFP 2.17) "wf(0).root(0).x" → "(0).root(0).x".
std::string_view relativePath(std::string_view path, std::string_view workflowName) {
  if (!workflowName.empty() && path.size() > workflowName.size() &&
      path.starts_with(workflowName)) {
    if (path[workflowName.size()] == '.')
      return path.substr(workflowName.size() + 1);
    if (path[workflowName.size()] == '(')
      return path.substr(workflowName.size());
  }
  return path;
}

std::string phaseOrDash(Phase p) {
  std::string_view name = phaseName(p);
  return name.empty() ? "-" : std::string(name);
}

std::string failuresCell(const Verdict& v) {
  if (v.failures.empty())
    return "0";
  constexpr std::size_t kShown = 3;
  std::string cell = std::to_string(v.failures.size()) + ": ";
  for (std::size_t i = 0; i < v.failures.size() && i < kShown; ++i) {
    const Failure& f = v.failures[i];
    if (i > 0)
      cell += ", ";
    cell += f.nodeName.empty() ? f.displayName : std::string(relativePath(f.nodeName, v.name));
    cell += " ";
    cell += phaseName(f.phase);
  }
  if (v.failures.size() > kShown)
    cell += ", +" + std::to_string(v.failures.size() - kShown);
  return cell;
}

std::string exitHandlersCell(const Verdict& v) {
  if (v.exitHandlers.empty())
    return "-";
  std::string cell;
  for (const auto& h : v.exitHandlers) {
    if (!cell.empty())
      cell += "; ";
    cell += relativePath(h.name, v.name);
    cell += ": body " + phaseOrDash(h.bodyPhase) + ", exit ";
    if (h.exitTask.empty()) {
      cell += "(not run)";
    } else {
      cell += relativePath(h.exitTask, v.name);
      cell += " " + phaseOrDash(h.exitTaskPhase);
    }
  }
  return cell;
}

}  // namespace

void InputBuffer::Unmap::operator()(char* address) const {
  ::munmap(address, length);
}

void InputBuffer::reserve(std::size_t needed) {
  if (needed <= capacity_)
    return;
  std::size_t capacity = std::max(needed, capacity_ * 2);
  auto grown = std::make_unique_for_overwrite<char[]>(capacity);
  if (size_ > 0)
    std::memcpy(grown.get(), heap_.get(), size_);
  heap_ = std::move(grown);
  data_ = heap_.get();
  capacity_ = capacity;
}

// Maps `size` bytes of the file followed by at least kPadding zero bytes: the
// tail of the file's last page reads as zeros, and when that tail is shorter
// than the padding an anonymous zero page follows (the file is mapped over
// the start of an anonymous reservation with MAP_FIXED).
Result<InputBuffer> InputBuffer::mapFile(int fd, const std::string& path, std::size_t size) {
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const std::size_t fileSpan = (size + page - 1) / page * page;
  const std::size_t length = fileSpan - size >= kPadding ? fileSpan : fileSpan + page;
  void* reserved = ::mmap(nullptr, length, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (reserved == MAP_FAILED)
    return ioError("cannot map " + path, errno);
  std::unique_ptr<char, Unmap> mapping(static_cast<char*>(reserved), Unmap{length});
  void* file = ::mmap(reserved, size, PROT_READ, MAP_PRIVATE | MAP_FIXED | MAP_POPULATE, fd, 0);
  if (file == MAP_FAILED)
    return ioError("cannot map " + path, errno);
  InputBuffer buffer;
  buffer.data_ = mapping.get();
  buffer.mapping_ = std::move(mapping);
  buffer.size_ = size;
  buffer.capacity_ = length;
  return buffer;
}

Result<InputBuffer> InputBuffer::readFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return ioError("cannot open " + path, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return ioError("cannot stat " + path, e);
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return makeError(ErrorCode::kInvalidInput, path + " is a directory");
  }
  // Below a megabyte a copy is as cheap as setting up a mapping.
  constexpr std::size_t kMapAtLeast = std::size_t{1} << 20;
  if (S_ISREG(st.st_mode) && static_cast<std::size_t>(st.st_size) >= kMapAtLeast) {
    auto mapped = mapFile(fd, path, static_cast<std::size_t>(st.st_size));
    ::close(fd);
    return mapped;
  }
  InputBuffer buffer;
  // Regular files: one allocation of the exact size; pipes and devices grow.
  std::size_t expected = S_ISREG(st.st_mode) ? static_cast<std::size_t>(st.st_size) : 1 << 16;
  buffer.reserve(expected + 1 + kPadding);
  for (;;) {
    if (buffer.capacity_ - buffer.size_ < kPadding + 1)
      buffer.reserve(buffer.capacity_ * 2);
    ssize_t n =
        ::read(fd, buffer.heap_.get() + buffer.size_, buffer.capacity_ - buffer.size_ - kPadding);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      int e = errno;
      ::close(fd);
      return ioError("cannot read " + path, e);
    }
    if (n == 0)
      break;
    buffer.size_ += static_cast<std::size_t>(n);
  }
  ::close(fd);
  std::memset(buffer.heap_.get() + buffer.size_, 0, buffer.capacity_ - buffer.size_);
  return buffer;
}

Result<InputBuffer> InputBuffer::readStream(std::istream& in) {
  InputBuffer buffer;
  buffer.reserve(std::size_t{1} << 16);
  std::streambuf* sb = in.rdbuf();
  if (sb == nullptr)
    return makeError(ErrorCode::kInvalidInput, "stdin is not readable");
  for (;;) {
    if (buffer.capacity_ - buffer.size_ < kPadding + 4096)
      buffer.reserve(buffer.capacity_ * 2);
    std::streamsize want = static_cast<std::streamsize>(buffer.capacity_ - buffer.size_ - kPadding);
    std::streamsize n = sb->sgetn(buffer.heap_.get() + buffer.size_, want);
    if (n <= 0)
      break;
    buffer.size_ += static_cast<std::size_t>(n);
  }
  std::memset(buffer.heap_.get() + buffer.size_, 0, buffer.capacity_ - buffer.size_);
  return buffer;
}

void writeVerdictTable(std::ostream& out, const std::vector<Verdict>& verdicts) {
  const std::vector<std::string> header = {"NAMESPACE", "NAME",     "GENERATION",
                                           "REPORTED",  "TRUE",     "MISREPORTED",
                                           "CAUSE",     "FAILURES", "EXIT HANDLERS"};
  std::vector<std::vector<std::string>> rows;
  rows.reserve(verdicts.size());
  std::size_t misreported = 0;
  std::size_t notEvaluable = 0;
  std::size_t notCompleted = 0;
  for (const auto& v : verdicts) {
    misreported += v.misreported ? 1 : 0;
    notEvaluable += v.evaluable ? 0 : 1;
    notCompleted += (v.evaluable && !v.completed) ? 1 : 0;
    std::string cause = v.cause ? *v.cause : "-";
    rows.push_back({v.namespace_.empty() ? "-" : v.namespace_, v.name,
                    std::string(generationName(v.generation)), phaseOrDash(v.reportedPhase),
                    v.evaluable ? phaseOrDash(v.truePhase) : "?", v.misreported ? "YES" : "no",
                    cause, failuresCell(v), exitHandlersCell(v)});
  }
  std::vector<std::size_t> width(header.size());
  for (std::size_t c = 0; c < header.size(); ++c)
    width[c] = header[c].size();
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < row.size(); ++c)
      width[c] = std::max(width[c], row[c].size());
  }
  auto writeRow = [&](const std::vector<std::string>& row) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size())
        line.append(width[c] - row[c].size() + 2, ' ');
    }
    out << line << "\n";
  };
  writeRow(header);
  for (const auto& row : rows)
    writeRow(row);
  out << "\n"
      << verdicts.size() << (verdicts.size() == 1 ? " run" : " runs") << ", " << misreported
      << " mis-reported";
  if (notCompleted > 0)
    out << ", " << notCompleted << " not completed";
  if (notEvaluable > 0)
    out << ", " << notEvaluable << " not evaluable";
  out << "\n";
}

int runAudit(std::span<char* const> args, std::istream& in, std::ostream& out, std::ostream& err) {
  const cli::FlagParser parser = makeParser();
  auto parsed = parser.parse(args, cli::EnvLookup{});
  if (!parsed.ok())
    return cli::usageError(err, parser, parsed.error());
  if (parsed->helpRequested()) {
    out << parser.help();
    return cli::kExitOk;
  }
  const auto& paths = parsed->positional();
  if (paths.empty()) {
    return cli::usageError(
        err, parser,
        makeError(ErrorCode::kInvalidInput, "no input: give one or more PATHs, or - for stdin"));
  }
  if (std::count(paths.begin(), paths.end(), "-") > 1) {
    return cli::usageError(err, parser,
                           makeError(ErrorCode::kInvalidInput, "- (stdin) given more than once"));
  }
  EvaluateOptions options;
  options.exitTaskFailure = parsed->get("exit-task-failure") == "fail"
                                ? ExitTaskFailurePolicy::kFail
                                : ExitTaskFailurePolicy::kIgnore;
  const bool table = parsed->get("format") == "table";

  bool badInput = false;
  bool anyMisreported = false;
  std::vector<Verdict> verdicts;
  for (const auto& path : paths) {
    const std::string label = path == "-" ? "<stdin>" : path;
    auto buffer = path == "-" ? InputBuffer::readStream(in) : InputBuffer::readFile(path);
    if (!buffer.ok()) {
      err << "audit: " << buffer.error().message << "\n";
      badInput = true;
      continue;
    }
    std::size_t seen = 0;
    // Shared, so the engine reads the padded buffer in place (no 2nd copy)
    // and the workflows it returns can keep it alive.
    auto owned = std::make_shared<const InputBuffer>(std::move(*buffer));
    Status status = readWorkflows(
        owned, owned->view(), [&](Result<Workflow> workflow, std::string_view origin) {
          ++seen;
          std::string where = label;
          if (!origin.empty())
            where += std::string(": ") + std::string(origin);
          if (!workflow.ok()) {
            err << "audit: " << where << ": " << workflow.error().message << "\n";
            badInput = true;
            return;
          }
          // Other Kubernetes kinds are not Workflows, whatever their shape.
          if (!workflow->kind.empty() && workflow->kind != "Workflow") {
            err << "audit: " << where << ": kind \"" << workflow->kind
                << "\" is not a Workflow (expected kind: Workflow)\n";
            badInput = true;
            return;
          }
          Verdict verdict = evaluate(*workflow, options);
          anyMisreported = anyMisreported || verdict.misreported;
          if (table) {
            verdicts.push_back(std::move(verdict));
          } else {
            out << verdictToJson(verdict) << '\n';
          }
        });
    if (!status.ok()) {
      err << "audit: " << label << ": " << status.error().message << "\n";
      badInput = true;
    } else if (seen == 0) {
      err << "audit: " << label << ": no workflows in input\n";
    }
  }
  if (table)
    writeVerdictTable(out, verdicts);
  out.flush();
  if (badInput)
    return cli::kExitUsage;
  return anyMisreported ? cli::kExitFindings : cli::kExitOk;
}

int runAudit(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  std::span<char* const> args(argv, static_cast<std::size_t>(argc));
  return runAudit(args.subspan(1), std::cin, std::cout, std::cerr);
}

}  // namespace exitrec
