#include "keras/layers/normalization.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "keras/autodiff.hpp"
#include "keras/backend.hpp"
#include "keras/errors.hpp"
#include "keras/initializers.hpp"
#include "keras/ops.hpp"

namespace keras::layers {

namespace {

// gamma's / beta's regularizer and constraint, when the layer has that weight.
void set_penalties(const VariablePtr& weight, const std::optional<regularizers::Regularizer>& regularizer,
                   const std::optional<constraints::Constraint>& constraint) {
    if (!weight) return;
    weight->regularizer = regularizer;
    weight->constraint = constraint;
}

// Keras's "Axis {axis} is out of bounds for input shape {shape}" for any axis outside the input.
void check_axes(const std::vector<int>& axes, const Shape& input_shape, const std::string& received) {
    const int ndim = static_cast<int>(input_shape.size());
    for (int a : axes)
        if (a >= ndim || a < -ndim)
            value_error("Axis {} is out of bounds for input shape {}. Received: axis={}", a, shape_str(input_shape),
                        received);
}

std::vector<int> positive_axes(const std::vector<int>& axes, size_t ndim) {
    std::vector<int> out;
    for (int a : axes) out.push_back(a < 0 ? a + static_cast<int>(ndim) : a);
    std::sort(out.begin(), out.end());
    return out;
}

// The axes a per-feature statistic is reduced over: every axis but `keep`.
std::vector<int> other_axes(const std::vector<int>& keep, size_t ndim) {
    std::vector<int> out;
    for (int a = 0; a < static_cast<int>(ndim); ++a)
        if (std::find(keep.begin(), keep.end(), a) == keep.end()) out.push_back(a);
    return out;
}

// The shape a weight over `axes` takes to broadcast against an input of `shape`: 1 on the other axes.
Shape broadcast_shape(const std::vector<int>& axes, const Shape& shape) {
    Shape out(shape.size(), 1);
    for (int a : axes) out[a] = shape[a];
    return out;
}

std::string axis_json_text(const std::vector<int>& axis) {
    return axis.size() == 1 ? std::to_string(axis[0]) : fmt::format("[{}]", fmt::join(axis, ", "));
}

// Keras's ops.batch_normalization / layer_normalization: x * inv + (beta - mean * inv) with
// inv = gamma / sqrt(variance + epsilon); any of gamma, beta undefined is left out.
Tensor scale_and_shift(const Tensor& x, const Tensor& mean, const Tensor& variance, const Tensor& gamma,
                       const Tensor& beta, float epsilon) {
    Tensor inv = ops::reciprocal(ops::sqrt(ops::add(variance, epsilon)));
    if (gamma.defined()) inv = ops::multiply(inv, gamma);
    Tensor shift = ops::negative(ops::multiply(mean, inv));
    if (beta.defined()) shift = ops::add(shift, beta);
    return ops::add(ops::multiply(x, inv), shift);
}

// Batch normalization with the batch's statistics over every axis but the last: the backend's fused
// kernel (oneDNN's batch_normalization on the CPU), recorded as one op. The statistics come back in
// mean / variance (C) for the moving averages.
Tensor fused_batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float epsilon, Tensor& mean,
                        Tensor& variance) {
    backend::NormForward fwd = backend::for_tensor(x).batch_norm_training(x, gamma, beta, epsilon);
    mean = fwd.mean, variance = fwd.variance;
    const Tensor y = fwd.y;
    // An undefined gamma / beta is no input to the tape, and its gradient stays undefined.
    return autodiff::record("batch_normalization", y, {x, gamma, beta}, [x = x.detached(), g = gamma.detached(),
                                                                          b = beta.detached(), epsilon,
                                                                          fwd = std::move(fwd)](const Tensor& dy) {
        Tensor dx, dg, db;
        backend::for_tensor(dy).batch_norm_training_backward(x, g, b, epsilon, fwd, dy, dx, dg, db);
        return std::vector<Tensor>{dx, dg, db};
    });
}

}  // namespace

// ---- BatchNormalization

