// Where Keras keeps each layer's weights in its two HDF5 layouts. Keras's recurrent layers hold their
// weights in a cell ("lstm" -> "lstm_cell"), which shows in both layouts' paths.
#pragma once

#include <string>
#include <vector>

#include "keras/layer.hpp"
#include "keras/model.hpp"

namespace keras::saving {

// Keras's recurrent layers keep their weights in a cell named "<layer class in snake case>_cell".
bool has_cell(const Layer& layer);

// The model's layers as Keras lists them in files: all but the InputLayer (Sequential.layers).
std::vector<LayerPtr> saved_layers(const Model& model);

// Legacy layout: a weight's name in weight_names, as Keras 2 writes it ("dense/kernel:0",
// "lstm/lstm_cell/kernel:0"); the dataset sits at "<layer group>/<that name>".
std::string legacy_weight_name(const Layer& layer, const Variable& weight);

// The name Keras 3 gives a weight in a full model file's weight_names
// ("sequential/lstm/lstm_cell/kernel").
std::string keras3_weight_path(const Model& model, const Layer& layer, const Variable& weight);

// Keras 3 layout: each layer's vars group, "layers/<snake case class>[_k]/vars", with "/cell/vars"
// for recurrent layers; _k counts earlier layers of the same class (Keras names them by class, not by
// layer name, so the paths do not depend on automatic names). One entry per saved_layers() layer.
std::vector<std::string> keras3_vars_paths(const Model& model);

}  // namespace keras::saving
