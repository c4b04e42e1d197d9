// Global operator new/delete for the `exit-reconciler` launcher (audit): large
// blocks are mapped on their own and marked MADV_HUGEPAGE.
//
// Why: auditing a 25 MB workflow touches ~40 MB of fresh memory, most of it in
// simdjson's structural index (4 bytes per token) and the node array. With 4
// KiB pages that is ~7000 page faults, a third of the process's time; in 2 MiB
// transparent huge pages it is a few dozen (measured in docs/benchmarks.md).
// glibc only does this when GLIBC_TUNABLES=glibc.malloc.hugetlb=1 is set
// before the process starts, so the launcher asks the kernel itself.
//
// Contract: a block of kLargeBlock bytes or more comes from its own mmap with
// MADV_HUGEPAGE advice (only advice: "never" in
// /sys/kernel/mm/transparent_hugepage leaves 4 KiB pages), while there is
// room in a small registry of such blocks; everything else goes to malloc as
// before. The registry makes delete exact: a pointer is unmapped only if it
// was registered, and only pointers a header's length past a page boundary
// are looked up. Thread-safe (atomic registry slots). Aligned new
// (align_val_t) keeps the default implementation, which pairs with its own
// delete.
#include <sys/mman.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace {

constexpr std::size_t kLargeBlock = std::size_t{4} << 20;
constexpr std::size_t kPage = 4096;
// In front of each block: its mapped size. 64 bytes keep the block more
// aligned than max_align_t asks.
constexpr std::size_t kHeader = 64;
// A process holds a handful of such blocks at once (audit: simdjson's two
// buffers, the node array, a few index tables); past this, malloc serves them.
constexpr std::size_t kRegistrySize = 64;

std::atomic<void*> gRegistry[kRegistrySize];

bool registerBlock(void* p) noexcept {
  for (auto& slot : gRegistry) {
    void* expected = nullptr;
    if (slot.compare_exchange_strong(expected, p, std::memory_order_acq_rel))
      return true;
  }
  return false;
}

// True (and the slot freed) when p was registered.
bool unregisterBlock(void* p) noexcept {
  for (auto& slot : gRegistry) {
    // A plain load first: most pointers looked up here are malloc's, and a
    // compare-exchange per slot would be 64 locked instructions for each.
    if (slot.load(std::memory_order_acquire) != p)
      continue;
    void* expected = p;
    if (slot.compare_exchange_strong(expected, nullptr, std::memory_order_acq_rel))
      return true;
  }
  return false;
}

void* allocateLarge(std::size_t bytes) noexcept {
  if (bytes > SIZE_MAX - kHeader - kPage)
    return nullptr;
  const std::size_t mapped = (bytes + kHeader + kPage - 1) / kPage * kPage;
  void* region =
      ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED)
    return nullptr;
  ::madvise(region, mapped, MADV_HUGEPAGE);  // advice: failure leaves small pages
  *static_cast<std::size_t*>(region) = mapped;
  void* block = static_cast<char*>(region) + kHeader;
  if (!registerBlock(block)) {
    ::munmap(region, mapped);
    return nullptr;  // registry full: malloc serves it
  }
  return block;
}

void* allocate(std::size_t bytes) noexcept {
  if (bytes >= kLargeBlock) {
    if (void* p = allocateLarge(bytes))
      return p;
  }
  return std::malloc(bytes == 0 ? 1 : bytes);
}

void release(void* p) noexcept {
  if (p == nullptr)
    return;
  if (reinterpret_cast<std::uintptr_t>(p) % kPage == kHeader && unregisterBlock(p)) {
    char* region = static_cast<char*>(p) - kHeader;
    ::munmap(region, *reinterpret_cast<std::size_t*>(region));
    return;
  }
  std::free(p);
}

void* allocateOrThrow(std::size_t bytes) {
  for (;;) {
    if (void* p = allocate(bytes))
      return p;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr)
      throw std::bad_alloc();
    handler();
  }
}

}  // namespace

void* operator new(std::size_t bytes) {
  return allocateOrThrow(bytes);
}
void* operator new[](std::size_t bytes) {
  return allocateOrThrow(bytes);
}
void* operator new(std::size_t bytes, const std::nothrow_t&) noexcept {
  return allocate(bytes);
}
void* operator new[](std::size_t bytes, const std::nothrow_t&) noexcept {
  return allocate(bytes);
}
void operator delete(void* p) noexcept {
  release(p);
}
void operator delete[](void* p) noexcept {
  release(p);
}
void operator delete(void* p, std::size_t) noexcept {
  release(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  release(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  release(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  release(p);
}
