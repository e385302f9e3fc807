// RNN helper kernels: the weight packing described by a copy plan (one launch for all blocks, the
// plan passed by value as a kernel argument) and the time reversal used for go_backwards.
#include "rnn_kernels.hpp"

#include <stdexcept>
#include <string>

#include "cuda_check.hpp"
#include "rnn_index.hpp"

namespace keras::backend::cuda_kernels {

namespace {

constexpr int kThreads = 256;
constexpr int kMaxBlocks = kMaxPackBlocks;

struct DeviceBlock {
    int source;   // PackSource as int
    int64_t start;   // first flat element of this block in the launch's index space
    int64_t dst_offset, rows, cols, src_col, src_ld;
};
struct DevicePlan {
    int count;
    int64_t total;
    DeviceBlock blocks[kMaxBlocks];
};

DevicePlan device_plan(const std::vector<PackBlock>& plan) {
    // An internal invariant (a plan has at most 16 blocks). fmt, hence keras/errors.hpp, does not
    // build under nvcc in C++20 mode, so this is a standard exception.
    if (plan.size() > kMaxBlocks)
        throw std::length_error("RNN weight plan has " + std::to_string(plan.size()) + " blocks, at most " +
                           std::to_string(kMaxBlocks) + " supported");
    DevicePlan p{};
    p.count = static_cast<int>(plan.size());
    for (size_t i = 0; i < plan.size(); ++i) {
        const auto& b = plan[i];
        p.blocks[i] = {static_cast<int>(b.source), p.total, b.dst_offset, b.rows, b.cols, b.src_col, b.src_ld};
        p.total += b.rows * b.cols;
    }
    return p;
}

int grid_for(int64_t n) {
    const int64_t b = (n + kThreads - 1) / kThreads;
    return static_cast<int>(b < 4096 ? (b > 0 ? b : 1) : 4096);
}

__device__ const DeviceBlock& find_block(const DevicePlan& p, int64_t i) {
    int k = 0;
    while (k + 1 < p.count && p.blocks[k + 1].start <= i) ++k;
    return p.blocks[k];
}

// The Keras array a block reads (or, unpacking, writes); null for zero blocks.
__device__ float* keras_array(int source, float* kernel, float* recurrent, float* bias) {
    switch (source) {
        case static_cast<int>(PackSource::kernel): return kernel;
        case static_cast<int>(PackSource::recurrent_kernel): return recurrent;
        case static_cast<int>(PackSource::bias): return bias;
        default: return nullptr;
    }
}

// Element (r, c) of a block <-> Keras element c * src_ld + src_col + r (see rnn_weight_layout.hpp).
__global__ void pack_kernel(DevicePlan p, const float* kernel, const float* recurrent, const float* bias, float* ws) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < p.total; i += int64_t(gridDim.x) * blockDim.x) {
        const DeviceBlock& b = find_block(p, i);
        const int64_t e = i - b.start;
        const float* src = keras_array(b.source, const_cast<float*>(kernel), const_cast<float*>(recurrent),
                                       const_cast<float*>(bias));
        ws[b.dst_offset + e] = src ? src[rnn_index::keras_index(e, b.cols, b.src_col, b.src_ld)] : 0.0f;
    }
}

__global__ void unpack_kernel(DevicePlan p, const float* dws, float* dkernel, float* drecurrent, float* dbias) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < p.total; i += int64_t(gridDim.x) * blockDim.x) {
        const DeviceBlock& b = find_block(p, i);
        float* dst = keras_array(b.source, dkernel, drecurrent, dbias);
        if (!dst) continue;
        const int64_t e = i - b.start;
        dst[rnn_index::keras_index(e, b.cols, b.src_col, b.src_ld)] = dws[b.dst_offset + e];
    }
}

__global__ void reverse_kernel(const float* src, float* dst, const int32_t* lengths, int64_t N, int64_t T, int64_t C) {
    const int64_t total = N * T * C;
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
        const int64_t c = i % C, t = (i / C) % T, n = i / (C * T);
        dst[i] = src[(n * T + rnn_index::reversed_step(t, lengths[n])) * C + c];
    }
}

}  // namespace

void pack_rnn_weights(const std::vector<PackBlock>& plan, const float* kernel, const float* recurrent_kernel,
                      const float* bias, float* weight_space, cudaStream_t stream) {
    const DevicePlan p = device_plan(plan);
    pack_kernel<<<grid_for(p.total), kThreads, 0, stream>>>(p, kernel, recurrent_kernel, bias, weight_space);
    CUDA_CHECK(cudaGetLastError());
}

void unpack_rnn_gradients(const std::vector<PackBlock>& plan, const float* d_weight_space, float* dkernel,
                          float* drecurrent_kernel, float* dbias, cudaStream_t stream) {
    const DevicePlan p = device_plan(plan);
    unpack_kernel<<<grid_for(p.total), kThreads, 0, stream>>>(p, d_weight_space, dkernel, drecurrent_kernel, dbias);
    CUDA_CHECK(cudaGetLastError());
}

void reverse_valid_steps(const float* src, float* dst, const int32_t* lengths, int64_t N, int64_t T, int64_t C,
                         cudaStream_t stream) {
    if (N * T * C == 0) return;
    reverse_kernel<<<grid_for(N * T * C), kThreads, 0, stream>>>(src, dst, lengths, N, T, C);
    CUDA_CHECK(cudaGetLastError());
}

}  // namespace keras::backend::cuda_kernels
