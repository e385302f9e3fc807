#pragma once

#include "keras/export.hpp"

#include "keras/layers/rnn.hpp"

namespace keras::layers {

// LSTM's keyword arguments, in Keras's order.
struct KERAS_API LSTMOptions {
    std::string activation = recurrent_defaults::activation;
    std::string recurrent_activation = recurrent_defaults::recurrent_activation;
    bool use_bias = true;
    std::string kernel_initializer = recurrent_defaults::kernel_initializer;
    std::string recurrent_initializer = recurrent_defaults::recurrent_initializer;
    std::string bias_initializer = recurrent_defaults::bias_initializer;
    std::optional<regularizers::Regularizer> kernel_regularizer{}, recurrent_regularizer{}, bias_regularizer{};
    std::optional<constraints::Constraint> kernel_constraint{}, recurrent_constraint{}, bias_constraint{};
    bool unit_forget_bias = true;   // forget-gate bias starts at 1
    float dropout = 0.0f;
    // Keras's recurrent dropout: drops h_{t-1} before the recurrent products while training (one
    // mask per sequence and gate); forces the step loop while training (docs/recurrent.md).
    float recurrent_dropout = 0.0f;
    bool return_sequences = false;
    // Also return the final states: outputs [output, h] ([output, h, c] for LSTM); call the layer with
    // call_all(x) / call_all(x, initial_state) in the functional API.
    bool return_state = false;
    bool go_backwards = false;
    // Keep each sample's final states as the next batch's initial states (sample i of batch b+1
    // continues sample i of batch b); the batch size is then fixed. reset_states() zeroes them.
    bool stateful = false;
    // With a mask and return_sequences: zeros at masked steps instead of the previous output.
    bool zero_output_for_mask = false;
    std::string name = {};   // empty: an automatic unique name
    bool trainable = true;   // false: the layer's weights are frozen (Keras's trainable=False)
    // Keras's dtype: a policy name ("float32", "mixed_bfloat16"); empty = the global policy
    // (keras::mixed_precision::global_policy()) when the layer is made.
    std::string dtype{};
    static const FieldTable<LSTMOptions>& fields();
};
// LSTM's Keras config: its cell's arguments, then the sequence's; units is the constructor's.
inline const FieldTable<LSTMOptions>& LSTMOptions::fields() {
    using O = LSTMOptions;
    static const auto table = FieldTable<O>().with(lstm_cell_fields<O>).with(recurrent_sequence_fields<O>)
        .fixed("seed", "null", true, false);   // Keras 3 writes it for LSTM and GRU; ignored when loading
    return table;
}

// Long Short-Term Memory (Hochreiter 1997); gates in Keras's order i, f, c, o.
class KERAS_API LSTM : public RNNBase {
public:
    explicit LSTM(int64_t units, LSTMOptions options = {});
    nlohmann::json get_config() const override;
    // The cell it runs over the sequence: its options and weights (Keras's LSTM.cell).
    const LSTMCell& cell() const;
};

}  // namespace keras::layers
