#pragma once
// Internal to the engine's JSON reader: the validating On-Demand decoder's
// building blocks, shared by the Workflow decoder (json_reader.cpp), the
// stream splitter (json_stream.cpp) and the fast nodes scan
// (json_node_scan.cpp). Nothing here reaches into simdjson's internals: it uses
// its public On-Demand API and its documented SIMDJSON_PADDING guarantee.
//
// Errors come in two kinds. A *field* error (a value of the wrong type, a
// missing required field) is recorded with its path and decoding goes on, so
// the reader stays in step with the document and a List can move on to its
// next item. A *syntax* error (truncated or malformed JSON) stops the document.

#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "engine/bytes.h"
#include "engine/key_hash.h"
#include "engine/workflow.h"

namespace exitrec::jsonread {

using bytes::is;

namespace od = simdjson::ondemand;

// A path segment on the stack: rendered only when an error is reported.
struct Path {
  enum class Kind : std::uint8_t { kRoot, kField, kIndex, kKey };
  const Path* parent = nullptr;
  Kind kind = Kind::kRoot;
  std::string_view text;
  std::size_t index = 0;

  Path field(std::string_view f) const { return Path{this, Kind::kField, f, 0}; }
  Path at(std::size_t i) const { return Path{this, Kind::kIndex, {}, i}; }
  Path key(std::string_view k) const { return Path{this, Kind::kKey, k, 0}; }

  void render(std::string& out) const {
    if (parent != nullptr)
      parent->render(out);
    switch (kind) {
      case Kind::kRoot:
        out.append(text);
        break;
      case Kind::kField:
        if (!out.empty())
          out.push_back('.');
        out.append(text);
        break;
      case Kind::kIndex:
        out.push_back('[');
        out.append(std::to_string(index));
        out.push_back(']');
        break;
      case Kind::kKey:
        out.append("[\"");
        out.append(text);
        out.append("\"]");
        break;
    }
  }
  std::string str() const {
    std::string out;
    render(out);
    return out;
  }
};

// A parser per thread, reused: its buffers (structural index, string buffer)
// are sized to the largest document seen, so repeated reads do not pay for
// allocation and page faults again. Re-entrant use on the same thread (a sink
// that parses) falls back to a parser of its own.
class ParserLease {
 public:
  ParserLease() : parser_(busy() ? &own_ : &shared()) {
    if (parser_ != &own_)
      busy() = true;
  }
  ~ParserLease() {
    if (parser_ != &own_)
      busy() = false;
  }
  ParserLease(const ParserLease&) = delete;
  ParserLease& operator=(const ParserLease&) = delete;
  od::parser& get() { return *parser_; }

 private:
  static od::parser& shared() {
    thread_local od::parser parser;
    return parser;
  }
  static bool& busy() {
    thread_local bool inUse = false;
    return inUse;
  }
  od::parser own_;
  od::parser* parser_;
};

// The bytes being read and what keeps them alive. Either our own padded copy
// or, on the zero-copy path (readWorkflows with an owner), the caller's
// buffer: copying a 25 MB input once more costs a full pass plus fresh pages.
// `data` is followed by at least SIMDJSON_PADDING readable bytes.
struct Backing {
  std::shared_ptr<const void> owner;
  const char* data = nullptr;
  std::size_t size = 0;

