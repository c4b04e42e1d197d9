#include "common/base64.h"

#include <cstdint>

namespace exitrec {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int value(unsigned char c, bool url) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+' || (url && c == '-'))
    return 62;
  if (c == '/' || (url && c == '_'))
    return 63;
  return -1;
}

bool isSpace(unsigned char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

Error invalid(const std::string& what) {
  return Error(ErrorCode::kInvalidInput, what);
}

}  // namespace

std::string base64Encode(std::string_view data) {
  std::string out;
  out.reserve(4 * ((data.size() + 2) / 3));
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const std::uint32_t v = (static_cast<unsigned char>(data[i]) << 16) |
                            (static_cast<unsigned char>(data[i + 1]) << 8) |
                            static_cast<unsigned char>(data[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  const std::size_t rest = data.size() - i;
  if (rest > 0) {
    std::uint32_t v = static_cast<unsigned char>(data[i]) << 16;
    if (rest == 2)
      v |= static_cast<unsigned char>(data[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

Result<std::string> base64Decode(std::string_view text, Base64Options options) {
  std::string out;
  out.reserve(text.size() / 4 * 3 + 3);
  std::uint32_t acc = 0;
  int bits = 0;
  std::size_t symbols = 0;  // alphabet characters and '=' (whitespace excluded)
  std::size_t padding = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (options.skipWhitespace && isSpace(c))
      continue;
    ++symbols;
    if (c == '=') {
      ++padding;
      continue;
    }
    const int v = value(c, options.urlAlphabet);
    if (v < 0 || padding > 0) {
      return invalid("invalid base64 at offset " + std::to_string(i) +
                     (padding > 0 && v >= 0 ? " (data after '=' padding)" : ""));
    }
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  // 6 leftover bits cannot come from whole bytes: the text was cut.
  if (bits >= 6)
    return invalid("truncated base64 (length is not a whole number of bytes)");
  if (padding > 2 || (options.requirePadding && symbols % 4 != 0))
    return invalid("invalid base64 padding (" + std::to_string(symbols) + " characters)");
  return out;
}

}  // namespace exitrec
