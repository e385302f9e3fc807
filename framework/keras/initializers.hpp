// Keras weight initialisers, by their Keras names.
#pragma once

#include "keras/export.hpp"

#include <string>

#include <nlohmann/json.hpp>

#include "keras/tensor.hpp"

namespace keras::initializers {

// "zeros", "ones", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform",
// "lecun_normal", "orthogonal", "random_uniform" (-0.05, 0.05), "random_normal" (stddev 0.05),
// "uniform" (Embedding's default, same as random_uniform). Fan-in / fan-out follow Keras: for a
// 2-D shape (in, out). Unknown names throw ValueError.
// Keras's Constant(value): every entry `value`; its name is "constant(<value>)", e.g.
// Dense(4, {.bias_initializer = initializers::Constant(0.1f)}). (A pretrained matrix goes to
// Embedding's `.weights` instead.)
KERAS_API std::string Constant(float value);
// A tensor of `shape` drawn from the initializer called `name` (Keras's initializer names).
KERAS_API Tensor make(const std::string& name, const Shape& shape);
// ValueError unless make() knows `name`.
KERAS_API void check_name(const std::string& name);

// Keras 3's serialized form of an initializer ({"module", "class_name", "config", "registered_name"}).
KERAS_API nlohmann::json get_config(const std::string& name);
// The initializer a Keras config describes, as one of our names: a string, a Keras 2 / 3 dict
// ({"class_name": "GlorotUniform", ...}), or Keras 2.0's VarianceScaling form of the Glorot / He /
// LeCun family. `where` ("layer \"lstm\", field kernel_initializer") prefixes the ValueError raised
// for an initializer or argument we do not have.
KERAS_API std::string from_config(const nlohmann::json& config, const std::string& where);

}  // namespace keras::initializers
