// OneDnnBackend: element-wise helpers and the optimizer updates, as plain loops over float32 arrays
// (light, memory-bound work where a oneDNN primitive would only add overhead). The formulas are
// Keras 3's; see keras/optimizers.hpp.
#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "keras/errors.hpp"
#include "onednn/onednn_backend.hpp"

namespace keras::backend {

namespace {

// Every tensor an update touches must be float32 with the parameter's number of elements.
void check_same_size(const Tensor& a, const Tensor& b, const char* what) {
    if (a.dtype() != DType::float32 || b.dtype() != DType::float32)
        value_error("{}: expected float32 tensors, received {} and {}", what, to_string(a.dtype()),
                    to_string(b.dtype()));
    if (a.numel() != b.numel())
        value_error("{}: shapes {} and {} do not match", what, shape_str(a.shape()), shape_str(b.shape()));
}

void check_same_shape(const Tensor& a, const Tensor& b, const char* what) {
    check_same_size(a, b, what);
    if (a.shape() != b.shape())
        value_error("{}: shapes {} and {} do not match", what, shape_str(a.shape()), shape_str(b.shape()));
}

// body(begin, end) over [0, n) in contiguous ranges (starting on 64-byte boundaries), on the backend's
// threads when the arrays are big enough for a team to pay: an element-wise update gives the same
// bits however it is split. An Embedding(20000, 128)'s Adam step (2.56 M floats, four arrays read,
// three written) is memory-bound, and two cores move more bytes than one. Each update makes one pass.
void for_ranges(int64_t n, const std::function<void(int64_t, int64_t)>& body) {
    run_ranges(threads_for_bytes(n * static_cast<int64_t>(sizeof(float))), n, 16, body);
}

}  // namespace

// ---- element-wise helpers

Tensor OneDnnBackend::multiply(const Tensor& a, const Tensor& b) {
    check_same_shape(a, b, "multiply");
    Tensor out(a.shape(), DType::float32);
    const float* x = a.data<float>();
    const float* y = b.data<float>();
    float* z = out.data<float>();
    const int64_t n = a.numel();
    for (int64_t i = 0; i < n; ++i) z[i] = x[i] * y[i];
    return out;
}

Tensor OneDnnBackend::add(const Tensor& a, const Tensor& b) {
    check_same_shape(a, b, "add");
    Tensor out(a.shape(), DType::float32);
    const float* x = a.data<float>();
    const float* y = b.data<float>();
    float* z = out.data<float>();
    const int64_t n = a.numel();
    for (int64_t i = 0; i < n; ++i) z[i] = x[i] + y[i];
    return out;
}

void OneDnnBackend::scale_(Tensor& x, float factor) {
    float* p = x.data<float>();
    const int64_t n = x.numel();
    for (int64_t i = 0; i < n; ++i) p[i] *= factor;
}

double OneDnnBackend::sum_squares(const Tensor& x) {
    const float* p = x.data<float>();
    const int64_t n = x.numel();
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(p[i]) * p[i];
    return sum;
}

void OneDnnBackend::clip_(Tensor& x, float lo, float hi) {
    float* p = x.data<float>();
    const int64_t n = x.numel();
    for (int64_t i = 0; i < n; ++i) p[i] = std::min(std::max(p[i], lo), hi);
}

// ---- optimizer updates

void OneDnnBackend::sgd_update(Tensor& param, const Tensor& grad, Tensor& momentum, float lr,
                               float momentum_factor, bool nesterov) {
    check_same_size(param, grad, "sgd_update");
    if (momentum.defined()) check_same_size(param, momentum, "sgd_update");
    float* p = param.data<float>();
    const float* g = grad.data<float>();
    float* m = momentum.defined() ? momentum.data<float>() : nullptr;
    const float mu = momentum_factor;
    for_ranges(param.numel(), [&](int64_t begin, int64_t end) {
        if (!m) {
            for (int64_t i = begin; i < end; ++i) p[i] -= lr * g[i];
        } else if (nesterov) {
            for (int64_t i = begin; i < end; ++i) {
                m[i] = mu * m[i] - lr * g[i];
                p[i] += mu * m[i] - lr * g[i];
            }
        } else {
            for (int64_t i = begin; i < end; ++i) {
                m[i] = mu * m[i] - lr * g[i];
                p[i] += m[i];
            }
        }
    });
}

void OneDnnBackend::adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, Tensor& vhat, float lr,
                                float beta_1, float beta_2, float epsilon, int64_t step) {
    check_same_size(param, grad, "adam_update");
    check_same_size(param, m, "adam_update");
    check_same_size(param, v, "adam_update");
    // Bias correction folded into the step size: alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t).
    const double t = static_cast<double>(step);
    const float alpha = static_cast<float>(lr * std::sqrt(1.0 - std::pow(double{beta_2}, t)) /
                                           (1.0 - std::pow(double{beta_1}, t)));
    const float one_minus_b1 = 1.0f - beta_1, one_minus_b2 = 1.0f - beta_2;
    float* p = param.data<float>();
    const float* g = grad.data<float>();
    float* mp = m.data<float>();
    float* vp = v.data<float>();
    const int64_t n = param.numel();
    // One pass over the arrays (memory-bound: an Embedding(20000, 128) is 10 MB each), each element's
    // arithmetic as in Keras.
    if (vhat.defined()) check_same_size(param, vhat, "adam_update");
    float* vh = vhat.defined() ? vhat.data<float>() : nullptr;   // AMSGrad divides by v's running maximum
    for_ranges(n, [&](int64_t begin, int64_t end) {
        if (vh) {
            for (int64_t i = begin; i < end; ++i) {
                mp[i] += (g[i] - mp[i]) * one_minus_b1;
                vp[i] += (g[i] * g[i] - vp[i]) * one_minus_b2;
                vh[i] = std::max(vh[i], vp[i]);
                p[i] -= mp[i] * alpha / (std::sqrt(vh[i]) + epsilon);
            }
        } else {
            for (int64_t i = begin; i < end; ++i) {
                mp[i] += (g[i] - mp[i]) * one_minus_b1;
                vp[i] += (g[i] * g[i] - vp[i]) * one_minus_b2;
                p[i] -= mp[i] * alpha / (std::sqrt(vp[i]) + epsilon);
            }
        }
    });
}