BatchNormalization::BatchNormalization(BatchNormalizationOptions options)
    : Layer("BatchNormalization", options.name, options.trainable), options(std::move(options)) {
    supports_masking = true;
    for (const auto* init : {&this->options.beta_initializer, &this->options.gamma_initializer,
                             &this->options.moving_mean_initializer, &this->options.moving_variance_initializer})
        initializers::check_name(*init);
}

void BatchNormalization::check_input_shape(const Shape& input_shape) const {
    check_axes({options.axis}, input_shape, std::to_string(options.axis));
    const int axis = positive_axes({options.axis}, input_shape.size())[0];
    if (input_shape[axis] < 0)
        input_error(fmt::format("the axis {} of the input (the features) must be defined", options.axis), input_shape);
}

void BatchNormalization::build(const Shape& input_shape) {
    const int64_t features = input_shape[positive_axes({options.axis}, input_shape.size())[0]];
    if (options.scale) gamma = add_weight("gamma", {features}, options.gamma_initializer);
    if (options.center) beta = add_weight("beta", {features}, options.beta_initializer);
    set_penalties(gamma, options.gamma_regularizer, options.gamma_constraint);
    set_penalties(beta, options.beta_regularizer, options.beta_constraint);
    moving_mean = add_weight("moving_mean", {features}, options.moving_mean_initializer, false);
    moving_variance = add_weight("moving_variance", {features}, options.moving_variance_initializer, false);
}

// Keras: the batch statistics only when training a trainable layer (a frozen one runs as in inference).
Tensor BatchNormalization::call(const Tensor& x, CallContext& ctx) {
    const Tensor mask = ctx.mask;
    const bool batch_statistics = ctx.training && trainable;
    return record_call(x, {}, ctx, [&](const Tensor& in, const std::vector<Tensor>&) {
        return std::vector<Tensor>{normalize(in, mask, batch_statistics)};
    })[0];
}

Tensor BatchNormalization::normalize(const Tensor& x, const Tensor& mask, bool batch_statistics) {
    const std::vector<int> axis = positive_axes({options.axis}, x.ndim());
    const std::vector<int> reduce = other_axes(axis, x.ndim());
    const Shape param_shape = broadcast_shape(axis, x.shape());
    Tensor mean, variance;
    if (batch_statistics && !mask.defined() && axis[0] == x.ndim() - 1) {
        const Tensor g = gamma ? ops::convert_to_tensor(gamma) : Tensor();
        const Tensor b = beta ? ops::convert_to_tensor(beta) : Tensor();
        const Tensor y = fused_batch_norm(x, g, b, options.epsilon, mean, variance);
        update_moving(mean, variance);
        return y;
    }
    if (!batch_statistics) {
        mean = moving_mean->value.reshape(param_shape);   // plain values: no gradient reaches the moving ones
        variance = moving_variance->value.reshape(param_shape);
    } else if (!mask.defined()) {
        mean = ops::mean(x, reduce, true);
        variance = ops::mean(ops::square(ops::subtract(x, mean)), reduce, true);
    } else {
        // Keras 3's masked moments: sums over the real steps only, divided by their count (+ 1e-7).
        if (mask.ndim() != x.ndim() - 1)
            value_error("The mask provided should be one dimension less than the inputs. Received: mask.shape={}, "
                        "inputs.shape={}", shape_str(mask.shape()), shape_str(x.shape()));
        const Tensor weights = ops::broadcast_to(ops::expand_dims(mask.to(x.device()), -1), x.shape());
        const Tensor count = ops::add(ops::sum(weights, reduce, true), 1e-7f);
        mean = ops::divide(ops::sum(ops::multiply(x, weights), reduce, true), count);
        const Tensor diff = ops::multiply(ops::subtract(x, mean), weights);
        variance = ops::divide(ops::sum(ops::square(diff), reduce, true), count);
    }
    if (batch_statistics) update_moving(mean, variance);
    const Tensor g = gamma ? ops::reshape(*gamma, param_shape) : Tensor();
    const Tensor b = beta ? ops::reshape(*beta, param_shape) : Tensor();
    return scale_and_shift(x, mean, variance, g, b, options.epsilon);
}

