#pragma once

#include "keras/export.hpp"

#include <optional>
#include <string>

#include "keras/activations.hpp"
#include "keras/layer.hpp"
#include "keras/layers/fields.hpp"

namespace keras::layers {

// Dense's keyword arguments, in Keras's order.
struct KERAS_API DenseOptions {
    std::string activation{};   // empty = linear
    bool use_bias = true;
    std::string kernel_initializer = "glorot_uniform";
    std::string bias_initializer = "zeros";
    // Penalties added to the loss (regularizers::L2(1e-4), "l2", ...) and projections after each step.
    std::optional<regularizers::Regularizer> kernel_regularizer{}, bias_regularizer{};
    std::optional<constraints::Constraint> kernel_constraint{}, bias_constraint{};
    std::string name{};
    bool trainable = true;   // false: the layer's weights are frozen (Keras's trainable=False)
    // Keras's dtype: a policy name ("float32", "mixed_bfloat16"); empty = the global policy
    // (keras::mixed_precision::global_policy()) when the layer is made.
    std::string dtype{};
    static const FieldTable<DenseOptions>& fields();
};

// Dense's Keras config (get_config and loading); units is the constructor's.
inline const FieldTable<DenseOptions>& DenseOptions::fields() {
    using O = DenseOptions;
    static const auto table = FieldTable<O>()
        .nulls({"quantization_config"})
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

// y = activation(x W + b) over the last axis; input (batch, ..., features).
class KERAS_API Dense : public Layer {
public:
    explicit Dense(int64_t units, DenseOptions options = {});
    // Dense(1, "sigmoid"); with a std::string use Dense(1, {.activation = s}).
    Dense(int64_t units, const char* activation) : Dense(units, DenseOptions{.activation = activation}) {}

    Shape compute_output_shape(const Shape& input_shape) const override;
    Tensor call(const Tensor& x, CallContext& ctx) override;
    Tensor backward(const Tensor& dy, CallContext& ctx) override;
    nlohmann::json get_config() const override;

    int64_t units;
    keras::Activation activation;
    DenseOptions options;

protected:
    void check_input_shape(const Shape& input_shape) const override;
    void build(const Shape& input_shape) override;
};

}  // namespace keras::layers
