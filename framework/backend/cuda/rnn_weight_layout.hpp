// Where each Keras RNN weight goes in cuDNN's weight space, as plain host data (no CUDA headers,
// so the mapping is built and unit-tested on every machine, GPU or not).
//
// cuDNN 9 (cudnnGetRNNWeightParams) hands out one matrix and one bias vector per linLayerID:
//   SIMPLE RNN  0 = W (input), 1 = R (recurrent)
//   LSTM        0-3 = W(i, f, g, o), 4-7 = R(i, f, g, o)       Keras order i, f, c, o: the same
//   GRU         0-2 = W(r, z, h),    3-5 = R(r, z, h)          Keras order z, r, h: r and z swap
// Each matrix is row-major [H][in], the TRANSPOSE of the Keras gate slice kernel[:, g*H:(g+1)*H].
// cuDNN has two biases per gate (DOUBLE_BIAS, added together) where Keras has one, except GRU
// reset_after=True whose (2, 3H) bias is exactly cuDNN's pair (row 0 input, row 1 recurrent).
// A Keras single bias goes into the input (W) slot and the recurrent (R) slot holds zeros; its
// gradient is read back from the W slot.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "keras/backend.hpp"

namespace keras::backend::cudnn_layout {

// Which Keras array a block of cuDNN's weight space is copied from (Zero: filled with zeros).
enum class Source { kernel, recurrent_kernel, bias, zero };

// One block of cuDNN's weight space: `rows` x `cols` floats at `dst_offset` (floats from the start
// of the weight space), row-major. Element (r, c) comes from the Keras array `source` at flat index
//   c * src_ld + src_col + r
// i.e. Keras row c (an input feature / previous unit), column src_col + r (gate block + unit).
// Bias blocks have cols = 1.
struct Block {
    int lin_layer_id = 0;
    bool is_bias = false;
    Source source = Source::zero;
    int64_t dst_offset = 0;
    int64_t rows = 0, cols = 0;
    int64_t src_col = 0, src_ld = 0;
};

// cuDNN's gate blocks per direction and layer: 1, 4 (LSTM) or 3 (GRU); linLayerIDs run 0..2G-1.
int gate_count(RnnCell cell);

// The Keras gate block (column block g of kernel / recurrent_kernel / bias) that cuDNN's
// linLayerID `id` holds, and whether it is the recurrent (R) half.
struct KerasGate {
    int gate = 0;
    bool recurrent = false;
};
KerasGate keras_gate_of(RnnCell cell, int lin_layer_id);

// Offsets (in floats from the weight space start) cuDNN reported for one linLayerID.
struct CudnnOffsets {
    int64_t matrix = 0, bias = 0;
};

// The full copy plan for one layer: 2G matrix blocks then 2G bias blocks. `offsets[id]` are the
// offsets cudnnGetRNNWeightParams gave for linLayerID id (size 2G). GRU must be reset_after.
std::vector<Block> pack_plan(const RnnSpec& spec, int64_t input_size, const std::vector<CudnnOffsets>& offsets);

// Total floats the plan covers when blocks are laid out back to back (used by tests and as a
// sanity check against cudnnGetRNNWeightSpaceSize).
int64_t packed_size(const std::vector<Block>& plan);

// Host versions of the copies (the GPU kernels use the same index formula, rnn_index.hpp):
// Keras weights -> cuDNN weight space, and cuDNN weight-space gradients -> Keras gradients.
// bias may be null when the spec has no bias; dbias is written only for blocks reading the bias.
void pack_on_host(const std::vector<Block>& plan, const float* kernel, const float* recurrent_kernel,
                  const float* bias, float* weight_space);
void unpack_on_host(const std::vector<Block>& plan, const float* d_weight_space, float* dkernel,
                    float* drecurrent_kernel, float* dbias);

// Why cuDNN cannot run this spec (empty when it can): cuDNN has only tanh / relu for plain RNNs,
// fixed sigmoid/tanh gates for LSTM and GRU, and GRU only in the reset_after=True form.
std::string unsupported_reason(const RnnSpec& spec);

}  // namespace keras::backend::cudnn_layout
