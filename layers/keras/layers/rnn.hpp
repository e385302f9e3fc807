// What SimpleRNN, LSTM and GRU share: weights in Keras's layout, input dropout, the loop over time
// delegated to the backend (a fused library primitive where it can, a step loop where it cannot).
#pragma once

#include <string>
#include <vector>

#include "keras/backend.hpp"
#include "keras/layer.hpp"
#include "keras/layers/masked_steps.hpp"

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
    bool zero_output_for_mask = false;   // masked steps output zeros rather than the previous output
};

class RNNBase : public Layer {
public:
    Shape compute_output_shape(const Shape& input_shape) const override;
    Tensor call(const Tensor& x, CallContext& ctx) override;
    Tensor backward(const Tensor& dy, CallContext& ctx) override;
    // Keras: the output keeps the input's mask with return_sequences, and has none otherwise.
    Tensor compute_mask(const Tensor& x, const Tensor& mask) const override;
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
    // The batch size a stateful layer was fixed to by its first call, or -1 before that.
    int64_t stateful_batch_size() const { return stateful_batch_size_; }
    // Bidirectional sets it on its two layers to return_sequences, as Keras does.
    void set_zero_output_for_mask(bool zero) { common_.zero_output_for_mask = zero; }

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
    // Stateful layers keep the call's final states (copies) for the next batch.
    void keep_states(const backend::RnnForward& fwd);

    // Masked calls (a mask with some step masked): the real steps packed to the front, run with
    // per-sample lengths, the outputs spread back by Keras's rules (masked_steps.hpp).
    // masked_steps_of checks the mask's shape against x (ValueError naming the layer).
    MaskedSteps masked_steps_of(const Tensor& x, const Tensor& mask) const;
    Tensor call_masked(const Tensor& input, const Tensor& dropout, MaskedSteps steps, CallContext& ctx);
    Tensor backward_masked(const Tensor& dy, CallContext& ctx);

    VariablePtr kernel_, recurrent_kernel_, bias_;
    Tensor state_h_, state_c_;          // stateful: the last batch's final states
    int64_t stateful_batch_size_ = -1;
};

}  // namespace keras::layers
