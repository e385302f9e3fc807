// Bidirectional: a recurrent layer run over the sequence both ways, the two outputs merged.
#pragma once

#include <string>

#include "keras/layer.hpp"

namespace keras::layers {

struct BidirectionalOptions {
    // "concat" (last axis), "sum", "mul" or "ave". Keras's None (two separate outputs) is not
    // supported: a layer here has one output.
    std::string merge_mode = "concat";
    // The layer for the reversed direction; null means a copy of `layer` with go_backwards flipped
    // (named "backward_<name>"), as Keras makes it.
    LayerPtr backward_layer = nullptr;
    std::string name{};
};

// As in Keras: the forward layer is a fresh copy of `layer` (from its config) named
// "forward_<name>"; the backward layer's outputs are flipped back in time when return_sequences,
// so step t of both halves describes input step t. Weights: the forward layer's, then the backward's.
class Bidirectional : public Layer {
public:
    explicit Bidirectional(const LayerPtr& layer, BidirectionalOptions options = {});
    template <typename L, typename = std::enable_if_t<std::is_base_of_v<Layer, L>>>
    explicit Bidirectional(L layer, BidirectionalOptions options = {})
        : Bidirectional(LayerPtr(std::make_shared<L>(std::move(layer))), std::move(options)) {}

    Shape compute_output_shape(const Shape& input_shape) const override;
    Tensor call(const Tensor& x, CallContext& ctx) override;
    Tensor backward(const Tensor& dy, CallContext& ctx) override;
    nlohmann::json get_config() const override;
    void check_symbolic_input(const Shape& input_shape) const override { forward_->check_symbolic_input(input_shape); }
    std::vector<std::pair<std::string, LayerPtr>> nested_layers() const override {
        return {{"forward_layer", forward_}, {"backward_layer", backward_}};
    }

    const LayerPtr& forward_layer() const { return forward_; }
    const LayerPtr& backward_layer() const { return backward_; }
    const std::string& merge_mode() const { return merge_mode_; }

protected:
    void build(const Shape& input_shape) override;

private:
    LayerPtr forward_, backward_;
    std::string merge_mode_;
    bool return_sequences_ = false;
};

}  // namespace keras::layers
