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

#include <optional>
#include <string>
#include <vector>

#include "keras/backend_types.hpp"
#include "keras/layer.hpp"
#include "keras/layers/fields.hpp"

namespace keras::layers {

// Keras's defaults of the recurrent cells' and layers' arguments, spelled once for the options structs
// of SimpleRNN, LSTM, GRU and their cells (and the loader, which takes a struct's defaults).
namespace recurrent_defaults {
// The output activation.
inline constexpr const char* activation = "tanh";
// The gates' activation (LSTM, GRU).
inline constexpr const char* recurrent_activation = "sigmoid";
// The input weights' initializer.
inline constexpr const char* kernel_initializer = "glorot_uniform";
// The recurrent weights' initializer.
inline constexpr const char* recurrent_initializer = "orthogonal";
// The bias' initializer.
inline constexpr const char* bias_initializer = "zeros";
}  // namespace recurrent_defaults

// The Keras config fields of every recurrent cell, shared by the cells' and the layers' tables (an
// LSTM's config holds its cell's arguments, as Keras's does), for any options struct with these members.
template <typename O>
void recurrent_cell_fields(FieldTable<O>& t) {
    t.activation("activation", &O::activation)
        .boolean("use_bias", &O::use_bias)
        .initializer("kernel_initializer", &O::kernel_initializer)
        .initializer("recurrent_initializer", &O::recurrent_initializer)
        .initializer("bias_initializer", &O::bias_initializer)
        .regularizer("kernel_regularizer", &O::kernel_regularizer)
        .regularizer("recurrent_regularizer", &O::recurrent_regularizer)
        .regularizer("bias_regularizer", &O::bias_regularizer)
        .constraint("kernel_constraint", &O::kernel_constraint)
        .constraint("recurrent_constraint", &O::recurrent_constraint)
        .constraint("bias_constraint", &O::bias_constraint);
}
// LSTMCell's fields: the common ones, then recurrent_activation and unit_forget_bias.
template <typename O>
void lstm_cell_fields(FieldTable<O>& t) {
    t.with(recurrent_cell_fields<O>)
        .activation("recurrent_activation", &O::recurrent_activation)
        .boolean("unit_forget_bias", &O::unit_forget_bias);
}
template <typename O>
void gru_cell_fields(FieldTable<O>& t) {
    t.with(recurrent_cell_fields<O>)
        .activation("recurrent_activation", &O::recurrent_activation)
        // Keras before 2.3 had no reset_after and computed the original GRU: an absent key is false.
        .boolean("reset_after", &O::reset_after, "false");
}
// What only a cell's config has: Keras 3's seed (ignored when loading), and the dropout arguments,
// which kerascpp's cells keep at 0 (the layers take them).
template <typename O>
void cell_only_fields(FieldTable<O>& t) {
    t.fixed("seed", "null", true, false).fixed("dropout", "0.0").fixed("recurrent_dropout", "0.0");
}

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

// A built-in cell (SimpleRNNCell, LSTMCell, GRUCell): one time step, forward and backward.
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
    // The Layer's keys and units; each cell adds its options' fields.
    nlohmann::json get_config() const override;

    // ---- What a recurrent layer (SimpleRNN / LSTM / GRU, RNNBase) uses of the cell it holds: the cell
    // validates its options and creates the weights (build_for({-1, features})); the layer runs the whole
    // sequence through the backend's fused entry point with the cell's spec and weights, and hands the
    // weight gradients back.
    const backend::RnnSpec& spec() const { return spec_; }
    // kernel (features, gates * units), recurrent_kernel (units, gates * units), bias (or undefined).
    backend::RnnWeights weights_view() const;
    // Adds a backward pass's weight gradients (shaped as weights_view()) into each Variable::grad.
    void add_weight_gradients(const backend::RnnWeights& gradients);
    // 1 (SimpleRNNCell), 4 (LSTMCell: i, f, c, o) or 3 (GRUCell: z, r, h).
    int gates() const;
    // A copy of this cell (sharing its weights once built): a copied layer holds its own cell.
    virtual std::shared_ptr<RNNCell> clone() const = 0;

protected:
    // The weights' initializers, regularizers and constraints (kernel, recurrent_kernel, bias).
    struct Initializers {
        std::string kernel, recurrent, bias;
        std::optional<regularizers::Regularizer> kernel_regularizer{}, recurrent_regularizer{}, bias_regularizer{};
        std::optional<constraints::Constraint> kernel_constraint{}, recurrent_constraint{}, bias_constraint{};
    };
    RNNCell(const std::string& class_name, const std::string& name, backend::RnnSpec spec, Initializers init);
    void check_input_shape(const Shape& input_shape) const override;
    void build(const Shape& input_shape) override;
    virtual Shape bias_shape() const;
    virtual void init_bias(Tensor& bias) const { (void)bias; }

    backend::RnnSpec spec_;
    Initializers init_;

private:
    void check_states(const Tensor& x, const std::vector<Tensor>& states) const;
    VariablePtr kernel_, recurrent_kernel_, bias_;
};

