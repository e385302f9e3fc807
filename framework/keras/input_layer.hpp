// InputLayer: declares the shape of one sample at the start of a model. It sits in the framework,
// not in layers/, because Sequential and Model build themselves from it.
#pragma once

#include <string>

#include "keras/layer.hpp"

namespace keras::layers {

struct InputOptions {
    DType dtype = DType::float32;
    std::string name{};
};
// Declares the shape of one sample (no batch axis) at the start of a Sequential model.
class InputLayer : public Layer {
public:
    explicit InputLayer(Shape shape, InputOptions options = {});
    Shape compute_output_shape(const Shape& input_shape) const override;
    Tensor call(const Tensor& x, CallContext& ctx) override { (void)ctx; return x; }
    Tensor backward(const Tensor& dy, CallContext& ctx) override { (void)ctx; return dy; }
    nlohmann::json get_config() const override;
    Shape shape;      // without the batch axis
    DType dtype;
protected:
    void check_input_shape(const Shape& input_shape) const override;
};
// keras.Input / layers.Input for Sequential models.
inline InputLayer Input(Shape shape, InputOptions options = {}) { return InputLayer(std::move(shape), options); }

}  // namespace keras::layers
