#include "engine/dag_depends.h"

#include <unordered_set>

namespace exitrec {

namespace {

bool isNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.';
}

// Splits "task.Result" into task and result; a bare "task" has no result.
std::pair<std::string_view, std::string_view> splitToken(std::string_view token) {
  static constexpr std::string_view kResults[] = {"Succeeded",    "Failed",   "Errored",
                                                  "Skipped",      "Omitted",  "Daemoned",
                                                  "AnySucceeded", "AllFailed"};
  std::size_t dot = token.rfind('.');
  if (dot != std::string_view::npos) {
    std::string_view result = token.substr(dot + 1);
    for (auto r : kResults) {
      if (r == result)
        return {token.substr(0, dot), result};
    }
  }
  return {token, {}};
}

template <typename Fn>
void forEachToken(std::string_view depends, Fn&& fn) {
  std::size_t i = 0;
  while (i < depends.size()) {
    if (!isNameChar(depends[i])) {
      ++i;
      continue;
    }
    std::size_t start = i;
    while (i < depends.size() && isNameChar(depends[i]))
      ++i;
    auto [task, result] = splitToken(depends.substr(start, i - start));
    if (!task.empty())
      fn(task, result);
  }
}

}  // namespace

std::vector<std::string_view> dependsTaskNames(std::string_view depends) {
  std::vector<std::string_view> names;
  forEachToken(depends, [&](std::string_view task, std::string_view) { names.push_back(task); });
  return names;
}

bool dependsAcceptsFailure(std::string_view depends, std::string_view task) {
  bool accepts = false;
  forEachToken(depends, [&](std::string_view t, std::string_view result) {
    if (t == task && (result == "Failed" || result == "Errored" || result == "AllFailed")) {
      accepts = true;
    }
  });
  return accepts;
}

std::vector<std::string_view> dagTargets(const Template& tmpl) {
  std::vector<std::string_view> targets;
  if (!tmpl.dagTarget.empty()) {
    std::string_view t = tmpl.dagTarget;
    std::size_t i = 0;
    while (i < t.size()) {
      while (i < t.size() && t[i] == ' ')
        ++i;
      std::size_t start = i;
      while (i < t.size() && t[i] != ' ')
        ++i;
      if (i > start)
        targets.push_back(t.substr(start, i - start));
    }
    return targets;
  }
  std::unordered_set<std::string_view> referenced;
  for (const auto& task : tmpl.dagTasks) {
    for (auto name : dependsTaskNames(task.depends))
      referenced.insert(name);
    for (const auto& d : task.dependencies)
      referenced.insert(d);
  }
  for (const auto& task : tmpl.dagTasks) {
    if (referenced.count(task.name) == 0)
      targets.push_back(task.name);
  }
  return targets;
}

const DagTask* findTask(const Template& tmpl, std::string_view name) {
  for (const auto& task : tmpl.dagTasks) {
    if (task.name == name)
      return &task;
  }
  return nullptr;
}

}  // namespace exitrec
