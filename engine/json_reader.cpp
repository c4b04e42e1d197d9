// The fast Workflow read path: simdjson On-Demand, decoding straight into the
// compact model with no DOM of the whole object.
//
// Errors come in two kinds. A *field* error (a value of the wrong type, a
// missing required field) is recorded with its path and decoding goes on, so
// the reader stays in step with the document and a List can move on to its
// next item. A *syntax* error (truncated or malformed JSON) stops the document.
#include "engine/json_reader.h"

#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <charconv>
#include <cstring>
#include <memory>
#include <string>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "engine/bytes.h"
#include "engine/key_hash.h"
#include "engine/workflow.h"

namespace exitrec {

namespace {

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

// nodeKeyHash() of [p, p + n), reading whole 16-byte steps: the padding
// requirement of noBackslash(). The JSON fast path hashes node ids and names
// while it has them in cache (see NodeKeyHashes). Must equal nodeKeyHash
// (tested), so it takes the same steps (see engine/key_hash.h).
[[gnu::always_inline]] inline std::uint32_t paddedKeyHash(const char* p, std::size_t n) {
  KeyHasher hasher(n);
  for (; n > 16; p += 16, n -= 16) {
    std::uint64_t lo = 0;
    std::uint64_t hi = 0;
    std::memcpy(&lo, p, 8);
    std::memcpy(&hi, p + 8, 8);
    hasher.add(lo, hi);
  }
  if (n > 0) {
    // The last 1..16 bytes, read in full (padding) and masked to n.
    std::uint64_t lo = 0;
    std::uint64_t hi = 0;
    std::memcpy(&lo, p, 8);
    std::memcpy(&hi, p + 8, 8);
    if (n < 8) {
      lo &= (std::uint64_t{1} << (8 * n)) - 1;
      hi = 0;
    } else if (n < 16) {
      hi &= (std::uint64_t{1} << (8 * (n - 8))) - 1;
    }
    hasher.add(lo, hi);
  }
  return hasher.finish();
}

// noBackslash() and isHookNodeName() in one pass over a node name, with the
// same padding requirement (plus one byte): names are ~100 bytes, and a second
// pass for the hook test cost as much as the first.
[[gnu::always_inline]] inline bool noBackslashHookName(const char* p, std::size_t n,
                                                       bool& hookName) {
#if defined(__SSE2__)
  const __m128i backslashes = _mm_set1_epi8('\\');
  const __m128i dots = _mm_set1_epi8('.');
  const __m128i hs = _mm_set1_epi8('h');
  bool hooks = false;
  for (std::size_t i = 0; i < n; i += 16) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 1));
    const unsigned inside = n - i >= 16 ? 0xFFFFu : (1u << (n - i)) - 1;
    if ((static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(a, backslashes))) & inside) != 0)
      return false;
    // ".h" pairs: candidates for ".hooks.", checked in full (rare).
    auto pairs = static_cast<unsigned>(_mm_movemask_epi8(
                     _mm_and_si128(_mm_cmpeq_epi8(a, dots), _mm_cmpeq_epi8(b, hs)))) &
                 inside;
    for (; pairs != 0 && !hooks; pairs &= pairs - 1) {
      const std::size_t at = i + static_cast<std::size_t>(std::countr_zero(pairs));
      hooks = at + 7 <= n && is(std::string_view(p + at, 7), ".hooks.");
    }
  }
  hookName = hooks || (n >= 7 && is(std::string_view(p + n - 7, 7), ".onExit"));
  return true;
#else
  if (!noBackslash(p, n))
    return false;
  hookName = isHookNodeName(std::string_view(p, n));
  return true;
#endif
}