// moving = moving * momentum + batch * (1 - momentum), outside any record (Keras's assign).
void BatchNormalization::update_moving(const Tensor& mean, const Tensor& variance) {
    autodiff::StopRecording pause;
    const float keep = options.momentum, take = 1.0f - options.momentum;
    for (auto [moving, batch] : {std::pair{moving_mean, mean}, std::pair{moving_variance, variance}}) {
        const Tensor value = ops::stop_gradient(batch).reshape(moving->value.shape());
        moving->value = ops::add(ops::multiply(moving->value, keep), ops::multiply(value, take));
    }
}

nlohmann::json BatchNormalization::get_config() const {
    auto config = Layer::get_config();
    config["axis"] = options.axis;
    write_fields(config, options);
    return config;
}

// ---- LayerNormalization

LayerNormalization::LayerNormalization(LayerNormalizationOptions options)
    : Layer("LayerNormalization", options.name, options.trainable), options(std::move(options)) {
    supports_masking = true;
    if (this->options.axis.empty())
        value_error("Expected an int or a list/tuple of ints for the argument 'axis', but received: []");
    initializers::check_name(this->options.beta_initializer);
    initializers::check_name(this->options.gamma_initializer);
}

void LayerNormalization::check_input_shape(const Shape& input_shape) const {
    check_axes(options.axis, input_shape, axis_json_text(options.axis));
    for (int a : positive_axes(options.axis, input_shape.size()))
        if (input_shape[a] < 0)
            input_error(fmt::format("the normalized axis {} of the input must be defined", a), input_shape);
}

void LayerNormalization::build(const Shape& input_shape) {
    Shape shape;
    for (int a : positive_axes(options.axis, input_shape.size())) shape.push_back(input_shape[a]);
    if (options.scale || options.rms_scaling) gamma = add_weight("gamma", shape, options.gamma_initializer);
    if (options.center && !options.rms_scaling) beta = add_weight("beta", shape, options.beta_initializer);
    set_penalties(gamma, options.gamma_regularizer, options.gamma_constraint);
    set_penalties(beta, options.beta_regularizer, options.beta_constraint);
}

Tensor LayerNormalization::call(const Tensor& x) {
    const Tensor g = gamma ? ops::convert_to_tensor(gamma) : Tensor();
    const Tensor b = beta ? ops::convert_to_tensor(beta) : Tensor();
    return ops::layer_normalization(x, g, b, options.axis, options.epsilon, options.rms_scaling);
}

nlohmann::json LayerNormalization::get_config() const {
    auto config = Layer::get_config();
    config["axis"] = options.axis;   // Keras 3 writes the list it keeps after build
    write_fields(config, options);
    return config;
}

// ---- UnitNormalization

UnitNormalization::UnitNormalization(UnitNormalizationOptions options)
    : Layer("UnitNormalization", options.name, options.trainable), options(std::move(options)) {
    supports_masking = true;
    if (this->options.axis.empty())
        value_error("Invalid value for `axis` argument: expected an int or a list/tuple of ints. Received: axis=[]");
}

void UnitNormalization::check_input_shape(const Shape& input_shape) const {
    check_axes(options.axis, input_shape, axis_json_text(options.axis));
}

Tensor UnitNormalization::call(const Tensor& x) {
    const std::vector<int> axis = positive_axes(options.axis, x.ndim());
    const Tensor inv_norm = ops::reciprocal(ops::sqrt(ops::sum(ops::square(x), axis, true)));
    return ops::multiply(x, ops::minimum(inv_norm, 1e12f));   // Keras: epsilon 1e-12 caps 1/||x||
}

nlohmann::json UnitNormalization::get_config() const {
    auto config = Layer::get_config();
    if (options.axis.size() == 1) config["axis"] = options.axis[0];
    else config["axis"] = options.axis;
    write_fields(config, options);
    return config;
}

}  // namespace keras::layers
