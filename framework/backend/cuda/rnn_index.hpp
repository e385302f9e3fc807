// The two index formulas the RNN kernels (rnn_kernels.cu) share with the host code the CPU tests
// exercise (rnn_weight_layout.cpp), so what is tested on the CPU is what runs on the GPU.
// Plain C++17, usable from nvcc.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define KERASCPP_HOST_DEVICE __host__ __device__
#else
#define KERASCPP_HOST_DEVICE
#endif

namespace keras::backend::rnn_index {

// Element e (row-major: row e / cols, column e % cols) of a weight-space block comes from the Keras
// array's flat index c * src_ld + src_col + r: Keras row c, column src_col + r (the transpose).
KERASCPP_HOST_DEVICE inline int64_t keras_index(int64_t e, int64_t cols, int64_t src_col, int64_t src_ld) {
    const int64_t r = e / cols, c = e % cols;
    return c * src_ld + src_col + r;
}

// go_backwards on padded data: step t of a sample with `len` valid steps reads step len - 1 - t;
// padding steps (t >= len) stay where they are. Its own inverse.
KERASCPP_HOST_DEVICE inline int64_t reversed_step(int64_t t, int64_t len) { return t < len ? len - 1 - t : t; }

}  // namespace keras::backend::rnn_index
