// Host memory for tensors and kernel buffers: 64-byte aligned blocks, with the large ones kept for
// reuse once freed.
//
// Why: a training step allocates the same large blocks every time (activations, gradients, the
// embedding's dense gradient), and glibc hands blocks past its mmap threshold back to the kernel
// when they are freed. Each step then page-faulted its memory in again: 10-14% of a W2 / W3 step in
// the kernel (perf), the memset of a fresh zeros tensor a third of the faults.
#pragma once

#include <cstddef>

namespace keras::host_memory {

// Blocks of at least this many bytes are cached when freed; smaller ones go straight to free().
inline constexpr size_t kCachedMinBytes = size_t{256} << 10;
// At most this many bytes wait in the cache; past it, the largest waiting blocks are freed first.
inline constexpr size_t kCacheCapacityBytes = size_t{512} << 20;

// At least `bytes` of uninitialised memory, 64-byte aligned; null when out of memory.
void* allocate(size_t bytes);
// Gives back a block from allocate(), with the same `bytes`.
void deallocate(void* ptr, size_t bytes) noexcept;
// Frees every cached block (tests; a program that wants its memory back between phases).
void release_cached() noexcept;
// Bytes waiting in the cache now.
size_t cached_bytes() noexcept;

}  // namespace keras::host_memory
