// InputLayer: declares the shape of one sample at the start of a model. It sits in the framework,
// not in layers/, because Sequential and Model build themselves from it.
#pragma once

#include "keras/export.hpp"

#include <optional>
#include <string>

#include "keras/layer.hpp"

namespace keras::layers {

// Keras's arguments, in Keras's order. batch_size fixes the batch axis (stateful RNNs need it);
// batch_shape gives the whole shape with the batch axis (-1 = None) instead of `shape`, which is
// then left empty: Input({}, {.batch_shape = {4, 10, 8}}) is Keras's Input(batch_shape=(4, 10, 8)).
struct KERAS_API InputOptions {
    std::optional<int64_t> batch_size{};
    DType dtype = DType::float32;
    Shape batch_shape{};
    std::string name{};
};
// Declares the shape of one sample (and, optionally, a fixed batch size) at the start of a model.
class KERAS_API InputLayer : public Layer {
public:
    explicit InputLayer(Shape shape, InputOptions options = {});
    // The shape with its batch axis: (batch_size, *shape), -1 for None.
    Shape batch_shape() const;
    Shape compute_output_shape(const Shape& input_shape) const override;
    Tensor call(const Tensor& x, CallContext& ctx) override { (void)ctx; return x; }
    Tensor backward(const Tensor& dy, CallContext& ctx) override { (void)ctx; return dy; }
    nlohmann::json get_config() const override;
    Shape shape;      // without the batch axis
    int64_t batch_size = -1;   // -1 = None (any batch size)
    DType dtype;
protected:
    void check_input_shape(const Shape& input_shape) const override;
};
// keras.Input / layers.Input for Sequential models: Input({10, 8}) or Input({10, 8}, {.batch_size = 4}).
inline InputLayer Input(Shape shape, InputOptions options = {}) { return InputLayer(std::move(shape), options); }

}  // namespace keras::layers
