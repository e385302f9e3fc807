// A functional model's model_config in Keras 3's layout: {"class_name": "Functional", "config":
// {"name", "trainable", "layers": [{"module", "class_name", "config", "registered_name", "name",
// "inbound_nodes"}], "input_layers", "output_layers"}}. Keras 3 writes each inbound node as
// {"args": [tensor or [tensors]], "kwargs": {}}, a tensor as {"class_name": "__keras_tensor__",
// "config": {"shape", "dtype", "keras_history": [layer, node, 0]}}; Keras 2 as [[layer, node, 0, {}], ...].
#pragma once

#include <nlohmann/json.hpp>

#include "keras/model.hpp"

#include "functional_graph.hpp"

namespace keras::saving {

nlohmann::json functional_config(const Model& model, const FunctionalGraph& graph);

}  // namespace keras::saving