// True when the document has been read to its end (nothing trails it).
bool docAtEnd(od::document& doc) {
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

bool decodeNode(Decoder& d, Workflow& wf, od::value& v, std::string_view id, bool idIsStable,
                const Path& path, Node& node) {
  // The id is the map key: a view into the input when the key had no escapes.
  node.id = idIsStable ? id : wf.intern(id);
  bool haveName = false;
  bool haveType = false;
  bool haveTemplateRef = false;
  // Reads a string straight into the workflow's arena.
  auto text = [&](od::value& val, std::string_view& out, const Path& p, bool nullOk = true) {
    return d.viewString(val, out, p, wf, nullOk);
  };
  bool ok = d.object(
      v, path,
      [&](std::string_view key, od::value& val) {
        Path p = path.field(key);
        switch (key.empty() ? '\0' : key[0]) {
          case 'n':
            if (is(key, "name")) {
              haveName = true;
              return text(val, node.name, p, false);
            }
            if (is(key, "nodeFlag")) {
              return d.object(val, p, [&](std::string_view k, od::value& fv) {
                if (is(k, "hooked"))
                  return d.boolean(fv, node.hooked, p.field(k));
                if (is(k, "retried"))
                  return d.boolean(fv, node.retried, p.field(k));
                return true;
              });
            }
            return true;
          case 'd':
            if (is(key, "displayName"))
              return text(val, node.displayName, p);
            if (is(key, "daemoned"))
              return d.boolean(val, node.daemoned, p);
            return true;
          case 't':
            if (is(key, "type")) {
              std::string_view s;
              if (!d.viewString(val, s, p, wf, false))
                return false;
              node.type = parseNodeType(s);
              haveType = true;
            } else if (is(key, "templateName")) {
              // templateRef.template wins (Argo's failures report it).
              if (!haveTemplateRef)
                return text(val, node.templateName, p);
            } else if (is(key, "templateRef")) {
              return d.object(val, p, [&](std::string_view k, od::value& fv) {
                if (k != "template")
                  return true;
                std::string_view s;
                if (!d.string(fv, s, p.field(k)))
                  return false;
                if (!s.empty()) {
                  node.templateName = wf.intern(s);
                  haveTemplateRef = true;
                }
                return true;
              });
            }
            return true;
          case 'p':
            if (is(key, "phase")) {
              std::string_view s;
              if (!d.viewString(val, s, p, wf))
                return false;
              node.phase = parsePhase(s);
            }
            return true;
          case 'b':
            if (is(key, "boundaryID"))
              return text(val, node.boundaryId, p);
            return true;
          case 'm':
            if (is(key, "message"))
              return text(val, node.message, p);
            return true;
          case 'f':
            if (is(key, "finishedAt"))
              return text(val, node.finishedAt, p);
            return true;
          case 'c':
            if (is(key, "children")) {
              std::vector<std::string_view>& scratch = d.scratch();
              scratch.clear();
              bool r = d.array(val, p, [&](std::size_t i, od::value& el) {
                std::string_view s;
                if (!d.viewString(el, s, p.at(i), wf, false))
                  return false;
                scratch.push_back(s);
                return true;
              });
              node.children = wf.internViews(scratch);
              return r;
            }
            return true;
          default:
            return true;
        }
      },
      /*nullOk=*/false);
  if (!ok)
    return false;
  if (!haveName)
    d.fieldError(path.field("name"), "missing (required)");
  if (!haveType)
    d.fieldError(path.field("type"), "missing (required)");
  return true;
}

// ---------------------------------------------------------------------------
// The fast path for status.nodes, the bulk of a large Workflow (a 50k-node
// run is ~95% nodes). Instead of On-Demand's general field machinery it walks
// simdjson's structural index directly: every token's offset is known, so a
// string's extent is (its offset, the next token's offset) and a node field
// costs a few loads. It is all-or-nothing: any input it is not sure of (a type
// mismatch, missing required field, escaped key, broken grammar, truncation)
// makes it give up before it has changed any parser state, and the validating
// On-Demand decoder below reads the map instead, with its exact error
// messages. So both paths accept the same inputs and build the same nodes
// (checked by test/engine and the fuzz target, see setNodeScanFastPath).
//
// It needs two protected members of simdjson 3.0's On-Demand iterator (the
// value's token position and the index's end), reached through derived-class
// member pointers: standard C++, and a compile error, not silent breakage, if
// a later simdjson renames them.
struct ValueAccess : od::value {
  static od::json_iterator& jsonIter(od::value& v) { return (v.*(&ValueAccess::iter)).json_iter(); }
};
struct JsonIterAccess : od::json_iterator {
  static od::token_position endOf(const od::json_iterator& it) {
    return (it.*(&JsonIterAccess::end_position))();
  }
};

std::atomic<bool> gNodeScanFastPath{true};

// A position in simdjson's structural index and the bytes it indexes. The
// scanner's hot loops keep a copy in locals (registers): as members they were
// stored and reloaded around every write into a Node, which may alias them.
// For the same reason every method is inlined, and no out-of-line call on the
// hot path takes a cursor's address: such a call keeps the cursor in memory,
// and each step of the scan then waits on a store and its reload.
struct ScanCursor {
  using Pos = const std::uint32_t*;
  Pos pos;
  Pos end;
  const char* base;

  bool more() const { return pos < end; }
  char peek() const { return base[*pos]; }
  // The current token, trailing whitespace excluded.
  [[gnu::always_inline]] std::string_view token() const {
    const char* start = base + *pos;
    return {start, static_cast<std::size_t>(trimJsonSpace(start, base + pos[1]) - start)};
  }
  // The current token is a string (peek() == '"'): its text between the
  // quotes, as written. False if it is not closed before the next token.
  // JSON writers put no space between a string and the ',', ':', ']' or '}'
  // after it, so the trim is almost never needed: it is skipped when the byte
  // before the next token is the closing quote.
  [[gnu::always_inline]] bool quoted(std::string_view& out) const {
    const char* start = base + *pos;
    const char* stop = base + pos[1];
    if (stop[-1] != '"')
      stop = trimJsonSpace(start, stop);
    if (stop - start < 2 || stop[-1] != '"')
      return false;
    out = std::string_view(start + 1, static_cast<std::size_t>(stop - start - 2));
    return true;
  }
  [[gnu::always_inline]] bool expect(char c) {
    if (!more() || peek() != c)
      return false;
    ++pos;
    return true;
  }
  [[gnu::always_inline]] bool isNull() const { return more() && token() == "null"; }
  [[gnu::always_inline]] bool boolean(bool& out) {
    if (!more())
      return false;
    std::string_view tok = token();
    if (tok == "true" || tok == "false") {
      out = tok[0] == 't';
    } else if (tok != "null") {
      return false;
    }
    ++pos;
    return true;
  }
  // Skips one value as On-Demand's skip_child does (nested structure by
  // depth only; scalars are not validated there either). Scalars, most of
  // what is skipped, inline; containers out of line.
  [[gnu::always_inline]] bool skipValue() {
    if (!more())
      return false;
    const char c = peek();
    ++pos;
    if (c != '{' && c != '[')
      return c != '}' && c != ']' && c != ',' && c != ':';
    pos = skipContainerRest(pos, end, base);
    return pos != nullptr;
  }
  // After a container's opening bracket at p - 1: just past its closing one,
  // or nullptr. Takes and returns positions rather than the cursor so that no
  // call takes the cursor's address, which would keep it in memory.
  [[gnu::noinline]] static Pos skipContainerRest(Pos p, Pos end, const char* base) {
    // '[' | 0x20 is '{' and ']' | 0x20 is '}'; no other JSON token start maps
    // to either, so one OR folds the two kinds of bracket, without branches.
    for (int depth = 1; p < end; ++p) {
      const auto folded = static_cast<unsigned char>(base[*p] | 0x20);
      depth += static_cast<int>(folded == '{') - static_cast<int>(folded == '}');
      if (depth == 0)
        return p + 1;
    }
    return nullptr;
  }
  // A field this scanner does not read. Its key may still be an escaped
  // spelling of one it does ("na\\u006de"): keys are compared as written, so
  // such input goes to the validating path, which unescapes keys.
  [[gnu::always_inline]] bool skipUnknown(std::string_view key) {
    return noBackslash(key.data(), key.size()) && skipValue();
  }
  // A key and its ':'; leaves pos at the value. The key as written (escapes
  // not undone).
  [[gnu::always_inline]] bool fieldKey(std::string_view& key) {
    if (!more() || peek() != '"' || !quoted(key))
      return false;
    ++pos;
    return expect(':') && more();
  }
  // After a value: ',' (true, more fields) or the closing brace (true, and
  // `closed`); anything else is false.
  [[gnu::always_inline]] bool nextField(bool& closed) {
    if (!more())
      return false;
    const char c = peek();
    ++pos;
    closed = c == '}';
    return closed || c == ',';
  }
};

class NodeMapScanner {
 public:
  NodeMapScanner(od::json_iterator& it, Workflow& wf, NodeKeyHashes& hashes)
      : it_(it), wf_(wf), hashes_(hashes) {
    at_.pos = it.position();
    at_.end = JsonIterAccess::endOf(it);
    at_.base = reinterpret_cast<const char*>(it.peek(at_.pos)) - *at_.pos;
  }

  // Reads the nodes map at the iterator into wf.nodes. On success moves the
  // iterator past the map (as skipping it would) and returns true; otherwise
  // leaves the iterator, its string buffer and wf.nodes as they were.
  bool run() {
    const std::size_t before = wf_.nodes.size();
    const std::size_t childHashesBefore = hashes_.children.size();
    std::uint8_t* const stringBuf = it_.string_buf_loc();
    ScanCursor c = at_;
    const std::size_t expected = wf_.nodes.capacity() - before;  // the decoder's size hint
    childStarts_.reserve(expected);
    childIds_.reserve(expected);
    if (map(c)) {
      // Every node's children into the arena at once: one copy instead of an
      // allocation and a copy per node.
      const std::span<const std::string_view> all = wf_.internViews(childIds_);
      for (std::size_t k = 0; k < childStarts_.size(); ++k) {
        const std::size_t to = k + 1 < childStarts_.size() ? childStarts_[k + 1] : all.size();
        wf_.nodes[before + k].children = all.subspan(childStarts_[k], to - childStarts_[k]);
      }
      // Leave the iterator where skip_child() would: after the closing brace,
      // at the depth of the object holding the map. Each call's precondition
      // (a SIMDJSON_ASSUME: breaking it is undefined behaviour) holds: one
      // level up at a time, then re-enter one level down at the new position.
      const od::depth_t valueDepth = it_.depth();
      it_.ascend_to(valueDepth - 1);
      it_.ascend_to(valueDepth - 2);
      it_.reenter_child(c.pos, valueDepth - 1);
      return true;
    }
    wf_.nodes.resize(before);
    hashes_.ids.resize(before);
    hashes_.names.resize(before);
    hashes_.children.resize(childHashesBefore);
    it_.string_buf_loc() = stringBuf;
    return false;
  }

 private:
  // A string token into `out` (a view into the input, or unescaped and
  // interned); `null` gives "" when nullOk. With `hash`, also its
  // nodeKeyHash.
  // With `hookName`, also isHookNodeName(out).
  [[gnu::always_inline]] bool string(ScanCursor& c, std::string_view& out, bool nullOk,
                                     std::uint32_t* hash = nullptr, bool* hookName = nullptr) {
    if (!c.more())
      return false;
    if (c.peek() != '"')
      return nullOk && nullString(c, out);
    std::string_view text;
    if (!c.quoted(text))
      return false;
    const char* start = text.data();
    const std::size_t n = text.size();
    if (hookName != nullptr ? noBackslashHookName(start, n, *hookName) : noBackslash(start, n)) {
      out = std::string_view(start, n);
      if (hash != nullptr)
        *hash = paddedKeyHash(start, n);
    } else if (!escapedString(start, out, hash, hookName)) {
      return false;
    }
    ++c.pos;
    return true;
  }
  // string()'s rare paths (null, escapes), out of line and marked cold: they
  // were inlined at each of its ~10 call sites, around the hot path. Moving
  // them out was 4% faster at 1k nodes (side by side, pinned to one CPU).
  // nullString takes the cursor by reference only on that cold path.
  [[gnu::noinline, gnu::cold]] bool nullString(ScanCursor& c, std::string_view& out) {
    if (!c.isNull())
      return false;
    out = {};
    ++c.pos;
    return true;
  }
  [[gnu::noinline, gnu::cold]] bool escapedString(const char* start, std::string_view& out,
                                                  std::uint32_t* hash, bool* hookName) {
    std::string_view unescaped;
    if (it_.unescape(od::raw_json_string(reinterpret_cast<const std::uint8_t*>(start)))
            .get(unescaped))
      return false;
    out = wf_.intern(unescaped);
    if (hash != nullptr)
      *hash = nodeKeyHash(out);
    if (hookName != nullptr)
      *hookName = isHookNodeName(out);
    return true;
  }
  // Object fields: calls field(c, key) with c.pos at the value (the key as
  // written, escapes not undone); field must consume it. The cursor is an
  // argument, not a capture: a closure holding its address keeps it in memory
  // (see ScanCursor).
  template <typename Fn>
  [[gnu::always_inline]] bool object(ScanCursor& c, Fn&& field) {
    if (!c.expect('{'))
      return false;
    if (c.more() && c.peek() == '}') {
      ++c.pos;
      return true;
    }
    for (bool closed = false; !closed;) {
      std::string_view key;
      if (!c.fieldKey(key) || !field(c, key) || !c.nextField(closed))
        return false;
    }
    return true;
  }
  // An object or null.
  template <typename Fn>
  [[gnu::always_inline]] bool optionalObject(ScanCursor& c, Fn&& field) {
    if (c.isNull()) {
      ++c.pos;
      return true;
    }
    return object(c, field);
  }

  // The node's child ids go to childIds_; run() points node.children at them.
  [[gnu::always_inline]] bool children(ScanCursor& c) {
    // A repeated key: the last one wins, null included (as decodeNode does).
    childIds_.resize(childStarts_.back());
    hashes_.children.resize(nodeChildHashes_);
    if (c.isNull()) {
      ++c.pos;
      return true;
    }
    if (!c.expect('['))
      return false;
    if (c.more() && c.peek() == ']') {
      ++c.pos;
    } else {
      for (;;) {
        std::string_view id;
        std::uint32_t hash = 0;
        if (!string(c, id, false, &hash))
          return false;
        childIds_.push_back(id);
        hashes_.children.push_back(hash);
        if (!c.more())
          return false;
        const char next = c.peek();
        ++c.pos;
        if (next == ']')
          break;
        if (next != ',')
          return false;
      }
    }
    return true;
  }

  // Mirrors decodeNode's field rules exactly. The field loop is spelled out
  // rather than going through object(): this runs ~15 times per node, and a
  // lambda call per field cost more than the field. Out of line: inlined
  // into the map loop it ran ~10% more instructions (register pressure).
  [[gnu::noinline]] bool node(ScanCursor& at, Node& node) {
    ScanCursor c = at;  // in registers for the loop; written back on success
    bool haveName = false;
    bool haveType = false;
    bool haveTemplateRef = false;
    if (!c.expect('{'))
      return false;
    if (c.more() && c.peek() == '}') {
      ++c.pos;
      return false;  // no name, no type
    }
    for (bool closed = false; !closed;) {
      std::string_view key;
      if (!c.fieldKey(key))
        return false;
      bool ok = true;
      bool known = true;
      switch (key.size()) {
        case 4:
          if (is(key, "name")) {
            ok = haveName = string(c, node.name, false, &hashes_.names.back(), &node.hookName);
          } else if (is(key, "type")) {
            std::string_view s;
            ok = haveType = string(c, s, false);
            node.type = parseNodeType(s);
          } else {
            known = false;
          }
          break;
        case 5:
          if (is(key, "phase")) {
            std::string_view s;
            ok = string(c, s, true);
            node.phase = parsePhase(s);
          } else {
            known = false;
          }
          break;
        case 7:
          if (is(key, "message")) {
            ok = string(c, node.message, true);
          } else {
            known = false;
          }
          break;
        case 8:
          if (is(key, "children")) {
            ok = children(c);
          } else if (is(key, "nodeFlag")) {
            ok = optionalObject(c, [&node](ScanCursor& flags, std::string_view k) {
              if (is(k, "hooked"))
                return flags.boolean(node.hooked);
              if (is(k, "retried"))
                return flags.boolean(node.retried);
              return flags.skipUnknown(k);
            });
          } else if (is(key, "daemoned")) {
            ok = c.boolean(node.daemoned);
          } else {
            known = false;
          }
          break;
        case 10:
          if (is(key, "finishedAt")) {
            ok = string(c, node.finishedAt, true);
          } else if (is(key, "boundaryID")) {
            ok = string(c, node.boundaryId, true);
          } else {
            known = false;
          }
          break;
        case 11:
          if (is(key, "displayName")) {
            ok = string(c, node.displayName, true);
          } else if (is(key, "templateRef")) {
            ok = optionalObject(c, [&](ScanCursor& ref, std::string_view k) {
              if (!is(k, "template"))
                return ref.skipUnknown(k);
              std::string_view s;
              if (!string(ref, s, true))
                return false;
              if (!s.empty()) {
                node.templateName = s;
                haveTemplateRef = true;
              }
              return true;
            });
          } else {
            known = false;
          }
          break;
        case 12:
          if (is(key, "templateName")) {
            std::string_view s;
            ok = string(c, s, true);
            if (!haveTemplateRef)
              node.templateName = s;
          } else {
            known = false;
          }
          break;
        default:
          known = false;
          break;
      }
      if (!known)
        ok = c.skipUnknown(key);
      if (!ok || !c.nextField(closed))
        return false;
    }
    at = c;
    return haveName && haveType;
  }

  bool map(ScanCursor& c) {
    return object(c, [&](ScanCursor& at, std::string_view id) {
      Node& n = wf_.nodes.emplace_back();
      n.id = id;
      hashes_.ids.emplace_back();
      hashes_.names.emplace_back();
      nodeChildHashes_ = hashes_.children.size();
      childStarts_.push_back(static_cast<std::uint32_t>(childIds_.size()));
      if (!noBackslash(id.data(), id.size()))
        return false;
      hashes_.ids.back() = paddedKeyHash(id.data(), id.size());
      return at.more() && at.peek() == '{' && node(at, n);
    });
  }

  od::json_iterator& it_;
  Workflow& wf_;
  NodeKeyHashes& hashes_;
  std::size_t nodeChildHashes_ = 0;         // hashes_.children.size() where this node's start
  ScanCursor at_{};                         // where the map starts
  std::vector<std::string_view> childIds_;  // every node's child ids, in order
  std::vector<std::uint32_t> childStarts_;  // per node: where its ids start in childIds_
};

bool decodeNodes(Decoder& d, od::value& v, const Path& path, Workflow& wf) {
  const Backing& buf = d.backing();
  if (wf.nodes.empty() && d.nodeHint() > 0)
    wf.nodes.reserve(d.nodeHint());
  // The fast path needs views into a kept buffer, and an enclosing object to
  // hand the iterator back to (not the root of a decoded compressedNodes).
  if (buf && gNodeScanFastPath.load(std::memory_order_relaxed)) {
    od::json_iterator& it = ValueAccess::jsonIter(v);
    if (it.depth() >= 2 && NodeMapScanner(it, wf, d.nodeKeyHashes()).run())
      return true;
  }
  return d.object(v, path, [&](std::string_view key, od::value& val) {
    wf.nodes.emplace_back();
    bool stable = buf && buf.contains(key);
    return decodeNode(d, wf, val, key, stable, path.key(key), wf.nodes.back());
  });
}

bool decodeContinueOn(Decoder& d, od::value& v, const Path& p, bool& failed, bool& error) {
  return d.object(v, p, [&](std::string_view k, od::value& fv) {
    if (is(k, "failed"))
      return d.boolean(fv, failed, p.field(k));
    if (is(k, "error"))
      return d.boolean(fv, error, p.field(k));
    return true;
  });
}

// hooks: {exit: {template: X}}; only the exit hook matters here.
bool decodeHooks(Decoder& d, od::value& v, const Path& p, std::string& exitTemplate) {
  return d.object(v, p, [&](std::string_view k, od::value& hv) {
    if (k != "exit")
      return true;
    Path hp = p.field(k);
    return d.object(hv, hp, [&](std::string_view hk, od::value& tv) {
      if (is(hk, "template"))
        return d.string(tv, exitTemplate, hp.field(hk));
      if (is(hk, "templateRef")) {
        Path rp = hp.field(hk);
        return d.object(tv, rp, [&](std::string_view rk, od::value& rv) {
          if (is(rk, "template"))
            return d.string(rv, exitTemplate, rp.field(rk));
          return true;
        });
      }
      return true;
    });
  });
}

bool decodeTemplateRef(Decoder& d, od::value& v, const Path& p, std::string& templateName) {
  return d.object(v, p, [&](std::string_view k, od::value& fv) {
    if (is(k, "template"))
      return d.string(fv, templateName, p.field(k));
    return true;
  });
}

bool decodeDagTask(Decoder& d, od::value& v, const Path& path, DagTask& task) {
  std::string onExit;
  std::string hookExit;
  bool ok = d.object(
      v, path,
      [&](std::string_view key, od::value& val) {
        Path p = path.field(key);
        if (is(key, "name"))
          return d.string(val, task.name, p, false);
        if (is(key, "template")) {
          if (task.templateName.empty())
            return d.string(val, task.templateName, p);
          return true;
        }
        if (is(key, "templateRef"))
          return decodeTemplateRef(d, val, p, task.templateName);
        if (is(key, "depends"))
          return d.string(val, task.depends, p);
        if (is(key, "dependencies"))
          return d.stringList(val, task.dependencies, p);
        if (is(key, "continueOn")) {
          return decodeContinueOn(d, val, p, task.continueOnFailed, task.continueOnError);
        }
        if (is(key, "onExit"))
          return d.string(val, onExit, p);
        if (is(key, "hooks"))
          return decodeHooks(d, val, p, hookExit);
        if (is(key, "arguments")) {
          return d.object(val, p, [&](std::string_view ak, od::value& av) {
            if (ak != "parameters")
              return true;
            Path pp = p.field(ak);
            return d.array(av, pp, [&](std::size_t i, od::value& pv) {
              std::string name;
              std::string value;
              Path ip = pp.at(i);
              bool r = d.object(pv, ip, [&](std::string_view pk, od::value& fv) {
                if (is(pk, "name"))
                  return d.string(fv, name, ip.field(pk));
                if (is(pk, "value"))
                  return d.scalarText(fv, value, ip.field(pk));
                return true;
              });
              if (r)
                task.parameters.emplace_back(std::move(name), std::move(value));
              return r;
            });
          });
        }
        return true;
      },
      false);
  task.exitHookTemplate = !hookExit.empty() ? hookExit : onExit;
  return ok;
}

bool decodeStep(Decoder& d, od::value& v, const Path& path, Step& step) {
  std::string onExit;
  std::string hookExit;
  bool ok = d.object(
      v, path,
      [&](std::string_view key, od::value& val) {
        Path p = path.field(key);
        if (is(key, "name"))
          return d.string(val, step.name, p);
        if (is(key, "template")) {
          if (step.templateName.empty())
            return d.string(val, step.templateName, p);
          return true;
        }
        if (is(key, "templateRef"))
          return decodeTemplateRef(d, val, p, step.templateName);
        if (is(key, "continueOn")) {
          return decodeContinueOn(d, val, p, step.continueOnFailed, step.continueOnError);
        }
        if (is(key, "onExit"))
          return d.string(val, onExit, p);
        if (is(key, "hooks"))
          return decodeHooks(d, val, p, hookExit);
        return true;
      },
      false);
  step.exitHookTemplate = !hookExit.empty() ? hookExit : onExit;
  return ok;
}

std::optional<std::int64_t> parseInt(std::string_view s) {
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size())
    return std::nullopt;
  return v;
}

