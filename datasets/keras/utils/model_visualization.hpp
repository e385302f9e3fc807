// keras.utils.plot_model and model_to_dot (tf.keras 2's): a model's layers and how they connect, as
// Graphviz dot text, rendered to a picture by Graphviz's `dot` program when it is installed.
#pragma once

#include "keras/export.hpp"

#include <string>

#include "keras/model.hpp"

namespace keras::utils {

// Keras's keyword arguments, names, order and defaults.
struct KERAS_API PlotModelOptions {
    bool show_shapes = false;             // each layer's input and output shapes, (None, 8) as Keras prints them
    bool show_layer_names = true;         // "dense: Dense" (false: "Dense")
    std::string rankdir = "TB";           // "TB" top to bottom, "LR" left to right (also "BT", "RL")
    bool expand_nested = false;           // accepted for Keras's signature: kerascpp models do not nest
    int dpi = 96;
    bool show_layer_activations = false;  // the activation of layers that have one ("relu", "linear")
    bool show_trainable = false;          // "T" (trainable) or "NT" before each layer
};

// The dot text: one record-shaped node per layer ("name: Class", a wrapper as
// "name(inner): Wrapper(Inner)"), an edge per connection of the functional graph (a Sequential's
// chain, with its input layer). A shared layer called with different shapes shows "multiple".
KERAS_API std::string model_to_dot(const Model& model, const PlotModelOptions& options = {});

// Keras's plot_model(model, to_file): the picture in the format of the file's extension (png, svg,
// pdf, jpg, gif; none: png) made by running Graphviz's `dot` found on PATH, written atomically;
// a ".dot" path gets the dot text itself. Without `dot` on PATH it writes the dot text beside
// (model.png -> model.dot) and warns on stderr naming that file. Returns the path written.
// Errors: an unknown extension or rankdir, dpi < 1 (ValueError); dot failing (RuntimeError with
// the command and what dot printed). The target is not touched when anything fails.
KERAS_API std::string plot_model(const Model& model, const std::string& to_file = "model.png",
                                 const PlotModelOptions& options = {});

}  // namespace keras::utils
