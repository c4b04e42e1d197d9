#pragma once
// Base64 (RFC 4648), the one implementation in the project. Pure, thread-safe.
//
// Encoding is the standard alphabet with padding (what Kubernetes Secret data,
// caBundle and Go's base64.StdEncoding use). Decoding is strict by default
// (standard alphabet, padded to a multiple of 4, no whitespace, nothing after
// the padding); the options widen it for inputs that are looser by contract.

#include <cstddef>
#include <string>
#include <string_view>

#include "common/result.h"

namespace exitrec {

std::string base64Encode(std::string_view data);

struct Base64Options {
  bool skipWhitespace = false;  // ignore ' ', '\t', '\r', '\n' anywhere (PEM-style wrapping)
  bool urlAlphabet = false;     // also accept '-' and '_' (RFC 4648 §5)
  bool requirePadding = true;   // the text (without whitespace) is a multiple of 4 long
};

// The decoded bytes, or kInvalidInput: "invalid base64 at offset N",
// "truncated base64 (...)" or "invalid base64 padding (...)".
Result<std::string> base64Decode(std::string_view text, Base64Options options = {});

}  // namespace exitrec
