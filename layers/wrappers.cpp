#include "keras/layers/wrappers.hpp"

#include <memory>

#include <fmt/format.h>

#include "keras/errors.hpp"

namespace keras::layers {

namespace {

// (batch, steps, rest...) -> (batch, rest...): the shape the wrapped layer sees.
Shape child_shape(const Shape& input_shape) {
    Shape out{input_shape[0] >= 0 && input_shape[1] >= 0 ? input_shape[0] * input_shape[1] : -1};
    out.insert(out.end(), input_shape.begin() + 2, input_shape.end());
    return out;
}

// (batch * steps, rest...) -> (batch, steps, rest...).
Shape unfold(const Shape& folded, int64_t batch, int64_t steps) {
    Shape out{batch, steps};
    out.insert(out.end(), folded.begin() + 1, folded.end());
    return out;
}

// What one call keeps for its backward pass: the wrapped layer's own context and the input shape.
struct TimeDistributedCall {
    std::shared_ptr<CallContext> inner;
    Shape input_shape;
};

}  // namespace

TimeDistributed::TimeDistributed(LayerPtr layer, TimeDistributedOptions options)
    : Layer("TimeDistributed", options.name, options.trainable), layer_(std::move(layer)), options_(std::move(options)) {
    if (!layer_)
        value_error("Please initialize `TimeDistributed` layer with a `keras.layers.Layer` instance. Received: None");
    // Keras hands the wrapped layer mask[:, t] only when its call() takes a mask; none of the layers
    // wrapped here does (a (batch,) mask per step fits none of them), so the mask just passes through.
    supports_masking = true;
}

void TimeDistributed::check_input_shape(const Shape& input_shape) const {
    if (input_shape.size() < 3)
        value_error("`TimeDistributed` Layer should be passed an `input_shape` with at least 3 dimensions, "
                    "received: {}", shape_str(input_shape));
}

void TimeDistributed::build(const Shape& input_shape) {
    layer_->build_for(child_shape(input_shape));
    track_weights_of(*layer_);
}

Shape TimeDistributed::compute_output_shape(const Shape& input_shape) const {
    return unfold(layer_->compute_output_shape(child_shape(input_shape)), input_shape[0], input_shape[1]);
}

Tensor TimeDistributed::call(const Tensor& x, CallContext& ctx) {
    const int64_t batch = x.dim(0), steps = x.dim(1);
    Shape folded = x.shape();
    folded.erase(folded.begin());
    folded[0] = batch * steps;
    auto inner = std::make_shared<CallContext>();
    inner->training = ctx.training;
    const Tensor y = layer_->call(x.reshape(folded), *inner);
    ctx.saved = {};
    ctx.state = TimeDistributedCall{inner, x.shape()};
    return y.reshape(unfold(y.shape(), batch, steps));
}

Tensor TimeDistributed::backward(const Tensor& dy, CallContext& ctx) {
    const auto& call = std::any_cast<const TimeDistributedCall&>(ctx.state);
    Shape folded = dy.shape();
    folded.erase(folded.begin());
    folded[0] = dy.dim(0) * dy.dim(1);
    const Tensor dx = layer_->backward(dy.reshape(folded), *call.inner);
    if (!dx.defined()) return dx;   // integer inputs (a wrapped Embedding) have no gradient
    return dx.reshape(call.input_shape);
}

nlohmann::json TimeDistributed::get_config() const {
    auto config = Layer::get_config();
    config["layer"] = {{"module", "keras.layers"}, {"class_name", layer_->class_name()},
                       {"config", layer_->get_config()}, {"registered_name", nullptr}};
    write_fields(config, options_);
    return config;
}

}  // namespace keras::layers
