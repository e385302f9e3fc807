// The backends' primitive caches are bounded (LruCache): predict over many batch sizes keeps at most
// the capacity, evicting the least recently used shapes, and an evicted shape is rebuilt correctly.
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "keras/keras.hpp"
#include "lru_cache.hpp"
#include "onednn/onednn_backend.hpp"

using namespace keras;
namespace be = keras::backend;

namespace {
be::OneDnnBackend& cpu() { return dynamic_cast<be::OneDnnBackend&>(be::get(Device::cpu())); }
}  // namespace

TEST_CASE("LruCache: a hit refreshes, a miss past capacity evicts the least recently used") {
    be::LruCache<int, std::string> cache(2);
    int made = 0;
    auto get = [&](int k) { return cache.get_or_create(k, [&] { ++made; return std::to_string(k); }); };
    CHECK(get(1) == "1");
    CHECK(get(2) == "2");
    CHECK(get(1) == "1");   // hit: 1 is now the most recent
    CHECK(made == 2);
    CHECK(get(3) == "3");   // evicts 2
    CHECK(cache.size() == 2);
    CHECK(cache.evictions() == 1);
    CHECK(get(1) == "1");
    CHECK(made == 3);       // 1 was kept
    CHECK(get(2) == "2");   // 2 was evicted: made again (evicting 3)
    CHECK(made == 4);
    CHECK(cache.evictions() == 2);
    // A maker that throws leaves the cache as it was.
    CHECK_THROWS_AS(cache.get_or_create(9, []() -> std::string { throw std::runtime_error("no"); }), std::runtime_error);
    CHECK(cache.size() == 2);
    CHECK(cache.evictions() == 2);
}

TEST_CASE("predict over many batch sizes keeps the matmul and RNN caches within their capacity") {
    utils::set_random_seed(4);
    Sequential model;
    model.add(layers::Input({4, 3}));
    model.add(layers::LSTM(3));
    model.add(layers::Dense(2));
    std::vector<float> xs(400 * 4 * 3);
    for (size_t i = 0; i < xs.size(); ++i) xs[i] = std::sin(0.1f * static_cast<float>(i));
    const Tensor x(xs, {400, 4, 3});
    const Tensor first = model.predict(x, {.batch_size = 400, .verbose = 0});

    const be::CacheStats matmul_before = cpu().matmul_cache_stats(), rnn_before = cpu().rnn_cache_stats();
    const int64_t sizes = static_cast<int64_t>(be::OneDnnBackend::kMatmulCacheCapacity) + 40;
    for (int64_t n = 1; n <= sizes; ++n) model.predict(x.slice_rows(0, n), {.batch_size = n, .verbose = 0});

    const be::CacheStats matmul = cpu().matmul_cache_stats(), rnn = cpu().rnn_cache_stats();
    CHECK(matmul.capacity == be::OneDnnBackend::kMatmulCacheCapacity);
    CHECK(matmul.entries <= matmul.capacity);
    CHECK(matmul.evictions >= matmul_before.evictions + 40);
    CHECK(rnn.capacity == be::OneDnnBackend::kRnnCacheCapacity);
    CHECK(rnn.entries <= rnn.capacity);
    CHECK(rnn.evictions >= rnn_before.evictions + sizes - rnn.capacity);

    // The first shape was evicted long ago: built again, it gives the same result.
    CHECK(model.predict(x, {.batch_size = 400, .verbose = 0}).to_vector<float>() == first.to_vector<float>());
}
