// The fast path for status.nodes (see json_node_scan.h): a walk of
// simdjson's structural index that reaches into simdjson's internals. Kept in
// this one file, and compiled only against the simdjson release it was
// verified with (EXITREC_FAST_NODE_SCAN, set by engine/CMakeLists.txt and
// checked again below); any other build reads every nodes map with the
// validating decoder.
#include "engine/json_node_scan.h"

#include <atomic>
#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

#include "engine/json_decoder.h"

#ifndef EXITREC_FAST_NODE_SCAN
#define EXITREC_FAST_NODE_SCAN 0
#endif

#if EXITREC_FAST_NODE_SCAN
// The version CMake found must be the one these headers declare: a mismatch
// means the build mixes two simdjson installs, and the scan would be compiled
// against one it was not verified with. (SIMDJSON_VERSION_MAJOR/MINOR/REVISION
// are enumerators in simdjson 3, not macros: checked here, not with #if.)
static_assert(simdjson::SIMDJSON_VERSION_MAJOR == EXITREC_FAST_NODE_SCAN_SIMDJSON_MAJOR &&
                  simdjson::SIMDJSON_VERSION_MINOR == EXITREC_FAST_NODE_SCAN_SIMDJSON_MINOR &&
                  simdjson::SIMDJSON_VERSION_REVISION == EXITREC_FAST_NODE_SCAN_SIMDJSON_REVISION,
              "the fast nodes scan is enabled for a simdjson other than the one in <simdjson.h>");
#endif

namespace exitrec::jsonread {

namespace {

std::atomic<std::uint64_t> gFastReads{0};

}  // namespace

std::uint64_t nodeScanFastReads() {
  return gFastReads.load(std::memory_order_relaxed);
}

#if EXITREC_FAST_NODE_SCAN

namespace {

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

// Instead of On-Demand's general field machinery the scan walks simdjson's
// structural index directly: every token's offset is known, so a string's
// extent is (its offset, the next token's offset) and a node field costs a few
// loads. It is all-or-nothing: any input it is not sure of makes it give up
// before it has changed any parser state, and the validating decoder
// (json_reader.cpp, decodeNodes) reads the map instead, with its exact error
// messages. So both paths accept the same inputs and build the same nodes
// (checked by test/engine and fuzz/engine_fuzz.cpp, see setNodeScanFastPath).
//
// What it relies on in simdjson 3.0.1 (read in its single header,
// /usr/include/simdjson.h of Debian's libsimdjson-dev 3.0.1-1):
// - two protected members, reached through derived-class member pointers:
//   ondemand::value::iter (the value_iterator, hence its json_iterator) and
//   json_iterator::end_position() (one past the last structural index);
// - json_iterator::position() / peek(token_position): a token's offset is
//   *position, its bytes start at peek(position) - *position + offset;
// - json_iterator::string_buf_loc() and unescape() for escaped strings;
// - json_iterator::ascend_to() and reenter_child(), whose SIMDJSON_ASSUME
//   preconditions (depth exactly one above/below) are undefined behaviour if
//   broken; run() keeps them (see there).
// A renamed member breaks the build, but a changed meaning would not: hence
// the version gate at the top of this file.
struct ValueAccess : od::value {
  static od::json_iterator& jsonIter(od::value& v) { return (v.*(&ValueAccess::iter)).json_iter(); }
};
struct JsonIterAccess : od::json_iterator {
  static od::token_position endOf(const od::json_iterator& it) {
    return (it.*(&JsonIterAccess::end_position))();
  }
};

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

}  // namespace

bool nodeScanCompiled() {
  return true;
}

bool scanNodeMap(od::value& v, Workflow& wf, NodeKeyHashes& hashes) {
  od::json_iterator& it = ValueAccess::jsonIter(v);
  // An enclosing object to hand the iterator back to is needed (not the root
  // of a decoded compressedNodes): run() ascends two levels.
  if (it.depth() < 2 || !NodeMapScanner(it, wf, hashes).run())
    return false;
  gFastReads.fetch_add(1, std::memory_order_relaxed);
  return true;
}

#else  // !EXITREC_FAST_NODE_SCAN

bool nodeScanCompiled() {
  return false;
}

bool scanNodeMap(od::value& /*v*/, Workflow& /*wf*/, NodeKeyHashes& /*hashes*/) {
  return false;
}

#endif

}  // namespace exitrec::jsonread
