// Keras's weight and activity regularizers (keras.regularizers.L1, L2, L1L2) and weight constraints
// (keras.constraints.MaxNorm, NonNeg, UnitNorm, MinMaxNorm), as values a layer's options hold:
//
//     layers::Dense(8, {.kernel_regularizer = regularizers::L2(1e-4), .kernel_constraint = constraints::MaxNorm(3)})
//     layers::Dense(8, {.kernel_regularizer = "l2", .bias_constraint = "non_neg"})
//
// A regularized trainable weight adds regularizer(weight) to the training loss (and to the logged loss),
// as Keras does; a constrained weight is projected by its constraint after each optimizer step.
#pragma once

#include "keras/export.hpp"

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "keras/tensor.hpp"

namespace keras {

namespace regularizers {

// l1 * sum(|x|) + l2 * sum(x^2); class_name ("L1", "L2", "L1L2") is what its config says.
struct KERAS_API Regularizer {
    std::string class_name = "L1L2";
    float l1 = 0.0f, l2 = 0.0f;
    Regularizer() = default;
    // Keras's identifiers: "l1" (L1(0.01)), "l2" (L2(0.01)), "L1L2" / "l1l2" (L1L2(0, 0), Keras 3's) and
    // "l1_l2" (Keras 2's l1_l2(): 0.01 each); also "L1", "L2". Another name: ValueError.
    Regularizer(const std::string& identifier);
    Regularizer(const char* identifier) : Regularizer(std::string(identifier)) {}
    Regularizer(std::string class_name, float l1, float l2);   // checks l1, l2 >= 0 (Keras's message)

    // The penalty as a 0-d tensor, written with ops (so its gradient is automatic).
    Tensor operator()(const Tensor& x) const;
    // Its gradient, l1 * sign(x) + 2 * l2 * x (what the training step adds to a weight's gradient).
    Tensor gradient(const Tensor& x) const;
    // Keras's get_config(): {"l1": ...} / {"l2": ...} / {"l1": ..., "l2": ...}.
    nlohmann::json get_config() const;
    bool operator==(const Regularizer& other) const = default;
};

// Keras's regularizers.L1: the penalty l1 * sum(|w|), added to the loss.
KERAS_API Regularizer L1(float l1 = 0.01f);
// l2 * sum(w^2).
KERAS_API Regularizer L2(float l2 = 0.01f);
// l1 * sum(|w|) + l2 * sum(w^2).
KERAS_API Regularizer L1L2(float l1 = 0.0f, float l2 = 0.0f);

// Keras 3's serialized form {"module": "keras.regularizers", "class_name", "config", "registered_name"}.
KERAS_API nlohmann::json serialize(const Regularizer& regularizer);
// From a config as Keras 2 or 3 writes it (a dict, or a name); `where` prefixes the ValueError.
KERAS_API Regularizer deserialize(const nlohmann::json& config, const std::string& where);

}  // namespace regularizers

namespace constraints {

// MaxNorm(max_value, axis): w * clip(norm, 0, max_value) / (1e-7 + norm); NonNeg: max(w, 0);
// UnitNorm(axis): w / (1e-7 + norm); MinMaxNorm(min_value, max_value, rate, axis):
// w * (rate * clip(norm, min, max) + (1 - rate) * norm) / (1e-7 + norm). The norms are L2 norms over
// `axis` (Keras's default 0: each column of a Dense kernel, each output unit's incoming weights).
struct KERAS_API Constraint {
    std::string class_name = "NonNeg";
    float max_value = 2.0f, min_value = 0.0f, rate = 1.0f;
    std::vector<int> axis{0};
    Constraint() = default;
    // "max_norm" / "MaxNorm", "non_neg" / "NonNeg", "unit_norm" / "UnitNorm", "min_max_norm" / "MinMaxNorm",
    // with Keras's default arguments. Another name: ValueError.
    Constraint(const std::string& identifier);
    Constraint(const char* identifier) : Constraint(std::string(identifier)) {}

    // The projected weight (a new tensor on w's device).
    Tensor operator()(const Tensor& w) const;
    nlohmann::json get_config() const;
    bool operator==(const Constraint& other) const = default;
};

// Keras's constraints, applied to a weight after each optimizer step. MaxNorm: caps the norm along
// `axis` at max_value.
KERAS_API Constraint MaxNorm(float max_value = 2.0f, std::vector<int> axis = {0});
// Negative weights become 0.
KERAS_API Constraint NonNeg();
// Rescales to norm 1 along `axis`.
KERAS_API Constraint UnitNorm(std::vector<int> axis = {0});
// Keeps the norm along `axis` in [min_value, max_value], moved there at `rate`.
KERAS_API Constraint MinMaxNorm(float min_value = 0.0f, float max_value = 1.0f, float rate = 1.0f,
                                std::vector<int> axis = {0});

// A constraint as Keras 3 writes it in a config.
KERAS_API nlohmann::json serialize(const Constraint& constraint);
// The constraint a config describes (Keras 2 or 3 form); ValueError naming `where` when unknown.
KERAS_API Constraint deserialize(const nlohmann::json& config, const std::string& where);

}  // namespace constraints

}  // namespace keras