  explicit operator bool() const { return owner != nullptr; }
  bool contains(std::string_view s) const {
    return s.data() >= data && s.data() + s.size() <= data + size;
  }
  simdjson::padded_string_view view() const {
    return simdjson::padded_string_view(data, size, size + simdjson::SIMDJSON_PADDING);
  }
  static Backing copyOf(std::string_view text) {
    auto padded = std::make_shared<const simdjson::padded_string>(text);
    return Backing{padded, padded->data(), padded->size()};
  }
};

// JSON whitespace ends [begin, end) in pretty-printed input; returns the end
// without it. (All four whitespace bytes are <= ' ', no other byte that can
// end a token is, so compact input costs one comparison.)
[[gnu::always_inline]] inline const char* trimJsonSpace(const char* begin, const char* end) {
  while (end > begin && static_cast<unsigned char>(end[-1]) <= ' ' &&
         (end[-1] == ' ' || end[-1] == '\n' || end[-1] == '\r' || end[-1] == '\t'))
    --end;
  return end;
}

// True when [p, p + n) holds no backslash, 16 bytes per step (SSE2, baseline
// on x86-64; elsewhere the has-zero-byte test on w XOR (8 backslashes), 8
// bytes per step). The last step reads up to 15 bytes past the end and masks
// them off, so callers must guarantee 16 readable bytes after p + n
// (simdjson's padding does: every string here lies in a padded buffer, before
// its closing quote).
[[gnu::always_inline]] inline bool noBackslash(const char* p, std::size_t n) {
#if defined(__SSE2__)
  const __m128i backslashes = _mm_set1_epi8('\\');
  for (;;) {
    const auto hits = static_cast<unsigned>(_mm_movemask_epi8(
        _mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), backslashes)));
    if (n <= 16)
      return (hits & ((1u << n) - 1)) == 0;
    if (hits != 0)
      return false;
    p += 16;
    n -= 16;
  }
#else
  constexpr std::uint64_t kOnes = 0x0101010101010101ull;
  constexpr std::uint64_t kHigh = 0x8080808080808080ull;
  constexpr std::uint64_t kBackslashes = kOnes * static_cast<unsigned char>('\\');
  for (;;) {
    std::uint64_t w = 0;
    std::memcpy(&w, p, 8);
    std::uint64_t x = w ^ kBackslashes;
    std::uint64_t hits = (x - kOnes) & ~x & kHigh;
    if (n < 8) {
      // Bytes at and past n are not the string's (little-endian: the high
      // ones). Borrows only run upwards, so masking after the test is exact.
      return (hits & ((std::uint64_t{1} << (8 * n)) - 1)) == 0;
    }
    if (hits != 0)
      return false;
    p += 8;
    n -= 8;
  }
#endif
}

// True when the document has been read to its end (nothing trails it).
inline bool docAtEnd(od::document& doc) {
  const char* loc = nullptr;
  return doc.current_location().get(loc) == simdjson::OUT_OF_BOUNDS;
}

class Decoder {
 public:
  // `backing` is the padded buffer being read; string views may point into it.
  explicit Decoder(Backing backing) : backing_(std::move(backing)) {}

  // First error seen (field or syntax); decoding reports only one.
  bool hasError() const { return error_.has_value(); }
  Error takeError() { return std::move(*error_); }
  bool syntaxError() const { return syntax_; }

  // Returns false when decoding must stop (syntax error).
  bool fatal(simdjson::error_code code, const Path& path) {
    if (!error_) {
      std::string where = path.str();
      std::string msg = where.empty() ? std::string() : where + ": ";
      msg += "invalid JSON: ";
      msg += simdjson::error_message(code);
      error_ = makeError(ErrorCode::kInvalidInput, std::move(msg));
    }
    syntax_ = true;
    return false;
  }
  // Records a field error; decoding continues.
  void fieldError(const Path& path, std::string_view what) {
    if (!error_) {
      std::string msg = path.str();
      msg += ": ";
      msg += what;
      error_ = makeError(ErrorCode::kInvalidInput, std::move(msg));
    }
  }
  void recordError(Error e) {
    if (!error_)
      error_ = std::move(e);
  }

  // Type of the value, or a syntax error.
  bool type(od::value& v, od::json_type& t, const Path& path) {
    if (auto e = v.type().get(t))
      return fatal(e, path);
    return true;
  }

  // Reads a string (null → empty, leaves `out` untouched when absent). A value
  // of another type is a field error.
  bool string(od::value& v, std::string_view& out, const Path& path, bool nullOk = true) {
    od::json_type t{};
    if (!type(v, t, path))
      return false;
    if (t == od::json_type::null) {
      if (!nullOk)
        fieldError(path, "expected a string, got null");
      return consumeNull(v, path);
    }
    if (t != od::json_type::string) {
      fieldError(path, std::string("expected a string, got ") + typeName(t));
      return true;
    }
    if (auto e = v.get_string().get(out))
      return fatal(e, path);
    return true;
  }
  bool string(od::value& v, std::string& out, const Path& path, bool nullOk = true) {
    std::string_view sv;
    if (!string(v, sv, path, nullOk))
      return false;
    out.assign(sv);
    return true;
  }

