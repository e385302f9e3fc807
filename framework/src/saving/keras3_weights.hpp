// Keras 3's ".weights.h5" layout (keras/src/saving/saving_lib.py, H5IOStore): each layer's variables at
// "layers/<path>/vars/0", "/1", ... (see weight_paths.hpp), an empty "vars" group for the model, and,
// when the model is compiled, the optimizer's at "optimizer/vars": 0 = iterations, 1 = learning rate,
// then each trainable weight's slots in turn (Adam: momentum, velocity).
#pragma once

#include "keras/model.hpp"
#include "saving/h5_file.hpp"

namespace keras::saving {

void write_keras3_weights(const H5File& file, const Model& model);

// Reads every layer's variables (and the optimizer's, when the file has them and the model is
// compiled), checks counts and shapes, and only then assigns. ValueError naming the file, the layer
// path and the shapes when the file does not fit the model.
void read_keras3_weights(const H5File& file, Model& model);

}  // namespace keras::saving
