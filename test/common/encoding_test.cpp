// The shared encoders (item 7 of issue 18): base64, percent-encoding and
// RFC 3339 parsing, each against published vectors and hostile input.
#include <gtest/gtest.h>

#include <string>

#include "common/base64.h"
#include "common/rfc3339.h"
#include "common/url_encoding.h"

namespace exitrec {
namespace {

// RFC 4648 section 10 test vectors.
TEST(Base64, EncodesTheRfcVectors) {
  EXPECT_EQ(base64Encode(""), "");
  EXPECT_EQ(base64Encode("f"), "Zg==");
  EXPECT_EQ(base64Encode("fo"), "Zm8=");
  EXPECT_EQ(base64Encode("foo"), "Zm9v");
  EXPECT_EQ(base64Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64Encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64Encode(std::string("\xff\xfe\x00", 3)), "//4A");
}

TEST(Base64, DecodesWhatItEncodesForEveryByte) {
  std::string all;
  for (int i = 0; i < 256; ++i)
    all.push_back(static_cast<char>(i));
  for (std::size_t n = 0; n <= all.size(); n += 37) {
    auto back = base64Decode(base64Encode(all.substr(0, n)));
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(back.value(), all.substr(0, n));
  }
}

TEST(Base64, StrictByDefault) {
  EXPECT_EQ(base64Decode("Zm9vYmE=").value(), "fooba");
  auto bad = base64Decode("Zm9v!mE=");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidInput);
  EXPECT_NE(bad.error().message.find("offset 4"), std::string::npos) << bad.error().message;
  EXPECT_FALSE(base64Decode("Zm9vYmE").ok());     // unpadded
  EXPECT_FALSE(base64Decode("Zm9v\nYmE=").ok());  // whitespace
  EXPECT_FALSE(base64Decode("Zg==Zg==").ok());    // data after padding
  EXPECT_FALSE(base64Decode("Zg===").ok());       // too much padding
  EXPECT_FALSE(base64Decode("Z").ok());           // cut
  EXPECT_FALSE(base64Decode("-_8=").ok());        // URL alphabet
}

TEST(Base64, OptionsWidenTheInput) {
  Base64Options loose;
  loose.skipWhitespace = true;
  loose.urlAlphabet = true;
  loose.requirePadding = false;
  EXPECT_EQ(base64Decode("Zm9v\r\n YmE", loose).value(), "fooba");
  EXPECT_EQ(base64Decode("-_8=", loose).value(), std::string("\xfb\xff", 2));
  EXPECT_FALSE(base64Decode("Z", loose).ok());  // still not whole bytes
}

TEST(UrlEncode, KeepsOnlyUnreservedCharacters) {
  EXPECT_EQ(urlEncode("AZaz09-._~"), "AZaz09-._~");
  EXPECT_EQ(urlEncode("a b/c?d=e&f%"), "a%20b%2Fc%3Fd%3De%26f%25");
  EXPECT_EQ(urlEncode("pipeline/runid,x!=y"), "pipeline%2Frunid%2Cx%21%3Dy");
  EXPECT_EQ(urlEncode(std::string("\xc3\xa9\x00", 3)), "%C3%A9%00");
  EXPECT_EQ(urlEncode(""), "");
}

// metav1.MicroTime (Lease acquireTime/renewTime), as client-go writes it.
TEST(Rfc3339, MicrosecondsRoundTrip) {
  const Clock::WallTime t{std::chrono::microseconds(1798000000123456LL)};
  EXPECT_EQ(formatRfc3339Micros(t), "2026-12-23T04:26:40.123456Z");
  EXPECT_EQ(parseRfc3339Micros("2026-12-23T04:26:40.123456Z"), t);
  EXPECT_EQ(parseRfc3339Micros("2026-12-23T05:26:40.123456+01:00"), t);
  EXPECT_EQ(parseRfc3339Micros("2026-12-23T04:26:40.123456789Z"), t);  // nanos dropped
  EXPECT_EQ(parseRfc3339Micros("2026-12-23T04:26:40.12Z"),
            Clock::WallTime(std::chrono::microseconds(1798000000120000LL)));
  EXPECT_EQ(parseRfc3339Micros("2026-12-23T04:26:40Z"),
            Clock::WallTime(std::chrono::seconds(1798000000)));
  EXPECT_EQ(formatRfc3339Micros(Clock::WallTime(std::chrono::seconds(0))),
            "1970-01-01T00:00:00.000000Z");
  for (const char* bad : {"yesterday", "2026-12-23T04:26:40.Z", "2026-12-23T04:26:40",
                          "9999-12-31T23:59:59.999999Z", "2026-13-01T00:00:00Z"}) {
    EXPECT_FALSE(parseRfc3339Micros(bad).has_value()) << bad;
  }
}

// Go's url.QueryUnescape (net/url, unescape with encodeQueryComponent).
TEST(QueryUnescape, DecodesLikeGo) {
  EXPECT_EQ(queryUnescape("a+b%2Fc%2f%7B%22k%22%7D").value(), "a b/c/{\"k\"}");
  EXPECT_EQ(queryUnescape("").value(), "");
  EXPECT_EQ(queryUnescape("%00").value(), std::string(1, '\0'));
  EXPECT_EQ(queryUnescape(urlEncode("k in (x,y)+z")).value(), "k in (x,y)+z");
}

TEST(QueryUnescape, RejectsBadEscapes) {
  for (const char* bad : {"%", "%2", "abc%", "%zz", "%2g", "x%g0"}) {
    auto r = queryUnescape(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidInput) << bad;
    EXPECT_EQ(r.error().message, "invalid URL escape") << bad;
  }
}

TEST(UrlDecode, LenientAsServersDecodeRequests) {
  EXPECT_EQ(urlDecode("a%2Fb%2fc", false), "a/b/c");
  EXPECT_EQ(urlDecode("a+b", false), "a+b");  // a path keeps '+'
  EXPECT_EQ(urlDecode("a+b", true), "a b");   // a query value does not
  // A '%' without two hex digits stays as written instead of failing the request.
  EXPECT_EQ(urlDecode("100%", true), "100%");
  EXPECT_EQ(urlDecode("%zz%4", true), "%zz%4");
  EXPECT_EQ(urlDecode("%41", true), "A");
}

TEST(Rfc3339, ParsesWhatTheApiServerAndKfpWrite) {
  EXPECT_EQ(parseRfc3339Seconds("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parseRfc3339Seconds("2026-11-28T13:12:12Z"), 1795871532);
  EXPECT_EQ(parseRfc3339Seconds("2026-11-28T13:12:12.123456789Z"), 1795871532);
  EXPECT_EQ(parseRfc3339Seconds("2026-11-28t13:12:12z"), 1795871532);
  EXPECT_EQ(parseRfc3339Seconds("2026-11-28T14:12:12+01:00"), 1795871532);
  EXPECT_EQ(parseRfc3339Seconds("2026-11-28T08:42:12-04:30"), 1795871532);
  auto t = parseRfc3339("2026-11-28T13:12:12Z");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(formatRfc3339(t.value()), "2026-11-28T13:12:12Z");
}

TEST(Rfc3339, RejectsEverythingElseWithANamedError) {
  for (const char* bad :
       {"", "2026-11-28", "2026-11-28T13:12:12", "2026-11-28 13:12:12Z", "2026-13-28T13:12:12Z",
        "2026-11-32T13:12:12Z", "2026-11-28T24:12:12Z", "2026-11-28T13:60:12Z",
        "2026-11-28T13:12:61Z", "2026-11-28T13:12:12.Z", "2026-11-28T13:12:12+0100",
        "2026-11-28T13:12:12+24:00", "2026-11-28T13:12:12Zjunk", "+026-11-28T13:12:12Z",
        "2026-11-28T13:12:12Z\n"}) {
    EXPECT_FALSE(parseRfc3339Seconds(bad).has_value()) << bad;
  }
  auto e = parseRfc3339("yesterday");
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, ErrorCode::kInvalidInput);
  EXPECT_NE(e.error().message.find("\"yesterday\" is not an RFC 3339 time"), std::string::npos);
}

TEST(Rfc3339, WallTimeRefusesYearsItCannotRepresent) {
  // Nanoseconds in 64 bits end in 2262: a forged year 9999 is an error, not
  // an overflow.
  auto far = parseRfc3339("9999-12-31T23:59:59Z");
  ASSERT_FALSE(far);
  EXPECT_NE(far.error().message.find("out of range"), std::string::npos) << far.error().message;
  EXPECT_TRUE(parseRfc3339("2199-12-31T23:59:59Z"));
  EXPECT_FALSE(parseRfc3339Seconds("2026-02-30T00:00:00Z")) << "no 30th of February";
  EXPECT_FALSE(parseRfc3339Seconds("2026-04-31T00:00:00Z"));
  EXPECT_TRUE(parseRfc3339Seconds("2024-02-29T00:00:00Z"));
}

}  // namespace
}  // namespace exitrec