bool decodeTemplate(Decoder& d, od::value& v, const Path& path, Template& tmpl) {
  return d.object(
      v, path,
      [&](std::string_view key, od::value& val) {
        Path p = path.field(key);
        if (is(key, "name"))
          return d.string(val, tmpl.name, p, false);
        if (is(key, "dag")) {
          tmpl.isDag = true;
          return d.object(val, p, [&](std::string_view dk, od::value& dv) {
            Path dp = p.field(dk);
            if (is(dk, "target"))
              return d.string(dv, tmpl.dagTarget, dp);
            if (is(dk, "failFast")) {
              od::json_type t{};
              if (!d.type(dv, t, dp))
                return false;
              if (t == od::json_type::null)
                return d.consumeNull(dv, dp);
              bool b = true;
              if (!d.boolean(dv, b, dp))
                return false;
              if (t == od::json_type::boolean)
                tmpl.dagFailFast = b;
              return true;
            }
            if (is(dk, "tasks")) {
              return d.array(dv, dp, [&](std::size_t i, od::value& tv) {
                tmpl.dagTasks.emplace_back();
                return decodeDagTask(d, tv, dp.at(i), tmpl.dagTasks.back());
              });
            }
            return true;
          });
        }
        if (is(key, "steps")) {
          tmpl.isSteps = true;
          return d.array(val, p, [&](std::size_t i, od::value& gv) {
            tmpl.stepGroups.emplace_back();
            Path gp = p.at(i);
            return d.array(gv, gp, [&](std::size_t j, od::value& sv) {
              tmpl.stepGroups[i].emplace_back();
              return decodeStep(d, sv, gp.at(j), tmpl.stepGroups[i].back());
            });
          });
        }
        if (is(key, "retryStrategy")) {
          od::json_type t{};
          if (!d.type(val, t, p))
            return false;
          if (t == od::json_type::null)
            return d.consumeNull(val, p);
          tmpl.hasRetryStrategy = true;
          return d.object(val, p, [&](std::string_view rk, od::value& rv) {
            Path rp = p.field(rk);
            if (is(rk, "limit")) {
              std::string text;
              if (!d.scalarText(rv, text, rp))
                return false;
              tmpl.retryLimit = parseInt(text);
              return true;
            }
            if (is(rk, "retryPolicy"))
              return d.string(rv, tmpl.retryPolicy, rp);
            return true;
          });
        }
        return true;
      },
      false);
}

