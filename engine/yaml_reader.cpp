// The YAML read path: yaml-cpp, converted to JSON text and then read by the
// same simdjson decoder, so there is one decoding path with one set of field
// rules and error messages. Slower than JSON; fine for `kubectl -o yaml`.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <string>

#include "engine/json_reader.h"
#include "engine/workflow.h"

namespace exitrec {

namespace {

constexpr int kMaxDepth = 256;

struct Emitter {
  std::string out;
  std::size_t budget = 0;  // bytes of JSON we accept (alias expansion guard)
  std::optional<std::string> error;
};

void appendJsonString(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default:
        if (c < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          out.append("\\u00");
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

bool isJsonNumber(std::string_view s) {
  std::size_t i = 0;
  auto digits = [&] {
    std::size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9')
      ++i;
    return i > start;
  };
  if (i < s.size() && s[i] == '-')
    ++i;
  if (i < s.size() && s[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digits())
      return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-'))
      ++i;
    if (!digits())
      return false;
  }
  return i == s.size();
}

void emitScalar(Emitter& em, const YAML::Node& node) {
  const std::string& text = node.Scalar();
  const std::string& tag = node.Tag();
  if (tag == "?") {  // plain scalar: resolve like YAML 1.2's JSON-ish core schema
    if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") {
      em.out.append("null");
      return;
    }
    if (text == "true" || text == "True" || text == "TRUE") {
      em.out.append("true");
      return;
    }
    if (text == "false" || text == "False" || text == "FALSE") {
      em.out.append("false");
      return;
    }
    if (isJsonNumber(text)) {
      em.out.append(text);
      return;
    }
  }
  appendJsonString(em.out, text);
}

void emit(Emitter& em, const YAML::Node& node, int depth) {
  if (em.error)
    return;
  if (depth > kMaxDepth) {
    em.error = "nesting deeper than " + std::to_string(kMaxDepth) + " levels";
    return;
  }
  if (em.out.size() > em.budget) {
    em.error = "document too large once aliases are expanded";
    return;
  }
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      em.out.append("null");
      return;
    case YAML::NodeType::Scalar:
      emitScalar(em, node);
      return;
    case YAML::NodeType::Sequence: {
      em.out.push_back('[');
      bool first = true;
      for (const auto& item : node) {
        if (!first)
          em.out.push_back(',');
        first = false;
        emit(em, item, depth + 1);
        if (em.error)
          return;
      }
      em.out.push_back(']');
      return;
    }
    case YAML::NodeType::Map: {
      em.out.push_back('{');
      bool first = true;
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) {
          em.error =
              "mapping key is not a scalar (line " + std::to_string(kv.first.Mark().line + 1) + ")";
          return;
        }
        if (!first)
          em.out.push_back(',');
        first = false;
        appendJsonString(em.out, kv.first.Scalar());
        em.out.push_back(':');
        emit(em, kv.second, depth + 1);
        if (em.error)
          return;
      }
      em.out.push_back('}');
      return;
    }
  }
}

// Loads one YAML document and converts it to JSON text. `firstLine` is the
// line of the document in the whole input (for messages).
Result<std::string> yamlDocToJson(std::string_view text, std::size_t firstLine, bool& empty) {
  empty = false;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    std::string msg = "invalid YAML";
    if (!e.mark.is_null()) {
      msg += " at line " + std::to_string(firstLine + static_cast<std::size_t>(e.mark.line)) +
             ", column " + std::to_string(e.mark.column + 1);
    }
    msg += ": " + e.msg;
    return makeError(ErrorCode::kInvalidInput, std::move(msg));
  }
  if (!root.IsDefined() || root.IsNull()) {
    empty = true;
    return std::string();
  }
  Emitter em;
  em.budget = std::max<std::size_t>(std::size_t{16} << 20, text.size() * 8);
  try {
    emit(em, root, 0);
  } catch (const YAML::Exception& e) {
    return makeError(ErrorCode::kInvalidInput, "invalid YAML: " + e.msg);
  }
  if (em.error)
    return makeError(ErrorCode::kInvalidInput, "invalid YAML: " + *em.error);
  return std::move(em.out);
}

