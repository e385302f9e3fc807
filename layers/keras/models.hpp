// keras.models.load_model for Keras's HDF5 model files (".h5"), written by kerascpp (Model::save) or by
// Keras 2.0.x, 2.x (tf-keras) and 3.x. It sits with the layers because rebuilding a model needs every
// layer class.
#pragma once

#include "keras/export.hpp"

#include <memory>
#include <string>

#include "keras/model.hpp"

namespace keras::models {

// load_model's keyword arguments.
struct KERAS_API LoadModelOptions {
    // Rebuild the optimizer (with its saved state), loss and metrics from training_config when the
    // file has one, so fit() continues where the saved run stopped.
    bool compile = true;
};

// A Sequential or a functional model (keras::Model(inputs, outputs)). Architecture from model_config, weights from model_weights (layer_names / weight_names order),
// optimizer state from optimizer_weights. The file's keras_version decides what "hard_sigmoid" means
// (Keras 2: clip(0.2x + 0.5); Keras 3: clip(x/6 + 0.5)). Everything is read and checked before the model
// is returned: ValueError naming the file, layer, field or weight and the expected vs found value.
KERAS_API std::shared_ptr<Model> load_model(const std::string& filepath, const LoadModelOptions& options = {});

}  // namespace keras::models