struct StatusExtras {
  std::string compressedNodes;
  bool sawNodes = false;
};

bool decodeMetadata(Decoder& d, od::value& v, const Path& path, Workflow& wf, bool& haveName,
                    bool& haveGenerateName) {
  return d.object(v, path, [&](std::string_view key, od::value& val) {
    Path p = path.field(key);
    if (is(key, "name")) {
      haveName = true;
      return d.string(val, wf.name, p, false);
    }
    if (is(key, "generateName")) {
      haveGenerateName = true;
      return true;
    }
    if (is(key, "namespace"))
      return d.string(val, wf.namespace_, p);
    if (is(key, "uid"))
      return d.string(val, wf.uid, p);
    if (is(key, "resourceVersion"))
      return d.string(val, wf.resourceVersion, p);
    if (is(key, "labels"))
      return d.stringMap(val, wf.labels, p);
    if (is(key, "annotations"))
      return d.stringMap(val, wf.annotations, p);
    return true;
  });
}

bool decodeSpec(Decoder& d, od::value& v, const Path& path, Workflow& wf) {
  std::string hookExit;
  std::string onExit;
  bool ok = d.object(v, path, [&](std::string_view key, od::value& val) {
    Path p = path.field(key);
    if (is(key, "entrypoint"))
      return d.string(val, wf.entrypoint, p);
    if (is(key, "onExit"))
      return d.string(val, onExit, p);
    if (is(key, "hooks"))
      return decodeHooks(d, val, p, hookExit);
    if (is(key, "shutdown")) {
      std::string s;
      if (!d.string(val, s, p))
        return false;
      wf.hasShutdown = !s.empty();
      return true;
    }
    if (is(key, "templates")) {
      return d.array(val, p, [&](std::size_t i, od::value& tv) {
        wf.templates.emplace_back();
        return decodeTemplate(d, tv, p.at(i), wf.templates.back());
      });
    }
    return true;
  });
  wf.onExit = !onExit.empty() ? onExit : hookExit;
  return ok;
}

