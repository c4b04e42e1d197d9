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

namespace exitrec::jsonscan {

void ListSplitter::beginCapture(Capture what, std::size_t at) {
  capture_ = what;
  captureDepth_ = depth_;
  captureFrom_ = at;
  buf_.clear();
}

bool ListSplitter::endCapture(std::string_view piece, std::size_t end) {
  std::string_view text;
  if (buf_.empty()) {
    text = piece.substr(captureFrom_, end - captureFrom_);  // within one piece: no copy
  } else {
    buf_.append(piece.substr(captureFrom_, end - captureFrom_));
    text = buf_;
  }
  const Capture what = capture_;
  capture_ = Capture::kNone;
  bool more = true;
  if (what == Capture::kItem) {
    ++items_;
    more = onItem_(text);
  } else if (what == Capture::kMetadata) {
    metadata_.assign(text);
  }
  buf_.clear();
  if (!more)
    stopped_ = true;
  return more;
}

bool ListSplitter::feed(std::string_view p) {
  if (failed_ || stopped_)
    return false;
  captureFrom_ = 0;  // a capture in progress continues at the start of this piece
  const auto fail = [this] {
    failed_ = true;
    return false;
  };
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (inString_) {
      if (escaped_) {
        escaped_ = false;
        continue;
      }
      const std::size_t q = p.find_first_of("\"\\", i);
      if (q == std::string_view::npos)
        break;  // the string goes on in the next piece
      i = q;
      if (p[i] == '\\') {
        escaped_ = true;
        continue;
      }
      inString_ = false;
      if (capture_ == Capture::kKey) {
        key_ = buf_;
        key_.append(p.substr(captureFrom_, i - captureFrom_));
        buf_.clear();
        capture_ = Capture::kNone;
      }
      continue;
    }
    const char c = p[i];
    switch (c) {
      case ' ':
      case '\t':
      case '\n':
      case '\r':
        continue;
      case '{':
      case '[':
        if (!started_) {
          if (c != '{')
            return fail();
          started_ = true;
          depth_ = 1;
          stack_.push_back('}');
          expectKey_ = true;
          continue;
        }
        if (done_ || (depth_ == 1 && expectKey_))
          return fail();
        ++depth_;
        stack_.push_back(c == '{' ? '}' : ']');
        if (capture_ != Capture::kNone)
          continue;
        if (depth_ == 2 && key_ == "items") {
          if (c != '[')
            return fail();
          inItems_ = true;
          sawItems_ = true;
        } else if (depth_ == 2 && key_ == "metadata") {
          beginCapture(Capture::kMetadata, i);
        } else if (depth_ == 3 && inItems_) {
          beginCapture(Capture::kItem, i);
        }
        continue;
      case '}':
      case ']':
        if (stack_.empty() || stack_.back() != c)
          return fail();
        if ((capture_ == Capture::kItem || capture_ == Capture::kMetadata) &&
            depth_ == captureDepth_ && !endCapture(p, i + 1)) {
          return false;
        }
        if (depth_ == 2 && inItems_)
          inItems_ = false;
        stack_.pop_back();
        if (--depth_ == 0)
          done_ = true;
        continue;
      case '"':
        if (!started_ || done_)
          return fail();
        inString_ = true;
        if (depth_ == 1 && expectKey_) {
          expectKey_ = false;
          beginCapture(Capture::kKey, i + 1);
        } else if (depth_ == 2 && inItems_ && capture_ == Capture::kNone) {
          return fail();  // list items are objects
        }
        continue;
      case ',':
        if (depth_ == 1)
          expectKey_ = true;
        continue;
      case ':':
        continue;
      default:
        if (!started_ || done_)
          return fail();
        if (depth_ == 2 && inItems_ && capture_ == Capture::kNone)
          return fail();  // list items are objects
        if (depth_ == 1 && !expectKey_ && key_ == "items")
          sawItems_ = true;  // "items": null
        continue;
    }
  }
  if (capture_ != Capture::kNone)
    buf_.append(p.substr(std::min(captureFrom_, p.size())));
  return true;
}

bool ListSplitter::finish() const {
  return started_ && done_ && !failed_ && !inString_;
}

}  // namespace exitrec::jsonscan
