#include "keras/activations.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <utility>

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
constexpr float kSeluAlpha = 1.67326324235437728481f;
constexpr float kSeluScale = 1.05070098735548049342f;

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
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
    switch (a) {
        case Activation::linear: return x;
        case Activation::relu: return x > 0 ? x : 0.0f;
        case Activation::sigmoid: return sigmoid(x);
        case Activation::tanh: return std::tanh(x);
        case Activation::hard_sigmoid: return std::clamp(x / 6.0f + 0.5f, 0.0f, 1.0f);
        case Activation::hard_sigmoid_keras2: return std::clamp(0.2f * x + 0.5f, 0.0f, 1.0f);
        case Activation::elu: return x > 0 ? x : std::expm1(x);
        case Activation::selu: return kSeluScale * (x > 0 ? x : kSeluAlpha * std::expm1(x));
        case Activation::softplus: return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
        case Activation::softsign: return x / (1.0f + std::fabs(x));
        case Activation::swish: return x * sigmoid(x);
        case Activation::gelu: return 0.5f * x * (1.0f + std::erf(x / std::numbers::sqrt2_v<float>));
        case Activation::exponential: return std::exp(x);
        case Activation::softmax: break;
    }
    runtime_error("activations::apply: softmax is not element-wise");
}

float derivative(Activation a, float x, float y) {
    switch (a) {
        case Activation::linear: return 1.0f;
        case Activation::relu: return x > 0 ? 1.0f : 0.0f;
        case Activation::sigmoid: return y * (1.0f - y);
        case Activation::tanh: return 1.0f - y * y;
        case Activation::hard_sigmoid: return (x > -3.0f && x < 3.0f) ? 1.0f / 6.0f : 0.0f;
        case Activation::hard_sigmoid_keras2: return (x > -2.5f && x < 2.5f) ? 0.2f : 0.0f;
        case Activation::elu: return x > 0 ? 1.0f : y + 1.0f;
        case Activation::selu: return x > 0 ? kSeluScale : y + kSeluScale * kSeluAlpha;
        case Activation::softplus: return sigmoid(x);
        case Activation::softsign: {
            const float d = 1.0f + std::fabs(x);
            return 1.0f / (d * d);
        }
        case Activation::swish: {
            const float s = sigmoid(x);
            return s + x * s * (1.0f - s);
        }
        case Activation::gelu:
            return 0.5f * (1.0f + std::erf(x / std::numbers::sqrt2_v<float>)) +
                   x * std::exp(-0.5f * x * x) / std::sqrt(2.0f * std::numbers::pi_v<float>);
        case Activation::exponential: return y;
        case Activation::softmax: break;
    }
    runtime_error("activations::derivative: softmax is not element-wise");
}

}  // namespace activations
}  // namespace keras
