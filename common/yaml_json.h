#pragma once
// YAML (or JSON) text to nlohmann::json: the simulator's seed files and apply
// patches, the fixture tests' compiled pipelines. (The engine reads YAML into
// its own model directly; see engine/yaml_reader.cpp.)
// Plain scalars are typed like YAML 1.2 core schema (null, true/false,
// integers, floats); quoted scalars stay strings.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.h"

namespace exitrec {

// Every document of a multi-document stream. kInvalidInput on a syntax error.
Result<std::vector<nlohmann::json>> parseYamlDocuments(const std::string& text);

}  // namespace exitrec
