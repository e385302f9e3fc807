// Launchers for Dense's two small kernels (dense_kernels.cu); the matrix products are cuBLAS's.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace keras::backend::cuda_kernels {

// y (rows, cols) row-major: every row = bias (cols). Queued on `stream`.
void broadcast_rows(float* y, const float* bias, int64_t rows, int64_t cols, cudaStream_t stream);
// dbias (cols) = sum over rows of dy (rows, cols), in double then rounded (matches the CPU's order-free
// exactness better than a float running sum over many rows). Queued on `stream`.
void sum_rows(const float* dy, float* dbias, int64_t rows, int64_t cols, cudaStream_t stream);

}  // namespace keras::backend::cuda_kernels
