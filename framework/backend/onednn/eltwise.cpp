// Activations: oneDNN's eltwise and softmax primitives where oneDNN has the function, the scalar
// formulas of activation_formulas.hpp otherwise. Backward passes are plain loops over x and y.
//
// NaN must come out where it went in (relu(NaN) = NaN, as in Keras), or a NaN sample trains the model
// into garbage while the loss looks fine. oneDNN 2.6 drops it in three places: relu (NaN -> 0),
// exp (NaN -> inf) and softmax (0 beside the NaN). relu therefore always runs the formula (a loop the
// compiler vectorises: faster than building the primitive at Dense's sizes, about as fast at 64K
// elements); exponential and softmax check x for NaN first and take the formulas when it has one.
#include <algorithm>
#include <bit>
#include <cmath>
#include <optional>

#include "activation_formulas.hpp"
#include "backend/host/host_ops.hpp"
#include "keras/errors.hpp"
#include "onednn_backend.hpp"

namespace keras::backend {

using dnnl::algorithm;
using dnnl::memory;

namespace {
std::optional<algorithm> onednn_algorithm(Activation a) {
    switch (a) {
        case Activation::tanh: return algorithm::eltwise_tanh;
        case Activation::sigmoid: return algorithm::eltwise_logistic;
        case Activation::elu: return algorithm::eltwise_elu;
        case Activation::exponential: return algorithm::eltwise_exp;
        case Activation::gelu: return algorithm::eltwise_gelu_erf;
        case Activation::swish: return algorithm::eltwise_swish;
        default: return std::nullopt;
    }
}

// alpha for the algorithms that take one (elu's alpha, swish's beta).
float onednn_alpha(Activation a) { return (a == Activation::elu || a == Activation::swish) ? 1.0f : 0.0f; }

memory::desc flat_desc(const Tensor& t) { return memory::desc({t.numel()}, memory::data_type::f32, memory::format_tag::a); }

memory::desc rows_desc(int64_t rows, int64_t cols) {
    return memory::desc({rows, cols}, memory::data_type::f32, memory::format_tag::ab);
}
}  // namespace

bool has_nan(const Tensor& x) {
    const float* p = x.data<float>();
    const int64_t n = x.numel();
    // NaN: exponent bits all ones, mantissa not zero. Integer ops and no early exit: this vectorises.
    uint32_t nan = 0;
    for (int64_t i = 0; i < n; ++i) nan |= (std::bit_cast<uint32_t>(p[i]) & 0x7fffffffu) > 0x7f800000u;
    return nan != 0;
}

Tensor OneDnnBackend::activation(Activation a, const Tensor& x) {
    if (a == Activation::linear) return x;
    Tensor y(x.shape(), DType::float32);
    if (x.numel() == 0) return y;
    if (a == Activation::relu) {
        const float* px = x.data<float>();
        float* py = y.data<float>();
        const int64_t n = x.numel();   // hoisted: a call in the condition would keep the loop from vectorising
        for (int64_t i = 0; i < n; ++i) {
            const float v = px[i];
            py[i] = (v > 0.0f || v != v) ? v : 0.0f;   // activation_formulas' relu, written out to vectorise
        }
        return y;
    }
    const bool nan = (a == Activation::softmax || a == Activation::exponential) && has_nan(x);
    if (a == Activation::softmax && nan) return host::softmax(x, x.ndim() - 1, false);
    if (a == Activation::softmax) {
        const int64_t cols = x.dim(-1), rows = x.numel() / cols;
        const auto md = rows_desc(rows, cols);
        run(dnnl_compat::softmax(engine_, user_scratchpad(), md, 1, false),
            {{DNNL_ARG_SRC, wrap(engine_, md, x)}, {DNNL_ARG_DST, wrap(engine_, md, y)}});
        return y;
    }
    if (auto alg = onednn_algorithm(a); alg && !nan) {
        const auto md = flat_desc(x);
        run(dnnl_compat::eltwise(engine_, user_scratchpad(), *alg, md, onednn_alpha(a), 0.0f),
            {{DNNL_ARG_SRC, wrap(engine_, md, x)}, {DNNL_ARG_DST, wrap(engine_, md, y)}});
        return y;
    }
    const float* px = x.data<float>();
    float* py = y.data<float>();
    for (int64_t i = 0, n = x.numel(); i < n; ++i) py[i] = activations::apply(a, px[i]);
    return y;
}

Tensor OneDnnBackend::activation_backward(Activation a, const Tensor& x, const Tensor& y, const Tensor& dy) {
    if (a == Activation::linear) return dy;
    Tensor dx(x.shape(), DType::float32);
    const float* px = x.data<float>();
    const float* py = y.data<float>();
    const float* g = dy.data<float>();
    float* out = dx.data<float>();
    if (a == Activation::softmax) {
        // dx_j = y_j * (g_j - sum_k g_k y_k), row by row
        const int64_t cols = x.dim(-1), rows = x.numel() / cols;
        for (int64_t r = 0; r < rows; ++r) {
            double dot = 0;
            for (int64_t c = 0; c < cols; ++c) dot += double(g[r * cols + c]) * py[r * cols + c];
            for (int64_t c = 0; c < cols; ++c)
                out[r * cols + c] = py[r * cols + c] * (g[r * cols + c] - static_cast<float>(dot));
        }
        return dx;
    }
    for (int64_t i = 0, n = x.numel(); i < n; ++i) out[i] = g[i] * activations::derivative(a, px[i], py[i]);
    return dx;
}

}  // namespace keras::backend

namespace keras::backend {

Tensor OneDnnBackend::mean_over_steps(const Tensor& x) {
    const int64_t n = x.dim(0), t = x.dim(1), c = x.dim(2);
    Tensor y = Tensor::zeros({n, c});
    const float* px = x.data<float>();
    float* py = y.data<float>();
    for (int64_t i = 0; i < n; ++i) {
        for (int64_t s = 0; s < t; ++s)
            for (int64_t j = 0; j < c; ++j) py[i * c + j] += px[(i * t + s) * c + j];
        for (int64_t j = 0; j < c; ++j) py[i * c + j] /= static_cast<float>(t);
    }
    return y;
}

Tensor OneDnnBackend::mean_over_steps_backward(const Tensor& dy, int64_t steps) {
    const int64_t n = dy.dim(0), c = dy.dim(1);
    Tensor dx({n, steps, c}, DType::float32);
    const float* g = dy.data<float>();
    float* out = dx.data<float>();
    for (int64_t i = 0; i < n; ++i)
        for (int64_t s = 0; s < steps; ++s)
            for (int64_t j = 0; j < c; ++j) out[(i * steps + s) * c + j] = g[i * c + j] / static_cast<float>(steps);
    return dx;
}

}  // namespace keras::backend
