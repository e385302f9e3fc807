// Small layers without weights: Dropout, Activation, Flatten, GlobalAveragePooling1D, RepeatVector (and Input,
// which lives in the framework because models need it).
#pragma once

#include "keras/export.hpp"

#include <string>

#include "keras/activations.hpp"
#include "keras/input_layer.hpp"
#include "keras/layer.hpp"

namespace keras::layers {

struct KERAS_API DropoutOptions {
    std::string name{};
};
// Zeroes a fraction `rate` of inputs while training and scales the rest by 1/(1-rate).
class KERAS_API Dropout : public Layer {
public:
    explicit Dropout(float rate, DropoutOptions options = {});
    Shape compute_output_shape(const Shape& input_shape) const override { return input_shape; }
    Tensor call(const Tensor& x, CallContext& ctx) override;
    Tensor backward(const Tensor& dy, CallContext& ctx) override;
    nlohmann::json get_config() const override;
    float rate;
};

struct KERAS_API ActivationOptions {
    std::string name{};
};
class KERAS_API Activation : public Layer {
public:
    explicit Activation(const std::string& activation, ActivationOptions options = {});
    Shape compute_output_shape(const Shape& input_shape) const override { return input_shape; }
    Tensor call(const Tensor& x, CallContext& ctx) override;
    Tensor backward(const Tensor& dy, CallContext& ctx) override;
    nlohmann::json get_config() const override;
    keras::Activation activation;
};

struct KERAS_API FlattenOptions {
    std::string name{};
};
// (batch, d1, d2, ...) -> (batch, d1*d2*...).
class KERAS_API Flatten : public Layer {
public:
    explicit Flatten(FlattenOptions options = {});
    Shape compute_output_shape(const Shape& input_shape) const override;
    Tensor call(const Tensor& x, CallContext& ctx) override;
    Tensor backward(const Tensor& dy, CallContext& ctx) override;
    nlohmann::json get_config() const override;
protected:
    void check_input_shape(const Shape& input_shape) const override;
};

struct KERAS_API GlobalAveragePooling1DOptions {
    std::string name{};
};
// (batch, steps, features) -> (batch, features), the mean over steps; with a mask, the mean over the
// real steps only (Keras: a sample with no real step gives NaN, 0/0).
class KERAS_API GlobalAveragePooling1D : public Layer {
public:
    explicit GlobalAveragePooling1D(GlobalAveragePooling1DOptions options = {});
    Shape compute_output_shape(const Shape& input_shape) const override;
    Tensor call(const Tensor& x, CallContext& ctx) override;
    Tensor backward(const Tensor& dy, CallContext& ctx) override;
    // The steps axis is gone: no mask comes out.
    Tensor compute_mask(const Tensor&, const Tensor&) const override { return {}; }
    nlohmann::json get_config() const override;
protected:
    void check_input_shape(const Shape& input_shape) const override;
};

struct KERAS_API RepeatVectorOptions {
    std::string name{};
};
// (batch, features) -> (batch, n, features): the input repeated n times along a new time axis
// (the bridge from an encoder's final state to a decoder's steps).
class KERAS_API RepeatVector : public Layer {
public:
    explicit RepeatVector(int64_t n, RepeatVectorOptions options = {});
    Shape compute_output_shape(const Shape& input_shape) const override;
    Tensor call(const Tensor& x, CallContext& ctx) override;
    Tensor backward(const Tensor& dy, CallContext& ctx) override;
    nlohmann::json get_config() const override;
    int64_t n;
protected:
    void check_input_shape(const Shape& input_shape) const override;
};

}  // namespace keras::layers
