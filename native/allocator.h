// The CPU allocator of allocator.cpp (plain C++ over c10, no ATen): what runtime.cpp calls.
#pragma once
#include <cstddef>

namespace unet {
// At load: installs the allocator (unless UNET_CPU_ALLOCATOR=default), sizes its cache of large
// blocks (UNET_CPU_CACHE_MB) and applies UNET_MMAP_THRESHOLD.
void InstallCpuAllocator();
size_t CpuCachedBytes();  // bytes held in the cache of freed large blocks
bool TrimCpuMemory();     // empties the cache, then glibc's malloc_trim(0)
}  // namespace unet
