// A trainable weight: its value and the gradient the last backward pass accumulated into it.
#pragma once

#include "keras/export.hpp"

#include <memory>
#include <string>

#include "keras/tensor.hpp"

namespace keras {

struct KERAS_API Variable {
    std::string name;    // Keras weight name, e.g. "kernel", "recurrent_kernel", "bias", "embeddings"
    Tensor value;
    Tensor grad;         // same shape as value; zeroed by the model before each backward pass
    bool trainable = true;
};
using VariablePtr = std::shared_ptr<Variable>;

}  // namespace keras
