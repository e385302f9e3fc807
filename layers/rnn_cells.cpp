// SimpleRNNCell, LSTMCell, GRUCell: one time step through the backend's RNN entry point (T = 1,
// the states as h0 / c0), so a cell and the full layer share one implementation of the maths and
// the same weight layout; the backward pass is the backend's too.
#include "keras/backend.hpp"
#include "keras/layers/rnn_cells.hpp"

#include <algorithm>

#include "keras/errors.hpp"
#include "keras/initializers.hpp"

namespace keras::layers {

RNNCell::RNNCell(const std::string& class_name, const std::string& name, backend::RnnSpec spec, Initializers init)
    : Layer(class_name, name), spec_(std::move(spec)), init_(std::move(init)) {
    if (spec_.units <= 0)
        value_error("Received an invalid value for argument `units`, expected a positive integer, got {}.",
                    spec_.units);
    if (spec_.activation == Activation::softmax || spec_.recurrent_activation == Activation::softmax)
        value_error("Layer \"{}\": softmax is not supported as a recurrent activation", this->name());
    initializers::check_name(init_.kernel);
    initializers::check_name(init_.recurrent);
    initializers::check_name(init_.bias);
    spec_.layer_name = this->name();
}

int RNNCell::gates() const {
    switch (spec_.cell) {
        case backend::RnnCell::simple_rnn: return 1;
        case backend::RnnCell::lstm: return 4;
        case backend::RnnCell::gru: return 3;
    }
    return 1;
}

std::vector<int64_t> RNNCell::state_size() const {
    if (spec_.cell == backend::RnnCell::lstm) return {spec_.units, spec_.units};
    return {spec_.units};
}

std::vector<Tensor> RNNCell::get_initial_state(int64_t batch_size, Device device) const {
    std::vector<Tensor> states;
    for (int64_t size : state_size()) states.push_back(Tensor::zeros({batch_size, size}, DType::float32, device));
    return states;
}

Shape RNNCell::bias_shape() const { return {gates() * spec_.units}; }

void RNNCell::check_input_shape(const Shape& input_shape) const {
    check_ndim(input_shape, 2);
    if (input_shape[1] < 0) input_error("the last axis of the input (features) must be defined", input_shape);
}

void RNNCell::build(const Shape& input_shape) {
    const int64_t width = gates() * spec_.units;
    kernel_ = add_weight("kernel", {input_shape[1], width}, init_.kernel);
    kernel_->regularizer = init_.kernel_regularizer;
    kernel_->constraint = init_.kernel_constraint;
    recurrent_kernel_ = add_weight("recurrent_kernel", {spec_.units, width}, init_.recurrent);
    recurrent_kernel_->regularizer = init_.recurrent_regularizer;
    recurrent_kernel_->constraint = init_.recurrent_constraint;
    if (spec_.use_bias) {
        bias_ = add_weight("bias", bias_shape(), init_.bias);
        bias_->regularizer = init_.bias_regularizer;
        bias_->constraint = init_.bias_constraint;
        init_bias(bias_->value);
    }
}

Shape RNNCell::compute_output_shape(const Shape& input_shape) const { return {input_shape.at(0), spec_.units}; }

backend::RnnWeights RNNCell::weights_view() const {
    if (!kernel_) runtime_error("Layer \"{}\" has not been built yet", name());
    return {kernel_->value, recurrent_kernel_->value, bias_ ? bias_->value : Tensor()};
}

void RNNCell::add_weight_gradients(const backend::RnnWeights& gradients) {
    accumulate_gradient(*kernel_, gradients.kernel);
    accumulate_gradient(*recurrent_kernel_, gradients.recurrent_kernel);
    if (bias_) accumulate_gradient(*bias_, gradients.bias);
}

void RNNCell::check_states(const Tensor& x, const std::vector<Tensor>& states) const {
    const std::vector<int64_t> sizes = state_size();
    if (states.size() != sizes.size())
        value_error("Layer \"{}\" expects {} state tensor(s) ({}), but received {}", name(), sizes.size(),
                    sizes.size() == 2 ? "h, c" : "h", states.size());
    for (size_t i = 0; i < states.size(); ++i) {
        const Shape want{x.dim(0), sizes[i]};
        if (!states[i].defined() || states[i].shape() != want)
            value_error("Layer \"{}\": state {} must have shape {} (batch, units) for an input of shape {}, "
                        "received {}", name(), i, shape_str(want), shape_str(x.shape()),
                        states[i].defined() ? shape_str(states[i].shape()) : "an undefined tensor");
    }
}

CellOutput RNNCell::operator()(const Tensor& x, const std::vector<Tensor>& states) {
    CallContext ctx;
    return step(x, states, ctx);
}

// Saved: ctx.state = the backend's RnnForward of the one-step sequence.
CellOutput RNNCell::step(const Tensor& x, const std::vector<Tensor>& states, CallContext& ctx) {
    if (x.ndim() != 2) check_ndim(x.shape(), 2);
    build_for({-1, x.dim(1)});
    check_states(x, states);
    const int64_t N = x.dim(0), C = x.dim(1);
    const bool lstm = spec_.cell == backend::RnnCell::lstm;
    auto& be = backend::for_tensor(x);
    backend::RnnForward fwd = be.rnn_forward(spec_, x.reshape({N, 1, C}), weights_view(), states[0],
                                             lstm ? states[1] : Tensor(), ctx.training);
    CellOutput out{fwd.h, {fwd.h}};
    if (lstm) out.states.push_back(fwd.final_c());
    ctx.state = std::move(fwd);
    return out;
}

CellGradients RNNCell::step_backward(const Tensor& d_output, const std::vector<Tensor>& d_states, CallContext& ctx) {
    auto* fwd = std::any_cast<backend::RnnForward>(&ctx.state);
    if (!fwd) runtime_error("Layer \"{}\": step_backward() called without a step()", name());
    if (!d_states.empty() && d_states.size() != state_size().size())
        value_error("Layer \"{}\": expected {} state gradient(s), received {}", name(), state_size().size(),
                    d_states.size());
    auto check = [&](const Tensor& d, const char* what) {
        if (d.defined() && d.shape() != fwd->h.shape())
            value_error("Layer \"{}\": the gradient of {} has shape {}, expected {}", name(), what,
                        shape_str(d.shape()), shape_str(fwd->h.shape()));
    };
    check(d_output, "the output");
    for (const Tensor& d : d_states) check(d, "a state");
    // The output IS the new h, so the gradients reaching h from both sides add up.
    Tensor dh = d_output;
    const Tensor d_h_state = d_states.empty() ? Tensor() : d_states[0];
    auto& be = backend::for_tensor(fwd->h);
    if (d_h_state.defined()) dh = dh.defined() ? be.add(dh, d_h_state) : d_h_state;
    const Tensor dc = d_states.size() > 1 ? d_states[1] : Tensor();
    backend::RnnGradients g = be.rnn_backward(spec_, weights_view(), *fwd, Tensor(), dh, dc);
    ctx.state.reset();   // the backend's workspace is consumed: one backward per step
    add_weight_gradients(g.dweights);
    CellGradients out{g.dx.reshape({g.dx.dim(0), g.dx.dim(2)}), {g.dh0}};
    if (spec_.cell == backend::RnnCell::lstm) out.dstates.push_back(g.dc0);
    return out;
}

Tensor RNNCell::call(const Tensor& x, CallContext& ctx) {
    if (x.ndim() != 2) check_ndim(x.shape(), 2);
    return step(x, get_initial_state(x.dim(0), x.device()), ctx).output;
}

Tensor RNNCell::backward(const Tensor& dy, CallContext& ctx) { return step_backward(dy, {}, ctx).dx; }

nlohmann::json RNNCell::get_config() const {
    auto config = Layer::get_config();
    config["units"] = spec_.units;
    return config;
}

// ---- the three cells

SimpleRNNCell::SimpleRNNCell(int64_t units, SimpleRNNCellOptions o)
    : RNNCell("SimpleRNNCell", o.name,
              backend::RnnSpec{.cell = backend::RnnCell::simple_rnn, .units = units,
                               .activation = activation_from_string(o.activation), .use_bias = o.use_bias, .layer_name = o.name},
              {o.kernel_initializer, o.recurrent_initializer, o.bias_initializer, o.kernel_regularizer,
               o.recurrent_regularizer, o.bias_regularizer, o.kernel_constraint, o.recurrent_constraint, o.bias_constraint}),
      options_(o) {
    trainable = o.trainable;
}

nlohmann::json SimpleRNNCell::get_config() const {
    auto config = RNNCell::get_config();
    write_fields(config, options_);
    return config;
}

LSTMCell::LSTMCell(int64_t units, LSTMCellOptions o)
    : RNNCell("LSTMCell", o.name,
              backend::RnnSpec{.cell = backend::RnnCell::lstm, .units = units,
                               .activation = activation_from_string(o.activation),
                               .recurrent_activation = activation_from_string(o.recurrent_activation),
                               .use_bias = o.use_bias, .layer_name = o.name},
              {o.kernel_initializer, o.recurrent_initializer, o.bias_initializer, o.kernel_regularizer,
               o.recurrent_regularizer, o.bias_regularizer, o.kernel_constraint, o.recurrent_constraint, o.bias_constraint}),
      unit_forget_bias(o.unit_forget_bias), options_(o) {
    trainable = o.trainable;
}

// As the LSTM layer: bias = [bias_initializer(H), ones(H), bias_initializer(2H)] when unit_forget_bias.
void LSTMCell::init_bias(Tensor& bias) const {
    if (unit_forget_bias) std::fill_n(bias.data<float>() + units(), units(), 1.0f);
}

nlohmann::json LSTMCell::get_config() const {
    auto config = RNNCell::get_config();
    write_fields(config, options_);
    return config;
}

GRUCell::GRUCell(int64_t units, GRUCellOptions o)
    : RNNCell("GRUCell", o.name,
              backend::RnnSpec{.cell = backend::RnnCell::gru, .units = units,
                               .activation = activation_from_string(o.activation),
                               .recurrent_activation = activation_from_string(o.recurrent_activation),
                               .use_bias = o.use_bias, .reset_after = o.reset_after, .layer_name = o.name},
              {o.kernel_initializer, o.recurrent_initializer, o.bias_initializer, o.kernel_regularizer,
               o.recurrent_regularizer, o.bias_regularizer, o.kernel_constraint, o.recurrent_constraint, o.bias_constraint}),
      options_(o) {
    trainable = o.trainable;
}

Shape GRUCell::bias_shape() const {
    if (spec_.reset_after) return {2, 3 * units()};
    return {3 * units()};
}

nlohmann::json GRUCell::get_config() const {
    auto config = RNNCell::get_config();
    write_fields(config, options_);
    return config;
}

}  // namespace keras::layers
