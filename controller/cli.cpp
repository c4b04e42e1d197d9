#include "controller/cli.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <sstream>

namespace exitrec::cli {
namespace {

Error invalid(std::string message) {
  return makeError(ErrorCode::kInvalidInput, std::move(message));
}

std::string joinChoices(const std::vector<std::string>& choices) {
  std::string out;
  for (const auto& c : choices) {
    if (!out.empty())
      out += "|";
    out += c;
  }
  return out;
}

}  // namespace

EnvLookup processEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());  // NOLINT(concurrency-mt-unsafe): read-only
    if (value == nullptr)
      return std::nullopt;
    return std::string(value);
  };
}

const std::string& ParsedArgs::get(std::string_view name) const {
  auto it = values_.find(name);
  if (it == values_.end())
    std::abort();  // undeclared flag: programming error
  return it->second;
}

bool ParsedArgs::isSet(std::string_view name) const {
  auto it = set_.find(name);
  return it != set_.end() && it->second;
}

Result<long long> ParsedArgs::getInt(std::string_view name, long long min, long long max) const {
  const std::string& text = get(name);
  long long value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) {
    return invalid("--" + std::string(name) + ": expected an integer, got \"" + text + "\"");
  }
  if (value < min || value > max) {
    return invalid("--" + std::string(name) + ": " + text + " is outside [" + std::to_string(min) +
                   ", " + std::to_string(max) + "]");
  }
  return value;
}

Result<std::chrono::milliseconds> ParsedArgs::getDuration(std::string_view name) const {
  const std::string& text = get(name);
  long long number = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  std::string_view unit(ptr, static_cast<std::size_t>(text.data() + text.size() - ptr));
  auto bad = [&] {
    return invalid("--" + std::string(name) +
                   ": expected a duration like 250ms, 30s, 5m or 1h, got \"" + text + "\"");
  };
  if (ec != std::errc() || number < 0 || text.empty())
    return bad();
  constexpr long long kMaxMs = 365LL * 24 * 3600 * 1000;
  long long factor = 0;
  if (unit == "ms") {
    factor = 1;
  } else if (unit.empty() || unit == "s") {
    factor = 1000;
  } else if (unit == "m") {
    factor = std::int64_t{60} * 1000;
  } else if (unit == "h") {
    factor = std::int64_t{3600} * 1000;
  } else {
    return bad();
  }
  if (number > kMaxMs / factor)
    return bad();
  return std::chrono::milliseconds(number * factor);
}

FlagParser::FlagParser(std::string command, std::string operands, std::string description)
    : command_(std::move(command)),
      operands_(std::move(operands)),
      description_(std::move(description)) {}

FlagParser& FlagParser::add(FlagSpec spec) {
  if (spec.name.empty() || spec.name == "help" || find(spec.name) != nullptr)
    std::abort();
  if (spec.isSwitch && spec.defaultValue.empty())
    spec.defaultValue = "false";
  flags_.push_back(std::move(spec));
  return *this;
}

const FlagSpec* FlagParser::find(std::string_view name) const {
  for (const auto& f : flags_) {
    if (f.name == name)
      return &f;
  }
  return nullptr;
}

Result<ParsedArgs> FlagParser::parse(std::span<char* const> args, const EnvLookup& env) const {
  ParsedArgs parsed;
  std::map<std::string, std::string, std::less<>> fromCommandLine;
  bool flagsDone = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i] == nullptr ? std::string_view() : std::string_view(args[i]);
    if (flagsDone || arg == "-" || !arg.starts_with("-")) {
      parsed.positional_.emplace_back(arg);
      continue;
    }
    if (arg == "--") {
      flagsDone = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      parsed.help_ = true;
      continue;
    }
    if (!arg.starts_with("--"))
      return invalid("unknown flag " + std::string(arg));
    std::string_view body = arg.substr(2);
    std::optional<std::string_view> inlineValue;
    if (auto eq = body.find('='); eq != std::string_view::npos) {
      inlineValue = body.substr(eq + 1);
      body = body.substr(0, eq);
    }
    const FlagSpec* spec = find(body);
    if (spec == nullptr)
      return invalid("unknown flag --" + std::string(body));
    std::string value;
    if (spec->isSwitch) {
      value = inlineValue ? std::string(*inlineValue) : "true";
      if (value != "true" && value != "false") {
        return invalid("--" + spec->name + ": expected true or false, got \"" + value + "\"");
      }
    } else if (inlineValue) {
      value = std::string(*inlineValue);
    } else {
      if (i + 1 >= args.size() || args[i + 1] == nullptr) {
        return invalid("--" + spec->name + " needs a value (" + spec->valueName + ")");
      }
      value = args[++i];
    }
    fromCommandLine[spec->name] = value;
  }
  for (const auto& spec : flags_) {
    std::string value = spec.defaultValue;
    bool set = false;
    std::string source = "--" + spec.name;
    if (auto it = fromCommandLine.find(spec.name); it != fromCommandLine.end()) {
      value = it->second;
      set = true;
    } else if (!spec.envVar.empty() && env) {
      if (auto fromEnv = env(spec.envVar); fromEnv && !fromEnv->empty()) {
        value = *fromEnv;
        set = true;
        source = "environment variable " + spec.envVar;
        if (spec.isSwitch && value != "true" && value != "false") {
          return invalid(std::string(source)
                             .append(": expected true or false, got \"")
                             .append(value)
                             .append("\""));
        }
      }
    }
    if (set && !spec.choices.empty()) {
      bool known = false;
      for (const auto& c : spec.choices)
        known = known || c == value;
      if (!known) {
        return invalid(std::string(source)
                           .append(": \"")
                           .append(value)
                           .append("\" is not one of ")
                           .append(joinChoices(spec.choices)));
      }
    }
    parsed.values_[spec.name] = value;
    parsed.set_[spec.name] = set;
  }
  return parsed;
}

