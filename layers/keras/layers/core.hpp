// Small layers without weights: Dropout, Activation, Flatten, GlobalAveragePooling1D, RepeatVector (and Input,
// which lives in the framework because models need it).
#pragma once

#include "keras/export.hpp"

#include <string>

#include "keras/activations.hpp"
#include "keras/input_layer.hpp"
#include "keras/layer.hpp"
#include "keras/layers/fields.hpp"

namespace keras::layers {

// Dropout's keyword arguments besides rate.
struct KERAS_API DropoutOptions {
    std::string name{};
    bool trainable = true;   // false: the layer's weights are frozen (Keras's trainable=False)
    static const FieldTable<DropoutOptions>& fields();
};
// Dropout's Keras config besides rate (the constructor's): seed is written as Keras 3 does and ignored when loading.
inline const FieldTable<DropoutOptions>& DropoutOptions::fields() {
    static const auto table = FieldTable<DropoutOptions>()
        .nulls({"noise_shape"})
        .fixed("seed", "null", true, false);
    return table;
}
// Zeroes a fraction `rate` of inputs while training and scales the rest by 1/(1-rate).
class KERAS_API Dropout : public Layer {
public:
    explicit Dropout(float rate, DropoutOptions options = {});
    Shape compute_output_shape(const Shape& input_shape) const override { return input_shape; }
    Tensor call(const Tensor& x, CallContext& ctx) override;
    Tensor backward(const Tensor& dy, CallContext& ctx) override;
    nlohmann::json get_config() const override;
    float rate;
    DropoutOptions options;
};

// Activation's keyword arguments besides the activation.
struct KERAS_API ActivationOptions {
    std::string name{};
    bool trainable = true;   // false: the layer's weights are frozen (Keras's trainable=False)
    static const FieldTable<ActivationOptions>& fields();
};
// Activation's Keras config is its activation, the constructor's argument.
inline const FieldTable<ActivationOptions>& ActivationOptions::fields() {
    static const auto table = FieldTable<ActivationOptions>();
    return table;
}
// Applies an activation function element-wise (Keras's Activation layer).
class KERAS_API Activation : public Layer {
public:
    explicit Activation(const std::string& activation, ActivationOptions options = {});
    Shape compute_output_shape(const Shape& input_shape) const override { return input_shape; }
    Tensor call(const Tensor& x, CallContext& ctx) override;
    Tensor backward(const Tensor& dy, CallContext& ctx) override;
    nlohmann::json get_config() const override;
    keras::Activation activation;
    ActivationOptions options;
};

// Flatten's keyword arguments.
struct KERAS_API FlattenOptions {
    std::string name{};
    bool trainable = true;   // false: the layer's weights are frozen (Keras's trainable=False)
    static const FieldTable<FlattenOptions>& fields();
};
// Flatten's Keras config.
inline const FieldTable<FlattenOptions>& FlattenOptions::fields() {
    static const auto table = FieldTable<FlattenOptions>()
        .fixed("data_format", "\"channels_last\"");
    return table;
}
// (batch, d1, d2, ...) -> (batch, d1*d2*...).
class KERAS_API Flatten : public Layer {
public:
    explicit Flatten(FlattenOptions options = {});
    Shape compute_output_shape(const Shape& input_shape) const override;
    Tensor call(const Tensor& x, CallContext& ctx) override;
    Tensor backward(const Tensor& dy, CallContext& ctx) override;
    nlohmann::json get_config() const override;
    FlattenOptions options;
protected:
    void check_input_shape(const Shape& input_shape) const override;
};

// GlobalAveragePooling1D's keyword arguments.
struct KERAS_API GlobalAveragePooling1DOptions {
    std::string name{};
    bool trainable = true;   // false: the layer's weights are frozen (Keras's trainable=False)
    static const FieldTable<GlobalAveragePooling1DOptions>& fields();
};
// GlobalAveragePooling1D's Keras config.
inline const FieldTable<GlobalAveragePooling1DOptions>& GlobalAveragePooling1DOptions::fields() {
    static const auto table = FieldTable<GlobalAveragePooling1DOptions>()
        .fixed("data_format", "\"channels_last\"")
        .fixed("keepdims", "false");
    return table;
}
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
    GlobalAveragePooling1DOptions options;
protected:
    void check_input_shape(const Shape& input_shape) const override;
};

// RepeatVector's keyword arguments besides n.
struct KERAS_API RepeatVectorOptions {
    std::string name{};
    bool trainable = true;   // false: the layer's weights are frozen (Keras's trainable=False)
    static const FieldTable<RepeatVectorOptions>& fields();
};
// RepeatVector's Keras config is n, the constructor's argument.
inline const FieldTable<RepeatVectorOptions>& RepeatVectorOptions::fields() {
    static const auto table = FieldTable<RepeatVectorOptions>();
    return table;
}
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
    RepeatVectorOptions options;
protected:
    void check_input_shape(const Shape& input_shape) const override;
};

}  // namespace keras::layers
