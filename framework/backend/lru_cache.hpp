// The bound on the backends' primitive caches. A primitive (oneDNN matmul, RNN, cuDNN descriptors) is
// built once per shape and then only executed, but a process that sees many shapes (predict over
// thousands of batch sizes) must not keep every one: past `capacity` entries the least recently
// used one goes. Values are handles (dnnl::matmul, shared_ptr) returned by copy, so a caller keeps
// using what it got after another call has evicted it.
//
// Not thread-safe: the owner guards it with its own mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <utility>

namespace keras::backend {

template <typename Key, typename Value>
class LruCache {
public:
    explicit LruCache(size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {}

    // The value cached for key, else make()'s, cached (evicting the least recently used when full).
    template <typename Make>
    Value get_or_create(const Key& key, Make&& make) {
        if (auto it = index_.find(key); it != index_.end()) {
            items_.splice(items_.begin(), items_, it->second);   // now the most recent
            return it->second->second;
        }
        Value value = make();   // may throw: the cache is unchanged then
        if (items_.size() >= capacity_) {
            index_.erase(items_.back().first);
            items_.pop_back();
            ++evictions_;
        }
        items_.emplace_front(key, value);
        index_.emplace(key, items_.begin());
        return value;
    }

    size_t size() const { return items_.size(); }
    size_t capacity() const { return capacity_; }
    uint64_t evictions() const { return evictions_; }   // since construction

private:
    using Items = std::list<std::pair<Key, Value>>;   // most recently used first
    size_t capacity_;
    Items items_;
    std::map<Key, typename Items::iterator> index_;
    uint64_t evictions_ = 0;
};

// What a test reads of a backend's caches (OneDnnBackend::cache_stats).
struct CacheStats {
    size_t entries = 0, capacity = 0;
    uint64_t evictions = 0;
};

template <typename Key, typename Value>
CacheStats stats_of(const LruCache<Key, Value>& cache) {
    return {cache.size(), cache.capacity(), cache.evictions()};
}

}  // namespace keras::backend
