// Step-level recurrent cells, as Keras's SimpleRNNCell / LSTMCell / GRUCell: one time step at a time,
// with the same weights (kernel, recurrent_kernel, bias, in Keras's layout and gate order) as the
// SimpleRNN / LSTM / GRU layers, so a loop of cell steps over a sequence gives the layer's numbers.
//
//     keras::layers::LSTMCell cell(8);
//     std::vector<Tensor> states = cell.get_initial_state(batch);   // {h, c} zeros
//     for (t ...) { auto [h, new_states] = cell(x_t, states); states = new_states; }
//
// A step runs through the backend's RNN entry point with one time step (no library code in layers),
// so it also has a backward pass: step() with a CallContext, then step_backward() in reverse order.
#pragma once

#include "keras/export.hpp"

#include <string>
#include <vector>

#include "keras/backend_types.hpp"
#include "keras/layer.hpp"

namespace keras::layers {

// What a step returns: the output (N, units) and the new states ({h} or {h, c} for LSTM).
struct KERAS_API CellOutput {
    Tensor output;
    std::vector<Tensor> states;
};

// The gradients a step's backward returns: w.r.t. x_t (N, input_dim) and the incoming states.
struct KERAS_API CellGradients {
    Tensor dx;
    std::vector<Tensor> dstates;
};

class KERAS_API RNNCell : public Layer {
public:
    // Keras's cell.units and cell.state_size ({units}, or {units, units} for LSTMCell).
    int64_t units() const { return spec_.units; }
    std::vector<int64_t> state_size() const;
    // Zero states for a batch of batch_size samples (Keras's get_initial_state).
    std::vector<Tensor> get_initial_state(int64_t batch_size, Device device = Device::cpu()) const;

    // One step: x (N, input_dim), states as state_size() says, each (N, units). Inference only.
    CellOutput operator()(const Tensor& x, const std::vector<Tensor>& states);
    // One step that keeps in ctx what step_backward() needs (ctx.training selects training mode).
    CellOutput step(const Tensor& x, const std::vector<Tensor>& states, CallContext& ctx);
    // d_output (N, units) or undefined; d_states: one per state, each (N, units) or undefined, or
    // empty. Adds the weight gradients into each Variable::grad.
    CellGradients step_backward(const Tensor& d_output, const std::vector<Tensor>& d_states, CallContext& ctx);

    // Layer interface: a step from zero states (x (N, input_dim) -> (N, units)).
    Shape compute_output_shape(const Shape& input_shape) const override;
    Tensor call(const Tensor& x, CallContext& ctx) override;
    Tensor backward(const Tensor& dy, CallContext& ctx) override;
    nlohmann::json get_config() const override;

    const backend::RnnSpec& spec() const { return spec_; }

protected:
    struct Initializers {
        std::string kernel, recurrent, bias;
    };
    RNNCell(const std::string& class_name, const std::string& name, backend::RnnSpec spec, Initializers init);
    void check_input_shape(const Shape& input_shape) const override;
    void build(const Shape& input_shape) override;
    virtual Shape bias_shape() const;
    virtual void init_bias(Tensor& bias) const { (void)bias; }
    int gates() const;

    backend::RnnSpec spec_;
    Initializers init_;

private:
    void check_states(const Tensor& x, const std::vector<Tensor>& states) const;
    backend::RnnWeights weights_view() const;
    VariablePtr kernel_, recurrent_kernel_, bias_;
};

struct KERAS_API SimpleRNNCellOptions {
    std::string activation = "tanh";
    bool use_bias = true;
    std::string kernel_initializer = "glorot_uniform";
    std::string recurrent_initializer = "orthogonal";
    std::string bias_initializer = "zeros";
    std::string name = {};   // empty: an automatic unique name
};
// h_t = activation(x_t W + h_{t-1} U + b); output = new state = h_t.
class KERAS_API SimpleRNNCell : public RNNCell {
public:
    explicit SimpleRNNCell(int64_t units, SimpleRNNCellOptions options = {});
};

struct KERAS_API LSTMCellOptions {
    std::string activation = "tanh";
    std::string recurrent_activation = "sigmoid";
    bool use_bias = true;
    std::string kernel_initializer = "glorot_uniform";
    std::string recurrent_initializer = "orthogonal";
    std::string bias_initializer = "zeros";
    bool unit_forget_bias = true;   // forget-gate bias starts at 1
    std::string name = {};
};
// Gates i, f, c, o (Keras's order); states {h, c}; output = h.
class KERAS_API LSTMCell : public RNNCell {
public:
    explicit LSTMCell(int64_t units, LSTMCellOptions options = {});
    nlohmann::json get_config() const override;
    bool unit_forget_bias;

protected:
    void init_bias(Tensor& bias) const override;
};

struct KERAS_API GRUCellOptions {
    std::string activation = "tanh";
    std::string recurrent_activation = "sigmoid";
    bool use_bias = true;
    std::string kernel_initializer = "glorot_uniform";
    std::string recurrent_initializer = "orthogonal";
    std::string bias_initializer = "zeros";
    bool reset_after = true;   // bias (2, 3 * units) as the GRU layer's
    std::string name = {};
};
// Gates z, r, h (Keras's order); states {h}; output = h.
class KERAS_API GRUCell : public RNNCell {
public:
    explicit GRUCell(int64_t units, GRUCellOptions options = {});
    nlohmann::json get_config() const override;

protected:
    Shape bias_shape() const override;
};

}  // namespace keras::layers