bool decodeStatus(Decoder& d, od::value& v, const Path& path, Workflow& wf, StatusExtras& extras) {
  return d.object(v, path, [&](std::string_view key, od::value& val) {
    Path p = path.field(key);
    if (is(key, "nodes")) {
      extras.sawNodes = true;
      return decodeNodes(d, val, p, wf);
    }
    if (is(key, "phase")) {
      std::string_view s;
      if (!d.string(val, s, p))
        return false;
      wf.phase = parsePhase(s);
      return true;
    }
    if (is(key, "message"))
      return d.string(val, wf.message, p);
    if (is(key, "startedAt"))
      return d.string(val, wf.startedAt, p);
    if (is(key, "finishedAt"))
      return d.string(val, wf.finishedAt, p);
    if (is(key, "compressedNodes"))
      return d.string(val, extras.compressedNodes, p);
    if (is(key, "offloadNodeStatusVersion"))
      return d.string(val, wf.offloadNodeStatusVersion, p);
    return true;
  });
}

// Parses the decompressed nodes map with a parser of its own (the outer one
// is mid-document).
void decodeCompressedNodes(Decoder& outer, const std::string& compressed, Workflow& wf) {
  bool overLimit = false;
  auto text = decompressNodes(compressed, maxDecompressedNodeBytes(), overLimit);
  if (!text && overLimit) {
    // Not an error in the object: too big to read here (evaluate() says so).
    wf.nodeStatusOverLimit = text.error().message;
    wf.nodesWereCompressed = true;
    return;
  }
  if (!text) {
    outer.recordError(text.error());
    return;
  }
  Backing padded = Backing::copyOf(*text);
  wf.keepAlive(padded.owner);
  ParserLease lease;
  od::parser& parser = lease.get();
  od::document doc;
  Path root{nullptr, Path::Kind::kRoot, "status.compressedNodes(decoded)", 0};
  Decoder d(padded);
  d.hintNodesFromSize(padded.size);
  if (auto e = parser.iterate(padded.view()).get(doc)) {
    d.fatal(e, root);
  } else {
    od::value v;
    if (auto e2 = doc.get_value().get(v)) {
      d.fatal(e2, root);
    } else if (decodeNodes(d, v, root, wf) && !docAtEnd(doc)) {
      d.fieldError(root, "trailing content after the nodes map");
    }
  }
  if (d.hasError())
    outer.recordError(d.takeError());
  wf.nodesWereCompressed = true;
}

}  // namespace

