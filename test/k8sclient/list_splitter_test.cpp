// jsonscan::ListSplitter: items cut from a List body fed in pieces of any size.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "k8sclient/json_scan.h"

namespace exitrec {
namespace {

using jsonscan::ListSplitter;
using nlohmann::json;

struct Cut {
  std::vector<std::string> items;
  std::string metadata;
  bool ok = false;
  bool sawItems = false;
};

// Feeds `body` in pieces of `step` bytes.
Cut cut(std::string_view body, std::size_t step) {
  Cut out;
  ListSplitter s([&](std::string_view item) {
    out.items.emplace_back(item);
    return true;
  });
  bool fed = true;
  for (std::size_t i = 0; i < body.size() && fed; i += step)
    fed = s.feed(body.substr(i, step));
  out.ok = fed && s.finish();
  out.metadata = s.metadata();
  out.sawItems = s.sawItems();
  return out;
}

// Items whose strings hold every character the cutter must not be fooled by.
const std::vector<json> kItems = {
    {{"metadata", {{"name", "a"}}}, {"s", "brace } bracket ] quote \" backslash \\"}},
    {{"metadata", {{"name", "b"}}},
     {"nested", {{"x", json::array({1, json::array({2, 3}), {{"y", "{["}}})}}}},
    {{"metadata", {{"name", "c\\\"}"}}}, {"unicode", "\xc3\xa9\xe2\x82\xac"}, {"n", nullptr}},
    json::object(),
};

TEST(ListSplitterTest, CutsItemsAndMetadataWhateverThePieceSize) {
  json list = {{"apiVersion", "argoproj.io/v1alpha1"},
               {"kind", "WorkflowList"},
               {"items", kItems},
               {"metadata", {{"resourceVersion", "42"}, {"continue", "tok}en"}}}};
  for (const std::string& body : {list.dump(), list.dump(2)}) {
    for (std::size_t step : {1u, 2u, 3u, 7u, 64u, 1u << 20}) {
      Cut c = cut(body, step);
      ASSERT_TRUE(c.ok) << "step " << step;
      EXPECT_TRUE(c.sawItems);
      ASSERT_EQ(c.items.size(), kItems.size()) << "step " << step;
      for (std::size_t i = 0; i < kItems.size(); ++i)
        EXPECT_EQ(json::parse(c.items[i]), kItems[i]) << "step " << step << " item " << i;
      EXPECT_EQ(json::parse(c.metadata), list["metadata"]) << "step " << step;
    }
  }
}

TEST(ListSplitterTest, EmptyAndNullItemsAreAListWithoutItems) {
  for (const char* body : {R"({"items":[],"metadata":{"resourceVersion":"1"}})",
                           R"({"metadata":{"resourceVersion":"1"},"items":null})"}) {
    Cut c = cut(body, 3);
    EXPECT_TRUE(c.ok) << body;
    EXPECT_TRUE(c.sawItems) << body;
    EXPECT_TRUE(c.items.empty()) << body;
    EXPECT_EQ(json::parse(c.metadata)["resourceVersion"], "1");
  }
  Cut noItems = cut(R"({"kind":"Status","metadata":{}})", 5);
  EXPECT_TRUE(noItems.ok);
  EXPECT_FALSE(noItems.sawItems);
}

TEST(ListSplitterTest, MalformedBodiesAreRejected) {
  for (const char* body : {
           R"([{"a":1}])",                  // not an object
           R"({"items":[{"a":1}})",         // bracket mismatch
           R"({"items":[{"a":1}],)",        // truncated
           R"({"items":[{"a":"x)",          // unterminated string
           R"({"items":[1,2]})",            // items must be objects
           R"({"items":{"a":1}})",          // items must be an array
           R"({"items":[]} {"items":[]})",  // trailing value
       }) {
    EXPECT_FALSE(cut(body, 2).ok) << body;
    EXPECT_FALSE(cut(body, 100).ok) << body;
  }
}

TEST(ListSplitterTest, CallbackStopsTheCut) {
  int seen = 0;
  ListSplitter s([&](std::string_view) { return ++seen < 2; });
  EXPECT_FALSE(s.feed(R"({"items":[{"a":1},{"b":2},{"c":3}]})"));
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(seen, 2);
  EXPECT_FALSE(s.feed("more"));
}

}  // namespace
}  // namespace exitrec