  bool boolean(od::value& v, bool& out, const Path& path) {
    od::json_type t{};
    if (!type(v, t, path))
      return false;
    if (t == od::json_type::null)
      return consumeNull(v, path);
    if (t != od::json_type::boolean) {
      fieldError(path, std::string("expected a boolean, got ") + typeName(t));
      return true;
    }
    if (auto e = v.get_bool().get(out))
      return fatal(e, path);
    return true;
  }

  // Calls fn(key, value, keyPath) for each field; a non-object (null allowed
  // when nullOk) is a field error.
  template <typename Fn>
  bool object(od::value& v, const Path& path, Fn&& fn, bool nullOk = true) {
    od::json_type t{};
    if (!type(v, t, path))
      return false;
    if (t == od::json_type::null && nullOk)
      return consumeNull(v, path);
    if (t != od::json_type::object) {
      fieldError(path, std::string("expected an object, got ") + typeName(t));
      return true;
    }
    od::object obj;
    if (auto e = v.get_object().get(obj))
      return fatal(e, path);
    return fields(obj, path, fn);
  }

  template <typename Fn>
  bool fields(od::object& obj, const Path& path, Fn&& fn) {
    for (auto fieldResult : obj) {
      // By reference: copying field/value structs through the stack costs
      // store-forwarding stalls on this, the hottest loop.
      if (auto e = fieldResult.error())
        return fatal(e, path);
      od::field& f = fieldResult.value_unsafe();
      od::value& val = f.value();
      std::string_view key = rawKey(f, val);
      if (key.data() == nullptr) {
        // The key has escapes: unescape it (rare; never in Kubernetes output).
        if (auto e = f.unescaped_key().get(key))
          return fatal(e, path);
      }
      if (!fn(key, val))
        return false;
    }
    return true;
  }

  template <typename Fn>
  bool array(od::value& v, const Path& path, Fn&& fn) {
    od::json_type t{};
    if (!type(v, t, path))
      return false;
    if (t == od::json_type::null)
      return consumeNull(v, path);
    if (t != od::json_type::array) {
      fieldError(path, std::string("expected an array, got ") + typeName(t));
      return true;
    }
    od::array arr;
    if (auto e = v.get_array().get(arr))
      return fatal(e, path);
    std::size_t i = 0;
    for (auto elResult : arr) {
      if (auto e = elResult.error())
        return fatal(e, path.at(i));
      od::value& el = elResult.value_unsafe();
      if (!fn(i, el))
        return false;
      ++i;
    }
    return true;
  }

  bool stringMap(od::value& v, std::map<std::string, std::string>& out, const Path& path) {
    return object(v, path, [&](std::string_view key, od::value& val) {
      std::string_view s;
      Path p = path.key(key);
      od::json_type t{};
      if (!type(val, t, p))
        return false;
      if (t != od::json_type::string) {
        fieldError(p, std::string("expected a string, got ") + typeName(t));
        return true;
      }
      if (!string(val, s, p))
        return false;
      out.emplace(std::string(key), std::string(s));
      return true;
    });
  }

  bool stringList(od::value& v, std::vector<std::string>& out, const Path& path) {
    return array(v, path, [&](std::size_t i, od::value& el) {
      std::string_view s;
      if (!string(el, s, path.at(i), false))
        return false;
      out.emplace_back(s);
      return true;
    });
  }

