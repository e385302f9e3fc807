// What SimpleRNN, LSTM and GRU share: weights in Keras's layout, input dropout, the loop over time
// delegated to the backend (a fused library primitive where it can, a step loop where it cannot).
#pragma once

#include <string>
#include <vector>

#include "keras/backend.hpp"
#include "keras/layer.hpp"

namespace keras::layers {

// The recurrent arguments every Keras RNN layer takes.
struct RecurrentCommon {
    bool use_bias = true;
    std::string kernel_initializer = "glorot_uniform";
    std::string recurrent_initializer = "orthogonal";
    std::string bias_initializer = "zeros";
    float dropout = 0.0f;             // input dropout: one mask per sequence, shared by all steps
    bool return_sequences = false;
    bool go_backwards = false;
    bool stateful = false;
};

class RNNBase : public Layer {
public:
    Shape compute_output_shape(const Shape& input_shape) const override;
    Tensor call(const Tensor& x, CallContext& ctx) override;
    Tensor backward(const Tensor& dy, CallContext& ctx) override;
    nlohmann::json get_config() const override;
    std::string implementation_note() const override;

    int64_t units() const { return spec_.units; }
    const backend::RnnSpec& spec() const { return spec_; }
    const RecurrentCommon& common() const { return common_; }

    // Stateful layers: zeroes the kept states (Keras's reset_states()); the batch size stays fixed.
    void reset_states();
    // The kept states ({h} or {h, c}, each (batch, units)); empty before the first call or after
    // reset_states(), meaning zeros. Always empty when the layer is not stateful.
    std::vector<Tensor> states() const;
    // The batch size a stateful layer is fixed to: the input's fixed batch size when it was built for
    // one (keras::Input(..., {.batch_size = 4})), else its first call's; -1 before either.
    int64_t stateful_batch_size() const { return stateful_batch_size_; }
    // Keras 3: a stateful RNN called on a symbolic input needs a fixed batch size.
    void check_symbolic_input(const Shape& input_shape) const override;

protected:
    RNNBase(const std::string& class_name, const std::string& name, backend::RnnSpec spec,
            RecurrentCommon common);
    void check_input_shape(const Shape& input_shape) const override;
    void build(const Shape& input_shape) override;
    // Bias shape and initial value differ by cell (LSTM unit_forget_bias, GRU reset_after).
    virtual Shape bias_shape() const;
    virtual void init_bias(Tensor& bias) const { (void)bias; }
    int gates() const;
    backend::RnnWeights weights_view() const;

    backend::RnnSpec spec_;
    RecurrentCommon common_;

private:
    // Keras's input dropout mask for x (N, T, C): one (N, C) draw repeated over time, kept entries
    // scaled by 1 / (1 - rate).
    Tensor dropout_mask(const Tensor& x) const;

    // The stateful layer's initial states for a batch: the kept ones (undefined = zeros), after
    // checking the batch size.
    void check_stateful_batch(const Tensor& x);

    VariablePtr kernel_, recurrent_kernel_, bias_;
    Tensor state_h_, state_c_;          // stateful: the last batch's final states
    int64_t stateful_batch_size_ = -1;
    bool batch_size_from_input_ = false;   // fixed by build() (the input's batch size), not by a call
};

}  // namespace keras::layers
