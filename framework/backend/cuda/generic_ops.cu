// Kernels of the generic tensor ops (generic_kernels.hpp). Deliberately plain: grid-stride loops
// over the output, one general strided walk for broadcasting and copies, block reductions in shared
// memory. Each formula is written as host/host_ops.cpp writes it, so both give the same values
// (and the same NaNs).
#include <algorithm>
#include <cmath>

#include "generic_kernels.hpp"
#include "kernels.hpp"

namespace keras::backend::generic_kernels {

namespace {

using kernels::blocks_for;
using kernels::kThreads;

// Grid-stride loop over [0, n).
#define FOR_EACH_INDEX(i, n) \
    for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < (n); i += int64_t{gridDim.x} * blockDim.x)

// The largest grid of the one-block-per-item kernels (reduce, softmax rows); they loop past it.
constexpr int64_t kMaxBlocks = 65535 * 8;
unsigned blocks_per_item(int64_t items) { return static_cast<unsigned>(std::min<int64_t>(items, kMaxBlocks)); }

// Offsets in each operand of element i of the walk (row-major: the last axis moves fastest).
template <int N>
__device__ void offsets_of(const Walk<N>& walk, int64_t i, int64_t (&off)[N]) {
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int d = walk.ndim - 1; d >= 0; --d) {
        const int64_t index = i % walk.dims[d];
        i /= walk.dims[d];
        for (int k = 0; k < N; ++k) off[k] += index * walk.stride[k][d];
    }
}

// max / min that return a NaN operand, as host_ops.cpp's (NaN propagates as in NumPy and Keras).
template <typename T>
__device__ T nan_max(T a, T b) { return (a > b || a != a) ? a : b; }
template <typename T>
__device__ T nan_min(T a, T b) { return (a < b || a != a) ? a : b; }

__device__ float unary_value(Unary op, float x) {
    switch (op) {
        case Unary::negative: return -x;
        case Unary::exp: return expf(x);
        case Unary::log: return logf(x);
        case Unary::tanh: return tanhf(x);
        case Unary::sigmoid: return 1.0f / (1.0f + expf(-x));
        case Unary::relu: return (x > 0.0f || x != x) ? x : 0.0f;   // relu(NaN) = NaN, as on the CPU
        case Unary::sqrt: return sqrtf(x);
        case Unary::square: return x * x;
        case Unary::abs: return fabsf(x);
        case Unary::sign: return x != x ? x : static_cast<float>((x > 0.0f) - (x < 0.0f));
        case Unary::reciprocal: return 1.0f / x;
    }
    return x;
}

__device__ float binary_value(Binary op, float a, float b) {
    switch (op) {
        case Binary::add: return a + b;
        case Binary::subtract: return a - b;
        case Binary::multiply: return a * b;
        case Binary::divide: return a / b;
        case Binary::maximum: return nan_max(a, b);
        case Binary::minimum: return nan_min(a, b);
        case Binary::power: return powf(a, b);
        case Binary::greater: return a > b ? 1.0f : 0.0f;
        case Binary::greater_equal: return a >= b ? 1.0f : 0.0f;
        case Binary::less: return a < b ? 1.0f : 0.0f;
        case Binary::less_equal: return a <= b ? 1.0f : 0.0f;
        case Binary::equal: return a == b ? 1.0f : 0.0f;
        case Binary::not_equal: return a != b ? 1.0f : 0.0f;
    }
    return a;
}

__global__ void unary_kernel(Unary op, const float* x, float* y, int64_t n) {
    FOR_EACH_INDEX(i, n) y[i] = unary_value(op, x[i]);
}

__global__ void clip_kernel(const float* x, float* y, float lo, float hi, int64_t n) {
    FOR_EACH_INDEX(i, n) {
        const float above = x[i] < lo ? lo : x[i];   // std::max(x, lo)
        y[i] = hi < above ? hi : above;              // std::min(that, hi)
    }
}

