#include "sim/label_selector.h"

#include <gtest/gtest.h>

namespace exitrec {
namespace {

bool match(const std::string& sel, const std::map<std::string, std::string>& labels) {
  auto s = LabelSelector::parse(sel);
  EXPECT_TRUE(s.ok()) << sel;
  return s.ok() && s->matches(labels);
}

TEST(LabelSelectorTest, AllOperators) {
  std::map<std::string, std::string> l = {{"app", "kfp"}, {"tier", "web"}};
  EXPECT_TRUE(match("", l));
  EXPECT_TRUE(match("app=kfp", l));
  EXPECT_TRUE(match("app==kfp", l));
  EXPECT_FALSE(match("app!=kfp", l));
  EXPECT_TRUE(match("app!=x", l));
  EXPECT_TRUE(match("missing!=x", l));  // != matches absent keys, like Kubernetes
  EXPECT_TRUE(match("tier in (db, web)", l));
  EXPECT_FALSE(match("tier notin (db,web)", l));
  EXPECT_TRUE(match("missing notin (a)", l));
  EXPECT_TRUE(match("app", l));
  EXPECT_FALSE(match("!app", l));
  EXPECT_TRUE(match("!missing,app=kfp,tier in (web)", l));
  EXPECT_TRUE(
      match("workflows.argoproj.io/completed", {{"workflows.argoproj.io/completed", "true"}}));
}

TEST(LabelSelectorTest, SyntaxErrorsAreInvalidInput) {
  for (const char* bad : {"a in (b", "a in ()", "a foo (b)", "=x", "a=b=c d", ","}) {
    auto s = LabelSelector::parse(bad);
    EXPECT_FALSE(s.ok()) << bad;
    if (!s.ok()) {
      EXPECT_EQ(s.error().code, ErrorCode::kInvalidInput);
    }
  }
}

TEST(FieldSelectorTest, ParsesEqualityAndInequality) {
  auto s = FieldSelector::parse("metadata.name=a,metadata.namespace!=b,spec.x==c");
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->requirements().size(), 3u);
  EXPECT_TRUE(s->requirements()[0].equals);
  EXPECT_FALSE(s->requirements()[1].equals);
  EXPECT_EQ(s->requirements()[2].value, "c");
  EXPECT_FALSE(FieldSelector::parse("metadata.name").ok());
}

}  // namespace
}  // namespace exitrec
