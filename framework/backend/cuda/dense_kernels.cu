// Dense's bias kernels: broadcasting the bias into the output (cuBLAS then adds x @ kernel on top)
// and the bias gradient as column sums of dy.
#include "dense_kernels.hpp"

#include "cuda_check.hpp"

namespace keras::backend::cuda_kernels {

namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t n) {
    const int64_t b = (n + kThreads - 1) / kThreads;
    return static_cast<int>(b < 65535 ? (b > 0 ? b : 1) : 65535);
}

__global__ void broadcast_rows_kernel(float* y, const float* bias, int64_t rows, int64_t cols) {
    const int64_t n = rows * cols;
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
        y[i] = bias[i % cols];
}

// One thread per column: neighbouring threads read neighbouring addresses of each row.
__global__ void sum_rows_kernel(const float* dy, float* dbias, int64_t rows, int64_t cols) {
    for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < cols; j += int64_t(gridDim.x) * blockDim.x) {
        double s = 0.0;
        for (int64_t r = 0; r < rows; ++r) s += dy[r * cols + j];
        dbias[j] = static_cast<float>(s);
    }
}

}  // namespace

void broadcast_rows(float* y, const float* bias, int64_t rows, int64_t cols, cudaStream_t stream) {
    if (rows * cols == 0) return;
    broadcast_rows_kernel<<<blocks_for(rows * cols), kThreads, 0, stream>>>(y, bias, rows, cols);
    CUDA_CHECK(cudaGetLastError());
}

void sum_rows(const float* dy, float* dbias, int64_t rows, int64_t cols, cudaStream_t stream) {
    if (cols == 0) return;
    sum_rows_kernel<<<blocks_for(cols), kThreads, 0, stream>>>(dy, dbias, rows, cols);
    CUDA_CHECK(cudaGetLastError());
}

}  // namespace keras::backend::cuda_kernels
