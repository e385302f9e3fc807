// framework/src/host_memory: large host blocks are kept when freed and handed out again for the
// same size (a training step's allocations no longer page-fault every step), within a byte bound.
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "host_memory.hpp"
#include "keras/keras.hpp"

namespace hm = keras::host_memory;
using keras::Tensor;

namespace {
constexpr size_t kLarge = hm::kCachedMinBytes;   // the smallest block that is cached
bool aligned64(const void* p) { return reinterpret_cast<uintptr_t>(p) % 64 == 0; }
}  // namespace

TEST_CASE("host memory: a freed large block comes back for the same size only") {
    hm::release_cached();
    void* a = hm::allocate(kLarge + 100);
    REQUIRE(a);
    CHECK(aligned64(a));
    hm::deallocate(a, kLarge + 100);
    CHECK(hm::cached_bytes() == (kLarge + 100 + 63) / 64 * 64);
    void* other = hm::allocate(2 * kLarge);   // another size: a new block, the cached one stays
    CHECK(other != a);
    CHECK(hm::cached_bytes() > 0);
    void* again = hm::allocate(kLarge + 90);   // the same capacity once rounded to 64 bytes
    CHECK(again == a);
    CHECK(hm::cached_bytes() == 0);
    hm::deallocate(again, kLarge + 90);
    hm::deallocate(other, 2 * kLarge);
    hm::release_cached();
    CHECK(hm::cached_bytes() == 0);
}

TEST_CASE("host memory: small blocks and zero bytes are not cached") {
    hm::release_cached();
    void* small = hm::allocate(kLarge - 64);
    void* none = hm::allocate(0);
    REQUIRE(small);
    REQUIRE(none);
    CHECK(aligned64(small));
    CHECK(aligned64(none));
    hm::deallocate(small, kLarge - 64);
    hm::deallocate(none, 0);
    hm::deallocate(nullptr, kLarge);   // a no-op, as free(nullptr)
    CHECK(hm::cached_bytes() == 0);
}

TEST_CASE("host memory: the cache stays within its bound, freeing its largest blocks first") {
    hm::release_cached();
    // Blocks are allocated, not touched: this costs address space, not memory.
    const size_t big = hm::kCacheCapacityBytes / 2, medium = hm::kCacheCapacityBytes / 4;
    std::vector<void*> blocks{hm::allocate(big), hm::allocate(big), hm::allocate(medium)};
    for (void* p : blocks) REQUIRE(p);
    hm::deallocate(blocks[0], big);
    hm::deallocate(blocks[1], big);
    CHECK(hm::cached_bytes() == 2 * big);   // exactly full
    hm::deallocate(blocks[2], medium);      // room is made by freeing one of the big ones
    CHECK(hm::cached_bytes() == big + medium);
    CHECK(hm::cached_bytes() <= hm::kCacheCapacityBytes);
    void* too_big = hm::allocate(hm::kCacheCapacityBytes + 64);   // larger than the whole cache: never kept
    REQUIRE(too_big);
    hm::deallocate(too_big, hm::kCacheCapacityBytes + 64);
    CHECK(hm::cached_bytes() == big + medium);
    hm::release_cached();
    CHECK(hm::cached_bytes() == 0);
}

TEST_CASE("host memory: tensors reuse freed blocks, and zeros() clears what the last one left") {
    hm::release_cached();
    const keras::Shape shape{static_cast<int64_t>(kLarge / sizeof(float)), 2};
    const void* first = nullptr;
    {
        Tensor t(shape, keras::DType::float32);
        first = t.raw();
        t.fill(7.0f);
    }
    CHECK(hm::cached_bytes() >= kLarge);
    const Tensor z = Tensor::zeros(shape);
    CHECK(z.raw() == first);   // the block came back
    bool all_zero = true;
    for (int64_t i = 0; i < z.numel(); ++i) all_zero = all_zero && z.data<float>()[i] == 0.0f;
    CHECK(all_zero);
}

#if defined(__SANITIZE_ADDRESS__)
#define KERASCPP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KERASCPP_ASAN 1
#endif
#endif

#if defined(KERASCPP_ASAN)
#include <sanitizer/asan_interface.h>
TEST_CASE("host memory: under AddressSanitizer a cached block is poisoned until handed out again") {
    hm::release_cached();
    char* p = static_cast<char*>(hm::allocate(kLarge));
    REQUIRE(p);
    CHECK_FALSE(__asan_address_is_poisoned(p));
    hm::deallocate(p, kLarge);
    CHECK(__asan_address_is_poisoned(p));
    CHECK(__asan_address_is_poisoned(p + kLarge - 1));
    char* again = static_cast<char*>(hm::allocate(kLarge));
    CHECK(again == p);
    CHECK_FALSE(__asan_address_is_poisoned(again + kLarge - 1));
    hm::deallocate(again, kLarge);
    hm::release_cached();
}
#endif
