#pragma once

#include "keras/export.hpp"

#include <string>

#include "keras/activations.hpp"
#include "keras/layer.hpp"

namespace keras::layers {

struct KERAS_API DenseOptions {
    std::string activation{};   // empty = linear
    bool use_bias = true;
    std::string kernel_initializer = "glorot_uniform";
    std::string bias_initializer = "zeros";
    std::string name{};
};

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
