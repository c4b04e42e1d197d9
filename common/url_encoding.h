#pragma once
// Percent-encoding (RFC 3986), the one implementation in the project: every
// byte except the unreserved characters ALPHA / DIGIT / "-" / "." / "_" / "~"
// becomes %XX (upper-case hex), so the result is safe in a path segment and in
// a query value alike. Pure (no locale), thread-safe.

#include <string>
#include <string_view>

namespace exitrec {

std::string urlEncode(std::string_view in);

}  // namespace exitrec
