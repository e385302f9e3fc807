// Keras's GlobalMaxPooling1D: the maximum over the steps axis, (batch, steps, features) ->
// (batch, features), or (batch, 1, features) with keepdims. Written with ops: call only; the
// backward pass is automatic and the config comes from the options' field table.
#pragma once

#include <string>

#include "keras/export.hpp"
#include "keras/layer.hpp"
#include "keras/layers/fields.hpp"

namespace keras::layers {

// GlobalMaxPooling1D's keyword arguments.
struct KERAS_API GlobalMaxPooling1DOptions {
    bool keepdims = false;
    std::string name = {};
    bool trainable = true;   // false: the layer's weights are frozen (Keras's trainable=False)
    static const FieldTable<GlobalMaxPooling1DOptions>& fields() {
        static const auto table = FieldTable<GlobalMaxPooling1DOptions>()
            .fixed("data_format", "\"channels_last\"")
            .boolean("keepdims", &GlobalMaxPooling1DOptions::keepdims);
        return table;
    }
};

// The maximum over the steps axis (see the file's description).
class KERAS_API GlobalMaxPooling1D : public Layer {
public:
    explicit GlobalMaxPooling1D(GlobalMaxPooling1DOptions options = {})
        : Layer("GlobalMaxPooling1D", options.name, options.trainable), options(std::move(options)) {}
    Tensor call(const Tensor& inputs) override;
    nlohmann::json get_config() const override;
    GlobalMaxPooling1DOptions options;

protected:
    void check_input_shape(const Shape& input_shape) const override { check_ndim(input_shape, 3); }
};

}  // namespace keras::layers
