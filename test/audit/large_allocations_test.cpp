// controller/large_allocations.cpp replaces global new/delete in the
// launcher; this test binary links it too, so every allocation here (gtest's
// included) goes through it.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <memory>
#include <new>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Mapping {
  bool found = false;
  std::uintptr_t start = 0;
  std::uintptr_t end = 0;
  std::string vmFlags;
};

// The /proc/self/smaps entry holding `p`.
Mapping mappingOf(const void* p) {
  const auto address = reinterpret_cast<std::uintptr_t>(p);
  std::ifstream smaps("/proc/self/smaps");
  Mapping current;
  for (std::string line; std::getline(smaps, line);) {
    std::uintptr_t start = 0;
    std::uintptr_t end = 0;
    char dash = 0;
    std::istringstream range(line);
    if (range >> std::hex >> start >> dash >> end && dash == '-' &&
        line.find(':') > line.find(' ')) {
      current = Mapping{address >= start && address < end, start, end, ""};
    } else if (current.found && line.rfind("VmFlags:", 0) == 0) {
      current.vmFlags = line;
      return current;
    }
  }
  return {};
}

bool adviseHuge(const Mapping& m) {
  return m.vmFlags.find(" hg") != std::string::npos;
}

TEST(LargeAllocations, LargeBlocksGetTheirOwnHugePageMapping) {
  if (!std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled"))
    GTEST_SKIP() << "this kernel has no transparent huge pages: MADV_HUGEPAGE is refused, blocks "
                    "keep 4 KiB pages";
  constexpr std::size_t kBytes = std::size_t{8} << 20;
  auto block = std::make_unique<char[]>(kBytes);  // new[]: value-initialised, so touched
  block[kBytes - 1] = 1;
  const Mapping m = mappingOf(block.get());
  ASSERT_TRUE(m.found) << "no mapping holds the block";
  EXPECT_TRUE(adviseHuge(m)) << m.vmFlags;
  EXPECT_GE(m.end - m.start, kBytes);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(block.get()) % 64, 0u);
  const std::uintptr_t start = m.start;
  block.reset();  // delete[]: unmapped
  const Mapping after = mappingOf(reinterpret_cast<const void*>(start));
  EXPECT_FALSE(after.found && adviseHuge(after)) << "the block's mapping outlived its delete";
}

TEST(LargeAllocations, SmallBlocksStayWithMalloc) {
  std::vector<char> small(1 << 16, 'x');
  const Mapping m = mappingOf(small.data());
  ASSERT_TRUE(m.found);
  EXPECT_FALSE(adviseHuge(m)) << m.vmFlags;
}

TEST(LargeAllocations, EveryFormOfNewAndDeletePairs) {
  constexpr std::size_t kBytes = std::size_t{5} << 20;
  std::vector<void*> blocks;
  for (int i = 0; i < 100; ++i)  // more than the registry holds: the rest come from malloc
    blocks.push_back(::operator new(kBytes));
  for (void* p : blocks)
    static_cast<char*>(p)[kBytes - 1] = 2;
  for (void* p : blocks)
    ::operator delete(p, kBytes);
  void* nothrowBlock = ::operator new[](kBytes, std::nothrow);
  ASSERT_NE(nothrowBlock, nullptr);
  EXPECT_NE(mappingOf(nothrowBlock).start, mappingOf(blocks.data()).start);  // a mapping of its own
  ::operator delete[](nothrowBlock, std::nothrow);
  EXPECT_THROW((void)::operator new(static_cast<std::size_t>(-1) / 2), std::bad_alloc);
  EXPECT_EQ(::operator new(static_cast<std::size_t>(-1) / 2, std::nothrow), nullptr);
}

}  // namespace
