#pragma once
// Percent-encoding (RFC 3986), the one implementation in the project: every
// byte except the unreserved characters ALPHA / DIGIT / "-" / "." / "_" / "~"
// becomes %XX (upper-case hex), so the result is safe in a path segment and in
// a query value alike. And the strict decoder of query components that Go's
// servers use. Pure (no locale), thread-safe.

#include <string>
#include <string_view>

#include "common/result.h"

namespace exitrec {

std::string urlEncode(std::string_view in);

// Go's url.QueryUnescape: "+" becomes a space, %XX (either case) its byte;
// a "%" not followed by two hex digits is kInvalidInput "invalid URL escape".
Result<std::string> queryUnescape(std::string_view in);

// The lenient decoding HTTP servers apply to a request's path and query: %XX
// (either case) becomes its byte, a "%" not followed by two hex digits stays as
// it is, and "+" becomes a space only when plusIsSpace (query components).
std::string urlDecode(std::string_view in, bool plusIsSpace);

}  // namespace exitrec
