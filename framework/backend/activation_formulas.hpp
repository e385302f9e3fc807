// The element-wise activation formulas, written once for the CPU code (keras::activations) and the
// CUDA kernels (framework/backend/cuda/eltwise.cu), so both backends compute the same functions.
// Plain C math only: this header is also compiled by nvcc (C++17, device code).
#pragma once

#include <math.h>

#include "keras/activations.hpp"

#ifdef __CUDACC__
#define KERASCPP_HOST_DEVICE __host__ __device__
#else
#define KERASCPP_HOST_DEVICE
#endif

namespace keras::activation_formulas {

inline constexpr float kSeluAlpha = 1.67326324235437728481f;
inline constexpr float kSeluScale = 1.05070098735548049342f;
inline constexpr float kSqrt2 = 1.41421356237309504880f;
inline constexpr float kSqrt2Pi = 2.50662827463100050242f;

KERASCPP_HOST_DEVICE inline float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// Like std::clamp, a NaN stays NaN (fminf / fmaxf would turn it into a bound and hide it).
KERASCPP_HOST_DEVICE inline float clamp01(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }

// f(x). Softmax is not element-wise: callers handle it before calling this (it returns x).
KERASCPP_HOST_DEVICE inline float value(Activation a, float x) {
    switch (a) {
        case Activation::linear: return x;
        case Activation::relu: return (x > 0 || x != x) ? x : 0.0f;   // relu(NaN) = NaN, as in Keras
        case Activation::sigmoid: return sigmoid(x);
        case Activation::tanh: return tanhf(x);
        case Activation::hard_sigmoid: return clamp01(x / 6.0f + 0.5f);
        case Activation::hard_sigmoid_keras2: return clamp01(0.2f * x + 0.5f);
        case Activation::elu: return x > 0 ? x : expm1f(x);
        case Activation::selu: return kSeluScale * (x > 0 ? x : kSeluAlpha * expm1f(x));
        case Activation::softplus: return x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x));
        case Activation::softsign: return x / (1.0f + fabsf(x));
        case Activation::swish: return x * sigmoid(x);
        case Activation::gelu: return 0.5f * x * (1.0f + erff(x / kSqrt2));
        case Activation::exponential: return expf(x);
        case Activation::softmax: break;
    }
    return x;
}

// f'(x), given x and y = f(x). Softmax: see value().
KERASCPP_HOST_DEVICE inline float derivative(Activation a, float x, float y) {
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
            const float d = 1.0f + fabsf(x);
            return 1.0f / (d * d);
        }
        case Activation::swish: {
            const float s = sigmoid(x);
            return s + x * s * (1.0f - s);
        }
        case Activation::gelu: return 0.5f * (1.0f + erff(x / kSqrt2)) + x * expf(-0.5f * x * x) / kSqrt2Pi;
        case Activation::exponential: return y;
        case Activation::softmax: break;
    }
    return 1.0f;
}

}  // namespace keras::activation_formulas
