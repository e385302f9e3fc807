// Layers that wrap another layer: TimeDistributed applies it to every time step.
#pragma once

#include "keras/export.hpp"

#include <string>

#include "keras/layer.hpp"
#include "keras/layers/fields.hpp"

namespace keras::layers {

// TimeDistributed's keyword arguments besides the layer.
struct KERAS_API TimeDistributedOptions {
    std::string name{};
    bool trainable = true;   // false: the layer's weights are frozen (Keras's trainable=False)
    static const FieldTable<TimeDistributedOptions>& fields();
};
// TimeDistributed's Keras config besides its "layer" (a nested layer entry, the constructor's).
inline const FieldTable<TimeDistributedOptions>& TimeDistributedOptions::fields() {
    static const auto table = FieldTable<TimeDistributedOptions>();
    return table;
}
// Applies `layer` to every slice x[:, t] of a (batch, steps, ...) input, with the same weights for
// all steps: the steps are folded into the batch axis, so any layer that works per sample works here
// (Dense, Activation, Dropout, Flatten, ...). The wrapped layer's weights are the wrapper's.
class KERAS_API TimeDistributed : public Layer {
public:
    // Passes its input mask on unchanged (Keras 3: supports_masking); the wrapped layer runs unmasked.
    explicit TimeDistributed(LayerPtr layer, TimeDistributedOptions options = {});
    template <typename L, typename = std::enable_if_t<std::is_base_of_v<Layer, L>>>
    explicit TimeDistributed(L layer, TimeDistributedOptions options = {})
        : TimeDistributed(LayerPtr(std::make_shared<L>(std::move(layer))), std::move(options)) {}

    Shape compute_output_shape(const Shape& input_shape) const override;
    Tensor call(const Tensor& x, CallContext& ctx) override;
    Tensor backward(const Tensor& dy, CallContext& ctx) override;
    nlohmann::json get_config() const override;
    const LayerPtr& layer() const { return layer_; }
    std::vector<std::pair<std::string, LayerPtr>> nested_layers() const override { return {{"layer", layer_}}; }

protected:
    void check_input_shape(const Shape& input_shape) const override;
    void build(const Shape& input_shape) override;

private:
    LayerPtr layer_;
    TimeDistributedOptions options_;
};

}  // namespace keras::layers
