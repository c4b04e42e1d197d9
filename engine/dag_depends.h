#pragma once
// Internal to the engine: what a DAG template's `depends`/`dependencies` say.

#include <string_view>
#include <vector>

#include "engine/workflow.h"

namespace exitrec {

// Task names referenced by a `depends` expression ("a.Succeeded || b" → a, b),
// in order of appearance, with duplicates.
std::vector<std::string_view> dependsTaskNames(std::string_view depends);

// True when `depends` accepts `task` ending Failed or Errored, e.g.
// "exit-handler-1.Succeeded || exit-handler-1.Failed".
bool dependsAcceptsFailure(std::string_view depends, std::string_view task);

// dag.target split on spaces, or else the leaves: tasks no other task depends
// on (via depends or dependencies). Views point into the template.
std::vector<std::string_view> dagTargets(const Template& tmpl);

const DagTask* findTask(const Template& tmpl, std::string_view name);

}  // namespace exitrec
