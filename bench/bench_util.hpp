// What the C++ benchmarks share: random inputs and the median time of repeated calls.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <random>
#include <vector>

#include "keras/tensor.hpp"

namespace bench {

// A float32 tensor of values uniform in [-scale, scale).
inline keras::Tensor random_tensor(keras::Shape shape, float scale, std::mt19937& gen) {
    keras::Tensor t(std::move(shape), keras::DType::float32);
    std::uniform_real_distribution<float> dist(-scale, scale);
    float* p = t.data<float>();
    for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = dist(gen);
    return t;
}

// The median wall time of `repeats` calls, in ms, after one untimed call (primitive creation, JIT,
// first touch of the buffers).
inline double median_ms(int repeats, const std::function<void()>& call) {
    call();
    std::vector<double> ms;
    for (int r = 0; r < repeats; ++r) {
        const auto start = std::chrono::steady_clock::now();
        call();
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
}

}  // namespace bench
