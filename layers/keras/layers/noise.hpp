// Regularization layers, written with keras::ops: SpatialDropout1D, GaussianNoise, GaussianDropout (which
// act only while training: in inference each passes its input through unchanged) and ActivityRegularization.
#pragma once

#include "keras/export.hpp"

#include <string>

#include "keras/layer.hpp"
#include "keras/layers/fields.hpp"

namespace keras::layers {

// The three share their config: the constructor's rate / stddev, and Keras 3's seed (written as null,
// ignored when loading, as Dropout's).
struct KERAS_API NoiseOptions {
    std::string name{};
    bool trainable = true;   // false freezes the weights (Keras's trainable=False)
    static const FieldTable<NoiseOptions>& fields();
};
inline const FieldTable<NoiseOptions>& NoiseOptions::fields() {
    static const auto table = FieldTable<NoiseOptions>().fixed("seed", "null", true, false);
    return table;
}

// Keras's SpatialDropout1D: on (batch, steps, features), drops whole feature channels (the same
// features at every step of a sample) with probability `rate`, scaling the rest by 1 / (1 - rate).
class KERAS_API SpatialDropout1D : public Layer {
public:
    explicit SpatialDropout1D(float rate, NoiseOptions options = {});
    Shape compute_output_shape(const Shape& input_shape) const override { return input_shape; }
    Tensor call(const Tensor& x, bool training) override;
    nlohmann::json get_config() const override;
    float rate;
    NoiseOptions options;

protected:
    void check_input_shape(const Shape& input_shape) const override { check_ndim(input_shape, 3); }
};

// Keras's GaussianNoise: adds N(0, stddev^2) noise while training.
class KERAS_API GaussianNoise : public Layer {
public:
    explicit GaussianNoise(float stddev, NoiseOptions options = {});
    Shape compute_output_shape(const Shape& input_shape) const override { return input_shape; }
    Tensor call(const Tensor& x, bool training) override;
    nlohmann::json get_config() const override;
    float stddev;
    NoiseOptions options;
};

// Keras's GaussianDropout: multiplies by N(1, rate / (1 - rate)) noise while training.
class KERAS_API GaussianDropout : public Layer {
public:
    explicit GaussianDropout(float rate, NoiseOptions options = {});
    Shape compute_output_shape(const Shape& input_shape) const override { return input_shape; }
    Tensor call(const Tensor& x, bool training) override;
    nlohmann::json get_config() const override;
    float rate;
    NoiseOptions options;
};

// Keras's ActivityRegularization: passes its input on and adds l1 * sum(|x|) + l2 * sum(x^2), divided by
// the batch size, to the loss (its activity_regularizer, L1L2(l1, l2)). Its config is l1 and l2 (the
// seed entry of NoiseOptions is not written: options only carry the name).
class KERAS_API ActivityRegularization : public Layer {
public:
    explicit ActivityRegularization(float l1 = 0.0f, float l2 = 0.0f, NoiseOptions options = {});
    Shape compute_output_shape(const Shape& input_shape) const override { return input_shape; }
    Tensor call(const Tensor& x, CallContext&) override { return x; }
    Tensor backward(const Tensor& dy, CallContext&) override { return dy; }   // the penalty's gradient: the model adds it
    nlohmann::json get_config() const override;
    float l1, l2;
    NoiseOptions options;
};

}  // namespace keras::layers
