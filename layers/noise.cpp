#include "keras/layers/noise.hpp"

#include <cmath>

#include "keras/errors.hpp"
#include "keras/ops.hpp"
#include "keras/random.hpp"

namespace keras::layers {

namespace {
// mean + stddev * N(0, 1) of `shape`, drawn on the host from the seeded generator.
Tensor normal_noise(const Shape& shape, float mean, float stddev, Device device) {
    Tensor noise(shape, DType::float32);
    float* p = noise.data<float>();
    for (int64_t i = 0; i < noise.numel(); ++i) p[i] = mean + stddev * static_cast<float>(random::normal());
    return noise.to(device);
}

nlohmann::json config_with(const Layer& layer, const char* key, float value, const NoiseOptions& options) {
    auto config = layer.Layer::get_config();
    config[key] = fields_detail::number_json(value);
    write_fields(config, options);
    return config;
}
}  // namespace

// ---- SpatialDropout1D

SpatialDropout1D::SpatialDropout1D(float rate, NoiseOptions options)
    : Layer("SpatialDropout1D", options.name, options.trainable), rate(rate), options(std::move(options)) {
    supports_masking = true;
    if (!(rate >= 0.0f && rate < 1.0f))
        value_error("Invalid value received for argument `rate`. Expected a float value between 0 and 1. Received: rate={}", rate);
}

Tensor SpatialDropout1D::call(const Tensor& x, bool training) {
    if (!training || rate == 0.0f) return x;
    // One keep / drop draw per (sample, feature), broadcast over the steps.
    return ops::multiply(x, random::dropout_mask({x.dim(0), 1, x.dim(2)}, rate, x.device()));
}

nlohmann::json SpatialDropout1D::get_config() const { return config_with(*this, "rate", rate, options); }

// ---- GaussianNoise

GaussianNoise::GaussianNoise(float stddev, NoiseOptions options)
    : Layer("GaussianNoise", options.name, options.trainable), stddev(stddev), options(std::move(options)) {
    supports_masking = true;
    if (!(stddev >= 0.0f && stddev <= 1.0f))
        value_error("Invalid value received for argument `stddev`. Expected a float value between 0 and 1. "
                    "Received: stddev={}", stddev);
}

Tensor GaussianNoise::call(const Tensor& x, bool training) {
    if (!training || stddev == 0.0f) return x;
    return ops::add(x, normal_noise(x.shape(), 0.0f, stddev, x.device()));
}

nlohmann::json GaussianNoise::get_config() const { return config_with(*this, "stddev", stddev, options); }

// ---- GaussianDropout

GaussianDropout::GaussianDropout(float rate, NoiseOptions options)
    : Layer("GaussianDropout", options.name, options.trainable), rate(rate), options(std::move(options)) {
    supports_masking = true;
    if (!(rate >= 0.0f && rate <= 1.0f))
        value_error("Invalid value received for argument `rate`. Expected a float value between 0 and 1. Received: rate={}", rate);
}

Tensor GaussianDropout::call(const Tensor& x, bool training) {
    if (!training || rate == 0.0f) return x;
    const float stddev = static_cast<float>(std::sqrt(static_cast<double>(rate) / (1.0 - rate)));
    return ops::multiply(x, normal_noise(x.shape(), 1.0f, stddev, x.device()));
}

nlohmann::json GaussianDropout::get_config() const { return config_with(*this, "rate", rate, options); }

// ---- ActivityRegularization

ActivityRegularization::ActivityRegularization(float l1, float l2, NoiseOptions options)
    : Layer("ActivityRegularization", options.name, options.trainable), l1(l1), l2(l2), options(std::move(options)) {
    supports_masking = true;
    activity_regularizer = regularizers::L1L2(l1, l2);   // checks l1, l2 >= 0 with Keras's message
}

nlohmann::json ActivityRegularization::get_config() const {
    auto config = Layer::get_config();
    config.erase("activity_regularizer");   // Keras: l1 and l2 say it
    config["l1"] = fields_detail::number_json(l1);
    config["l2"] = fields_detail::number_json(l2);
    return config;
}

}  // namespace keras::layers
