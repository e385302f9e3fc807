// Normalization layers written with keras::ops (their backward is automatic): BatchNormalization,
// LayerNormalization, UnitNormalization, with Keras 3's arguments, defaults and formulas.
#pragma once

#include "keras/export.hpp"

#include <optional>
#include <string>
#include <vector>

#include "keras/layer.hpp"
#include "keras/layers/fields.hpp"

namespace keras::layers {

// BatchNormalization's keyword arguments, in Keras's order.
struct KERAS_API BatchNormalizationOptions {
    int axis = -1;   // the features axis (one axis, as Keras 3)
    float momentum = 0.99f;
    float epsilon = 1e-3f;
    bool center = true;   // a beta offset
    bool scale = true;    // a gamma factor
    std::string beta_initializer = "zeros";
    std::string gamma_initializer = "ones";
    std::string moving_mean_initializer = "zeros";
    std::string moving_variance_initializer = "ones";
    // Penalties added to the loss and projections after each step, as Dense's.
    std::optional<regularizers::Regularizer> beta_regularizer{}, gamma_regularizer{};
    std::optional<constraints::Constraint> beta_constraint{}, gamma_constraint{};
    std::string name{};
    bool trainable = true;   // false freezes the weights (Keras's trainable=False)
    static const FieldTable<BatchNormalizationOptions>& fields();
};
// BatchNormalization's Keras config; axis is read by the loader (an int, or tf.keras's list of one).
inline const FieldTable<BatchNormalizationOptions>& BatchNormalizationOptions::fields() {
    using O = BatchNormalizationOptions;
    static const auto table = FieldTable<O>()
        .regularizer("beta_regularizer", &O::beta_regularizer)
        .regularizer("gamma_regularizer", &O::gamma_regularizer)
        .constraint("beta_constraint", &O::beta_constraint)
        .constraint("gamma_constraint", &O::gamma_constraint)
        .fixed("synchronized", "false")
        .fixed("renorm", "false")
        .nulls({"renorm_clipping"})
        .fixed("renorm_momentum", "0.99", true, false)
        .number("momentum", &O::momentum)
        .number("epsilon", &O::epsilon)
        .boolean("center", &O::center)
        .boolean("scale", &O::scale)
        .initializer("beta_initializer", &O::beta_initializer)
        .initializer("gamma_initializer", &O::gamma_initializer)
        .initializer("moving_mean_initializer", &O::moving_mean_initializer)
        .initializer("moving_variance_initializer", &O::moving_variance_initializer);
    return table;
}

// Keras's BatchNormalization: y = gamma * (x - mean) / sqrt(variance + epsilon) + beta per feature of
// `axis`. Training (and trainable) uses the batch's mean and variance over the other axes (over the real
// steps only under a mask) and moves moving_mean / moving_variance toward them by (1 - momentum);
// inference uses the moving ones. Weights, in Keras's order: gamma, beta (trainable), moving_mean,
// moving_variance (non-trainable).
class KERAS_API BatchNormalization : public Layer {
public:
    explicit BatchNormalization(BatchNormalizationOptions options = {});
    Shape compute_output_shape(const Shape& input_shape) const override { return input_shape; }
    Tensor call(const Tensor& x, CallContext& ctx) override;
    nlohmann::json get_config() const override;
    BatchNormalizationOptions options;
    VariablePtr gamma, beta, moving_mean, moving_variance;   // gamma / beta null without scale / center

protected:
    void check_input_shape(const Shape& input_shape) const override;
    void build(const Shape& input_shape) override;

private:
    Tensor normalize(const Tensor& x, const Tensor& mask, bool batch_statistics);
    void update_moving(const Tensor& mean, const Tensor& variance);
};

// LayerNormalization's keyword arguments, in Keras's order.
struct KERAS_API LayerNormalizationOptions {
    std::vector<int> axis{-1};   // the axes normalized over (and gamma / beta's shape)
    float epsilon = 1e-3f;
    bool center = true;
    bool scale = true;
    // Keras 3's (deprecated) rms_scaling: x / sqrt(variance + epsilon) * gamma, no centering, no beta.
    bool rms_scaling = false;
    std::string beta_initializer = "zeros";
    std::string gamma_initializer = "ones";
    std::optional<regularizers::Regularizer> beta_regularizer{}, gamma_regularizer{};
    std::optional<constraints::Constraint> beta_constraint{}, gamma_constraint{};
    std::string name{};
    bool trainable = true;   // false freezes the weights (Keras's trainable=False)
    static const FieldTable<LayerNormalizationOptions>& fields();
};
// LayerNormalization's Keras config; axis is read and written by the layer (an int or a list).
inline const FieldTable<LayerNormalizationOptions>& LayerNormalizationOptions::fields() {
    using O = LayerNormalizationOptions;
    static const auto table = FieldTable<O>()
        .regularizer("beta_regularizer", &O::beta_regularizer)
        .regularizer("gamma_regularizer", &O::gamma_regularizer)
        .constraint("beta_constraint", &O::beta_constraint)
        .constraint("gamma_constraint", &O::gamma_constraint)
        .number("epsilon", &O::epsilon)
        .boolean("center", &O::center)
        .boolean("scale", &O::scale)
        .boolean("rms_scaling", &O::rms_scaling)
        .initializer("beta_initializer", &O::beta_initializer)
        .initializer("gamma_initializer", &O::gamma_initializer);
    return table;
}

// Keras's LayerNormalization: each sample normalized over `axis` by its own mean and variance, then
// gamma * . + beta. The same in training and inference.
class KERAS_API LayerNormalization : public Layer {
public:
    explicit LayerNormalization(LayerNormalizationOptions options = {});
    Shape compute_output_shape(const Shape& input_shape) const override { return input_shape; }
    Tensor call(const Tensor& x) override;
    nlohmann::json get_config() const override;
    LayerNormalizationOptions options;
    VariablePtr gamma, beta;

protected:
    void check_input_shape(const Shape& input_shape) const override;
    void build(const Shape& input_shape) override;
};

// UnitNormalization's keyword arguments.
struct KERAS_API UnitNormalizationOptions {
    std::vector<int> axis{-1};
    std::string name{};
    bool trainable = true;   // false freezes the weights (Keras's trainable=False)
    static const FieldTable<UnitNormalizationOptions>& fields();
};
// UnitNormalization's Keras config is its axis, read and written by the layer.
inline const FieldTable<UnitNormalizationOptions>& UnitNormalizationOptions::fields() {
    static const auto table = FieldTable<UnitNormalizationOptions>();
    return table;
}

// Keras's UnitNormalization: x / ||x||_2 over `axis` (x * min(1/||x||, 1e12), so zeros stay zeros).
class KERAS_API UnitNormalization : public Layer {
public:
    explicit UnitNormalization(UnitNormalizationOptions options = {});
    Shape compute_output_shape(const Shape& input_shape) const override { return input_shape; }
    Tensor call(const Tensor& x) override;
    nlohmann::json get_config() const override;
    UnitNormalizationOptions options;

protected:
    void check_input_shape(const Shape& input_shape) const override;
};

}  // namespace keras::layers
