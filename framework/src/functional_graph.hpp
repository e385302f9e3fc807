// The graph of a functional Model: its nodes in an order where every node comes after the nodes
// it reads, and how to run that order forwards (predict / fit) and backwards (gradients).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "keras/keras_tensor.hpp"
#include "keras/layer.hpp"

namespace keras {

struct FunctionalGraph {
    std::vector<KerasTensor> inputs, outputs;
    std::vector<std::shared_ptr<Node>> nodes;   // topological order; the inputs' nodes first
    std::vector<LayerPtr> layers;               // each layer once: input layers, then by first use

    // Walks back from the outputs; ValueError when an output needs a tensor the inputs cannot give.
    static std::shared_ptr<FunctionalGraph> make(const std::vector<KerasTensor>& inputs,
                                                 const std::vector<KerasTensor>& outputs, const std::string& model);
    // A Sequential's graph: one node per layer, each reading the one before, from an input node of
    // this shape (the first layer's own when it is an InputLayer). The layers must be built; they
    // are not called, so they gain no nodes of their own.
    static std::shared_ptr<FunctionalGraph> chain(const std::vector<LayerPtr>& layers, const Shape& input_shape);
    // One CallContext per node. xs: one batch per input, on the model's device. output_masks (when
    // given) receives each output's mask (undefined where it has none), for the masked losses.
    std::vector<Tensor> forward(const std::vector<Tensor>& xs, std::vector<CallContext>& contexts, bool training,
                                std::vector<Tensor>* output_masks = nullptr) const;
    // dys: one gradient per output; gradients of a tensor read by several nodes (shared layers, fan-out) add up.
    // after_node (when given) is called with each node's index once the walk is past it, last node
    // first: the weights of a layer whose nodes are all past have their final gradients (distributed
    // training starts their all-reduce there, while the walk goes on).
    void backward(const std::vector<Tensor>& dys, std::vector<CallContext>& contexts,
                  const std::function<void(size_t node)>& after_node = {}) const;

private:
    size_t position(const Node* node) const;
};

}  // namespace keras
