// The automatic half of Layer: layers written with keras::ops get their forward pass recorded, their
// backward pass from autodiff, and their output shape from a trial run.
#include <algorithm>

#include "keras/autodiff.hpp"
#include "keras/errors.hpp"
#include "keras/layer.hpp"

namespace keras {

namespace {
// What an automatic call keeps for its backward: the tensors gradients are sent back to (the input,
// then any initial states) as recorded, and the outputs they led to.
struct RecordedCall {
    std::vector<Tensor> sources, outputs;
};

// A zero batch for a trial run of call(): None axes (-1) become `none_size`.
Tensor trial_input(const Shape& input_shape, int64_t none_size) {
    Shape s = input_shape;
    for (auto& d : s)
        if (d < 0) d = none_size;
    return Tensor::zeros(s);
}

// Gradients stop at a call's inputs: each becomes a fresh leaf, unless an outer tape already
// records its history (then the tape goes on through this layer and backward() stops there).
Tensor as_source(const Tensor& x) {
    return x.grad_node() || x.dtype() != DType::float32 ? x : autodiff::watch_leaf(x);
}
}  // namespace

Tensor Layer::call(const Tensor& inputs, bool training) {
    (void)training;
    return call(inputs);
}

Tensor Layer::call(const Tensor&) {
    throw NotImplementedError(fmt::format("Layer {} ({}) does not have a `call()` method implemented.", name_,
                                          class_name_));
}

Tensor Layer::call(const Tensor& x, CallContext& ctx) {
    return record_call(x, {}, ctx, [&](const Tensor& in, const std::vector<Tensor>&) {
        return std::vector<Tensor>{call(in, ctx.training)};
    })[0];
}

std::vector<Tensor> Layer::record_call(const Tensor& x, const std::vector<Tensor>& initial_state, CallContext& ctx,
                                       const RecordedBody& body) {
    std::vector<Tensor> inputs{x};
    inputs.insert(inputs.end(), initial_state.begin(), initial_state.end());
    return record_inputs(inputs, ctx, [&](const std::vector<Tensor>& in) {
        return body(in[0], {in.begin() + 1, in.end()});
    });
}

std::vector<Tensor> Layer::record_inputs(const std::vector<Tensor>& inputs, CallContext& ctx,
                                         const RecordedInputsBody& body) {
    if (!ctx.training && !autodiff::recording()) {   // inference: nothing to record
        ctx.state.reset();
        return body(inputs);
    }
    autodiff::RecordingScope record;
    RecordedCall recorded;
    for (const auto& x : inputs) recorded.sources.push_back(as_source(x));
    recorded.outputs = body(recorded.sources);
    ctx.state = recorded;
    return recorded.outputs;
}

Tensor Layer::call_multi(const std::vector<Tensor>& xs, CallContext& ctx) {
    if (xs.size() == 1) return call(xs[0], ctx);
    return record_inputs(xs, ctx, [&](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{call(in, ctx.training)};
    })[0];
}

std::vector<Tensor> Layer::backward_multi(const Tensor& dy, CallContext& ctx) {
    const auto* recorded = std::any_cast<RecordedCall>(&ctx.state);
    if (recorded && recorded->sources.size() > 1) return recorded_backward({dy}, ctx);
    return {backward(dy, ctx)};
}

std::vector<Tensor> Layer::recorded_backward(const std::vector<Tensor>& dys, CallContext& ctx) {
    const auto* recorded = std::any_cast<RecordedCall>(&ctx.state);
    if (!recorded)
        runtime_error("Layer \"{}\" ({}): no recorded call to run backward on (a layer either writes call(x, ctx) and "
                      "backward(dy, ctx) both, or lets both be automatic by overriding call(inputs))", name_, class_name_);
    std::vector<Tensor> targets, seeds;
    for (size_t k = 0; k < dys.size() && k < recorded->outputs.size(); ++k)
        if (dys[k].defined()) targets.push_back(recorded->outputs[k]), seeds.push_back(dys[k]);
    std::vector<std::shared_ptr<autodiff::Node>> sources;
    for (const auto& s : recorded->sources) sources.push_back(s.dtype() == DType::float32 ? s.grad_node() : nullptr);
    std::vector<std::pair<const Variable*, Tensor>> variable_grads;
    auto grads = autodiff::gradients(targets, seeds, sources, &variable_grads);
    for (auto& [variable, g] : variable_grads) accumulate_gradient(const_cast<Variable&>(*variable), g);
    // A float source the outputs do not depend on gets zeros, as a hand-written backward gives;
    // integer inputs (token ids) get none.
    for (size_t i = 0; i < grads.size(); ++i)
        if (!grads[i].defined() && recorded->sources[i].dtype() == DType::float32)
            grads[i] = Tensor::zeros(recorded->sources[i].shape(), DType::float32, recorded->sources[i].device());
    return grads;
}

Tensor Layer::backward(const Tensor& dy, CallContext& ctx) { return recorded_backward({dy}, ctx)[0]; }

Tensor Layer::operator()(const Tensor& x, bool training) {
    if (!built()) build_for(x.shape());
    auto ctx = std::make_shared<CallContext>();
    ctx->training = training;
    Tensor y = call(x, *ctx);
    // An ops-written layer's output already carries its record; a fused layer's gets one here.
    if (!autodiff::recording() || y.grad_node() || y.dtype() != DType::float32) return y;
    return autodiff::record_accumulating("layer " + name_, y, x, trainable_weights(),
                                         [this, ctx](const Tensor& dy) { return backward(dy, *ctx); });
}

Tensor Layer::operator()(const std::vector<Tensor>& xs, bool training) {
    if (xs.size() == 1) return (*this)(xs[0], training);
    if (!built()) build_for_multi(shapes_of(xs));
    CallContext ctx;
    ctx.training = training;
    return call_multi(xs, ctx);   // an ops-written call: its ops carry their records
}

std::vector<Tensor> Layer::call_all(const Tensor& x, const std::vector<Tensor>& initial_state, bool training) {
    if (!built()) build_for(x.shape());
    auto ctx = std::make_shared<CallContext>();
    ctx->training = training;
    std::vector<Tensor> ys = call_outputs(x, initial_state, *ctx);
    const bool recorded = std::any_of(ys.begin(), ys.end(), [](const Tensor& y) { return y.grad_node() != nullptr; });
    if (!autodiff::recording() || recorded) return ys;
    // A fused layer (an RNN's primitive) becomes one op of several outputs whose backward is its own.
    std::vector<Tensor> inputs{x};
    inputs.insert(inputs.end(), initial_state.begin(), initial_state.end());
    return autodiff::record_accumulating("layer " + name_, ys, inputs, trainable_weights(),
                                         [this, ctx, n = inputs.size()](const std::vector<Tensor>& dys) {
                                             std::vector<Tensor> g = backward_outputs(dys, *ctx);
                                             g.resize(n);
                                             return g;
                                         });
}

Shape Layer::compute_output_shape_multi(const std::vector<Shape>& input_shapes) const {
    if (input_shapes.size() == 1) return compute_output_shape(input_shapes[0]);
    if (auto it = inferred_multi_output_shapes_.find(input_shapes); it != inferred_multi_output_shapes_.end())
        return it->second;
    auto* self = const_cast<Layer*>(this);
    autodiff::StopRecording no_tape;
    auto trial = [&](int64_t none_size) {
        std::vector<Tensor> xs;
        for (const auto& s : input_shapes) xs.push_back(trial_input(s, none_size));
        return self->call(xs, false).shape();
    };
    Shape out = trial(1);
    const Shape b = trial(2);
    if (out.size() == b.size())
        for (size_t i = 0; i < out.size(); ++i)
            if (out[i] != b[i]) out[i] = -1;   // follows a None axis of an input
    inferred_multi_output_shapes_.emplace(input_shapes, out);
    return out;
}

Shape Layer::compute_output_shape(const Shape& input_shape) const {
    if (auto it = inferred_output_shapes_.find(input_shape); it != inferred_output_shapes_.end()) return it->second;
    // call() is not const (it may create state): trial runs go through a non-const self, record
    // nothing and leave no trace but the shapes.
    auto* self = const_cast<Layer*>(this);
    autodiff::StopRecording no_tape;
    const bool has_none = std::any_of(input_shape.begin(), input_shape.end(), [](int64_t d) { return d < 0; });
    Shape out = self->call(trial_input(input_shape, 1), false).shape();
    if (has_none) {
        const Shape b = self->call(trial_input(input_shape, 2), false).shape();
        if (out.size() == b.size())
            for (size_t i = 0; i < out.size(); ++i)
                if (out[i] != b[i]) out[i] = -1;   // follows a None axis of the input
    }
    inferred_output_shapes_.emplace(input_shape, out);
    return out;
}

}  // namespace keras
