// Keras activation names and their element-wise math.
#pragma once

#include "keras/export.hpp"

#include <string>

namespace keras {

// An element-wise activation by its Keras name (Dense's, the recurrent layers' activation).
enum class Activation {
    linear, relu, sigmoid, tanh, softmax, hard_sigmoid, hard_sigmoid_keras2,
    elu, selu, softplus, softsign, swish, gelu, exponential
};

// Parses a Keras activation string ("linear", "relu", "tanh", ..., "silu" = "swish").
// Empty string and "linear" both mean no activation. Unknown names throw ValueError.
KERAS_API Activation activation_from_string(const std::string& name);
// The Keras name of an activation ("relu").
KERAS_API std::string to_string(Activation activation);

namespace activations {
// Scalar forms, used by the backends' element-wise loops and the RNN fallback path.
// softmax is not element-wise and is not handled here.
KERAS_API float apply(Activation a, float x);
// Derivative expressed through the input x and the output y = apply(a, x).
KERAS_API float derivative(Activation a, float x, float y);
}  // namespace activations

}  // namespace keras