  // A scalar as text: strings unescaped, numbers/bools as written.
  bool scalarText(od::value& v, std::string& out, const Path& path) {
    od::json_type t{};
    if (!type(v, t, path))
      return false;
    switch (t) {
      case od::json_type::string:
        return string(v, out, path);
      case od::json_type::number:
      case od::json_type::boolean: {
        std::string_view raw = v.raw_json_token();
        while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\n' || raw.back() == '\r' ||
                                raw.back() == '\t')) {
          raw.remove_suffix(1);
        }
        out.assign(raw);
        return true;
      }
      case od::json_type::null:
        return consumeNull(v, path);
      default:
        fieldError(path, std::string("expected a scalar, got ") + typeName(t));
        return true;
    }
  }

  bool consumeNull(od::value& v, const Path& path) {
    bool isNull = false;
    if (auto e = v.is_null().get(isNull))
      return fatal(e, path);
    return true;
  }

  static const char* typeName(od::json_type t) {
    switch (t) {
      case od::json_type::array:
        return "an array";
      case od::json_type::object:
        return "an object";
      case od::json_type::number:
        return "a number";
      case od::json_type::string:
        return "a string";
      case od::json_type::boolean:
        return "a boolean";
      case od::json_type::null:
        return "null";
    }
    return "an unknown value";
  }

  const Backing& backing() const { return backing_; }

  // A string for a Node: a view straight into the input when it has no
  // escapes (no copy at all), else unescaped and interned in `wf`. This is
  // the hottest path: the raw token already spans the whole string (it runs
  // to the next structural character), so only a backslash check is left.
  bool viewString(od::value& v, std::string_view& out, const Path& path, Workflow& wf,
                  bool nullOk = true) {
    std::string_view tok = v.raw_json_token();
    if (tok.empty())
      return fatal(simdjson::TAPE_ERROR, path);
    if (tok[0] == '"' && backing_) {
      const char* start = tok.data() + 1;
      const char* end = trimJsonSpace(start, tok.data() + tok.size());
      // Stage 1 validated the string, so `end[-1]` is its closing quote.
      if (end > start && end[-1] == '"' &&
          noBackslash(start, static_cast<std::size_t>(end - 1 - start))) {
        out = std::string_view(start, static_cast<std::size_t>(end - 1 - start));
        return true;
      }
      std::string_view s;
      if (auto e = v.get_string().get(s))
        return fatal(e, path);
      out = wf.intern(s);
      return true;
    }
    std::string_view s;
    if (!string(v, s, path, nullOk))
      return false;
    out = wf.intern(s);
    return true;
  }
  std::vector<std::string_view>& scratch() { return scratch_; }
  // Key hashes the fast nodes scan computed, for Workflow::buildIndex.
  NodeKeyHashes& nodeKeyHashes() { return nodeKeyHashes_; }
  // Expected node count, to size Workflow::nodes once (0 = unknown). Derived
  // from the document size: an Argo node takes a few hundred bytes of JSON.
  std::size_t nodeHint() const { return nodeHint_; }
  void hintNodesFromSize(std::size_t bytes) {
    nodeHint_ = std::clamp<std::size_t>(bytes / 256, 16, std::size_t{1} << 20);
  }

  // The key as written, straight from the padded input (no copy), or a null
  // view when it contains a backslash. The key ends where the value starts,
  // less the ':' and any whitespace, so no scan for the closing quote.
  static std::string_view rawKey(od::field& f, od::value& val) {
    const char* start = f.key().raw();
    const char* end = trimJsonSpace(start, val.raw_json_token().data());
    if (end > start && end[-1] == ':') {
      end = trimJsonSpace(start, end - 1);
      if (end > start && end[-1] == '"' &&
          noBackslash(start, static_cast<std::size_t>(end - 1 - start)))
        return {start, static_cast<std::size_t>(end - 1 - start)};
    }
    return {};
  }

 private:
  Backing backing_;
  std::optional<Error> error_;
  bool syntax_ = false;
  std::vector<std::string_view> scratch_;
  std::size_t nodeHint_ = 0;
  NodeKeyHashes nodeKeyHashes_;
};

// Decodes the fields of one Workflow object (or, when onItem is given and an
// `items` array appears, a List whose items go to onItem; `isList` is set).
// Returns false on a syntax error (the document cannot go on). In
// json_reader.cpp.
bool decodeWorkflowBody(Decoder& d, od::object& obj, Workflow& wf, const Path& root,
                        const std::function<bool(std::size_t, od::value&)>* onItem, bool& isList);

}  // namespace exitrec::jsonread
