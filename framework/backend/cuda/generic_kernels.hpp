// Launchers for the generic tensor ops' kernels (generic_ops.cu), the GPU side of keras::ops.
// Same conventions as kernels.hpp: plain pointers and sizes (nvcc never sees Tensor or fmt), every
// launcher only queues work on `stream`, returns cudaGetLastError() and launches nothing for 0
// elements. The scalar formulas are those of host/host_ops.cpp, written the same way (e.g.
// maximum is `a < b ? b : a`, as std::max), so NaNs come out where the CPU's do.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace keras::backend::generic_kernels {

// Ranks above this run through the host (Backend's default): the walks below keep their sizes in
// fixed arrays, passed to the kernels by value.
constexpr int kMaxDims = 8;

// A row-major walk over an index space of `ndim` axes of sizes `dims`: element i (flat, row-major)
// sits at offset sum_d index_d * stride[k][d] in operand k. A stride 0 repeats an operand along an
// axis (broadcasting); ndim 0 is one element at offset 0.
template <int N>
struct Walk {
    int ndim = 0;
    int64_t dims[kMaxDims] = {};
    int64_t stride[N][kMaxDims] = {};
};

// The kernels' own copies of backend.hpp's enums (generic_ops.cpp maps one onto the other).
enum class Unary { negative, exp, log, tanh, sigmoid, relu, sqrt, square, abs, sign, reciprocal };
enum class Binary { add, subtract, multiply, divide, maximum, minimum, power, greater, greater_equal, less,
                    less_equal, equal, not_equal };
enum class Reduce { sum, mean, max, min };

// y[i] = op(x[i]) for n contiguous floats.
cudaError_t unary(Unary op, const float* x, float* y, int64_t n, cudaStream_t stream);
// y[i] = min(max(x[i], lo), hi), NaN kept (std::min / std::max's comparisons).
cudaError_t clip(const float* x, float* y, float lo, float hi, int64_t n, cudaStream_t stream);
// y (n elements of walk's space, contiguous) = op(a[off0], b[off1]).
cudaError_t binary(Binary op, const float* a, const float* b, float* y, const Walk<2>& walk, int64_t n,
                   cudaStream_t stream);
// y = cond[off0] != 0 ? a[off1] : b[off2].
cudaError_t where(const float* cond, const float* a, const float* b, float* y, const Walk<3>& walk, int64_t n,
                  cudaStream_t stream);
// dst[off1] = src[off0] for the n elements of the walk; element_size 4 or 8 (any dtype).
cudaError_t strided_copy(const void* src, void* dst, size_t element_size, const Walk<2>& walk, int64_t n,
                         cudaStream_t stream);

// outputs: one y per element of `outer` (y contiguous, in outer's order; outer.stride[0] gives
// where that output's elements start in x). reduced: the walk over the reduced axes (stride[0]
// in x), `count` elements long (0 allowed: sum 0, mean NaN, max -inf, min +inf as on the CPU).
// Accumulates in double; max / min skip NaNs as the CPU's loop does.
cudaError_t reduce(Reduce op, const float* x, float* y, const Walk<1>& outer, int64_t outputs, const Walk<1>& reduced,
                   int64_t count, cudaStream_t stream);

// softmax (or log_softmax) of x viewed as (outer, n, inner) along its middle axis, in double inside.
cudaError_t softmax(const float* x, float* y, int64_t outer, int64_t n, int64_t inner, bool log, cudaStream_t stream);

// x viewed as (outer, n, inner) -> y (outer, k, inner): y[o, j] = x[o, idx[j]]; element_size 4 or 8.
// An index outside [0, n) (the caller has checked there are none) gives zeros, never a bad read.
cudaError_t take(const void* x, const int32_t* idx, void* y, size_t element_size, int64_t outer, int64_t n, int64_t k,
                 int64_t inner, cudaStream_t stream);
cudaError_t take(const void* x, const int64_t* idx, void* y, size_t element_size, int64_t outer, int64_t n, int64_t k,
                 int64_t inner, cudaStream_t stream);
// The adjoint: dx (outer, n, inner), zeroed by the caller, gets dx[o, idx[j]] += dy[o, j] (atomicAdd:
// repeated indices sum in a varying order, so equal to the CPU up to rounding). Bad indices skipped.
cudaError_t take_backward(const float* dy, const int32_t* idx, float* dx, int64_t outer, int64_t n, int64_t k,
                          int64_t inner, cudaStream_t stream);
cudaError_t take_backward(const float* dy, const int64_t* idx, float* dx, int64_t outer, int64_t n, int64_t k,
                          int64_t inner, cudaStream_t stream);

}  // namespace keras::backend::generic_kernels
