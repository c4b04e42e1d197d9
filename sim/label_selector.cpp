#include "sim/label_selector.h"

#include <algorithm>
#include <cctype>

namespace exitrec {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
    s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.remove_suffix(1);
  return s;
}

bool validKey(std::string_view k) {
  if (k.empty() || k.size() > 316)
    return false;
  return std::all_of(k.begin(), k.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
           c == '/';
  });
}

bool validValue(std::string_view v) {
  if (v.size() > 63)
    return false;
  return std::all_of(v.begin(), v.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

// Splits on commas that are not inside parentheses.
std::vector<std::string_view> splitTopLevel(std::string_view text) {
  std::vector<std::string_view> out;
  int depth = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '(')
      ++depth;
    if (text[i] == ')')
      --depth;
    if (text[i] == ',' && depth == 0) {
      out.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  out.push_back(text.substr(start));
  return out;
}

Error parseError(std::string_view text, const std::string& why) {
  return makeError(ErrorCode::kInvalidInput,
                   "unable to parse requirement: " + why + " (in \"" + std::string(text) + "\")");
}

}  // namespace

Result<LabelSelector> LabelSelector::parse(std::string_view text) {
  LabelSelector sel;
  if (trim(text).empty())
    return sel;
  for (std::string_view raw : splitTopLevel(text)) {
    std::string_view part = trim(raw);
    if (part.empty())
      return parseError(text, "found '', expected: identifier");
    Requirement r;
    if (part.front() == '!') {
      r.key = std::string(trim(part.substr(1)));
      r.op = Op::kDoesNotExist;
    } else if (std::size_t p = part.find("!="); p != std::string_view::npos) {
      r.key = std::string(trim(part.substr(0, p)));
      r.op = Op::kNotEquals;
      r.values.emplace_back(trim(part.substr(p + 2)));
    } else if (std::size_t q = part.find("=="); q != std::string_view::npos) {
      r.key = std::string(trim(part.substr(0, q)));
      r.op = Op::kEquals;
      r.values.emplace_back(trim(part.substr(q + 2)));
    } else if (std::size_t e = part.find('='); e != std::string_view::npos) {
      r.key = std::string(trim(part.substr(0, e)));
      r.op = Op::kEquals;
      r.values.emplace_back(trim(part.substr(e + 1)));
    } else if (std::size_t lp = part.find('('); lp != std::string_view::npos) {
      std::string_view head = trim(part.substr(0, lp));
      if (part.back() != ')')
        return parseError(text, "found '" + std::string(part) + "', expected: ')'");
      std::size_t sp = head.find_last_of(" \t");
      if (sp == std::string_view::npos)
        return parseError(text, "expected: in, notin");
      std::string_view opWord = trim(head.substr(sp + 1));
      r.key = std::string(trim(head.substr(0, sp)));
      if (opWord == "in") {
        r.op = Op::kIn;
      } else if (opWord == "notin") {
        r.op = Op::kNotIn;
      } else {
        return parseError(text, "found '" + std::string(opWord) + "', expected: in, notin");
      }
      std::string_view inner = part.substr(lp + 1, part.size() - lp - 2);
      for (std::string_view v : splitTopLevel(inner)) {
        std::string_view tv = trim(v);
        if (!validValue(tv))
          return parseError(text, "invalid label value: \"" + std::string(tv) + "\"");
        r.values.emplace_back(tv);
      }
      if (r.values.empty() || (r.values.size() == 1 && r.values[0].empty())) {
        return parseError(text, "for 'in', 'notin' operators, values set can't be empty");
      }
    } else {
      r.key = std::string(part);
      r.op = Op::kExists;
    }
    if (!validKey(r.key))
      return parseError(text, "invalid label key \"" + r.key + "\"");
    for (const auto& v : r.values) {
      if (!validValue(v))
        return parseError(text, "invalid label value: \"" + v + "\"");
    }
    sel.reqs_.push_back(std::move(r));
  }
  return sel;
}

bool LabelSelector::matches(const std::map<std::string, std::string>& labels) const {
  for (const auto& r : reqs_) {
    auto it = labels.find(r.key);
    bool has = it != labels.end();
    switch (r.op) {
      case Op::kEquals:
        if (!has || it->second != r.values[0])
          return false;
        break;
      case Op::kNotEquals:
        if (has && it->second == r.values[0])
          return false;
        break;
      case Op::kIn:
        if (!has || std::find(r.values.begin(), r.values.end(), it->second) == r.values.end()) {
          return false;
        }
        break;
      case Op::kNotIn:
        if (has && std::find(r.values.begin(), r.values.end(), it->second) != r.values.end()) {
          return false;
        }
        break;
      case Op::kExists:
        if (!has)
          return false;
        break;
      case Op::kDoesNotExist:
        if (has)
          return false;
        break;
    }
  }
  return true;
}

Result<FieldSelector> FieldSelector::parse(std::string_view text) {
  FieldSelector sel;
  if (trim(text).empty())
    return sel;
  for (std::string_view raw : splitTopLevel(text)) {
    std::string_view part = trim(raw);
    Requirement r;
    std::size_t p;
    if ((p = part.find("!=")) != std::string_view::npos) {
      r.field = std::string(trim(part.substr(0, p)));
      r.equals = false;
      r.value = std::string(trim(part.substr(p + 2)));
    } else if ((p = part.find("==")) != std::string_view::npos) {
      r.field = std::string(trim(part.substr(0, p)));
      r.value = std::string(trim(part.substr(p + 2)));
    } else if ((p = part.find('=')) != std::string_view::npos) {
      r.field = std::string(trim(part.substr(0, p)));
      r.value = std::string(trim(part.substr(p + 1)));
    } else {
      return makeError(ErrorCode::kInvalidInput, "invalid selector: '" + std::string(text) +
                                                     "'; can't understand '" + std::string(part) +
                                                     "'");
    }
    if (r.field.empty()) {
      return makeError(ErrorCode::kInvalidInput, "invalid selector: '" + std::string(text) + "'");
    }
    sel.reqs_.push_back(std::move(r));
  }
  return sel;
}

}  // namespace exitrec
