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
//
// A built-in cell (LSTMCell, GRUCell, SimpleRNNCell) runs as the LSTM / GRU / SimpleRNN layer over it
// does, on the backend's fused primitive where it can:
//
//     auto rnn = layers::RNN(std::make_shared<layers::LSTMCell>(64), {.return_sequences = true});
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "keras/export.hpp"
#include "keras/layer.hpp"
#include "keras/layers/fields.hpp"

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

// RNN's keyword arguments besides the cell.
struct KERAS_API RNNOptions {
    bool return_sequences = false;
    bool return_state = false;     // outputs [output, state_0, state_1, ...]
    bool go_backwards = false;
    bool stateful = false;
    bool unroll = false;           // accepted for Keras compatibility: the step loop is the same either way
    bool zero_output_for_mask = false;
    std::string name = {};
    bool trainable = true;   // false: the layer's weights are frozen (Keras's trainable=False)
    static const FieldTable<RNNOptions>& fields() {
        using O = RNNOptions;
        static const auto table = FieldTable<O>()
            .boolean("return_sequences", &O::return_sequences)
            .boolean("return_state", &O::return_state)
            .boolean("go_backwards", &O::go_backwards)
            .boolean("stateful", &O::stateful)
            .boolean("unroll", &O::unroll)
            .boolean("zero_output_for_mask", &O::zero_output_for_mask)
            .fixed("time_major", "false", false, true);   // Keras 2's; only false loads
        return table;
    }
};

class RNNCell;   // rnn_cells.hpp: the built-in cells
class RNNBase;   // rnn.hpp: the recurrent layer a built-in cell runs in

// Keras's RNN(cell): runs any cell (yours or a built-in one) over the time steps.
class KERAS_API RNN : public Layer {
public:
    explicit RNN(std::shared_ptr<AbstractRNNCell> cell, RNNOptions options = {});
    // A built-in cell: the call runs as LSTM / GRU / SimpleRNN over it do (summary() shows the path).
    explicit RNN(std::shared_ptr<RNNCell> cell, RNNOptions options = {});

    // The cell, either kind; cell() is the ops-written one (null for a built-in cell).
    const LayerPtr& cell_layer() const { return cell_layer_; }
    const std::shared_ptr<AbstractRNNCell>& cell() const { return cell_; }
    const RNNOptions& options() const { return options_; }

    Shape compute_output_shape(const Shape& input_shape) const override;
    std::vector<Shape> compute_output_shapes(const Shape& input_shape) const override;
    int output_count() const override { return options_.return_state ? 1 + static_cast<int>(state_sizes().size()) : 1; }
    Tensor compute_mask(const Tensor& x, const Tensor& mask) const override;
    void check_initial_state(const Shape& input_shape, const std::vector<Shape>& states) const override;

    Tensor call(const Tensor& x, CallContext& ctx) override;
    Tensor backward(const Tensor& dy, CallContext& ctx) override;
    std::vector<Tensor> call_outputs(const Tensor& x, const std::vector<Tensor>& initial_state, CallContext& ctx) override;
    std::vector<Tensor> backward_outputs(const std::vector<Tensor>& dys, CallContext& ctx) override;
    void check_symbolic_input(const Shape& input_shape) const override;
    nlohmann::json get_config() const override;
    std::vector<std::pair<std::string, LayerPtr>> nested_layers() const override { return {{"cell", cell_layer_}}; }
    std::string implementation_note() const override;

    // Stateful layers: forgets the kept states (zeros next call).
    void reset_states() override;
    bool stateful() const override { return options_.stateful; }
    // The kept states, one per state_size entry; empty before the first call or after reset_states().
    std::vector<Tensor> states() const;

protected:
    void check_input_shape(const Shape& input_shape) const override;
    void build(const Shape& input_shape) override;

private:
    // The loop: outputs {output, final states...} for x (batch, steps, features).
    std::vector<Tensor> run(const Tensor& x, const std::vector<Tensor>& initial_state, const Tensor& mask, bool training);
    // Sizes of the cell's states, either kind of cell.
    std::vector<int64_t> state_sizes() const;

    LayerPtr cell_layer_;
    std::shared_ptr<AbstractRNNCell> cell_;   // an ops-written cell, run by run() (null for a built-in one)
    std::shared_ptr<RNNBase> fused_;          // a built-in cell's recurrent layer, which runs every call
    RNNOptions options_;
    std::vector<Tensor> states_;   // stateful: the last call's final states (no history)
};

}  // namespace keras::layers