__global__ void binary_kernel(Binary op, const float* a, const float* b, float* y, Walk<2> walk, int64_t n) {
    FOR_EACH_INDEX(i, n) {
        int64_t off[2];
        offsets_of(walk, i, off);
        y[i] = binary_value(op, a[off[0]], b[off[1]]);
    }
}

__global__ void where_kernel(const float* cond, const float* a, const float* b, float* y, Walk<3> walk, int64_t n) {
    FOR_EACH_INDEX(i, n) {
        int64_t off[3];
        offsets_of(walk, i, off);
        y[i] = cond[off[0]] != 0.0f ? a[off[1]] : b[off[2]];
    }
}

// T: an unsigned integer of the element's size, so one kernel moves any dtype bit for bit.
template <typename T>
__global__ void strided_copy_kernel(const T* src, T* dst, Walk<2> walk, int64_t n) {
    FOR_EACH_INDEX(i, n) {
        int64_t off[2];
        offsets_of(walk, i, off);
        dst[off[1]] = src[off[0]];
    }
}

// ---- reductions

__device__ double reduce_init(Reduce op) {
    return op == Reduce::max ? -static_cast<double>(INFINITY) : op == Reduce::min ? static_cast<double>(INFINITY) : 0.0;
}

// The CPU's accumulation step: a NaN anywhere makes max / min NaN.
__device__ double reduce_step(Reduce op, double acc, double v) {
    if (op == Reduce::max) return nan_max(acc, v);
    if (op == Reduce::min) return nan_min(acc, v);
    return acc + v;
}

// Combines one value per thread of the block (blockDim.x a power of two, at most kThreads) and
// returns the result to every thread.
__device__ double block_reduce(Reduce op, double v, double* shared) {
    shared[threadIdx.x] = v;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s /= 2) {
        if (threadIdx.x < s) shared[threadIdx.x] = reduce_step(op, shared[threadIdx.x], shared[threadIdx.x + s]);
        __syncthreads();
    }
    const double result = shared[0];
    __syncthreads();   // everyone has read shared[0] before the next call overwrites it
    return result;
}

// One block per output: its threads stride over the reduced elements, then combine.
__global__ void reduce_kernel(Reduce op, const float* x, float* y, Walk<1> outer, int64_t outputs, Walk<1> reduced,
                              int64_t count) {
    __shared__ double shared[kThreads];
    for (int64_t o = blockIdx.x; o < outputs; o += gridDim.x) {
        int64_t base[1];
        offsets_of(outer, o, base);
        double acc = reduce_init(op);
        for (int64_t r = threadIdx.x; r < count; r += blockDim.x) {
            int64_t off[1];
            offsets_of(reduced, r, off);
            acc = reduce_step(op, acc, static_cast<double>(x[base[0] + off[0]]));
        }
        acc = block_reduce(op, acc, shared);
        if (threadIdx.x == 0) y[o] = static_cast<float>(op == Reduce::mean ? acc / static_cast<double>(count) : acc);
    }
}

// Threads per block for reductions of `count` elements: a power of two, 32 .. kThreads.
unsigned reduce_threads(int64_t count) {
    unsigned t = 32;
    while (t < static_cast<unsigned>(kThreads) && t < count) t *= 2;
    return t;
}

// ---- softmax, as the CPU computes it: the max in float (a NaN makes the row NaN), the sum of exp(x - max) in
// double, then exp(z) / sum or z - log(sum) in double.

__device__ float max_step(float m, float v) { return nan_max(m, v); }   // a NaN row gives NaNs

__device__ float softmax_value(double z, double sum, bool log) {
    return static_cast<float>(log ? z - ::log(sum) : ::exp(z) / sum);
}

