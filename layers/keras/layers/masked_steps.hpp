// How a masked RNN runs exactly on a backend without masks: from the (batch, steps) mask, host
// index tables that pack each sample's real steps to the front (in processing order) and spread
// the packed outputs back to Keras's output steps. Shared by the recurrent layers and their tests.
#pragma once

#include <cstdint>
#include <vector>

#include "keras/tensor.hpp"

namespace keras::layers {

// Keras's masked RNN (keras/src/backend/tensorflow/rnn.py): a masked step leaves the states as they
// are; its output is the previous step's output (zeros before the first real step), or zeros with
// zero_output_for_mask; go_backwards reverses the inputs and the mask together and returns the
// outputs in processing order. Run as: the RNN over packed[n, k] = x[n, pack_idx[n, k]] with
// lengths[n] real steps (right-packed), then output[n, s] = packed_output[n, out_idx[n, s]].
struct MaskedSteps {
    int64_t batch = 0, steps = 0;
    std::vector<int32_t> lengths;    // (batch): real steps per sample
    std::vector<int32_t> pack_idx;   // (batch, steps): the input step of packed step k; -1 for k >= length
    std::vector<int32_t> out_idx;    // (batch, steps): the packed step output step s shows; -1 = zeros
    bool all_real = true;            // no step masked: the same as no mask at all

    // The tables' entries for the last output step only (batch, 1): what return_sequences=false returns.
    std::vector<int32_t> last_out_idx() const;
};

// mask (batch, steps) on the host, nonzero = real step.
MaskedSteps masked_steps(const Tensor& mask, bool go_backwards, bool zero_output_for_mask);

}  // namespace keras::layers
