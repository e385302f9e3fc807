// Keras's Lambda layer: any function of ops as a layer, its backward automatic.
//
//     auto scale = layers::Lambda([](const Tensor& x) { return ops::multiply(x, 0.5f); });
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "keras/export.hpp"
#include "keras/layer.hpp"

namespace keras::layers {

// Lambda's keyword arguments.
struct KERAS_API LambdaOptions {
    // The output shape without the batch axis; unset = found by running the function.
    std::optional<Shape> output_shape = std::nullopt;
    bool supports_masking = false;   // pass the input's mask on unchanged
    std::string name = {};
    bool trainable = true;   // false: the layer's weights are frozen (Keras's trainable=False)
};

// Keras's Lambda: a function of ops as a layer, its backward automatic.
class KERAS_API Lambda : public Layer {
public:
    using Function = std::function<Tensor(const Tensor&)>;
    explicit Lambda(Function function, LambdaOptions options = {});
    Tensor call(const Tensor& inputs) override;
    Shape compute_output_shape(const Shape& input_shape) const override;
    // Keras saves the Python function's bytecode; a C++ function cannot be saved, so the config
    // says so and load_model refuses it by name (rebuild the model in code and load its weights).
    nlohmann::json get_config() const override;

private:
    Function function_;
    std::optional<Shape> output_shape_;
};

}  // namespace keras::layers
