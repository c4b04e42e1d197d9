// libFuzzer target: k8sclient's structural JSON scanners, which cut every
// list page and watch line into objects before anything parses them. On
// arbitrary bytes it aborts when:
// - ListSplitter gives different items (or a different verdict) when the
//   same body arrives in pieces of another size (the transport's chunking
//   must never matter);
// - an item it hands out is not one complete JSON value by skipValue();
// - the whole-text scanners (forEachMember, forEachElement, member,
//   skipValue) or readObjectMeta crash, read out of bounds, or report a
//   value outside the text.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "k8sclient/json_scan.h"
#include "k8sclient/kube_client.h"

namespace {

using namespace exitrec;

[[noreturn]] void broken(const char* what) {
  std::fprintf(stderr, "invariant broken: %s\n", what);
  std::abort();
}

struct Split {
  std::vector<std::string> items;
  bool fed = true;
  bool finished = false;
  std::string metadata;
  bool operator==(const Split&) const = default;
};

Split split(std::string_view text, std::size_t piece) {
  Split out;
  jsonscan::ListSplitter s([&](std::string_view item) {
    out.items.emplace_back(item);
    return true;
  });
  for (std::size_t at = 0; at < text.size() && out.fed; at += piece)
    out.fed = s.feed(text.substr(at, piece));
  out.finished = out.fed && s.finish();
  out.metadata = s.metadata();
  if (s.items() != out.items.size())
    broken("items() counts the items handed out");
  return out;
}

bool within(std::string_view outer, std::string_view inner) {
  return inner.empty() || (inner.data() >= outer.data() &&
                           inner.data() + inner.size() <= outer.data() + outer.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0)
    return 0;
  // The first byte picks the piece size of the second feed.
  const std::size_t piece = 1 + data[0] % 97;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);

  const Split whole = split(text, text.size() == 0 ? 1 : text.size());
  const Split pieces = split(text, piece);
  if (!(whole == pieces))
    broken("ListSplitter's result does not depend on how the body is cut");
  for (const std::string& item : whole.items) {
    if (jsonscan::skipValue(item, 0) != item.size())
      broken("a listed item is one complete JSON value");
    (void)readObjectMeta(item);
  }

  const std::size_t end = jsonscan::skipValue(text, 0);
  if (end != std::string_view::npos && end > text.size())
    broken("skipValue ends inside the text");
  jsonscan::forEachMember(text, [&](std::string_view key, std::string_view value) {
    if (!within(text, key) || !within(text, value))
      broken("forEachMember hands out views into the text");
    return true;
  });
  jsonscan::forEachElement(text, [&](std::string_view element) {
    if (!within(text, element))
      broken("forEachElement hands out views into the text");
    return true;
  });
  for (std::string_view key : {"items", "metadata", "type", "object"}) {
    if (!within(text, jsonscan::member(text, key)))
      broken("member() returns a view into the text");
  }
  (void)readObjectMeta(text);
  return 0;
}
