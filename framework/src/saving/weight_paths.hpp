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

// Keras 3 layout: one "vars" group per layer, "layers/<snake case class>[_k]/vars"; _k counts earlier
// layers of the same class (Keras names them by class, not by layer name, so the paths do not depend on
// automatic names). A recurrent layer's weights sit in its cell's group ".../cell/vars" (its own vars
// stays empty); a wrapper's in its nested layers' groups, under their attribute names
// (".../forward_layer/cell/vars", ".../layer/vars"). Functional models list their InputLayers too (empty).
struct Keras3Vars {
    std::string path;                    // "layers/bidirectional/forward_layer/cell/vars"
    std::string name;                    // the `name` attribute Keras writes on it
    std::vector<VariablePtr> variables;  // what "0", "1", ... hold
    std::string layer;                   // the model's layer they belong to, for error messages
};
// Every vars group of the model's layers, in Keras's order (a layer's own, then its nested ones).
std::vector<Keras3Vars> keras3_vars(const Model& model);

}  // namespace keras::saving
