#pragma once
// The hash behind the node index (nodeKeyHash), shared by Workflow::buildIndex
// and the JSON reader, which hashes node ids and names while it has them in
// cache. Both must feed it the same 16-byte steps: the key's bytes in order,
// the last step zero-filled past the end.
//
// Ids and names share long prefixes ("<wf>-", "<wf>.root.") and differ
// anywhere, so every byte counts. Two independent multiply chains, one per
// 8-byte half, halve the latency of a single chain on ~100-byte names and cost
// far less than std::hash<string_view> (MurmurHash via _Hash_bytes). Not for
// untrusted equality: the index compares keys on every hash match.

#include <bit>
#include <cstddef>
#include <cstdint>

namespace exitrec {

class KeyHasher {
 public:
  explicit KeyHasher(std::size_t length) : lo_(length), hi_(length ^ kSeed) {}
  void add(std::uint64_t lo, std::uint64_t hi) {
    lo_ = (std::rotl(lo_, 5) ^ lo) * kMulLo;
    hi_ = (std::rotl(hi_, 5) ^ hi) * kMulHi;
  }
  // The final fold brings the well-mixed high bits down to the low bits a slot
  // mask keeps.
  std::uint32_t finish() const {
    const std::uint64_t h = lo_ ^ std::rotl(hi_ * kMulLo, 29);
    return static_cast<std::uint32_t>(h ^ (h >> 32));
  }

 private:
  static constexpr std::uint64_t kMulLo = 0x9E3779B97F4A7C15ull;
  static constexpr std::uint64_t kMulHi = 0xC2B2AE3D27D4EB4Full;
  static constexpr std::uint64_t kSeed = 0x165667B19E3779F9ull;
  std::uint64_t lo_;
  std::uint64_t hi_;
};

}  // namespace exitrec
