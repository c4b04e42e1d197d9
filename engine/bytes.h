#pragma once
// Byte comparisons for the engine's hot paths, without libc calls: std::memcmp
// of a short or constant length still became a call (and a length dispatch)
// on these, the most frequent comparisons of a large read.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace exitrec::bytes {

// Key comparison against a literal: a size check, then two loads per side of
// the widest power-of-two size that fits, the second one overlapping the
// first (std::memcmp of a constant length still became a libc call, and
// copying n < 8 bytes into a zeroed word stalled store forwarding).
template <typename Word, std::size_t n>
[[gnu::always_inline]] inline bool sameEnds(const char* key, const char* literal) {
  Word a = 0;
  Word b = 0;
  Word c = 0;
  Word d = 0;
  std::memcpy(&a, key, sizeof(Word));
  std::memcpy(&b, key + n - sizeof(Word), sizeof(Word));
  std::memcpy(&c, literal, sizeof(Word));
  std::memcpy(&d, literal + n - sizeof(Word), sizeof(Word));
  return a == c && b == d;
}

template <std::size_t N>
[[gnu::always_inline]] inline bool is(std::string_view key, const char (&literal)[N]) {
  constexpr std::size_t n = N - 1;
  if (key.size() != n)
    return false;
  if constexpr (n == 0) {
    return true;
  } else if constexpr (n == 1) {
    return key[0] == literal[0];
  } else if constexpr (n < 4) {
    return sameEnds<std::uint16_t, n>(key.data(), literal);
  } else if constexpr (n < 8) {
    return sameEnds<std::uint32_t, n>(key.data(), literal);
  } else if constexpr (n <= 16) {
    return sameEnds<std::uint64_t, n>(key.data(), literal);
  } else {
    return std::memcmp(key.data(), literal, n) == 0;
  }
}

// a == b for keys of any length: 8-byte loads, the last one overlapping.
[[gnu::always_inline]] inline bool same(std::string_view a, std::string_view b) {
  const std::size_t n = a.size();
  if (n != b.size())
    return false;
  const char* p = a.data();
  const char* q = b.data();
  if (n < 8) {
    for (std::size_t i = 0; i < n; ++i) {
      if (p[i] != q[i])
        return false;
    }
    return true;
  }
  std::uint64_t x = 0;
  std::uint64_t y = 0;
  for (std::size_t i = 0; i + 8 <= n; i += 8) {
    std::memcpy(&x, p + i, 8);
    std::memcpy(&y, q + i, 8);
    if (x != y)
      return false;
  }
  std::memcpy(&x, p + n - 8, 8);
  std::memcpy(&y, q + n - 8, 8);
  return x == y;
}

}  // namespace exitrec::bytes
