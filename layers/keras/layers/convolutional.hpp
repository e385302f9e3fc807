// Keras's 1-D convolution and pooling layers over (batch, steps, channels): Conv1D, SeparableConv1D,
// MaxPooling1D, AveragePooling1D. Written with ops (each output step's window gathered with ops::take,
// then one matmul or reduction): the backward pass is automatic. Keras's arguments, defaults, shape
// rules and messages; data_format channels_first runs the same computation between two transposes.
// Like Keras, none of them supports masking: a mask arriving is dropped with Keras 3's warning.
#pragma once

#include <optional>
#include <string>

#include "keras/activations.hpp"
#include "keras/export.hpp"
#include "keras/layer.hpp"
#include "keras/layers/fields.hpp"

namespace keras::layers {

// Keras's padding argument of the 1-D layers: "valid", "same" or (convolutions only) "causal".
// kernel_size, strides and dilation_rate are Keras's 1-tuples, written as [k] by get_config().
struct KERAS_API Conv1DOptions {
    int strides = 1;
    std::string padding = "valid";
    std::string data_format = "channels_last";   // or "channels_first": (batch, channels, steps)
    int dilation_rate = 1;
    int groups = 1;
    std::string activation{};   // empty = linear
    bool use_bias = true;
    std::string kernel_initializer = "glorot_uniform";
    std::string bias_initializer = "zeros";
    // Penalties added to the loss and projections after each step, as Dense's.
    std::optional<regularizers::Regularizer> kernel_regularizer{}, bias_regularizer{};
    std::optional<constraints::Constraint> kernel_constraint{}, bias_constraint{};
    std::string name{};
    bool trainable = true;   // false freezes the weights (Keras's trainable=False)
    static const FieldTable<Conv1DOptions>& fields();
};

// Conv1D's Keras config besides filters, kernel_size, strides, padding, data_format and dilation_rate
// (the layer's).
inline const FieldTable<Conv1DOptions>& Conv1DOptions::fields() {
    using O = Conv1DOptions;
    static const auto table = FieldTable<O>()
        .integer("groups", &O::groups)
        .activation("activation", &O::activation)
        .boolean("use_bias", &O::use_bias)
        .initializer("kernel_initializer", &O::kernel_initializer)
        .initializer("bias_initializer", &O::bias_initializer)
        .regularizer("kernel_regularizer", &O::kernel_regularizer)
        .regularizer("bias_regularizer", &O::bias_regularizer)
        .constraint("kernel_constraint", &O::kernel_constraint)
        .constraint("bias_constraint", &O::bias_constraint);
    return table;
}

// y[t] = activation(sum_j x[t*strides + j*dilation_rate - pad] W[j] + b): kernel (kernel_size,
// channels / groups, filters), bias (filters,). groups splits the channels and the filters into that
// many independent convolutions, as Keras's.
class KERAS_API Conv1D : public Layer {
public:
    Conv1D(int64_t filters, int64_t kernel_size, Conv1DOptions options = {});
    Conv1D(int64_t filters, int64_t kernel_size, const char* activation)
        : Conv1D(filters, kernel_size, Conv1DOptions{.activation = activation}) {}
    Shape compute_output_shape(const Shape& input_shape) const override;
    Tensor call(const Tensor& inputs) override;
    nlohmann::json get_config() const override;

