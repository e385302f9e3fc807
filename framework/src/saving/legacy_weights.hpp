// Keras's legacy HDF5 weights layout: the root of a ".h5" weights file, and the model_weights group
// of a full model file. Attributes layer_names (every layer but the InputLayer, in order), backend
// and keras_version; one group per layer with attribute weight_names, each weight a float32 dataset
// at "<layer group>/<weight name>".
#pragma once

#include <functional>
#include <string>

#include "keras/model.hpp"
#include "saving/h5_file.hpp"
#include "saving/weight_paths.hpp"

namespace keras::saving {

// The keras_version and backend our files declare (the Keras 2 line, whose layout they follow).
inline constexpr const char* kLegacyKerasVersion = "2.15.0";
inline constexpr const char* kLegacyBackend = "tensorflow";

// What differs between a weights file and a full model file's model_weights: the version declared
// and the form of the weight names.
struct LegacyWeightsNaming {
    std::string keras_version = kLegacyKerasVersion;
    // Default: Keras 2's "lstm/lstm_cell/kernel:0".
    std::function<std::string(const Layer&, const Variable&)> weight_name = legacy_weight_name;
};

void write_legacy_weights(const H5Group& group, const Model& model, const LegacyWeightsNaming& naming = {});

// Loads the weights into `model` as Keras does: layers with weights matched by position (by name when
// the model has exactly the file's layer names, as a model built by load_model does), weights in
// weight_names order (never by iterating groups). Everything is read and checked before anything is
// assigned, so a bad file leaves the model as it was. ValueError naming the file, layer and shapes.
void read_legacy_weights(const H5Group& group, Model& model);

}  // namespace keras::saving