// SimpleRNNCell's keyword arguments, in Keras's order.
struct KERAS_API SimpleRNNCellOptions {
    std::string activation = recurrent_defaults::activation;
    bool use_bias = true;
    std::string kernel_initializer = recurrent_defaults::kernel_initializer;
    std::string recurrent_initializer = recurrent_defaults::recurrent_initializer;
    std::string bias_initializer = recurrent_defaults::bias_initializer;
    std::optional<regularizers::Regularizer> kernel_regularizer{}, recurrent_regularizer{}, bias_regularizer{};
    std::optional<constraints::Constraint> kernel_constraint{}, recurrent_constraint{}, bias_constraint{};
    std::string name = {};   // empty: an automatic unique name
    bool trainable = true;   // false: the layer's weights are frozen (Keras's trainable=False)
    static const FieldTable<SimpleRNNCellOptions>& fields();
};
inline const FieldTable<SimpleRNNCellOptions>& SimpleRNNCellOptions::fields() {
    using O = SimpleRNNCellOptions;
    static const auto table = FieldTable<O>().with(recurrent_cell_fields<O>).with(cell_only_fields<O>);
    return table;
}
// h_t = activation(x_t W + h_{t-1} U + b); output = new state = h_t.
class KERAS_API SimpleRNNCell : public RNNCell {
public:
    explicit SimpleRNNCell(int64_t units, SimpleRNNCellOptions options = {});
    nlohmann::json get_config() const override;
    const SimpleRNNCellOptions& options() const { return options_; }
    std::shared_ptr<RNNCell> clone() const override { return std::make_shared<SimpleRNNCell>(*this); }

private:
    SimpleRNNCellOptions options_;
};

// LSTMCell's keyword arguments, in Keras's order.
struct KERAS_API LSTMCellOptions {
    std::string activation = recurrent_defaults::activation;
    std::string recurrent_activation = recurrent_defaults::recurrent_activation;
    bool use_bias = true;
    std::string kernel_initializer = recurrent_defaults::kernel_initializer;
    std::string recurrent_initializer = recurrent_defaults::recurrent_initializer;
    std::string bias_initializer = recurrent_defaults::bias_initializer;
    std::optional<regularizers::Regularizer> kernel_regularizer{}, recurrent_regularizer{}, bias_regularizer{};
    std::optional<constraints::Constraint> kernel_constraint{}, recurrent_constraint{}, bias_constraint{};
    bool unit_forget_bias = true;   // forget-gate bias starts at 1
    std::string name = {};
    bool trainable = true;   // false: the layer's weights are frozen (Keras's trainable=False)
    static const FieldTable<LSTMCellOptions>& fields();
};
inline const FieldTable<LSTMCellOptions>& LSTMCellOptions::fields() {
    using O = LSTMCellOptions;
    static const auto table = FieldTable<O>().with(lstm_cell_fields<O>).with(cell_only_fields<O>);
    return table;
}
// Gates i, f, c, o (Keras's order); states {h, c}; output = h.
class KERAS_API LSTMCell : public RNNCell {
public:
    explicit LSTMCell(int64_t units, LSTMCellOptions options = {});
    nlohmann::json get_config() const override;
    const LSTMCellOptions& options() const { return options_; }
    std::shared_ptr<RNNCell> clone() const override { return std::make_shared<LSTMCell>(*this); }
    bool unit_forget_bias;

protected:
    void init_bias(Tensor& bias) const override;

private:
    LSTMCellOptions options_;
};

// GRUCell's keyword arguments, in Keras's order.
struct KERAS_API GRUCellOptions {
    std::string activation = recurrent_defaults::activation;
    std::string recurrent_activation = recurrent_defaults::recurrent_activation;
    bool use_bias = true;
    std::string kernel_initializer = recurrent_defaults::kernel_initializer;
    std::string recurrent_initializer = recurrent_defaults::recurrent_initializer;
    std::string bias_initializer = recurrent_defaults::bias_initializer;
    std::optional<regularizers::Regularizer> kernel_regularizer{}, recurrent_regularizer{}, bias_regularizer{};
    std::optional<constraints::Constraint> kernel_constraint{}, recurrent_constraint{}, bias_constraint{};
    bool reset_after = true;   // bias (2, 3 * units) as the GRU layer's
    std::string name = {};
    bool trainable = true;   // false: the layer's weights are frozen (Keras's trainable=False)
    static const FieldTable<GRUCellOptions>& fields();
};
inline const FieldTable<GRUCellOptions>& GRUCellOptions::fields() {
    using O = GRUCellOptions;
    static const auto table = FieldTable<O>().with(gru_cell_fields<O>).with(cell_only_fields<O>);
    return table;
}
// Gates z, r, h (Keras's order); states {h}; output = h.
class KERAS_API GRUCell : public RNNCell {
public:
    explicit GRUCell(int64_t units, GRUCellOptions options = {});
    nlohmann::json get_config() const override;
    const GRUCellOptions& options() const { return options_; }
    std::shared_ptr<RNNCell> clone() const override { return std::make_shared<GRUCell>(*this); }

protected:
    Shape bias_shape() const override;

private:
    GRUCellOptions options_;
};

}  // namespace keras::layers