    int64_t filters, kernel_size;
    Conv1DOptions options;
    VariablePtr kernel, bias;

protected:
    void check_input_shape(const Shape& input_shape) const override;
    void check_built_shape(const Shape& input_shape) const override;
    void build(const Shape& input_shape) override;

private:
    keras::Activation activation_;
};

// SeparableConv1D's keyword arguments, in Keras's order.
struct KERAS_API SeparableConv1DOptions {
    int strides = 1;
    std::string padding = "valid";
    std::string data_format = "channels_last";
    int dilation_rate = 1;
    int depth_multiplier = 1;
    std::string activation{};
    bool use_bias = true;
    std::string depthwise_initializer = "glorot_uniform";
    std::string pointwise_initializer = "glorot_uniform";
    std::string bias_initializer = "zeros";
    std::optional<regularizers::Regularizer> depthwise_regularizer{}, pointwise_regularizer{}, bias_regularizer{};
    std::optional<constraints::Constraint> depthwise_constraint{}, pointwise_constraint{}, bias_constraint{};
    std::string name{};
    bool trainable = true;   // false freezes the weights (Keras's trainable=False)
    static const FieldTable<SeparableConv1DOptions>& fields();
};

inline const FieldTable<SeparableConv1DOptions>& SeparableConv1DOptions::fields() {
    using O = SeparableConv1DOptions;
    static const auto table = FieldTable<O>()
        .integer("depth_multiplier", &O::depth_multiplier)
        .activation("activation", &O::activation)
        .boolean("use_bias", &O::use_bias)
        .initializer("depthwise_initializer", &O::depthwise_initializer)
        .initializer("pointwise_initializer", &O::pointwise_initializer)
        .initializer("bias_initializer", &O::bias_initializer)
        .regularizer("depthwise_regularizer", &O::depthwise_regularizer)
        .regularizer("pointwise_regularizer", &O::pointwise_regularizer)
        .regularizer("bias_regularizer", &O::bias_regularizer)
        .constraint("depthwise_constraint", &O::depthwise_constraint)
        .constraint("pointwise_constraint", &O::pointwise_constraint)
        .constraint("bias_constraint", &O::bias_constraint);
    return table;
}

// A depthwise convolution (each channel with its own depth_multiplier kernels: depthwise_kernel
// (kernel_size, channels, depth_multiplier)) followed by a pointwise one (pointwise_kernel
// (1, channels * depth_multiplier, filters)), then bias (filters,) and the activation, as Keras's.
class KERAS_API SeparableConv1D : public Layer {
public:
    SeparableConv1D(int64_t filters, int64_t kernel_size, SeparableConv1DOptions options = {});
    Shape compute_output_shape(const Shape& input_shape) const override;
    Tensor call(const Tensor& inputs) override;
    nlohmann::json get_config() const override;

    int64_t filters, kernel_size;
    SeparableConv1DOptions options;
    VariablePtr depthwise_kernel, pointwise_kernel, bias;

protected:
    void check_input_shape(const Shape& input_shape) const override;
    void check_built_shape(const Shape& input_shape) const override;
    void build(const Shape& input_shape) override;

private:
    keras::Activation activation_;
};

// strides 0 = Keras's None: the pool size.
struct KERAS_API Pooling1DOptions {
    int strides = 0;
    std::string padding = "valid";
    std::string data_format = "channels_last";
    std::string name{};
    bool trainable = true;   // false freezes the weights (Keras's trainable=False)
    static const FieldTable<Pooling1DOptions>& fields();
};

inline const FieldTable<Pooling1DOptions>& Pooling1DOptions::fields() {
    static const auto table = FieldTable<Pooling1DOptions>();
    return table;
}

// MaxPooling1D and AveragePooling1D: the maximum / mean of each window of pool_size steps, windows
// `strides` apart. padding "same" pads as TensorFlow does; the padding never counts (the maximum
// ignores it, the mean divides by the real steps of the window).
class KERAS_API Pooling1D : public Layer {
public:
    Shape compute_output_shape(const Shape& input_shape) const override;
    Tensor call(const Tensor& inputs) override;
    nlohmann::json get_config() const override;

    int64_t pool_size;
    Pooling1DOptions options;

protected:
    Pooling1D(const std::string& class_name, bool max, int64_t pool_size, Pooling1DOptions options);
    void check_input_shape(const Shape& input_shape) const override;

private:
    bool max_;
};

// Keras's MaxPooling1D: the largest value of each window of pool_size steps.
class KERAS_API MaxPooling1D : public Pooling1D {
public:
    explicit MaxPooling1D(int64_t pool_size = 2, Pooling1DOptions options = {})
        : Pooling1D("MaxPooling1D", true, pool_size, std::move(options)) {}
};

// Keras's AveragePooling1D: the mean of each window of pool_size steps (padding not counted).
class KERAS_API AveragePooling1D : public Pooling1D {
public:
    explicit AveragePooling1D(int64_t pool_size, Pooling1DOptions options = {})
        : Pooling1D("AveragePooling1D", false, pool_size, std::move(options)) {}
};

}  // namespace keras::layers
