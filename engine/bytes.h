#pragma once
// Byte comparisons for the engine's hot paths, without libc calls: std::memcmp
// of a short or constant length still became a call (and a length dispatch)
// on these, the most frequent comparisons of a large read.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace exitrec::bytes {

// Key comparison against a literal: a size check, then one or two 8-byte
// loads per side (std::memcmp of a constant length still became a libc call
// on this, the hottest comparison).
template <std::size_t N>
[[gnu::always_inline]] inline bool is(std::string_view key, const char (&literal)[N]) {
  constexpr std::size_t n = N - 1;
  if (key.size() != n)
    return false;
  if constexpr (n == 0) {
    return true;
  } else if constexpr (n <= 8) {
    std::uint64_t a = 0;
    std::uint64_t b = 0;
    std::memcpy(&a, key.data(), n);
    std::memcpy(&b, literal, n);
    return a == b;
  } else if constexpr (n <= 16) {
    std::uint64_t a[2];
    std::uint64_t b[2];
    std::memcpy(&a[0], key.data(), 8);
    std::memcpy(&a[1], key.data() + n - 8, 8);
    std::memcpy(&b[0], literal, 8);
    std::memcpy(&b[1], literal + n - 8, 8);
    return a[0] == b[0] && a[1] == b[1];
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
