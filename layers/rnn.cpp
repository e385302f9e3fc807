// RNNBase: what SimpleRNN, LSTM and GRU share. The layer owns the weights (Keras layout), the
// input dropout and the Keras config; the loop over time is the backend's (rnn_forward /
// rnn_backward), which picks a fused library primitive or its step loop.
#include "keras/backend.hpp"
#include "keras/layers/masked_steps.hpp"
#include "keras/layers/rnn.hpp"

#include <algorithm>

#include <fmt/format.h>

#include <cmath>

#include "keras/errors.hpp"
#include "keras/initializers.hpp"
#include "keras/random.hpp"

namespace keras::layers {

RNNBase::RNNBase(const std::string& class_name, const std::string& name, RecurrentCommon common)
    : Layer(class_name, name), common_(std::move(common)) {
    supports_masking = true;
    // Keras clips the rates to [0, 1], which would turn NaN into 0 without a word: refused instead.
    for (const auto& [argument, rate] : {std::pair{"dropout", common_.dropout},
                                         std::pair{"recurrent_dropout", common_.recurrent_dropout}})
        if (std::isnan(rate))
            value_error("{}: Invalid value received for argument `{}`. Expected a float value between 0 and 1. "
                        "Received: {}=nan", class_name, argument, argument);
    common_.dropout = std::min(1.0f, std::max(0.0f, common_.dropout));
    common_.recurrent_dropout = std::min(1.0f, std::max(0.0f, common_.recurrent_dropout));
}

backend::RnnWeights RNNBase::weights_view() const { return cell_.ptr->weights_view(); }

backend::RnnSpec RNNBase::run_spec() const {
    backend::RnnSpec spec = spec_;
    spec.precision = dtype_policy().mixed_bfloat16() ? backend::Precision::bfloat16 : backend::Precision::float32;
    return spec;
}

void RNNBase::set_cell(std::shared_ptr<RNNCell> cell) {
    cell_.ptr = std::move(cell);
    spec_ = cell_.ptr->spec();
    spec_.recurrent_dropout = uses_recurrent_dropout(true) ? common_.recurrent_dropout : 0.0f;
    spec_.go_backwards = common_.go_backwards;
    spec_.layer_name = name();
}

void RNNBase::check_input_shape(const Shape& input_shape) const {
    check_ndim(input_shape, 3);
    if (input_shape[2] < 0) input_error("the last axis of the input (features) must be defined", input_shape);
}

void RNNBase::check_symbolic_input(const Shape& input_shape) const {
    if (common_.stateful && !input_shape.empty() && input_shape[0] < 0)
        value_error("Layer \"{}\": When using `stateful=True` in a RNN, the batch size must be static. Found dynamic "
                    "batch size: sequence.shape={}. Give the input a fixed batch size: keras::Input(shape, "
                    "{{.batch_size = N}}) or {{.batch_shape = {{N, ...}}}}", name(), shape_str(input_shape));
}

void RNNBase::build(const Shape& input_shape) {
    // The input's fixed batch size (Keras creates the state variables here); else the first call fixes it.
    if (common_.stateful && input_shape[0] >= 0) {
        stateful_batch_size_ = input_shape[0];
        batch_size_from_input_ = true;
    }
    cell_.ptr->build_for({-1, input_shape[2]});
    track_weights_of(*cell_.ptr);
}

Shape RNNBase::compute_output_shape(const Shape& input_shape) const {
    if (common_.return_sequences) return {input_shape.at(0), input_shape.at(1), spec_.units};
    return {input_shape.at(0), spec_.units};
}

Tensor RNNBase::dropout_mask(const Tensor& x) const {
    const int64_t N = x.dim(0), T = x.dim(1), C = x.dim(2);
    const float rate = common_.dropout;
    const float scale = rate < 1.0f ? 1.0f / (1.0f - rate) : 0.0f;
    std::vector<float> step_mask(static_cast<size_t>(N * C));
    for (float& m : step_mask) m = random::uniform01() < 1.0 - rate ? scale : 0.0f;
    Tensor mask({N, T, C}, DType::float32);
    float* out = mask.data<float>();
    for (int64_t n = 0; n < N; ++n)
        for (int64_t t = 0; t < T; ++t) std::copy_n(step_mask.data() + n * C, C, out + (n * T + t) * C);
    return mask.to(x.device());
}

bool RNNBase::uses_recurrent_dropout(bool training) const {
    const float rate = common_.recurrent_dropout;
    if (!training || rate <= 0.0f) return false;
    return rate < 1.0f || spec_.cell == backend::RnnCell::simple_rnn;
}

bool RNNBase::per_gate_input_dropout() const {
    return spec_.cell != backend::RnnCell::simple_rnn && common_.recurrent_dropout != 0.0f;
}

Tensor RNNBase::gate_dropout_masks(int64_t batch, int64_t width, float rate, Device device) const {
    const float scale = rate < 1.0f ? 1.0f / (1.0f - rate) : 0.0f;
    Tensor mask({batch, gates() * width}, DType::float32);
    float* m = mask.data<float>();
    for (int64_t i = 0; i < mask.numel(); ++i) m[i] = random::uniform01() < 1.0 - rate ? scale : 0.0f;
    return mask.to(device);
}

backend::RnnDropoutMasks RNNBase::dropout_for_call(const Tensor& x, bool training, Tensor& input,
                                                   Tensor& shared_mask) const {
    backend::RnnDropoutMasks masks;
    const float rate = common_.dropout;
    if (training && per_gate_input_dropout()) {
        // Keras's cell checks 0 < dropout < 1 here.
        if (rate > 0.0f && rate < 1.0f) masks.input = gate_dropout_masks(x.dim(0), x.dim(2), rate, x.device());
    } else if (training && rate > 0.0f && (rate < 1.0f || spec_.cell == backend::RnnCell::simple_rnn)) {
        // Keras 3's LSTMCell / GRUCell also skip input dropout at rate 1; SimpleRNNCell zeroes the input.
        shared_mask = dropout_mask(x);
        input = backend::for_tensor(x).multiply(x, shared_mask);
    }
    if (uses_recurrent_dropout(training))
        masks.recurrent = gate_dropout_masks(x.dim(0), spec_.units, common_.recurrent_dropout, x.device());
    return masks;
}

// Saved: ctx.saved = {shared input dropout mask or undefined}; ctx.state = the backend's RnnForward
// (which keeps the per-gate dropout masks for the backward), or, for a masked call, rnn_masked.cpp's
// MaskedCall.
Tensor RNNBase::call(const Tensor& x, CallContext& ctx) {
    if (x.ndim() != 3) check_ndim(x.shape(), 3);
    if (!built()) build_for({-1, x.dim(1), x.dim(2)});
    auto& be = backend::for_tensor(x);
    Tensor input = x;
    Tensor mask;
    const backend::RnnDropoutMasks masks = dropout_for_call(x, ctx.training, input, mask);
    if (common_.stateful) check_stateful_batch(x);
    // Keras's initial_state, when the call has one (rnn_state.cpp), replaces the zeros / kept states.
    const bool given = !ctx.initial_state.empty();
    const Tensor h0 = given ? ctx.initial_state[0] : state_h_;
    const Tensor c0 = given ? (ctx.initial_state.size() > 1 ? ctx.initial_state[1] : Tensor()) : state_c_;
    if (ctx.mask.defined()) {
        MaskedSteps steps = masked_steps_of(x, ctx.mask);
        if (!steps.all_real) return call_masked(input, mask, masks, h0, c0, std::move(steps), ctx);   // else: as if unmasked
    }
    backend::RnnForward fwd = be.rnn_forward(run_spec(), input, weights_view(), h0, c0, ctx.training, masks);
    keep_states(fwd);
    Tensor y = common_.return_sequences ? fwd.sequences : fwd.h;
    ctx.saved = {mask};
    ctx.state = std::move(fwd);
    return y;
}

void RNNBase::keep_states(const backend::RnnForward& fwd) {
    if (!common_.stateful) return;
    // Copies: the next call must not see a later call's (or the workspace's) writes.
    state_h_ = fwd.h.clone();
    if (fwd.final_c().defined()) state_c_ = fwd.final_c().clone();
}

void RNNBase::check_stateful_batch(const Tensor& x) {
    if (stateful_batch_size_ < 0) stateful_batch_size_ = x.dim(0);
    if (x.dim(0) != stateful_batch_size_)
        value_error("Layer \"{}\": if an RNN is stateful, the batch size of the input sequences must be the same "
                    "as the batch size of the initial state. Expected batch size: {} ({}). Received batch size: "
                    "{} (input shape {}). With fit / evaluate / predict, choose a batch_size that divides the "
                    "number of samples.",
                    name(), stateful_batch_size_,
                    batch_size_from_input_ ? "the batch size of the model's input" : "fixed by the layer's first call",
                    x.dim(0), shape_str(x.shape()));
}

void RNNBase::reset_states() {
    if (!common_.stateful)
        value_error("Layer \"{}\" is not stateful: reset_states() needs stateful=true", name());
    state_h_ = Tensor();
    state_c_ = Tensor();
}

std::vector<Tensor> RNNBase::states() const {
    if (!state_h_.defined()) return {};
    if (state_c_.defined()) return {state_h_, state_c_};
    return {state_h_};
}

// The gradient stops at the batch's initial states (truncated backpropagation through time, as in
// Keras, where the kept states are variables, not part of the graph): dh0 / dc0 are dropped.
Tensor RNNBase::backward(const Tensor& dy, CallContext& ctx) {
    return apply_gradients(call_gradients(dy, Tensor(), Tensor(), ctx), ctx);
}

namespace {
Tensor add_defined(const Tensor& a, const Tensor& b) {
    if (!a.defined()) return b;
    if (!b.defined()) return a;
    return backend::for_tensor(a).add(a, b);
}
}  // namespace

backend::RnnGradients RNNBase::call_gradients(const Tensor& dy, const Tensor& dh, const Tensor& dc, CallContext& ctx) {
    auto* fwd = std::any_cast<backend::RnnForward>(&ctx.state);
    if (!fwd && ctx.state.has_value()) return backward_masked(dy, dh, dc, ctx);
    if (!fwd) runtime_error("Layer \"{}\": backward() called without a forward pass", name());
    const Shape expected = common_.return_sequences ? fwd->sequences.shape() : fwd->h.shape();
    if (dy.defined() && dy.shape() != expected)
        value_error("Layer \"{}\": the output gradient has shape {}, expected {}", name(), shape_str(dy.shape()),
                    shape_str(expected));
    // Without return_sequences the output IS the final h, so its gradient joins the returned h's.
    const Tensor d_sequences = common_.return_sequences ? dy : Tensor();
    const Tensor d_h = common_.return_sequences ? dh : add_defined(dy, dh);
    const Tensor& any = dy.defined() ? dy : (d_h.defined() ? d_h : dc);
    return backend::for_tensor(any).rnn_backward(run_spec(), weights_view(), *fwd, d_sequences, d_h, dc);
}

Tensor RNNBase::apply_gradients(const backend::RnnGradients& g, const CallContext& ctx) {
    cell_.ptr->add_weight_gradients(g.dweights);
    const Tensor& mask = ctx.saved.at(0);
    return mask.defined() ? backend::for_tensor(g.dx).multiply(g.dx, mask) : g.dx;
}

Tensor RNNBase::compute_mask(const Tensor&, const Tensor& mask) const {
    return common_.return_sequences ? mask : Tensor();
}

nlohmann::json RNNBase::get_config() const {
    auto config = Layer::get_config();
    config["units"] = spec_.units;
    return config;
}

std::string RNNBase::implementation_note() const {
    const Device device = weights().empty() ? Device::cpu() : weights()[0]->value.device();
    return backend::get(device).rnn_path(run_spec()).description;
}

}  // namespace keras::layers
