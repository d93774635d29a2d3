// The CPU allocator libtorch's CPU tensors take their memory from, and its cache of large blocks.
// Only c10 headers: this file compiles in seconds.
#include "allocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>

#include <malloc.h>
#include <unistd.h>
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace {

// CPU tensor memory. libtorch's default CPU allocator takes every buffer from posix_memalign(64).
// glibc serves an aligned request from a chunk slightly larger than the size asked for and splits
// off the slack; with small allocations in between (handle objects, autograd nodes), freed
// activation buffers stop fitting the next request of the same size and the heap grows. Measured
// on 512 KB activations (conv/BN/ReLU/cat/backward steps): in a loop that does not yield to the
// event loop, ~1 MB more resident memory per step without bound (11 GB after ~10,000 steps);
// in an async loop, a peak of 592 MB against 248 MB with the allocator below. Plain malloc of
// size + 64 with the pointer aligned by hand reuses freed chunks, at the same speed (UNet step
// and test/engine.memory.test.ts). UNET_CPU_ALLOCATOR=default keeps libtorch's allocator.
//
// Large buffers are kept for reuse: glibc maps every chunk above 32 MB fresh from the kernel and
// unmaps it on free, so each page faults again on first touch. A UNet step at B=2 256x256 made
// ~430,000 page faults (its full-resolution activations are 33-67 MB) and spent ~13% of its time
// on them. Freed blocks of >= 4 MB stay in a bounded cache (UNET_CPU_CACHE_MB, default 25% of RAM;
// 0 turns it off) and serve the next request of the same size (up to 1/8 larger); the oldest go
// first when it is full, and mallocTrim() empties it.
struct BlockCache {
  std::mutex mu;
  std::vector<std::pair<size_t, void*>> blocks;  // (capacity, raw malloc pointer), oldest first
  size_t bytes = 0;
  size_t limit = 0;
  void* Take(size_t n) {
    std::lock_guard<std::mutex> lock(mu);
    size_t best = blocks.size();
    for (size_t i = 0; i < blocks.size(); i++) {
      size_t cap = blocks[i].first;
      if (cap >= n && cap - n <= n / 8 && (best == blocks.size() || cap < blocks[best].first)) best = i;
    }
    if (best == blocks.size()) return nullptr;
    void* raw = blocks[best].second;
    bytes -= blocks[best].first;
    blocks.erase(blocks.begin() + best);
    return raw;
  }
  // Keeps a block; false when it does not fit at all (the caller frees it).
  bool Put(size_t cap, void* raw) {
    std::vector<void*> evicted;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (cap > limit) return false;
      while (bytes + cap > limit && !blocks.empty()) {
        evicted.push_back(blocks.front().second);
        bytes -= blocks.front().first;
        blocks.erase(blocks.begin());
      }
      blocks.emplace_back(cap, raw);
      bytes += cap;
    }
    for (void* p : evicted) std::free(p);
    return true;
  }
  void Clear() {
    std::vector<std::pair<size_t, void*>> all;
    {
      std::lock_guard<std::mutex> lock(mu);
      all.swap(blocks);
      bytes = 0;
    }
    for (auto& b : all) std::free(b.second);
  }
};
BlockCache g_block_cache;

struct MallocCPUAllocator final : public c10::Allocator {
  static constexpr size_t kAlign = 64;  // c10's gAlignment (AVX-512)
  static constexpr size_t kHeader = 2 * sizeof(void*);  // raw pointer, cacheable capacity (0: small)
  static constexpr size_t kBig = size_t(4) << 20;
  static void Free(void* p) {
    if (p == nullptr) return;
    void* raw = static_cast<void**>(p)[-1];
    size_t cap = reinterpret_cast<size_t*>(p)[-2];
    if (cap == 0 || !g_block_cache.Put(cap, raw)) std::free(raw);
  }
  static c10::DataPtr Make(size_t n) {
    if (n == 0) return {nullptr, nullptr, &Free, c10::Device(c10::kCPU)};
    size_t total = n + kAlign + kHeader;
    TORCH_CHECK(total > n, "CPU out of memory: cannot allocate ", n, " bytes");
    bool big = n >= kBig && g_block_cache.limit > 0;
    void* raw = big ? g_block_cache.Take(total) : nullptr;
    size_t cap = total;
    if (raw != nullptr) {
      cap = malloc_usable_size(raw);
    } else {
      raw = std::malloc(total);
      TORCH_CHECK(raw != nullptr, "CPU out of memory: cannot allocate ", n, " bytes");
      if (big) cap = malloc_usable_size(raw);
    }
    uintptr_t a = (reinterpret_cast<uintptr_t>(raw) + kHeader + kAlign - 1) & ~static_cast<uintptr_t>(kAlign - 1);
    reinterpret_cast<void**>(a)[-1] = raw;
    reinterpret_cast<size_t*>(a)[-2] = big ? cap : 0;
    return {reinterpret_cast<void*>(a), reinterpret_cast<void*>(a), &Free, c10::Device(c10::kCPU)};
  }
  // libtorch < 2.3 declares allocate() const, later versions non-const (and add copy_data): defining
  // both, without `override`, compiles against either.
  c10::DataPtr allocate(size_t n) const { return Make(n); }
  c10::DataPtr allocate(size_t n) { return Make(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const { std::memcpy(dest, src, count); }
  c10::DeleterFnPtr raw_deleter() const override { return &Free; }
};
MallocCPUAllocator g_cpu_allocator;

}  // namespace

void unet::InstallCpuAllocator() {
  // CPU tensors come from posix_memalign; with glibc's dynamic mmap threshold, freed activation
  // buffers can fragment the heap so that RSS grows although nothing leaks. A fixed threshold
  // (UNET_MMAP_THRESHOLD bytes) returns large buffers to the OS on free, but every large
  // allocation then page-faults: conv forward+backward measured 2.6x slower here. So it is opt-in,
  // and the trainer calls malloc_trim() between epochs instead.
  if (getenv("UNET_MMAP_THRESHOLD")) mallopt(M_MMAP_THRESHOLD, atoi(getenv("UNET_MMAP_THRESHOLD")));
  const char* a = getenv("UNET_CPU_ALLOCATOR");
  if (a == nullptr || std::string(a) != "default") c10::SetCPUAllocator(&g_cpu_allocator, /*priority=*/10);
  const char* mb = getenv("UNET_CPU_CACHE_MB");
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  g_block_cache.limit = mb != nullptr ? size_t(std::max(0.0, atof(mb))) << 20 : pages > 0 && page > 0 ? size_t(pages) * size_t(page) / 4 : 0;
}

size_t unet::CpuCachedBytes() {
  std::lock_guard<std::mutex> lock(g_block_cache.mu);
  return g_block_cache.bytes;
}

bool unet::TrimCpuMemory() {
  g_block_cache.Clear();
  return malloc_trim(0) != 0;
}
