// OneDnnBackend: losses and metrics on the host. The loss formulas stay where they are defined,
// in framework/src/losses.cpp (the CPU's Model calls them directly, in double precision); this entry
// point gives the CPU the same interface as the GPU. Metric sums are plain loops.
#include <algorithm>
#include <cmath>

#include "keras/errors.hpp"
#include "keras/losses.hpp"
#include "onednn/onednn_backend.hpp"

namespace keras::backend {

namespace {

losses::LossPtr loss_for(const LossSpec& spec) {
    const losses::CrossentropyOptions options{.from_logits = spec.from_logits, .label_smoothing = spec.label_smoothing};
    switch (spec.kind) {
        case LossKind::binary_crossentropy: return std::make_shared<losses::BinaryCrossentropy>(options);
        case LossKind::categorical_crossentropy: return std::make_shared<losses::CategoricalCrossentropy>(options);
        case LossKind::sparse_categorical_crossentropy:
            return std::make_shared<losses::SparseCategoricalCrossentropy>(options);
        case LossKind::mean_squared_error: return std::make_shared<losses::MeanSquaredError>();
        case LossKind::mean_absolute_error: return std::make_shared<losses::MeanAbsoluteError>();
    }
    runtime_error("unknown LossKind");
}

// Index of the largest value in row r (the first on ties).
int64_t argmax_row(const float* x, int64_t r, int64_t K) { return std::max_element(x + r * K, x + r * K + K) - (x + r * K); }

// The metric's value at step r: binary_accuracy the mean of the step's matches, the others as in
// keras/metrics.hpp.
double step_value(const MetricSpec& spec, const float* y, const float* p, int64_t r, int64_t K) {
    switch (spec.kind) {
        case MetricKind::binary_accuracy: {
            double matches = 0.0;
            for (int64_t j = 0; j < K; ++j) matches += y[r * K + j] == (p[r * K + j] > spec.threshold ? 1.0f : 0.0f);
            return matches / static_cast<double>(K);
        }
        case MetricKind::categorical_accuracy: return argmax_row(y, r, K) == argmax_row(p, r, K);
        case MetricKind::sparse_categorical_accuracy: return y[r] == static_cast<float>(argmax_row(p, r, K));
        case MetricKind::mean_squared_error:
        case MetricKind::mean_absolute_error: {
            double row = 0.0;
            for (int64_t j = 0; j < K; ++j) {
                const double d = double(y[r * K + j]) - p[r * K + j];
                row += spec.kind == MetricKind::mean_squared_error ? d * d : std::fabs(d);
            }
            return row / static_cast<double>(K);
        }
    }
    return 0.0;
}

}  // namespace

Tensor OneDnnBackend::loss(const LossSpec& spec, const Tensor& y_true, const Tensor& y_pred, const Tensor& mask,
                           Tensor* grad) {
    const double value = loss_for(spec)->compute_masked(y_true, y_pred, mask, grad);
    return Tensor(std::vector<float>{static_cast<float>(value)}, {1});
}

Tensor OneDnnBackend::metric_sum(const MetricSpec& spec, const Tensor& y_true, const Tensor& y_pred,
                                 const Tensor& mask) {
    const Tensor t = y_true.astype(DType::float32);
    const float* y = t.data<float>();
    const float* p = y_pred.data<float>();
    const int64_t K = y_pred.ndim() ? y_pred.dim(-1) : 1;
    const int64_t rows = K > 0 ? y_pred.numel() / K : 0;
    // Without a mask binary_accuracy sums its elements (K per step); with one, each real step adds
    // its value once.
    const std::vector<double> weights = losses::position_weights(mask, y_pred.shape());   // checks the mask
    const double unmasked_scale = spec.kind == MetricKind::binary_accuracy ? static_cast<double>(K) : 1.0;
    double sum = 0.0;
    for (int64_t r = 0; r < rows; ++r) {
        if (!mask.defined()) sum += unmasked_scale * step_value(spec, y, p, r, K);
        else if (weights[r] != 0.0) sum += step_value(spec, y, p, r, K);
    }
    return Tensor(std::vector<float>{static_cast<float>(sum)}, {1});
}

}  // namespace keras::backend
