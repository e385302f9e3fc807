// What the distributed-training workers (mpi_worker.cpp, nccl_worker.cpp) share: the training run's
// sizes, the data every worker builds alike, and check(), which counts failures instead of stopping so
// one run reports every difference. Each worker is a single translation unit including this once.
#pragma once

#include <cstdint>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <keras/keras.hpp>

namespace worker {

constexpr int64_t kSamples = 50;   // 3 batches of 16, then one of 2: shares of 1 and 1 on two workers
constexpr int64_t kBatch = 16;
constexpr int kEpochs = 3;

inline int failures = 0;
inline int rank = 0;   // this worker's rank, for the messages

inline void check(bool ok, const std::string& what) {
    if (ok) return;
    std::cerr << "worker " << rank << ": FAILED: " << what << "\n";
    ++failures;
}

struct Data {
    keras::Tensor x, y;
};

// The same data on every worker (a fixed generator, not kerascpp's): 4 features, label = their sum > 0.
inline Data make_data() {
    std::mt19937 gen(1234);
    std::normal_distribution<float> normal;
    std::vector<float> x(kSamples * 4), y(kSamples);
    for (int64_t i = 0; i < kSamples; ++i) {
        float sum = 0;
        for (int j = 0; j < 4; ++j) sum += (x[static_cast<size_t>(i * 4 + j)] = normal(gen));
        y[static_cast<size_t>(i)] = sum > 0 ? 1.0f : 0.0f;
    }
    return {keras::Tensor(x, {kSamples, 4}), keras::Tensor(y, {kSamples, 1})};
}

}  // namespace worker
