// Bidirectional: a recurrent layer run over the sequence both ways, the two outputs merged.
#pragma once

#include "keras/export.hpp"

#include <optional>
#include <string>

#include "keras/layer.hpp"
#include "keras/layers/fields.hpp"

namespace keras::layers {

// Bidirectional's keyword arguments.
struct KERAS_API BidirectionalOptions {
    // "concat" (last axis), "sum", "mul" or "ave"; std::nullopt is Keras's None: the two directions'
    // outputs are returned separately, [forward, backward] (use call_all in the functional API).
    std::optional<std::string> merge_mode = "concat";
    // The layer for the reversed direction; null means a copy of `layer` with go_backwards flipped
    // (named "backward_<name>"), as Keras makes it.
    LayerPtr backward_layer = nullptr;
    std::string name{};
    bool trainable = true;   // false: the layer's weights are frozen (Keras's trainable=False)
    static const FieldTable<BidirectionalOptions>& fields();
};
// Bidirectional's Keras config besides its layers ("layer" and "backward_layer", written and read as
// nested layer entries by get_config() and the loader).
inline const FieldTable<BidirectionalOptions>& BidirectionalOptions::fields() {
    static const auto table =
        FieldTable<BidirectionalOptions>().optional_string("merge_mode", &BidirectionalOptions::merge_mode);
    return table;
}

// As in Keras: the forward layer is a fresh copy of `layer` (from its config) named
// "forward_<name>"; the backward layer's outputs are flipped back in time when return_sequences,
// so step t of both halves describes input step t. Weights: the forward layer's, then the backward's.
// A mask goes to both layers; as in Keras, both get zero_output_for_mask = return_sequences.
class KERAS_API Bidirectional : public Layer {
public:
    explicit Bidirectional(const LayerPtr& layer, BidirectionalOptions options = {});
    template <typename L, typename = std::enable_if_t<std::is_base_of_v<Layer, L>>>
    explicit Bidirectional(L layer, BidirectionalOptions options = {})
        : Bidirectional(LayerPtr(std::make_shared<L>(std::move(layer))), std::move(options)) {}

    Shape compute_output_shape(const Shape& input_shape) const override;
    Tensor call(const Tensor& x, CallContext& ctx) override;
    Tensor backward(const Tensor& dy, CallContext& ctx) override;
    // The input's mask with return_sequences (both halves keep Keras's step alignment), else none.
    Tensor compute_mask(const Tensor& x, const Tensor& mask) const override;
    nlohmann::json get_config() const override;
    void check_symbolic_input(const Shape& input_shape) const override { forward_->check_symbolic_input(input_shape); }
    std::vector<std::pair<std::string, LayerPtr>> nested_layers() const override {
        return {{"forward_layer", forward_}, {"backward_layer", backward_}};
    }

    // Several outputs, in Keras's order: [merged output] or [forward, backward] (merge_mode None),
    // then with return_state the forward layer's states, then the backward layer's. initial_state:
    // the forward layer's states, then the backward layer's.
    int output_count() const override;
    std::vector<Shape> compute_output_shapes(const Shape& input_shape) const override;
    void check_initial_state(const Shape& input_shape, const std::vector<Shape>& states) const override;
    std::vector<Tensor> call_outputs(const Tensor& x, const std::vector<Tensor>& initial_state, CallContext& ctx) override;
    std::vector<Tensor> backward_outputs(const std::vector<Tensor>& dys, CallContext& ctx) override;

    const LayerPtr& forward_layer() const { return forward_; }
    const LayerPtr& backward_layer() const { return backward_; }
    const std::optional<std::string>& merge_mode() const { return options_.merge_mode; }

protected:
    void build(const Shape& input_shape) override;

private:
    LayerPtr forward_, backward_;
    // The two directions' gradients from the merged output's (dy undefined: none).
    std::pair<Tensor, Tensor> split_gradient(const Tensor& dy, const CallContext& ctx) const;
    int states_per_direction() const;

    BidirectionalOptions options_;   // backward_layer: the user's, if any (backward_ is the one in use)
    bool return_sequences_ = false;
    bool return_state_ = false;
};

}  // namespace keras::layers