void setNodeScanFastPath(bool enabled) {
  gNodeScanFastPath.store(enabled, std::memory_order_relaxed);
}

namespace detail {

// Decodes the fields of one Workflow object (or, when onItem is given and an
// `items` array appears, a List whose items go to onItem; `isList` is set).
// Returns false on a syntax error (the document cannot go on).
bool decodeWorkflowBody(Decoder& d, od::object& obj, Workflow& wf, const Path& root,
                        const std::function<bool(std::size_t, od::value&)>* onItem, bool& isList) {
  StatusExtras extras;
  bool haveName = false;
  bool haveGenerateName = false;
  bool ok = d.fields(obj, root, [&](std::string_view key, od::value& val) {
    Path p = root.field(key);
    if (is(key, "metadata"))
      return decodeMetadata(d, val, p, wf, haveName, haveGenerateName);
    if (is(key, "spec"))
      return decodeSpec(d, val, p, wf);
    if (is(key, "status"))
      return decodeStatus(d, val, p, wf, extras);
    if (is(key, "apiVersion"))
      return d.string(val, wf.apiVersion, p);
    if (is(key, "kind"))
      return d.string(val, wf.kind, p);
    if (is(key, "items") && onItem != nullptr) {
      od::json_type t{};
      if (!d.type(val, t, p))
        return false;
      if (t != od::json_type::array) {
        d.fieldError(p, std::string("expected an array, got ") + Decoder::typeName(t));
        return true;
      }
      isList = true;
      return d.array(val, p, *onItem);
    }
    return true;
  });
  if (!ok || isList)
    return ok;
  if (!haveName) {
    d.fieldError(root.field("metadata.name"),
                 haveGenerateName ? "missing (required; only generateName is set: a Workflow "
                                    "spec that was never submitted is not a run)"
                                  : "missing (required)");
  }
  if (wf.nodes.empty() && !extras.compressedNodes.empty()) {
    decodeCompressedNodes(d, extras.compressedNodes, wf);
  }
  if (!wf.nodes.empty() && d.backing())
    wf.keepAlive(d.backing().owner);
  wf.buildIndex(d.nodeKeyHashes());
  return true;
}

}  // namespace detail

