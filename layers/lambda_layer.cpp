#include "keras/layers/lambda_layer.hpp"

#include "keras/errors.hpp"

namespace keras::layers {

Lambda::Lambda(Function function, LambdaOptions options)
    : Layer("Lambda", options.name, options.trainable), function_(std::move(function)), output_shape_(std::move(options.output_shape)) {
    if (!function_) value_error("Lambda: the function is empty");
    supports_masking = options.supports_masking;
}

Tensor Lambda::call(const Tensor& inputs) { return function_(inputs); }

Shape Lambda::compute_output_shape(const Shape& input_shape) const {
    if (!output_shape_) return Layer::compute_output_shape(input_shape);
    Shape out{input_shape.empty() ? -1 : input_shape[0]};
    out.insert(out.end(), output_shape_->begin(), output_shape_->end());
    return out;
}

nlohmann::json Lambda::get_config() const {
    auto config = Layer::get_config();
    config["function"] = "<C++ function: not serializable>";
    config["output_shape"] = output_shape_ ? nlohmann::json(*output_shape_) : nlohmann::json(nullptr);
    return config;
}

}  // namespace keras::layers
