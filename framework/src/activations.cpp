#include "keras/activations.hpp"

#include <utility>

#include "activation_formulas.hpp"
#include "keras/errors.hpp"

namespace keras {

namespace {
const std::pair<const char*, Activation> kNames[] = {
    {"linear", Activation::linear},   {"relu", Activation::relu},
    {"sigmoid", Activation::sigmoid}, {"tanh", Activation::tanh},
    {"softmax", Activation::softmax}, {"hard_sigmoid", Activation::hard_sigmoid},
    {"hard_sigmoid_keras2", Activation::hard_sigmoid_keras2},
    {"elu", Activation::elu},         {"selu", Activation::selu},
    {"softplus", Activation::softplus}, {"softsign", Activation::softsign},
    {"swish", Activation::swish},     {"silu", Activation::swish},
    {"gelu", Activation::gelu},       {"exponential", Activation::exponential},
};
}  // namespace

Activation activation_from_string(const std::string& name) {
    if (name.empty() || name == "None") return Activation::linear;
    for (const auto& [n, a] : kNames)
        if (name == n) return a;
    value_error("Could not interpret activation function identifier: {}", name);
}

std::string to_string(Activation activation) {
    for (const auto& [n, a] : kNames)
        if (a == activation) return n;
    return "?";
}

namespace activations {

float apply(Activation a, float x) {
    if (a == Activation::softmax) runtime_error("activations::apply: softmax is not element-wise");
    return activation_formulas::value(a, x);
}

float derivative(Activation a, float x, float y) {
    if (a == Activation::softmax) runtime_error("activations::derivative: softmax is not element-wise");
    return activation_formulas::derivative(a, x, y);
}

}  // namespace activations
}  // namespace keras