namespace {

Result<Workflow> decodeOne(od::value& v, const Path& root, Backing backing) {
  std::size_t bytes = backing.size;
  Decoder d(std::move(backing));
  d.hintNodesFromSize(bytes);
  Workflow wf;
  od::json_type t{};
  if (!d.type(v, t, root))
    return d.takeError();
  if (t != od::json_type::object) {
    std::string where = root.str();
    return makeError(ErrorCode::kInvalidInput, (where.empty() ? "" : where + ": ") +
                                                   "expected a Workflow object, got " +
                                                   Decoder::typeName(t));
  }
  od::object obj;
  if (auto e = v.get_object().get(obj)) {
    d.fatal(e, root);
    return d.takeError();
  }
  bool isList = false;
  detail::decodeWorkflowBody(d, obj, wf, root, nullptr, isList);
  if (d.hasError())
    return d.takeError();
  return wf;
}

}  // namespace

Result<Workflow> parseWorkflowJson(std::string_view json) {
  Backing padded = Backing::copyOf(json);
  ParserLease lease;
  od::parser& parser = lease.get();
  od::document doc;
  Path root;
  Decoder d(padded);
  if (auto e = parser.iterate(padded.view()).get(doc)) {
    d.fatal(e, root);
    return d.takeError();
  }
  od::value v;
  if (auto e = doc.get_value().get(v)) {
    d.fatal(e, root);
    return d.takeError();
  }
  auto wf = decodeOne(v, root, padded);
  if (!wf)
    return wf;
  if (!docAtEnd(doc)) {
    return makeError(ErrorCode::kInvalidInput,
                     "invalid JSON: trailing content after the Workflow object");
  }
  return wf;
}

// ---- streams ----

namespace {

// Finds the end of the JSON value starting at `pos` (which must be '{' or
// '['), honouring strings; returns npos when it is not closed.
std::size_t jsonValueEnd(std::string_view text, std::size_t pos) {
  int depth = 0;
  bool inString = false;
  for (std::size_t i = pos; i < text.size(); ++i) {
    char c = text[i];
    if (inString) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        inString = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        inString = true;
        break;
      case '{':
      case '[':
        ++depth;
        break;
      case '}':
      case ']':
        if (--depth == 0)
          return i + 1;
        break;
      default:
        break;
    }
  }
  return std::string_view::npos;
}

bool isWs(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

}  // namespace

