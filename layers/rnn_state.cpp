// RNNBase's return_state and initial_state, Keras's `y, h, c = lstm(x, initial_state=[h0, c0])`:
// the outputs gain the final states, and the gradient flows back into the given initial states
// (the backend's rnn_backward returns dh0 / dc0).
#include <fmt/format.h>

#include "keras/backend.hpp"
#include "keras/errors.hpp"
#include "keras/layers/masked_steps.hpp"
#include "keras/layers/rnn.hpp"

namespace keras::layers {

namespace {

// Keras 2's rendering of a list of state shapes: [InputSpec(shape=(None, 6), ndim=2), ...].
std::string state_specs(const std::vector<Shape>& states) {
    std::string out;
    for (const auto& s : states)
        out += fmt::format("{}InputSpec(shape={}, ndim={})", out.empty() ? "" : ", ", shape_str(s), s.size());
    return "[" + out + "]";
}

}  // namespace

int RNNBase::output_count() const { return common_.return_state ? 1 + state_count() : 1; }

std::vector<Shape> RNNBase::compute_output_shapes(const Shape& input_shape) const {
    std::vector<Shape> shapes = {compute_output_shape(input_shape)};
    if (common_.return_state)
        for (int i = 0; i < state_count(); ++i) shapes.push_back({input_shape.at(0), spec_.units});
    return shapes;
}

// tf_keras's message (Keras 3 only fails later, inside the loop); the layer's name added.
void RNNBase::check_initial_state(const Shape& input_shape, const std::vector<Shape>& states) const {
    if (states.empty()) return;   // zeros (or a stateful layer's kept states)
    bool ok = static_cast<int>(states.size()) == state_count();
    for (const auto& s : states) {
        const bool batch_ok = s.size() == 2 && (s[0] < 0 || input_shape.at(0) < 0 || s[0] == input_shape[0]);
        ok = ok && batch_ok && s[1] == spec_.units;
    }
    if (ok) return;
    const std::string sizes = state_count() == 2 ? fmt::format("[{}, {}]", spec_.units, spec_.units)
                                                 : fmt::format("[{}]", spec_.units);
    value_error("Layer \"{}\" ({}): An `initial_state` was passed that is not compatible with `cell.state_size`. "
                "Received `state_spec`={}; however `cell.state_size` is {}", name(), class_name(), state_specs(states),
                sizes);
}

std::vector<Tensor> RNNBase::call_outputs(const Tensor& x, const std::vector<Tensor>& initial_state, CallContext& ctx) {
    if (!initial_state.empty()) check_initial_state(x.shape(), shapes_of(initial_state));
    ctx.initial_state = initial_state;
    const Tensor y = call(x, ctx);
    if (!common_.return_state) return {y};
    const backend::RnnForward& fwd = forward_of(ctx);   // masked calls: the states at the last real step
    std::vector<Tensor> outputs = {y, fwd.h};
    if (state_count() == 2) outputs.push_back(fwd.final_c());
    return outputs;
}

// dys: {d output, d h, d c} (undefined = no gradient). Without return_sequences the output IS h,
// so both gradients reach the final h.
std::vector<Tensor> RNNBase::backward_outputs(const std::vector<Tensor>& dys, CallContext& ctx) {
    if (static_cast<int>(dys.size()) != output_count())
        runtime_error("Layer \"{}\": backward got {} output gradients, expected {}", name(), dys.size(), output_count());
    const Tensor dh_state = common_.return_state ? dys[1] : Tensor();
    const Tensor dc_state = common_.return_state && state_count() == 2 ? dys[2] : Tensor();
    backend::RnnGradients g = call_gradients(dys[0], dh_state, dc_state, ctx);
    std::vector<Tensor> grads = {apply_gradients(g, ctx)};
    if (!ctx.initial_state.empty()) grads.push_back(g.dh0);
    if (ctx.initial_state.size() > 1) grads.push_back(g.dc0);
    return grads;
}

}  // namespace keras::layers
