#include "host_memory.hpp"

#include <sanitizer/asan_interface.h>   // no-op macros outside AddressSanitizer builds

#include <cstdlib>
#include <iterator>
#include <map>
#include <mutex>

namespace keras::host_memory {

namespace {

// Under AddressSanitizer (the fuzz build) a cached block stays poisoned until it is handed out
// again, so a use after free still reports as it would without the cache.
void free_cached(void* ptr, size_t cap) {
    ASAN_UNPOISON_MEMORY_REGION(ptr, cap);
    std::free(ptr);
}

// A block's capacity: its request rounded up to the alignment. Cached blocks are reused for a
// request of the same capacity only, so a block never serves a smaller request and wastes nothing.
size_t capacity(size_t bytes) { return (bytes + 63) / 64 * 64; }

struct Cache {
    std::mutex mutex;
    std::multimap<size_t, void*> free_blocks;   // capacity -> block
    size_t bytes = 0;

    // Frees the largest waiting blocks until `incoming` more bytes fit under the capacity.
    void make_room(size_t incoming) {
        while (!free_blocks.empty() && bytes + incoming > kCacheCapacityBytes) {
            const auto largest = std::prev(free_blocks.end());
            bytes -= largest->first;
            free_cached(largest->second, largest->first);
            free_blocks.erase(largest);
        }
    }
};

// Never destroyed: tensors held in static objects may be freed after it would have been.
Cache& cache() {
    static Cache* c = new Cache;
    return *c;
}

}  // namespace

void* allocate(size_t bytes) {
    const size_t cap = capacity(bytes == 0 ? 1 : bytes);
    if (cap >= kCachedMinBytes) {
        Cache& c = cache();
        std::lock_guard lock(c.mutex);
        if (const auto it = c.free_blocks.find(cap); it != c.free_blocks.end()) {
            void* ptr = it->second;
            c.bytes -= cap;
            c.free_blocks.erase(it);
            ASAN_UNPOISON_MEMORY_REGION(ptr, cap);
            return ptr;
        }
    }
    return std::aligned_alloc(64, cap);
}

void deallocate(void* ptr, size_t bytes) noexcept {
    if (!ptr) return;
    const size_t cap = capacity(bytes == 0 ? 1 : bytes);
    if (cap < kCachedMinBytes || cap > kCacheCapacityBytes) {
        std::free(ptr);
        return;
    }
    Cache& c = cache();
    std::lock_guard lock(c.mutex);
    c.make_room(cap);
    try {
        c.free_blocks.emplace(cap, ptr);
        c.bytes += cap;
        ASAN_POISON_MEMORY_REGION(ptr, cap);
    } catch (...) {   // no memory for the map's node: free the block instead of caching it
        std::free(ptr);
    }
}

void release_cached() noexcept {
    Cache& c = cache();
    std::lock_guard lock(c.mutex);
    for (const auto& [cap, ptr] : c.free_blocks) free_cached(ptr, cap);
    c.free_blocks.clear();
    c.bytes = 0;
}

size_t cached_bytes() noexcept {
    Cache& c = cache();
    std::lock_guard lock(c.mutex);
    return c.bytes;
}

}  // namespace keras::host_memory