void OneDnnBackend::rmsprop_update(Tensor& param, const Tensor& grad, Tensor& velocity, Tensor& momentum,
                                   Tensor& average_grad, float lr, float rho, float momentum_factor,
                                   float epsilon) {
    check_same_size(param, grad, "rmsprop_update");
    check_same_size(param, velocity, "rmsprop_update");
    if (average_grad.defined()) check_same_size(param, average_grad, "rmsprop_update");
    if (momentum.defined()) check_same_size(param, momentum, "rmsprop_update");
    float* p = param.data<float>();
    const float* g = grad.data<float>();
    float* v = velocity.data<float>();
    float* mg = average_grad.defined() ? average_grad.data<float>() : nullptr;   // centered: v - mg^2
    float* mom = momentum.defined() ? momentum.data<float>() : nullptr;
    const float one_minus_rho = 1.0f - rho;
    // Each element's step lr * g / sqrt(denominator), applied with or without momentum.
    for_ranges(param.numel(), [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
            v[i] = rho * v[i] + one_minus_rho * g[i] * g[i];
            float increment;
            if (mg) {
                mg[i] = rho * mg[i] + one_minus_rho * g[i];
                increment = lr * g[i] / std::sqrt(v[i] - mg[i] * mg[i] + epsilon);
            } else {
                increment = lr * g[i] / std::sqrt(v[i] + epsilon);
            }
            if (mom) {
                mom[i] = momentum_factor * mom[i] + increment;
                p[i] -= mom[i];
            } else {
                p[i] -= increment;
            }
        }
    });
}

void OneDnnBackend::adagrad_update(Tensor& param, const Tensor& grad, Tensor& accumulator, float lr,
                                   float epsilon) {
    check_same_size(param, grad, "adagrad_update");
    check_same_size(param, accumulator, "adagrad_update");
    float* p = param.data<float>();
    const float* g = grad.data<float>();
    float* acc = accumulator.data<float>();
    for_ranges(param.numel(), [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
            acc[i] += g[i] * g[i];
            p[i] -= lr * g[i] / std::sqrt(acc[i] + epsilon);
        }
    });
}

}  // namespace keras::backend
