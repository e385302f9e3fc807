// Rebuilds a layer from its Keras config (the inverse of get_config), accepting the forms Keras 2.0.x,
// 2.x and 3.x write. Internal to load_model.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "keras/layer.hpp"

namespace keras::layers {

struct ConfigSource {
    int keras_major = 3;    // from the file's keras_version: what "hard_sigmoid" means
    std::string file;       // for messages
};

// class_name: "LSTM", "Dense", ... An unknown class, an option we do not implement (a regularizer,
// a constraint, mask_zero, ...) or a malformed field is a ValueError naming the layer and field.
LayerPtr layer_from_config(const std::string& class_name, const nlohmann::json& config, const ConfigSource& source);

// A built-in recurrent cell ("SimpleRNNCell", "LSTMCell", "GRUCell") from its Keras config, as an RNN
// layer's "cell" entry holds it; errors as layer_from_config's. Not one of the layers a file lists.
LayerPtr cell_from_config(const std::string& class_name, const nlohmann::json& config, const ConfigSource& source);

}  // namespace keras::layers
