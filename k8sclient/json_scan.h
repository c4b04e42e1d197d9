#pragma once
// Minimal structural JSON scanning without building a DOM. Used to cut list
// responses and watch lines into the raw text of each object, so callers can
// parse (or project) one object at a time with whatever parser they like.
//
// The scanner checks structure only (strings, nesting); values it hands out
// are validated by whoever parses them. Pure functions, thread-safe.

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace exitrec::jsonscan {

// Returns the index one past the JSON value starting at or after `pos`
// (leading whitespace skipped), or npos when the text is malformed.
std::size_t skipValue(std::string_view text, std::size_t pos);

// Calls fn(rawKey, rawValue) for each member of the top-level object in
// `text`. rawKey is the key without quotes and without unescaping. Returns
// false if the text is not a well-formed object or fn returned false.
bool forEachMember(std::string_view text,
                   const std::function<bool(std::string_view key, std::string_view value)>& fn);

// Calls fn(rawElement) for each element of the array in `text`. Returns false
// if malformed or fn returned false.
bool forEachElement(std::string_view text, const std::function<bool(std::string_view)>& fn);

// The raw value of top-level member `key`, or empty when absent/malformed.
std::string_view member(std::string_view text, std::string_view key);

// Cuts a Kubernetes List body ({"items":[...], "metadata":{...}, ...}) into
// its items while the body arrives in pieces of any size, so that a page is
// never held whole: only the item being cut (and the small metadata member)
// is buffered. Structure is checked as far as the cutting needs (nesting,
// strings, a top-level object); items are validated by whoever parses them.
//
// Not thread-safe; one instance per body.
class ListSplitter {
 public:
  // Receives the raw text of one item (valid during the call); false stops.
  using ItemFn = std::function<bool(std::string_view item)>;
  explicit ListSplitter(ItemFn onItem) : onItem_(std::move(onItem)) {}

  // Feeds the next piece. False once the text is malformed or onItem stopped
  // (see stopped()); further calls are ignored.
  bool feed(std::string_view piece);
  // After the last piece: true when the body was one complete object.
  bool finish() const;

  bool stopped() const { return stopped_; }
  bool sawItems() const { return sawItems_; }
  std::size_t items() const { return items_; }
  // The raw value of the top-level "metadata" member (empty if absent).
  const std::string& metadata() const { return metadata_; }

 private:
  enum class Capture { kNone, kKey, kItem, kMetadata };
  void beginCapture(Capture what, std::size_t at);
  bool endCapture(std::string_view piece, std::size_t end);

  ItemFn onItem_;
  int depth_ = 0;  // open objects/arrays
  bool inString_ = false;
  bool escaped_ = false;
  bool failed_ = false;
  bool stopped_ = false;
  bool done_ = false;       // the top-level object closed
  bool started_ = false;    // the top-level object opened
  bool expectKey_ = false;  // at depth 1, the next string is a key
  bool inItems_ = false;    // depth 2 is the items array
  bool sawItems_ = false;
  std::string key_;  // the current top-level key
  Capture capture_ = Capture::kNone;
  int captureDepth_ = 0;         // depth at which the captured value started
  std::size_t captureFrom_ = 0;  // offset in the current piece where capture resumes
  std::string buf_;              // captured text carried across pieces
  std::string stack_;            // closing brackets expected, innermost last
  std::string metadata_;
  std::size_t items_ = 0;
};

}  // namespace exitrec::jsonscan