std::string FlagParser::usageLine() const {
  std::string line = "usage: " + command_;
  if (!flags_.empty())
    line += " [flags]";
  if (!operands_.empty())
    line += " " + operands_;
  return line;
}

std::string FlagParser::help() const {
  std::ostringstream out;
  out << usageLine() << "\n\n" << description_ << "\n\nflags:\n";
  std::vector<std::string> left;
  std::size_t width = 0;
  for (const auto& f : flags_) {
    std::string l = "  --" + f.name;
    if (!f.isSwitch)
      l += " " + (f.choices.empty() ? f.valueName : joinChoices(f.choices));
    width = std::max(width, l.size());
    left.push_back(std::move(l));
  }
  left.emplace_back("  -h, --help");
  width = std::max(width, left.back().size());
  for (std::size_t i = 0; i < flags_.size(); ++i) {
    const auto& f = flags_[i];
    out << left[i] << std::string(width - left[i].size() + 3, ' ') << f.help;
    if (!f.isSwitch && !f.defaultValue.empty())
      out << " (default " << f.defaultValue << ")";
    if (!f.envVar.empty())
      out << " [env " << f.envVar << "]";
    out << "\n";
  }
  out << left.back() << std::string(width - left.back().size() + 3, ' ') << "show this help\n";
  return out.str();
}

int usageError(std::ostream& err, const FlagParser& parser, const Error& error) {
  err << "error: " << error.message << "\n" << parser.usageLine() << "\n(--help for details)\n";
  return kExitUsage;
}

int dispatch(std::string_view program, std::string_view description,
             std::span<const Subcommand> commands, int argc, char** argv, std::ostream& out,
             std::ostream& err) {
  auto printHelp = [&](std::ostream& os) {
    os << "usage: " << program << " COMMAND [flags] [args]\n\n" << description << "\n\ncommands:\n";
    std::size_t width = 4;
    for (const auto& c : commands)
      width = std::max(width, c.name.size());
    for (const auto& c : commands) {
      os << "  " << c.name << std::string(width - c.name.size() + 3, ' ') << c.summary << "\n";
    }
    os << "  help" << std::string(width - 4 + 3, ' ') << "show help for a command\n\n"
       << "Run '" << program << " COMMAND --help' for a command's flags.\n";
  };
  auto findCommand = [&](std::string_view name) -> const Subcommand* {
    for (const auto& c : commands) {
      if (c.name == name)
        return &c;
    }
    return nullptr;
  };
  if (argc < 2 || argv[1] == nullptr) {
    err << "error: missing command\n";
    printHelp(err);
    return kExitUsage;
  }
  std::string_view first(argv[1]);
  if (first == "-h" || first == "--help") {
    printHelp(out);
    return kExitOk;
  }
  if (first == "help") {
    if (argc < 3) {
      printHelp(out);
      return kExitOk;
    }
    const Subcommand* cmd = findCommand(argv[2]);
    if (cmd == nullptr) {
      err << "error: unknown command \"" << argv[2] << "\"\n";
      printHelp(err);
      return kExitUsage;
    }
    char helpFlag[] = "--help";
    char* helpArgv[] = {argv[2], helpFlag, nullptr};
    return cmd->run(2, helpArgv);
  }
  const Subcommand* cmd = findCommand(first);
  if (cmd == nullptr) {
    err << "error: unknown command \"" << first << "\"\n";
    printHelp(err);
    return kExitUsage;
  }
  return cmd->run(argc - 1, argv + 1);
}

}  // namespace exitrec::cli