// Contiguous rows (inner == 1): one block per row.
__global__ void softmax_rows_kernel(const float* x, float* y, int64_t rows, int64_t n, bool log) {
    __shared__ double shared[kThreads];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float* row = x + r * n;
        float* out = y + r * n;
        float mx = -INFINITY;
        for (int64_t j = threadIdx.x; j < n; j += blockDim.x) mx = max_step(mx, row[j]);
        mx = static_cast<float>(block_reduce(Reduce::max, mx, shared));   // floats are exact in double
        double sum = 0.0;
        for (int64_t j = threadIdx.x; j < n; j += blockDim.x) sum += ::exp(static_cast<double>(row[j]) - mx);
        sum = block_reduce(Reduce::sum, sum, shared);
        for (int64_t j = threadIdx.x; j < n; j += blockDim.x)
            out[j] = softmax_value(static_cast<double>(row[j]) - mx, sum, log);
    }
}

// Strided rows (inner > 1): one thread per (outer, inner) pair; neighbouring threads read
// neighbouring addresses.
__global__ void softmax_strided_kernel(const float* x, float* y, int64_t outer, int64_t n, int64_t inner, bool log) {
    FOR_EACH_INDEX(t, outer * inner) {
        const int64_t base = (t / inner) * n * inner + t % inner;
        float mx = -INFINITY;
        for (int64_t k = 0; k < n; ++k) mx = max_step(mx, x[base + k * inner]);
        double sum = 0.0;
        for (int64_t k = 0; k < n; ++k) sum += ::exp(static_cast<double>(x[base + k * inner]) - mx);
        for (int64_t k = 0; k < n; ++k)
            y[base + k * inner] = softmax_value(static_cast<double>(x[base + k * inner]) - mx, sum, log);
    }
}

// ---- take (a gather along one axis) and its scatter-add

template <typename T, typename Id>
__global__ void take_kernel(const T* x, const Id* idx, T* y, int64_t outer, int64_t n, int64_t k, int64_t inner) {
    FOR_EACH_INDEX(i, outer * k * inner) {
        const int64_t c = i % inner, j = (i / inner) % k, o = i / (inner * k);
        const int64_t v = static_cast<int64_t>(idx[j]);
        y[i] = v >= 0 && v < n ? x[(o * n + v) * inner + c] : T(0);
    }
}

template <typename Id>
__global__ void take_backward_kernel(const float* dy, const Id* idx, float* dx, int64_t outer, int64_t n, int64_t k,
                                     int64_t inner) {
    FOR_EACH_INDEX(i, outer * k * inner) {
        const int64_t c = i % inner, j = (i / inner) % k, o = i / (inner * k);
        const int64_t v = static_cast<int64_t>(idx[j]);
        if (v >= 0 && v < n) atomicAdd(&dx[(o * n + v) * inner + c], dy[i]);
    }
}

template <typename Id>
cudaError_t launch_take(const void* x, const Id* idx, void* y, size_t element_size, int64_t outer, int64_t n, int64_t k,
                        int64_t inner, cudaStream_t stream) {
    const int64_t total = outer * k * inner;
    if (total == 0) return cudaGetLastError();
    if (element_size == 8)
        take_kernel<<<blocks_for(total), kThreads, 0, stream>>>(static_cast<const uint64_t*>(x), idx,
                                                                static_cast<uint64_t*>(y), outer, n, k, inner);
    else if (element_size == 4)
        take_kernel<<<blocks_for(total), kThreads, 0, stream>>>(static_cast<const uint32_t*>(x), idx,
                                                                static_cast<uint32_t*>(y), outer, n, k, inner);
    else
        return cudaErrorInvalidValue;
    return cudaGetLastError();
}

template <typename Id>
cudaError_t launch_take_backward(const float* dy, const Id* idx, float* dx, int64_t outer, int64_t n, int64_t k,
                                 int64_t inner, cudaStream_t stream) {
    const int64_t total = outer * k * inner;
    if (total > 0) take_backward_kernel<<<blocks_for(total), kThreads, 0, stream>>>(dy, idx, dx, outer, n, k, inner);
    return cudaGetLastError();
}

}  // namespace

