// Symbolic tensors of the functional API: keras::Input(shape) starts a graph, each call of a layer on
// KerasTensors adds a Node, and keras::Model(inputs, outputs) walks the Nodes back from the outputs.
#pragma once

#include "keras/export.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "keras/tensor.hpp"

namespace keras {

class Layer;
struct Node;

// What Keras's KerasTensor holds: the shape (batch axis -1 = None), the dtype, and its history
// (Keras's keras_history: the node that produced it and which of the node's outputs it is).
// Copies share the node.
struct KERAS_API KerasTensor {
    Shape shape;
    DType dtype = DType::float32;
    std::shared_ptr<Node> node;
    int index = 0;   // which output of the node (RNN return_state: 0 = output, 1 = h, 2 = c)
    // Keras's "layer[node][tensor]" label of the summary's "Connected to" column.
    std::string history_label() const;
    // KerasTensor(shape=(None, 3), dtype=float32, name=input_1), as Keras prints it in errors.
    std::string str() const;
};

// One call of a layer: its inputs (empty for an InputLayer) and the outputs it produced.
struct KERAS_API Node {
    std::shared_ptr<Layer> layer;
    std::vector<KerasTensor> inputs;
    Shape output_shape;       // the first output's (the only one of most layers)
    DType output_dtype = DType::float32;
    int index = 0;            // which call of the layer this is (Keras's node index)
    // Called on a list (merge layers): run through call_multi / backward_multi, or with several outputs
    // through call_multi_outputs / backward_multi_outputs.
    bool list_input = false;
    // The last `initial_states` inputs are Keras's initial_state argument of an RNN call (inputs[0] is
    // the sequence). Such nodes, and nodes of layers with several outputs (output_shapes.size() > 1),
    // run through Layer::call_outputs / backward_outputs.
    size_t initial_states = 0;
    std::vector<Shape> output_shapes{};   // every output's shape, output_shapes[0] == output_shape

    bool runs_call_outputs() const { return !list_input && (initial_states > 0 || output_shapes.size() > 1); }
};

// Each symbolic tensor's shape, in order (what a layer of several inputs is built for).
KERAS_API std::vector<Shape> shapes_of(const std::vector<KerasTensor>& xs);

// Keras's arguments in Keras's order (see layers::InputOptions): keras::Input({10, 8}, {.batch_size = 4})
// or keras::Input({}, {.batch_shape = {4, 10, 8}}) fix the batch size, as stateful RNNs need.
struct KERAS_API InputArgs {
    std::optional<int64_t> batch_size{};
    DType dtype = DType::float32;
    Shape batch_shape{};
    std::string name{};
};
// keras.Input: a symbolic tensor of one sample's shape (no batch axis), produced by a new InputLayer;
// its batch axis is the fixed batch size when one is given, else -1 (None).
KERAS_API KerasTensor Input(Shape shape, InputArgs args = {});

}  // namespace keras
