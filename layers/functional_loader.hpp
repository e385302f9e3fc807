// Rebuilds a functional model from its model_config (class_name "Functional", or Keras 2's "Model"):
// the layers from their configs, then their calls from inbound_nodes (Keras 3's {"args", "kwargs"}
// form or Keras 2's [[layer, node, tensor, kwargs], ...]), then Model(input_layers, output_layers).
// Internal to load_model.
#pragma once

#include <memory>

#include <nlohmann/json.hpp>

#include "keras/model.hpp"
#include "layer_factory.hpp"

namespace keras::layers {

std::shared_ptr<Model> functional_from_config(const nlohmann::json& config, const ConfigSource& source);

}  // namespace keras::layers