cudaError_t unary(Unary op, const float* x, float* y, int64_t n, cudaStream_t stream) {
    if (n > 0) unary_kernel<<<blocks_for(n), kThreads, 0, stream>>>(op, x, y, n);
    return cudaGetLastError();
}

cudaError_t clip(const float* x, float* y, float lo, float hi, int64_t n, cudaStream_t stream) {
    if (n > 0) clip_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, y, lo, hi, n);
    return cudaGetLastError();
}

cudaError_t binary(Binary op, const float* a, const float* b, float* y, const Walk<2>& walk, int64_t n,
                   cudaStream_t stream) {
    if (n > 0) binary_kernel<<<blocks_for(n), kThreads, 0, stream>>>(op, a, b, y, walk, n);
    return cudaGetLastError();
}

cudaError_t where(const float* cond, const float* a, const float* b, float* y, const Walk<3>& walk, int64_t n,
                  cudaStream_t stream) {
    if (n > 0) where_kernel<<<blocks_for(n), kThreads, 0, stream>>>(cond, a, b, y, walk, n);
    return cudaGetLastError();
}

cudaError_t strided_copy(const void* src, void* dst, size_t element_size, const Walk<2>& walk, int64_t n,
                         cudaStream_t stream) {
    if (n == 0) return cudaGetLastError();
    if (element_size == 8)
        strided_copy_kernel<<<blocks_for(n), kThreads, 0, stream>>>(static_cast<const uint64_t*>(src),
                                                                    static_cast<uint64_t*>(dst), walk, n);
    else if (element_size == 4)
        strided_copy_kernel<<<blocks_for(n), kThreads, 0, stream>>>(static_cast<const uint32_t*>(src),
                                                                    static_cast<uint32_t*>(dst), walk, n);
    else
        return cudaErrorInvalidValue;
    return cudaGetLastError();
}

cudaError_t reduce(Reduce op, const float* x, float* y, const Walk<1>& outer, int64_t outputs, const Walk<1>& reduced,
                   int64_t count, cudaStream_t stream) {
    if (outputs > 0)
        reduce_kernel<<<blocks_per_item(outputs), reduce_threads(count), 0, stream>>>(op, x, y, outer, outputs, reduced,
                                                                                       count);
    return cudaGetLastError();
}

cudaError_t softmax(const float* x, float* y, int64_t outer, int64_t n, int64_t inner, bool log, cudaStream_t stream) {
    if (outer * n * inner == 0) return cudaGetLastError();
    if (inner == 1)
        softmax_rows_kernel<<<blocks_per_item(outer), kThreads, 0, stream>>>(x, y, outer, n, log);
    else
        softmax_strided_kernel<<<blocks_for(outer * inner), kThreads, 0, stream>>>(x, y, outer, n, inner, log);
    return cudaGetLastError();
}

cudaError_t take(const void* x, const int32_t* idx, void* y, size_t element_size, int64_t outer, int64_t n, int64_t k,
                 int64_t inner, cudaStream_t stream) {
    return launch_take(x, idx, y, element_size, outer, n, k, inner, stream);
}

cudaError_t take(const void* x, const int64_t* idx, void* y, size_t element_size, int64_t outer, int64_t n, int64_t k,
                 int64_t inner, cudaStream_t stream) {
    return launch_take(x, idx, y, element_size, outer, n, k, inner, stream);
}

cudaError_t take_backward(const float* dy, const int32_t* idx, float* dx, int64_t outer, int64_t n, int64_t k,
                          int64_t inner, cudaStream_t stream) {
    return launch_take_backward(dy, idx, dx, outer, n, k, inner, stream);
}

cudaError_t take_backward(const float* dy, const int64_t* idx, float* dx, int64_t outer, int64_t n, int64_t k,
                          int64_t inner, cudaStream_t stream) {
    return launch_take_backward(dy, idx, dx, outer, n, k, inner, stream);
}

}  // namespace keras::backend::generic_kernels
