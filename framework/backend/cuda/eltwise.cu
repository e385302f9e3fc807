// Activation and element-wise kernels. The scalar formulas are activation_formulas.hpp's, which the
// CPU code uses too, so both backends compute the same functions.
#include <cfloat>

#include "activation_formulas.hpp"
#include "kernels.hpp"

namespace keras::backend::kernels {

namespace {

using activation_formulas::derivative;
using activation_formulas::value;

__global__ void activation_forward_kernel(Activation a, const float* x, float* y, int64_t n) {
    for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
        y[i] = value(a, x[i]);
}

__global__ void activation_backward_kernel(Activation a, const float* x, const float* y, const float* dy,
                                           float* dx, int64_t n) {
    for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
        dx[i] = dy[i] * derivative(a, x[i], y[i]);
}

// One block per row: reductions over the row in shared memory (max, then sum of exponentials).
__device__ float block_reduce(float v, bool take_max) {
    __shared__ float shared[kThreads];
    shared[threadIdx.x] = v;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s /= 2) {
        if (threadIdx.x < s)
            shared[threadIdx.x] = take_max ? fmaxf(shared[threadIdx.x], shared[threadIdx.x + s])
                                           : shared[threadIdx.x] + shared[threadIdx.x + s];
        __syncthreads();
    }
    const float result = shared[0];
    __syncthreads();
    return result;
}

__global__ void softmax_forward_kernel(const float* x, float* y, int64_t cols) {
    const float* row = x + blockIdx.x * cols;
    float* out = y + blockIdx.x * cols;
    float mx = -FLT_MAX;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) mx = fmaxf(mx, row[j]);
    mx = block_reduce(mx, true);
    float sum = 0.0f;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) sum += expf(row[j] - mx);
    sum = block_reduce(sum, false);
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) out[j] = expf(row[j] - mx) / sum;
}

// dx_j = y_j * (dy_j - sum_k dy_k y_k), row by row.
__global__ void softmax_backward_kernel(const float* y, const float* dy, float* dx, int64_t cols) {
    const int64_t base = blockIdx.x * cols;
    float dot = 0.0f;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) dot += dy[base + j] * y[base + j];
    dot = block_reduce(dot, false);
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) dx[base + j] = y[base + j] * (dy[base + j] - dot);
}

__global__ void multiply_kernel(const float* a, const float* b, float* out, int64_t n) {
    for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
        out[i] = a[i] * b[i];
}

__global__ void add_kernel(const float* a, const float* b, float* out, int64_t n) {
    for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
        out[i] = a[i] + b[i];
}

__global__ void scale_kernel(float* x, float factor, int64_t n) {
    for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
        x[i] *= factor;
}

__global__ void clip_kernel(float* x, float lo, float hi, int64_t n) {
    for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
        x[i] = fminf(fmaxf(x[i], lo), hi);
}

// Each block sums its grid-stride share in double, then one atomicAdd per block into *result
// (zeroed by the launcher). Double accumulation keeps the order of additions from mattering much.
__global__ void sum_squares_kernel(const float* x, int64_t n, double* result) {
    __shared__ double shared[kThreads];
    double sum = 0.0;
    for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
        sum += static_cast<double>(x[i]) * x[i];
    shared[threadIdx.x] = sum;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s /= 2) {
        if (threadIdx.x < s) shared[threadIdx.x] += shared[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) atomicAdd(result, shared[0]);
}

// One thread per output (sample, channel): sums over the steps in order, as the CPU loop does.
__global__ void mean_over_steps_kernel(const float* x, float* y, int64_t n, int64_t t, int64_t c) {
    for (int64_t o = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; o < n * c; o += int64_t{gridDim.x} * blockDim.x) {
        const int64_t i = o / c, j = o % c;
        float sum = 0.0f;
        for (int64_t s = 0; s < t; ++s) sum += x[(i * t + s) * c + j];
        y[o] = sum / static_cast<float>(t);
    }
}

__global__ void mean_over_steps_backward_kernel(const float* dy, float* dx, int64_t n, int64_t t, int64_t c) {
    const int64_t total = n * t * c;
    for (int64_t o = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; o < total; o += int64_t{gridDim.x} * blockDim.x) {
        const int64_t j = o % c, i = o / (t * c);
        dx[o] = dy[i * c + j] / static_cast<float>(t);
    }
}

}  // namespace

cudaError_t activation_forward(Activation a, const float* x, float* y, int64_t n, cudaStream_t stream) {
    if (n > 0) activation_forward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(a, x, y, n);
    return cudaGetLastError();
}

cudaError_t activation_backward(Activation a, const float* x, const float* y, const float* dy, float* dx, int64_t n,
                                cudaStream_t stream) {
    if (n > 0) activation_backward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(a, x, y, dy, dx, n);
    return cudaGetLastError();
}

cudaError_t softmax_forward(const float* x, float* y, int64_t rows, int64_t cols, cudaStream_t stream) {
    if (rows > 0 && cols > 0) softmax_forward_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, y, cols);
    return cudaGetLastError();
}

cudaError_t softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t cols,
                             cudaStream_t stream) {
    if (rows > 0 && cols > 0)
        softmax_backward_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(y, dy, dx, cols);
    return cudaGetLastError();
}

cudaError_t multiply(const float* a, const float* b, float* out, int64_t n, cudaStream_t stream) {
    if (n > 0) multiply_kernel<<<blocks_for(n), kThreads, 0, stream>>>(a, b, out, n);
    return cudaGetLastError();
}

cudaError_t add(const float* a, const float* b, float* out, int64_t n, cudaStream_t stream) {
    if (n > 0) add_kernel<<<blocks_for(n), kThreads, 0, stream>>>(a, b, out, n);
    return cudaGetLastError();
}

cudaError_t scale(float* x, float factor, int64_t n, cudaStream_t stream) {
    if (n > 0) scale_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, factor, n);
    return cudaGetLastError();
}

cudaError_t clip(float* x, float lo, float hi, int64_t n, cudaStream_t stream) {
    if (n > 0) clip_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, lo, hi, n);
    return cudaGetLastError();
}

cudaError_t sum_squares(const float* x, int64_t n, double* result, cudaStream_t stream) {
    const cudaError_t status = cudaMemsetAsync(result, 0, sizeof(double), stream);
    if (status != cudaSuccess) return status;
    if (n > 0) sum_squares_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, n, result);
    return cudaGetLastError();
}

cudaError_t mean_over_steps(const float* x, float* y, int64_t n, int64_t t, int64_t c, cudaStream_t stream) {
    if (n * c > 0) mean_over_steps_kernel<<<blocks_for(n * c), kThreads, 0, stream>>>(x, y, n, t, c);
    return cudaGetLastError();
}

cudaError_t mean_over_steps_backward(const float* dy, float* dx, int64_t n, int64_t t, int64_t c,
                                     cudaStream_t stream) {
    if (n * t * c > 0) mean_over_steps_backward_kernel<<<blocks_for(n * t * c), kThreads, 0, stream>>>(dy, dx, n, t, c);
    return cudaGetLastError();
}

}  // namespace keras::backend::kernels
