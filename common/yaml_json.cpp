#include "common/yaml_json.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdlib>
#include <regex>

namespace exitrec {
namespace {

nlohmann::json scalarToJson(const YAML::Node& node) {
  const std::string& s = node.Scalar();
  if (node.Tag() == "!")
    return s;  // quoted: always a string
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL")
    return nullptr;
  if (s == "true" || s == "True" || s == "TRUE")
    return true;
  if (s == "false" || s == "False" || s == "FALSE")
    return false;
  static const std::regex kInt("^[-+]?[0-9]+$");
  static const std::regex kFloat("^[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?$");
  if (std::regex_match(s, kInt)) {
    errno = 0;
    long long v = std::strtoll(s.c_str(), nullptr, 10);
    if (errno == 0)
      return v;
  }
  if (std::regex_match(s, kFloat))
    return std::strtod(s.c_str(), nullptr);
  return s;
}

nlohmann::json toJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      return scalarToJson(node);
    case YAML::NodeType::Sequence: {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& item : node)
        arr.push_back(toJson(item));
      return arr;
    }
    case YAML::NodeType::Map: {
      nlohmann::json obj = nlohmann::json::object();
      for (const auto& kv : node)
        obj[kv.first.as<std::string>()] = toJson(kv.second);
      return obj;
    }
  }
  return nullptr;
}

}  // namespace

Result<std::vector<nlohmann::json>> parseYamlDocuments(const std::string& text) {
  std::vector<nlohmann::json> out;
  try {
    for (const YAML::Node& doc : YAML::LoadAll(text)) {
      if (doc.IsNull())
        continue;
      out.push_back(toJson(doc));
    }
  } catch (const YAML::Exception& e) {
    return makeError(ErrorCode::kInvalidInput, std::string("invalid YAML: ") + e.what());
  }
  return out;
}

}  // namespace exitrec
