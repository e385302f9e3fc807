// Launchers for the RNN helper kernels (rnn_kernels.cu): moving weights between Keras's layout and
// cuDNN's weight space by a copy plan (rnn_weight_layout.hpp), and reversing sequences in time.
#pragma once

#include <cstdint>
#include <vector>

#include <cuda_runtime.h>

namespace keras::backend::cuda_kernels {

// One block of a weight copy plan (cudnn_layout::Block, restated in plain C++17 because nvcc
// compiles the kernels as C++17 and the framework headers are C++20). Element (r, c) of the block,
// at weight_space[dst_offset + r * cols + c], is Keras element c * src_ld + src_col + r.
enum class PackSource : int { kernel = 0, recurrent_kernel = 1, bias = 2, zero = 3 };
struct PackBlock {
    PackSource source;
    int64_t dst_offset, rows, cols, src_col, src_ld;
};
constexpr int kMaxPackBlocks = 16;   // LSTM: 8 matrices + 8 biases

// Keras weights -> cuDNN weight space (every block of the plan, zero blocks filled with zeros).
// bias may be null when the plan reads no bias. One kernel launch.
void pack_rnn_weights(const std::vector<PackBlock>& plan, const float* kernel,
                      const float* recurrent_kernel, const float* bias, float* weight_space, cudaStream_t stream);
// cuDNN weight-space gradients -> Keras gradients (blocks from zero slots are dropped). One launch.
void unpack_rnn_gradients(const std::vector<PackBlock>& plan, const float* d_weight_space,
                          float* dkernel, float* drecurrent_kernel, float* dbias, cudaStream_t stream);
// dst (N, T, C) = src with each sample's first lengths[n] steps reversed (padding steps stay put);
// lengths is a device array of N int32. src and dst must differ.
void reverse_valid_steps(const float* src, float* dst, const int32_t* lengths, int64_t N, int64_t T, int64_t C,
                         cudaStream_t stream);

}  // namespace keras::backend::cuda_kernels
