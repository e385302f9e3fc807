// Keras's RNN(cell): runs any cell over the time axis. A cell written with ops (a subclass of
// AbstractRNNCell) needs only its step; the loop, masks, go_backwards, return_sequences,
// return_state, initial_state and stateful are the layer's, and the backward pass is automatic.
//
//     class MinimalRNNCell : public layers::AbstractRNNCell {
//         ...
//         std::vector<int64_t> state_size() const override { return {units}; }
//         void build(const Shape& input_shape) override { kernel = add_weight("kernel", {input_shape.back(), units}, "glorot_uniform"); ... }
//         StepOutput step(const Tensor& x, const std::vector<Tensor>& states, bool training) override {
//             Tensor h = ops::tanh(ops::add(ops::matmul(x, kernel), ops::matmul(states[0], recurrent_kernel)));
//             return {h, {h}};
//         }
//     };
//     auto rnn = layers::RNN(std::make_shared<MinimalRNNCell>(32), {.return_sequences = true});
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "keras/export.hpp"
#include "keras/layer.hpp"

namespace keras::layers {

// One step's result: the output (batch, output_size) and the new states, one per state_size entry.
struct KERAS_API StepOutput {
    Tensor output;
    std::vector<Tensor> states;
};

// A recurrent cell written with ops (Keras 2's AbstractRNNCell; in Keras 3 any layer with
// state_size and call(inputs, states)). build() receives the step's input shape (batch, features).
class KERAS_API AbstractRNNCell : public Layer {
public:
    // Sizes of the states the cell carries, e.g. {units} or {units, units} for an LSTM-like cell.
    virtual std::vector<int64_t> state_size() const = 0;
    // Size of the step's output; default: the first state's.
    virtual int64_t output_size() const { return state_size().at(0); }
    // One step: x (batch, features), states each (batch, state_size[i]).
    virtual StepOutput step(const Tensor& x, const std::vector<Tensor>& states, bool training) = 0;
    // Zero states for a batch (Keras's get_initial_state).
    virtual std::vector<Tensor> get_initial_state(int64_t batch_size, Device device = Device::cpu()) const;

    Shape compute_output_shape(const Shape& input_shape) const override { return {input_shape.at(0), output_size()}; }

protected:
    AbstractRNNCell(std::string class_name, const std::string& name) : Layer(std::move(class_name), name) {}
};

struct KERAS_API RNNOptions {
    bool return_sequences = false;
    bool return_state = false;     // outputs [output, state_0, state_1, ...]
    bool go_backwards = false;
    bool stateful = false;
    bool unroll = false;           // accepted for Keras compatibility: the step loop is the same either way
    bool zero_output_for_mask = false;
    std::string name = {};
};

class KERAS_API RNN : public Layer {
public:
    explicit RNN(std::shared_ptr<AbstractRNNCell> cell, RNNOptions options = {});

    const std::shared_ptr<AbstractRNNCell>& cell() const { return cell_; }
    const RNNOptions& options() const { return options_; }

    Shape compute_output_shape(const Shape& input_shape) const override;
    std::vector<Shape> compute_output_shapes(const Shape& input_shape) const override;
    int output_count() const override { return options_.return_state ? 1 + static_cast<int>(cell_->state_size().size()) : 1; }
    Tensor compute_mask(const Tensor& x, const Tensor& mask) const override;
    void check_initial_state(const Shape& input_shape, const std::vector<Shape>& states) const override;

    Tensor call(const Tensor& x, CallContext& ctx) override;
    std::vector<Tensor> call_outputs(const Tensor& x, const std::vector<Tensor>& initial_state, CallContext& ctx) override;
    std::vector<Tensor> backward_outputs(const std::vector<Tensor>& dys, CallContext& ctx) override {
        return recorded_backward(dys, ctx);
    }
    nlohmann::json get_config() const override;
    std::vector<std::pair<std::string, LayerPtr>> nested_layers() const override { return {{"cell", cell_}}; }
    std::string implementation_note() const override { return "step loop over " + cell_->class_name() + " (autodiff)"; }

    // Stateful layers: forgets the kept states (zeros next call).
    void reset_states() { states_.clear(); }
    const std::vector<Tensor>& states() const { return states_; }

protected:
    void check_input_shape(const Shape& input_shape) const override;
    void build(const Shape& input_shape) override;

private:
    // The loop: outputs {output, final states...} for x (batch, steps, features).
    std::vector<Tensor> run(const Tensor& x, const std::vector<Tensor>& initial_state, const Tensor& mask, bool training);

    std::shared_ptr<AbstractRNNCell> cell_;
    RNNOptions options_;
    std::vector<Tensor> states_;   // stateful: the last call's final states (no history)
};

}  // namespace keras::layers
