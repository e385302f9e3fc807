#include "caching_allocator.hpp"

#include <bit>

#include "keras/errors.hpp"

namespace keras::backend {

CachingAllocator::CachingAllocator(RawMemory raw) : raw_(std::move(raw)) {}

CachingAllocator::~CachingAllocator() { release_cached(); }

size_t CachingAllocator::size_class(size_t bytes) {
    constexpr size_t minimum = 512;
    if (bytes <= minimum) return minimum;
    const size_t octave = std::bit_floor(bytes);     // 2^k <= bytes
    const size_t step = octave / 4;                  // quarter-octave steps
    return (bytes + step - 1) / step * step;
}

void* CachingAllocator::allocate(size_t bytes) {
    const size_t size = size_class(bytes);
    std::lock_guard lock(mutex_);
    auto& list = free_blocks_[size];
    void* ptr = nullptr;
    if (!list.empty()) {
        ptr = list.back();
        list.pop_back();
        stats_.cached_bytes -= size;
    } else {
        ptr = raw_.allocate(size);
        if (!ptr) {
            // Out of memory: blocks cached in other size classes may make room.
            for (auto& [cls, blocks] : free_blocks_) {
                for (void* p : blocks) raw_.release(p);
                stats_.raw_releases += blocks.size();
                blocks.clear();
            }
            stats_.cached_bytes = 0;
            ptr = raw_.allocate(size);
        }
        if (!ptr)
            runtime_error("Out of memory on {}: could not allocate {} bytes ({} bytes in use by tensors)",
                          raw_.device_name, size, stats_.in_use_bytes);
        ++stats_.raw_allocations;
    }
    in_use_.emplace(ptr, size);
    stats_.in_use_bytes += size;
    stats_.peak_in_use_bytes = std::max(stats_.peak_in_use_bytes, stats_.in_use_bytes);
    return ptr;
}

void CachingAllocator::deallocate(void* ptr) noexcept {
    if (!ptr) return;
    std::lock_guard lock(mutex_);
    const auto it = in_use_.find(ptr);
    if (it == in_use_.end()) return;   // not ours: nothing sensible to do in a destructor path
    const size_t size = it->second;
    in_use_.erase(it);
    stats_.in_use_bytes -= size;
    stats_.cached_bytes += size;
    free_blocks_[size].push_back(ptr);
}

void CachingAllocator::release_cached() noexcept {
    std::lock_guard lock(mutex_);
    for (auto& [size, blocks] : free_blocks_) {
        for (void* p : blocks) raw_.release(p);
        stats_.raw_releases += blocks.size();
        blocks.clear();
    }
    stats_.cached_bytes = 0;
}

CachingAllocator::Stats CachingAllocator::stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
}

}  // namespace keras::backend
