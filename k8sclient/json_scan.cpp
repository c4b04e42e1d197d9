#include "k8sclient/json_scan.h"

#include <string>

namespace exitrec::jsonscan {
namespace {

constexpr auto npos = std::string_view::npos;

bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::size_t skipSpace(std::string_view t, std::size_t p) {
  while (p < t.size() && isSpace(t[p]))
    ++p;
  return p;
}

// p at the opening quote; returns one past the closing quote.
std::size_t skipString(std::string_view t, std::size_t p) {
  for (++p; p < t.size(); ++p) {
    if (t[p] == '\\') {
      ++p;
    } else if (t[p] == '"') {
      return p + 1;
    }
  }
  return npos;
}

}  // namespace

std::size_t skipValue(std::string_view t, std::size_t pos) {
  std::size_t p = skipSpace(t, pos);
  if (p >= t.size())
    return npos;
  const char c = t[p];
  if (c == '"')
    return skipString(t, p);
  if (c == '{' || c == '[') {
    int depth = 0;
    while (p < t.size()) {
      const char d = t[p];
      if (d == '"') {
        p = skipString(t, p);
        if (p == npos)
          return npos;
        continue;
      }
      if (d == '{' || d == '[') {
        ++depth;
      } else if (d == '}' || d == ']') {
        if (--depth == 0)
          return p + 1;
      }
      ++p;
    }
    return npos;
  }
  // Scalar: number, true, false, null.
  const std::size_t start = p;
  while (p < t.size() && !isSpace(t[p]) && t[p] != ',' && t[p] != '}' && t[p] != ']')
    ++p;
  return p == start ? npos : p;
}

bool forEachMember(std::string_view t,
                   const std::function<bool(std::string_view, std::string_view)>& fn) {
  std::size_t p = skipSpace(t, 0);
  if (p >= t.size() || t[p] != '{')
    return false;
  p = skipSpace(t, p + 1);
  if (p < t.size() && t[p] == '}')
    return true;
  while (p < t.size()) {
    if (t[p] != '"')
      return false;
    const std::size_t keyEnd = skipString(t, p);
    if (keyEnd == npos)
      return false;
    const std::string_view key = t.substr(p + 1, keyEnd - p - 2);
    p = skipSpace(t, keyEnd);
    if (p >= t.size() || t[p] != ':')
      return false;
    const std::size_t vStart = skipSpace(t, p + 1);
    const std::size_t vEnd = skipValue(t, vStart);
    if (vEnd == npos)
      return false;
    if (!fn(key, t.substr(vStart, vEnd - vStart)))
      return false;
    p = skipSpace(t, vEnd);
    if (p >= t.size())
      return false;
    if (t[p] == '}')
      return true;
    if (t[p] != ',')
      return false;
    p = skipSpace(t, p + 1);
  }
  return false;
}

bool forEachElement(std::string_view t, const std::function<bool(std::string_view)>& fn) {
  std::size_t p = skipSpace(t, 0);
  if (p >= t.size() || t[p] != '[')
    return false;
  p = skipSpace(t, p + 1);
  if (p < t.size() && t[p] == ']')
    return true;
  while (p < t.size()) {
    const std::size_t vEnd = skipValue(t, p);
    if (vEnd == npos)
      return false;
    if (!fn(t.substr(p, vEnd - p)))
      return false;
    p = skipSpace(t, vEnd);
    if (p >= t.size())
      return false;
    if (t[p] == ']')
      return true;
    if (t[p] != ',')
      return false;
    p = skipSpace(t, p + 1);
  }
  return false;
}

std::string_view member(std::string_view text, std::string_view key) {
  std::string_view found;
  forEachMember(text, [&](std::string_view k, std::string_view v) {
    if (k == key) {
      found = v;
      return false;
    }
    return true;
  });
  return found;
}

}  // namespace exitrec::jsonscan
