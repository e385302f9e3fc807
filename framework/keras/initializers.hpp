// Keras weight initialisers, by their Keras names.
#pragma once

#include <string>

#include "keras/tensor.hpp"

namespace keras::initializers {

// "zeros", "ones", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform",
// "lecun_normal", "orthogonal", "random_uniform" (-0.05, 0.05), "random_normal" (stddev 0.05),
// "uniform" (Embedding's default, same as random_uniform). Fan-in / fan-out follow Keras: for a
// 2-D shape (in, out). Unknown names throw ValueError.
Tensor make(const std::string& name, const Shape& shape);
void check_name(const std::string& name);

}  // namespace keras::initializers
