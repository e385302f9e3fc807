// Keras's Masking layer: marks the steps whose features all equal mask_value as padding.
#pragma once

#include "keras/export.hpp"

#include <string>

#include "keras/layer.hpp"
#include "keras/layers/fields.hpp"

namespace keras::layers {

// Masking's keyword arguments besides mask_value.
struct KERAS_API MaskingOptions {
    std::string name{};
    bool trainable = true;   // false: the layer's weights are frozen (Keras's trainable=False)
    static const FieldTable<MaskingOptions>& fields();
};
// Masking's Keras config is mask_value, the constructor's argument.
inline const FieldTable<MaskingOptions>& MaskingOptions::fields() {
    static const auto table = FieldTable<MaskingOptions>();
    return table;
}

// (batch, steps, features) -> the same shape. A step whose features all equal mask_value is padding:
// its output is zeroed and its mask entry is 0, so later layers (RNNs, pooling, losses) skip it.
class KERAS_API Masking : public Layer {
public:
    explicit Masking(float mask_value = 0.0f, MaskingOptions options = {});
    Shape compute_output_shape(const Shape& input_shape) const override { return input_shape; }
    Tensor call(const Tensor& x, CallContext& ctx) override;
    Tensor backward(const Tensor& dy, CallContext& ctx) override;
    // any(x != mask_value) over the last axis: the input's shape without its last axis.
    Tensor compute_mask(const Tensor& x, const Tensor& mask) const override;
    nlohmann::json get_config() const override;

    float mask_value;
    MaskingOptions options;

protected:
    void check_input_shape(const Shape& input_shape) const override { check_min_ndim(input_shape, 2); }
};

}  // namespace keras::layers
