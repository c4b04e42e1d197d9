#include "k8sclient/api_error.h"

#include <gtest/gtest.h>

#include "k8sclient/json_scan.h"

namespace exitrec {
namespace {

std::string statusBody(int code, const std::string& reason, const std::string& message) {
  return R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":")" +
         message + R"(","reason":")" + reason + R"(","code":)" + std::to_string(code) + "}";
}

struct Case {
  int status;
  bool jsonPatchWithTest;
  ErrorCode expected;
};

TEST(ApiErrorTest, ClassificationTable) {
  const Case cases[] = {
      {400, false, ErrorCode::kInvalid},
      {401, false, ErrorCode::kUnauthorized},
      {403, false, ErrorCode::kForbidden},
      {404, false, ErrorCode::kNotFound},
      {405, false, ErrorCode::kInvalid},
      {409, false, ErrorCode::kConflict},
      {410, false, ErrorCode::kGone},
      {415, false, ErrorCode::kInvalid},
      {422, false, ErrorCode::kInvalid},
      {422, true, ErrorCode::kConflict},
      {429, false, ErrorCode::kTooManyRequests},
      {500, false, ErrorCode::kTransient},
      {502, false, ErrorCode::kTransient},
      {503, false, ErrorCode::kTransient},
      {504, false, ErrorCode::kTransient},
  };
  for (const auto& c : cases) {
    Error e = classifyHttpError(c.status, {}, statusBody(c.status, "Reason", "server says no"),
                                ErrorContext{"GET /api/v1/pods", c.jsonPatchWithTest});
    EXPECT_EQ(e.code, c.expected) << c.status;
    EXPECT_EQ(e.httpStatus, c.status);
    EXPECT_NE(e.message.find("server says no"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("GET /api/v1/pods"), std::string::npos) << e.message;
  }
}

TEST(ApiErrorTest, InvalidCarriesServerMessage) {
  Error e = classifyHttpError(
      422, {},
      statusBody(422, "Invalid", "Workflow.argoproj.io \\\"x\\\" is invalid: spec: Required"),
      ErrorContext{"POST /apis/argoproj.io/v1alpha1/namespaces/a/workflows", false});
  EXPECT_EQ(e.code, ErrorCode::kInvalid);
  EXPECT_NE(e.message.find("Workflow.argoproj.io \"x\" is invalid: spec: Required"),
            std::string::npos)
      << e.message;
}

TEST(ApiErrorTest, RetryAfterFromHeaderOrStatusDetails) {
  HttpHeaders h;
  h.set("retry-after", "7");
  Error e = classifyHttpError(429, h, statusBody(429, "TooManyRequests", "slow down"), {});
  ASSERT_TRUE(e.retryAfter.has_value());
  EXPECT_EQ(e.retryAfter->count(), 7);

  const std::string body =
      R"({"kind":"Status","code":429,"reason":"TooManyRequests","message":"m","details":{"retryAfterSeconds":3}})";
  Error e2 = classifyHttpError(429, {}, body, {});
  ASSERT_TRUE(e2.retryAfter.has_value());
  EXPECT_EQ(e2.retryAfter->count(), 3);
}

TEST(ApiErrorTest, NonStatusBodyIsExcerpted) {
  Error e = classifyHttpError(502, {}, std::string(1000, 'x'), ErrorContext{"GET /x", false});
  EXPECT_EQ(e.code, ErrorCode::kTransient);
  EXPECT_LT(e.message.size(), 300u);
}

TEST(ApiErrorTest, InStreamStatusObject) {
  auto st = parseKubeStatus(statusBody(410, "Expired", "too old resource version: 5 (100)"));
  ASSERT_TRUE(st.has_value());
  Error e = classifyStatusObject(*st, ErrorContext{"WATCH /api/v1/pods", false});
  EXPECT_EQ(e.code, ErrorCode::kGone);
  EXPECT_NE(e.message.find("too old resource version"), std::string::npos);
  EXPECT_FALSE(parseKubeStatus(R"({"kind":"Pod"})").has_value());
  EXPECT_FALSE(parseKubeStatus("not json").has_value());
}

TEST(JsonScanTest, MembersElementsAndTrickyStrings) {
  const std::string text =
      R"( {"kind":"List","metadata":{"resourceVersion":"9","continue":""},)"
      R"("items":[{"a":"}]\"{"},{"b":[1,2,{"c":null}]} , {} ],"n":-1.5e3,"t":true})";
  std::vector<std::string> keys;
  std::vector<std::string> items;
  ASSERT_TRUE(jsonscan::forEachMember(text, [&](std::string_view k, std::string_view v) {
    keys.emplace_back(k);
    if (k == "items") {
      EXPECT_TRUE(jsonscan::forEachElement(v, [&](std::string_view item) {
        items.emplace_back(item);
        return true;
      }));
    }
    return true;
  }));
  EXPECT_EQ(keys, (std::vector<std::string>{"kind", "metadata", "items", "n", "t"}));
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0], R"({"a":"}]\"{"})");
  EXPECT_EQ(items[1], R"({"b":[1,2,{"c":null}]})");
  EXPECT_EQ(items[2], "{}");
  EXPECT_EQ(jsonscan::member(text, "n"), "-1.5e3");
  EXPECT_EQ(jsonscan::member(text, "absent"), "");
}

TEST(JsonScanTest, RejectsMalformed) {
  for (const char* bad : {"", "[]", "{", R"({"a":)", R"({"a":"unterminated})", R"({"a":1,})",
                          R"({"a" 1})", R"({"a":[1,2})"}) {
    EXPECT_FALSE(jsonscan::forEachMember(bad, [](auto, auto) { return true; })) << bad;
  }
}

}  // namespace
}  // namespace exitrec