namespace detail {

// Decodes one iterated JSON document (a Workflow or a List) and sinks its
// workflows; `origin` prefixes item origins. Returns an error when the
// document is broken beyond its items (a syntax error); items sunk before it
// stay sunk.
// With `held`, a lone Workflow is stored there instead of being sunk (the
// caller decides its origin once it knows whether more documents follow);
// List items are always sunk at once.
Status readJsonDocument(od::document& doc, const Backing& backing, const std::string& origin,
                        const WorkflowSink& sink, std::optional<Result<Workflow>>* held = nullptr) {
  Path root;
  Decoder d(backing);
  d.hintNodesFromSize(backing.size);  // items decode with hint-less decoders
  auto syntax = [&](simdjson::error_code e) {
    d.fatal(e, root);
    return Status(d.takeError());
  };
  od::json_type t{};
  if (auto e = doc.type().get(t))
    return syntax(e);
  if (t != od::json_type::object) {
    return Status(
        makeError(ErrorCode::kInvalidInput,
                  std::string("expected a Workflow or List object, got ") + Decoder::typeName(t)));
  }
  od::object obj;
  if (auto e = doc.get_object().get(obj))
    return syntax(e);
  Workflow wf;
  bool isList = false;
  std::function<bool(std::size_t, od::value&)> onItem = [&](std::size_t i, od::value& item) {
    std::string itemOrigin =
        (origin.empty() ? "" : origin + ": ") + "items[" + std::to_string(i) + "]";
    Decoder itemDecoder(backing);
    od::json_type it{};
    if (!itemDecoder.type(item, it, root)) {
      Error e = itemDecoder.takeError();
      e.message = itemOrigin + ": " + e.message;
      d.recordError(std::move(e));
      return false;
    }
    if (it != od::json_type::object) {
      sink(makeError(ErrorCode::kInvalidInput,
                     std::string("expected a Workflow object, got ") + Decoder::typeName(it)),
           itemOrigin);
      return true;
    }
    od::object itemObj;
    if (auto e = item.get_object().get(itemObj)) {
      itemDecoder.fatal(e, root);
      Error err = itemDecoder.takeError();
      err.message = itemOrigin + ": " + err.message;
      d.recordError(std::move(err));
      return false;
    }
    Workflow itemWf;
    bool nestedList = false;
    if (!decodeWorkflowBody(itemDecoder, itemObj, itemWf, root, nullptr, nestedList)) {
      // A syntax error inside an item ends the whole document.
      Error e = itemDecoder.takeError();
      e.message = itemOrigin + ": " + e.message;
      d.recordError(std::move(e));
      return false;
    }
    if (itemDecoder.hasError()) {
      sink(itemDecoder.takeError(), itemOrigin);
    } else {
      sink(std::move(itemWf), itemOrigin);
    }
    return true;
  };
  if (!decodeWorkflowBody(d, obj, wf, root, &onItem, isList))
    return Status(d.takeError());
  if (d.hasError()) {
    // For a List: an ill-typed top-level field.
    if (held != nullptr && !isList) {
      held->emplace(d.takeError());
    } else {
      sink(d.takeError(), origin);
    }
  } else if (!isList) {
    if (held != nullptr) {
      held->emplace(std::move(wf));
    } else {
      sink(std::move(wf), origin);
    }
  }
  return Status::okStatus();
}

}  // namespace detail

Status readJsonStream(std::string_view text, const WorkflowSink& sink) {
  return readJsonStream(nullptr, text, sink);
}

Status readJsonStream(std::shared_ptr<const void> owner, std::string_view text,
                      const WorkflowSink& sink) {
  std::size_t pos = 0;
  while (pos < text.size() && isWs(text[pos]))
    ++pos;
  ParserLease lease;
  od::parser& parser = lease.get();
  {
    // The common case is one document: parse it once from the whole buffer,
    // then see whether anything follows it (NDJSON / concatenated JSON).
    std::string_view first = text.substr(pos);
    // With an owner the caller's padded buffer is read in place (see Backing).
    Backing padded =
        owner ? Backing{std::move(owner), first.data(), first.size()} : Backing::copyOf(first);
    od::document doc;
    // Unbalanced as a whole: skip straight to reading document by document,
    // so the good ones are still read and the broken one is named.
    if (parser.iterate(padded.view()).get(doc) == simdjson::SUCCESS) {
      std::optional<Result<Workflow>> held;
      Status st = detail::readJsonDocument(doc, padded, "", sink, &held);
      if (!st.ok())
        return st;
      const char* next = nullptr;
      bool more = doc.current_location().get(next) == simdjson::SUCCESS && next != nullptr &&
                  next >= padded.data && next < padded.data + first.size();
      if (held)
        sink(std::move(*held), more ? "line 1" : "");
      if (!more)
        return Status::okStatus();
      pos += static_cast<std::size_t>(next - padded.data);
    }
  }
  // A stream of documents (NDJSON or concatenated JSON): one parse each.
  std::size_t line = 1;
  std::size_t lineCountedTo = 0;
  while (pos < text.size()) {
    while (pos < text.size() && isWs(text[pos]))
      ++pos;
    if (pos >= text.size())
      break;
    for (; lineCountedTo < pos; ++lineCountedTo) {
      if (text[lineCountedTo] == '\n')
        ++line;
    }
    std::string origin = "line " + std::to_string(line);
    if (text[pos] != '{' && text[pos] != '[') {
      return Status(makeError(ErrorCode::kInvalidInput,
                              origin + ": invalid JSON: expected '{' to start a document"));
    }
    std::size_t end = jsonValueEnd(text, pos);
    if (end == std::string_view::npos) {
      return Status(makeError(ErrorCode::kInvalidInput,
                              origin + ": invalid JSON: the document is not closed (truncated)"));
    }
    Backing padded = Backing::copyOf(text.substr(pos, end - pos));
    od::document doc;
    Status st;
    if (auto e = parser.iterate(padded.view()).get(doc)) {
      st = Status(makeError(ErrorCode::kInvalidInput,
                            std::string("invalid JSON: ") + simdjson::error_message(e)));
    } else {
      st = detail::readJsonDocument(doc, padded, origin, sink);
    }
    // A broken document is reported; the stream goes on with the next one.
    if (!st.ok())
      sink(st.error(), origin);
    pos = end;
  }
  return Status::okStatus();
}

}  // namespace exitrec
