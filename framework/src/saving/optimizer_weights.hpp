// The optimizer_weights group of a Keras model file: the optimizer's state, so training resumes
// exactly. Keras 3 layout (what we write): attr weight_names, datasets "<opt>/iteration" (int64),
// "<opt>/learning_rate", then one dataset per slot and variable, "<opt>/<variable path with '/' -> '_'>_<slot>",
// in Keras's order (Adam interleaves momentum and velocity per variable, then velocity_hat; RMSprop and
// the others list one slot for every variable, then the next slot). A LossScaleOptimizer writes first
// "loss_scale_optimizer/{iteration, learning_rate}" (unused, 0), ".../step_counter", ".../dynamic_scale",
// then its inner optimizer's as above, the slots under "loss_scale_optimizer/<inner>/".
#pragma once

#include <string>
#include <vector>

#include "keras/model.hpp"
#include "saving/h5_file.hpp"

namespace keras::saving {

void write_optimizer_weights(const H5Group& root, const Model& model);

// The state read from a file, checked against the model, not yet applied.
struct OptimizerState {
    bool present = false;             // false: no optimizer_weights group or only what Keras writes unbuilt
    int64_t iterations = 0;
    std::optional<float> learning_rate{};
    std::optional<int64_t> step_counter{};   // a LossScaleOptimizer's
    std::optional<float> dynamic_scale{};
    std::vector<std::vector<Tensor>> slots;   // per trainable variable, in slot_specs() order
};

// Reads optimizer_weights for `optimizer` (already configured from training_config) and the model's
// trainable weights. Keras 3 names (ours) are matched by slot name; Keras 2.x names ("Adam/m/...")
// by their slot letter. ValueError naming the dataset when a shape or count does not match.
OptimizerState read_optimizer_weights(const H5Group& root, const optimizers::Optimizer& optimizer,
                                      const std::vector<VariablePtr>& trainable);
void apply_optimizer_state(const OptimizerState& state, optimizers::Optimizer& optimizer,
                           const std::vector<VariablePtr>& trainable);

}  // namespace keras::saving
