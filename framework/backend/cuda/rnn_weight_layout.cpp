// The Keras <-> cuDNN weight mapping described in rnn_weight_layout.hpp.
#include "rnn_weight_layout.hpp"

#include <fmt/format.h>

#include "keras/errors.hpp"
#include "rnn_index.hpp"

namespace keras::backend::cudnn_layout {

int gate_count(RnnCell cell) {
    switch (cell) {
        case RnnCell::simple_rnn: return 1;
        case RnnCell::lstm: return 4;
        case RnnCell::gru: return 3;
    }
    runtime_error("unknown RNN cell");
}

KerasGate keras_gate_of(RnnCell cell, int lin_layer_id) {
    const int G = gate_count(cell);
    if (lin_layer_id < 0 || lin_layer_id >= 2 * G)
        runtime_error("cuDNN linLayerID {} out of range [0, {}) for this cell", lin_layer_id, 2 * G);
    const bool recurrent = lin_layer_id >= G;
    int gate = lin_layer_id % G;
    // cuDNN's GRU blocks are (r, z, h); Keras's are (z, r, h).
    if (cell == RnnCell::gru && gate < 2) gate = 1 - gate;
    return {.gate = gate, .recurrent = recurrent};
}

namespace {

Block matrix_block(const RnnSpec& spec, int64_t input_size, int id, const CudnnOffsets& off) {
    const int G = gate_count(spec.cell);
    const KerasGate k = keras_gate_of(spec.cell, id);
    return Block{.lin_layer_id = id,
                 .is_bias = false,
                 .source = k.recurrent ? Source::recurrent_kernel : Source::kernel,
                 .dst_offset = off.matrix,
                 .rows = spec.units,
                 .cols = k.recurrent ? spec.units : input_size,
                 .src_col = k.gate * spec.units,
                 .src_ld = G * spec.units};
}

Block bias_block(const RnnSpec& spec, int id, const CudnnOffsets& off) {
    const int G = gate_count(spec.cell);
    const KerasGate k = keras_gate_of(spec.cell, id);
    Block b{.lin_layer_id = id, .is_bias = true, .source = Source::zero, .dst_offset = off.bias,
            .rows = spec.units, .cols = 1, .src_col = 0, .src_ld = 0};
    if (!spec.use_bias) return b;
    const bool two_rows = spec.cell == RnnCell::gru;   // reset_after: (2, 3H), row 1 = recurrent bias
    if (k.recurrent && !two_rows) return b;             // single Keras bias: the R slot stays zero
    b.source = Source::bias;
    b.src_col = (k.recurrent ? G * spec.units : 0) + k.gate * spec.units;
    return b;
}

}  // namespace

std::vector<Block> pack_plan(const RnnSpec& spec, int64_t input_size, const std::vector<CudnnOffsets>& offsets) {
    const int G = gate_count(spec.cell);
    if (spec.cell == RnnCell::gru && !spec.reset_after)
        runtime_error("Layer \"{}\": cuDNN has no GRU with reset_after=False", spec.layer_name);
    if (static_cast<int>(offsets.size()) != 2 * G)
        runtime_error("cuDNN weight offsets: expected {} linLayerIDs, got {}", 2 * G, offsets.size());
    std::vector<Block> plan;
    for (int id = 0; id < 2 * G; ++id) plan.push_back(matrix_block(spec, input_size, id, offsets[id]));
    for (int id = 0; id < 2 * G; ++id) plan.push_back(bias_block(spec, id, offsets[id]));
    return plan;
}

int64_t packed_size(const std::vector<Block>& plan) {
    int64_t n = 0;
    for (const Block& b : plan) n += b.rows * b.cols;
    return n;
}

namespace {
const float* source_ptr(Source s, const float* kernel, const float* recurrent_kernel, const float* bias) {
    switch (s) {
        case Source::kernel: return kernel;
        case Source::recurrent_kernel: return recurrent_kernel;
        case Source::bias: return bias;
        case Source::zero: return nullptr;
    }
    return nullptr;
}
}  // namespace

void pack_on_host(const std::vector<Block>& plan, const float* kernel, const float* recurrent_kernel,
                  const float* bias, float* weight_space) {
    for (const Block& b : plan) {
        const float* src = source_ptr(b.source, kernel, recurrent_kernel, bias);
        float* dst = weight_space + b.dst_offset;
        for (int64_t e = 0; e < b.rows * b.cols; ++e)
            dst[e] = src ? src[rnn_index::keras_index(e, b.cols, b.src_col, b.src_ld)] : 0.0f;
    }
}

void unpack_on_host(const std::vector<Block>& plan, const float* d_weight_space, float* dkernel,
                    float* drecurrent_kernel, float* dbias) {
    for (const Block& b : plan) {
        float* dst = const_cast<float*>(source_ptr(b.source, dkernel, drecurrent_kernel, dbias));
        if (!dst) continue;   // a zero slot: its gradient belongs to no Keras weight
        const float* src = d_weight_space + b.dst_offset;
        for (int64_t e = 0; e < b.rows * b.cols; ++e) dst[rnn_index::keras_index(e, b.cols, b.src_col, b.src_ld)] = src[e];
    }
}

std::string unsupported_reason(const RnnSpec& spec) {
    if (spec.cell == RnnCell::simple_rnn) {
        if (spec.activation != Activation::tanh && spec.activation != Activation::relu)
            return fmt::format("activation='{}' is not supported by cuDNN's RNN (tanh, relu)",
                               to_string(spec.activation));
        return {};
    }
    const char* cell = spec.cell == RnnCell::lstm ? "LSTM" : "GRU";
    if (spec.activation != Activation::tanh)
        return fmt::format("activation='{}' is not supported by cuDNN's {} (tanh only)", to_string(spec.activation),
                           cell);
    if (spec.recurrent_activation != Activation::sigmoid)
        return fmt::format("recurrent_activation='{}' is not supported by cuDNN's {} (sigmoid only)",
                           to_string(spec.recurrent_activation), cell);
    if (spec.cell == RnnCell::gru && !spec.reset_after)
        return "reset_after=False is not supported by cuDNN's GRU (it computes the reset_after=True form)";
    return {};
}

}  // namespace keras::backend::cudnn_layout
