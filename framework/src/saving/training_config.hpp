// Reads a model file's training_config back into an optimizer, a loss and metric names, accepting
// Keras 3's form (ours), Keras 2.x's ("Custom>Adam", metrics as nested MeanMetricWrapper objects)
// and Keras 2.0's ("lr", "decay"). Options we do not implement are a ValueError naming the field.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "keras/losses.hpp"
#include "keras/model.hpp"
#include "keras/optimizers.hpp"

namespace keras::saving {

// `where` prefixes messages, e.g. "training_config of file 'm.h5'".
optimizers::OptimizerPtr optimizer_from_config(const nlohmann::json& optimizer_config, const std::string& where);
losses::LossPtr loss_from_config(const nlohmann::json& loss, const std::string& where);
std::vector<std::string> metrics_from_config(const nlohmann::json& metrics, const std::string& where);
// compile()'s keyword arguments from a training_config for a model with these output names:
// "metrics" as one list for every output, one list per output ([["accuracy"], ["mae"]]) or a dict
// by output name; "loss_weights" as a list or a dict.
CompileOptions compile_options_from_config(const nlohmann::json& training, const std::vector<std::string>& output_names,
                                           const std::string& where);

}  // namespace keras::saving