bool isDocMarker(std::string_view line, std::string_view marker) {
  if (line.substr(0, 3) != marker)
    return false;
  return line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r';
}

struct YamlDoc {
  std::string_view text;
  std::size_t firstLine = 1;
};

// Splits a YAML stream at "---" / "..." lines (column 0). Block scalars are
// indented, so such a line can only be a document marker.
std::vector<YamlDoc> splitYaml(std::string_view text) {
  std::vector<YamlDoc> docs;
  std::size_t docStart = 0;
  std::size_t docLine = 1;
  std::size_t line = 1;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos)
      eol = text.size();
    std::string_view l = text.substr(pos, eol - pos);
    bool start = isDocMarker(l, "---");
    bool end = isDocMarker(l, "...");
    if (start || end) {
      if (pos > docStart)
        docs.push_back({text.substr(docStart, pos - docStart), docLine});
      // "--- {a: 1}" carries content on the marker line: keep it.
      docStart = start ? pos + 3 : eol;
      docLine = line;
    }
    if (eol == text.size())
      break;
    pos = eol + 1;
    ++line;
  }
  if (docStart < text.size())
    docs.push_back({text.substr(docStart), docLine});
  return docs;
}

}  // namespace

Result<Workflow> parseWorkflowYaml(std::string_view yaml) {
  auto docs = splitYaml(yaml);
  std::optional<Result<Workflow>> result;
  for (const auto& doc : docs) {
    bool empty = false;
    auto json = yamlDocToJson(doc.text, doc.firstLine, empty);
    if (!json)
      return json.error();
    if (empty)
      continue;
    if (result) {
      return makeError(ErrorCode::kInvalidInput,
                       "expected one YAML document, found more (use readWorkflows for streams)");
    }
    result = parseWorkflowJson(*json);
  }
  if (!result)
    return makeError(ErrorCode::kInvalidInput, "empty YAML document");
  return std::move(*result);
}

Status readWorkflows(std::string_view text, const WorkflowSink& sink) {
  return readWorkflows(nullptr, text, sink);
}

Status readWorkflows(std::shared_ptr<const void> owner, std::string_view text,
                     const WorkflowSink& sink) {
  std::size_t pos = 0;
  if (text.substr(0, 3) == "\xEF\xBB\xBF")
    pos = 3;  // UTF-8 BOM
  std::size_t first = pos;
  while (first < text.size() && (text[first] == ' ' || text[first] == '\n' || text[first] == '\r' ||
                                 text[first] == '\t')) {
    ++first;
  }
  if (first >= text.size())
    return makeError(ErrorCode::kInvalidInput, "empty input");
  if (text[first] == '{' || text[first] == '[')
    return readJsonStream(std::move(owner), text.substr(pos), sink);

  auto docs = splitYaml(text.substr(pos));
  std::size_t index = 0;
  bool any = false;
  std::size_t count = docs.size();
  for (const auto& doc : docs) {
    ++index;
    bool empty = false;
    auto json = yamlDocToJson(doc.text, doc.firstLine, empty);
    std::string origin = count > 1 ? "document " + std::to_string(index) : std::string();
    if (!json) {
      if (count == 1)
        return json.error();  // nothing could be read at all
      sink(json.error(), origin);
      any = true;
      continue;
    }
    if (empty)
      continue;
    any = true;
    Status st = readJsonStream(*json, [&](Result<Workflow> wf, std::string_view o) {
      std::string full = origin;
      if (!o.empty())
        full += (full.empty() ? "" : ": ") + std::string(o);
      sink(std::move(wf), full);
    });
    if (!st.ok())
      sink(st.error(), origin);
  }
  if (!any)
    return makeError(ErrorCode::kInvalidInput, "no YAML document in the input");
  return Status::okStatus();
}

}  // namespace exitrec
