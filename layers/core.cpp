#include "keras/layers/core.hpp"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "keras/backend.hpp"
#include "keras/errors.hpp"
#include "keras/random.hpp"

namespace keras::layers {

// ---- Dropout

Dropout::Dropout(float rate, DropoutOptions options)
    : Layer("Dropout", options.name, options.trainable), rate(rate), options(std::move(options)) {
    supports_masking = true;
    if (!(rate >= 0.0f && rate < 1.0f))
        value_error("Invalid value received for argument `rate`. Expected a float value between 0 and 1. Received: rate={}", rate);
}

Tensor Dropout::call(const Tensor& x, CallContext& ctx) {
    ctx.saved.clear();
    if (!ctx.training || rate == 0.0f) return x;
    const Tensor mask = random::dropout_mask(x.shape(), rate, x.device());
    ctx.saved = {mask};
    return backend::for_tensor(x).multiply(x, mask);
}

Tensor Dropout::backward(const Tensor& dy, CallContext& ctx) {
    if (ctx.saved.empty()) return dy;
    return backend::for_tensor(dy).multiply(dy, ctx.saved[0]);
}

nlohmann::json Dropout::get_config() const {
    auto config = Layer::get_config();
    config["rate"] = fields_detail::number_json(rate);
    write_fields(config, options);
    return config;
}

// ---- Activation

Activation::Activation(const std::string& activation, ActivationOptions options)
    : Layer("Activation", options.name, options.trainable), activation(activation_from_string(activation)), options(std::move(options)) {
    supports_masking = true;
}

Tensor Activation::call(const Tensor& x, CallContext& ctx) {
    Tensor y = backend::for_tensor(x).activation(activation, x);
    ctx.saved = {x, y};
    return y;
}

Tensor Activation::backward(const Tensor& dy, CallContext& ctx) {
    return backend::for_tensor(dy).activation_backward(activation, ctx.saved.at(0), ctx.saved.at(1), dy);
}

nlohmann::json Activation::get_config() const {
    auto config = Layer::get_config();
    config["activation"] = to_string(activation);
    write_fields(config, options);
    return config;
}

// ---- Flatten

Flatten::Flatten(FlattenOptions options) : Layer("Flatten", options.name, options.trainable), options(std::move(options)) {}

nlohmann::json Flatten::get_config() const {
    auto config = Layer::get_config();
    write_fields(config, options);
    return config;
}

void Flatten::check_input_shape(const Shape& input_shape) const { check_min_ndim(input_shape, 1); }

Shape Flatten::compute_output_shape(const Shape& input_shape) const {
    int64_t features = 1;
    for (size_t i = 1; i < input_shape.size(); ++i) {
        if (input_shape[i] < 0) return {input_shape[0], -1};
        features *= input_shape[i];
    }
    return {input_shape[0], features};
}

Tensor Flatten::call(const Tensor& x, CallContext& ctx) {
    ctx.saved = {};
    ctx.state = x.shape();   // this call's shape: a shared Flatten may see several
    return x.reshape({x.dim(0), x.dim(0) ? x.numel() / x.dim(0) : 0});
}

Tensor Flatten::backward(const Tensor& dy, CallContext& ctx) {
    return dy.reshape(std::any_cast<const Shape&>(ctx.state));
}

// ---- GlobalAveragePooling1D

GlobalAveragePooling1D::GlobalAveragePooling1D(GlobalAveragePooling1DOptions options)
    : Layer("GlobalAveragePooling1D", options.name, options.trainable), options(std::move(options)) {
    supports_masking = true;
}

nlohmann::json GlobalAveragePooling1D::get_config() const {
    auto config = Layer::get_config();
    write_fields(config, options);
    return config;
}

void GlobalAveragePooling1D::check_input_shape(const Shape& input_shape) const { check_ndim(input_shape, 3); }

Shape GlobalAveragePooling1D::compute_output_shape(const Shape& input_shape) const {
    return {input_shape[0], input_shape[2]};
}

namespace {
// For a masked mean built from the plain one: keep (N, T, C) zeroes the padding, and
// rescale (N, C) = T / real steps turns the mean over T into the mean over the real steps.
std::pair<Tensor, Tensor> masked_mean_factors(const Tensor& mask, const Shape& x_shape, const std::string& layer) {
    const int64_t n = x_shape[0], t = x_shape[1], c = x_shape[2];
    if (mask.shape() != Shape{n, t})
        value_error("Layer \"{}\": the mask has shape {}, expected {} for an input of shape {}", layer,
                    shape_str(mask.shape()), shape_str({n, t}), shape_str(x_shape));
    Tensor keep({n, t, c}, DType::float32), rescale({n, c}, DType::float32);
    const float* m = mask.data<float>();
    for (int64_t i = 0; i < n; ++i) {
        float real = 0.0f;
        for (int64_t s = 0; s < t; ++s) {
            real += m[i * t + s];
            std::fill_n(keep.data<float>() + (i * t + s) * c, c, m[i * t + s]);
        }
        std::fill_n(rescale.data<float>() + i * c, c, static_cast<float>(t) / real);   // real = 0: inf, then NaN
    }
    return {keep, rescale};
}
}  // namespace

// Saved: nothing, or {keep, rescale} with a mask; ctx.state = the number of steps.
Tensor GlobalAveragePooling1D::call(const Tensor& x, CallContext& ctx) {
    auto& be = backend::for_tensor(x);
    ctx.saved = {};
    ctx.state = x.dim(1);
    if (!ctx.mask.defined()) return be.mean_over_steps(x);
    auto [keep, rescale] = masked_mean_factors(ctx.mask, x.shape(), name());
    ctx.saved = {keep.to(x.device()), rescale.to(x.device())};
    return be.multiply(be.mean_over_steps(be.multiply(x, ctx.saved[0])), ctx.saved[1]);
}

Tensor GlobalAveragePooling1D::backward(const Tensor& dy, CallContext& ctx) {
    auto& be = backend::for_tensor(dy);
    const int64_t steps = std::any_cast<int64_t>(ctx.state);
    if (ctx.saved.empty()) return be.mean_over_steps_backward(dy, steps);
    return be.multiply(be.mean_over_steps_backward(be.multiply(dy, ctx.saved[1]), steps), ctx.saved[0]);
}

// ---- RepeatVector

RepeatVector::RepeatVector(int64_t n, RepeatVectorOptions options)
    : Layer("RepeatVector", options.name, options.trainable), n(n), options(std::move(options)) {
    if (n <= 0) value_error("Argument `n` should be a positive integer. Received: n={}", n);
}

nlohmann::json RepeatVector::get_config() const {
    auto config = Layer::get_config();
    config["n"] = n;
    write_fields(config, options);
    return config;
}

void RepeatVector::check_input_shape(const Shape& input_shape) const { check_ndim(input_shape, 2); }

Shape RepeatVector::compute_output_shape(const Shape& input_shape) const {
    return {input_shape[0], n, input_shape[1]};
}

Tensor RepeatVector::call(const Tensor& x, CallContext& ctx) {
    ctx.saved = {};
    // A plain copy loop on the host: no backend has a broadcast primitive, and this is no hot path.
    const Tensor host = x.to(Device::cpu());
    const int64_t batch = x.dim(0), features = x.dim(1);
    Tensor y({batch, n, features}, DType::float32);
    const float* src = host.data<float>();
    float* dst = y.data<float>();
    for (int64_t b = 0; b < batch; ++b)
        for (int64_t t = 0; t < n; ++t)
            std::copy(src + b * features, src + (b + 1) * features, dst + (b * n + t) * features);
    return y.to(x.device());
}

Tensor RepeatVector::backward(const Tensor& dy, CallContext& ctx) {
    (void)ctx;
    // Each input value fed n outputs: its gradient is the sum over the time axis (= n * mean).
    auto& be = backend::for_tensor(dy);
    Tensor dx = be.mean_over_steps(dy);
    be.scale_(dx, static_cast<float>(n));
    return dx;
}

}  // namespace keras::layers

