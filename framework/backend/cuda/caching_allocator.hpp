// A caching allocator for device memory, in the manner of PyTorch's CUDA allocator but simpler:
// requests are rounded up to a size class, freed blocks go to that class's free list and are
// handed out again, so a training loop that repeats the same shapes stops calling the raw
// allocator (cudaMalloc, which synchronises the device) after its first step.
// Plain C++ over a pair of raw allocate / release functions, so its bookkeeping is testable
// without a GPU. All work on a device runs on one stream, so a block freed by the host can be
// reused at once: later kernels using it are ordered after earlier ones on that stream.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace keras::backend {

class CachingAllocator {
public:
    struct RawMemory {
        std::function<void*(size_t)> allocate;   // nullptr when out of memory; throws on other errors
        std::function<void(void*)> release;      // must not throw
        std::string device_name;                 // for error messages, e.g. "cuda:0"
    };
    struct Stats {
        size_t raw_allocations = 0;   // calls to RawMemory::allocate that succeeded, ever
        size_t raw_releases = 0;      // calls to RawMemory::release, ever
        size_t in_use_bytes = 0;      // size-class bytes handed out and not returned
        size_t cached_bytes = 0;      // size-class bytes waiting in the free lists
        size_t peak_in_use_bytes = 0;
    };

    explicit CachingAllocator(RawMemory raw);
    ~CachingAllocator();   // releases the cached blocks (blocks still in use are left to the driver)
    CachingAllocator(const CachingAllocator&) = delete;
    CachingAllocator& operator=(const CachingAllocator&) = delete;

    void* allocate(size_t bytes);
    void deallocate(void* ptr) noexcept;
    // Gives every cached (free) block back to the raw allocator.
    void release_cached() noexcept;
    Stats stats() const;

    // The block size serving a request: at least 512 bytes, else the request rounded up to a
    // quarter-octave step (2^k * {1, 1.25, 1.5, 1.75}), so at most 25% is wasted while the number
    // of classes, and hence of distinct cached blocks, stays small.
    static size_t size_class(size_t bytes);

private:
    RawMemory raw_;
    mutable std::mutex mutex_;
    std::map<size_t, std::vector<void*>> free_blocks_;   // size class -> free blocks
    std::unordered_map<void*, size_t> in_use_;           // block -> size class
    Stats stats_;
};

}  // namespace keras::backend
