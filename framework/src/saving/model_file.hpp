// Keras's legacy HDF5 model file (what keras.Model.save("m.h5") writes), in Keras 3's form:
//   /                 attrs keras_version, backend, model_config (JSON), training_config (JSON)
//   /model_weights    attrs layer_names, backend, keras_version; one group per layer (InputLayer
//                     excluded) with attr weight_names = "<model>/<layer>[/<cell>]/<weight>", each a
//                     float32 dataset at "<layer group>/<weight name>"; plus an empty
//                     "top_level_model_weights" group
//   /optimizer_weights  see optimizer_weights.hpp
// keras::models::load_model (layers/) reads it back; it also reads Keras 2.x and 2.0.x files.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "keras/model.hpp"

namespace keras::saving {

// The Keras version whose layout and semantics our files follow (hard_sigmoid = clip(x/6 + 0.5)).
inline constexpr const char* kModelFileKerasVersion = "3.15.1";
inline constexpr const char* kModelFileBackend = "tensorflow";

// {"class_name": "Sequential", "config": {name, trainable, dtype, layers (InputLayer first), build_input_shape}}.
nlohmann::json model_config(const Model& model);
// {"loss", "loss_weights", "metrics", ..., "optimizer_config": {"class_name", "config"}}; the model is compiled.
nlohmann::json training_config(const Model& model);
// Keras 3's variable path of a layer weight: "sequential/lstm/lstm_cell/kernel".

void write_model_file(const std::string& filepath, const Model& model, bool include_optimizer);

}  // namespace keras::saving
