#include "keras/input_layer.hpp"

#include "keras/errors.hpp"

namespace keras::layers {

InputLayer::InputLayer(Shape shape, InputOptions options)
    : Layer("InputLayer", options.name), shape(std::move(shape)), dtype(options.dtype) {
    for (int64_t d : this->shape)
        if (d == 0 || d < -1) value_error("Input: every dimension must be positive or -1 (None), got {}", shape_str(this->shape));
}

void InputLayer::check_input_shape(const Shape& input_shape) const {
    Shape expected = {-1};
    expected.insert(expected.end(), shape.begin(), shape.end());
    bool ok = input_shape.size() == expected.size();
    for (size_t i = 1; ok && i < expected.size(); ++i)
        ok = expected[i] < 0 || input_shape[i] < 0 || expected[i] == input_shape[i];
    if (!ok) input_error(fmt::format("expected shape={}, found shape={}", shape_str(expected), shape_str(input_shape)), input_shape);
}

Shape InputLayer::compute_output_shape(const Shape& input_shape) const {
    Shape out = {input_shape.empty() ? -1 : input_shape[0]};
    out.insert(out.end(), shape.begin(), shape.end());
    return out;
}

nlohmann::json InputLayer::get_config() const {
    Shape batch_shape = {-1};
    batch_shape.insert(batch_shape.end(), shape.begin(), shape.end());
    nlohmann::json dims = nlohmann::json::array();
    for (int64_t d : batch_shape) dims.push_back(d < 0 ? nlohmann::json(nullptr) : nlohmann::json(d));
    return {{"name", name()}, {"batch_shape", dims}, {"dtype", to_string(dtype)}, {"sparse", false},
            {"ragged", false}, {"optional", false}};
}

}  // namespace keras::layers
