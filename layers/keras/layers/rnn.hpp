// What SimpleRNN, LSTM and GRU share: weights in Keras's layout, input dropout, the loop over time
// delegated to the backend (a fused library primitive where it can, a step loop where it cannot).
#pragma once

#include <string>

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

    VariablePtr kernel_, recurrent_kernel_, bias_;
};

}  // namespace keras::layers
