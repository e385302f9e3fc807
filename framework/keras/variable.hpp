// A trainable weight: its value and the gradient the last backward pass accumulated into it.
#pragma once

#include "keras/export.hpp"

#include <memory>
#include <optional>
#include <string>

#include "keras/regularizers.hpp"
#include "keras/tensor.hpp"

namespace keras {

struct Variable;
namespace autodiff {
// The variable's value, recorded as a read of the variable when a GradientTape is recording (so
// tape.gradient(loss, {variable}) reaches it); the plain value otherwise.
KERAS_API Tensor read(const Variable& variable);
}  // namespace autodiff

// A layer's weight: a named value, its gradient and whether training updates it.
struct KERAS_API Variable {
    std::string name;    // Keras weight name, e.g. "kernel", "recurrent_kernel", "bias", "embeddings"
    Tensor value;
    Tensor grad;         // same shape as value; zeroed by the model before each backward pass
    bool trainable = true;
    // The optimizer's learning rate is multiplied by this for this variable: fine_tune's
    // discriminative rates (fastai's slice(lo, hi)) lower the body's rate against the head's.
    float learning_rate_multiplier = 1.0f;
    // Keras's variable.regularizer: its penalty joins the training loss while the variable is trainable.
    std::optional<regularizers::Regularizer> regularizer{};
    // Keras's variable.constraint: the optimizer projects the value with it after each update.
    std::optional<constraints::Constraint> constraint{};

    // Ops take a variable where they take a tensor, as Keras's ops.matmul(x, self.kernel):
    // `ops::matmul(x, *kernel)`. Reading through here is what gradients follow.
    operator Tensor() const { return autodiff::read(*this); }
};
// Layers, optimizers and models share variables.
using VariablePtr = std::shared_ptr<Variable>;

}  // namespace keras
