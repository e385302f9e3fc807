// Keras's GlobalMaxPooling1D: the maximum over the steps axis, (batch, steps, features) ->
// (batch, features), or (batch, 1, features) with keepdims. Written with ops: build + call only.
#pragma once

#include <string>

#include "keras/export.hpp"
#include "keras/layer.hpp"

namespace keras::layers {

struct KERAS_API GlobalMaxPooling1DOptions {
    std::string data_format = "channels_last";   // or "channels_first": (batch, features, steps)
    bool keepdims = false;
    std::string name = {};
};

class KERAS_API GlobalMaxPooling1D : public Layer {
public:
    explicit GlobalMaxPooling1D(GlobalMaxPooling1DOptions options = {});
    Tensor call(const Tensor& inputs) override;
    nlohmann::json get_config() const override;
    GlobalMaxPooling1DOptions options;

protected:
    void check_input_shape(const Shape& input_shape) const override { check_ndim(input_shape, 3); }
};

}  // namespace keras::layers
