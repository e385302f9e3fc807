// Moving whole time steps by per-sample index tables (masked RNNs pack and unpack with these).
#include "kernels.hpp"

namespace keras::backend::kernels {

namespace {

// One thread per output element (n, s, f).
__global__ void gather_steps_kernel(const float* x, const int32_t* idx, float* out, int64_t N, int64_t S,
                                    int64_t steps, int64_t F) {
    const int64_t total = N * steps * F;
    for (int64_t o = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; o < total; o += int64_t{gridDim.x} * blockDim.x) {
        const int64_t f = o % F, row = o / F, n = row / steps;
        const int32_t from = idx[row];
        out[o] = from < 0 ? 0.0f : x[(n * S + from) * F + f];
    }
}

// One thread per (n, f), walking the source steps in order: several steps may add into one
// destination step, and a fixed order keeps the sums deterministic (no atomics).
__global__ void scatter_add_steps_kernel(const float* y, const int32_t* idx, float* out, int64_t N, int64_t S,
                                         int64_t steps, int64_t F) {
    const int64_t total = N * F;
    for (int64_t o = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; o < total; o += int64_t{gridDim.x} * blockDim.x) {
        const int64_t f = o % F, n = o / F;
        for (int64_t s = 0; s < S; ++s) {
            const int32_t to = idx[n * S + s];
            if (to >= 0) out[(n * steps + to) * F + f] += y[(n * S + s) * F + f];
        }
    }
}

}  // namespace

cudaError_t gather_steps(const float* x, const int32_t* idx, float* out, int64_t N, int64_t S, int64_t steps,
                         int64_t F, cudaStream_t stream) {
    if (N * steps * F > 0)
        gather_steps_kernel<<<blocks_for(N * steps * F), kThreads, 0, stream>>>(x, idx, out, N, S, steps, F);
    return cudaGetLastError();
}

cudaError_t scatter_add_steps(const float* y, const int32_t* idx, float* out, int64_t N, int64_t S, int64_t steps,
                              int64_t F, cudaStream_t stream) {
    if (N * F > 0 && S > 0)
        scatter_add_steps_kernel<<<blocks_for(N * F), kThreads, 0, stream>>>(y, idx, out, N, S, steps, F);
    return cudaGetLastError();
}

}  // namespace keras::backend::kernels
