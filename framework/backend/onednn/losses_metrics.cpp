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

}  // namespace

Tensor OneDnnBackend::loss(const LossSpec& spec, const Tensor& y_true, const Tensor& y_pred, Tensor* grad) {
    const double value = loss_for(spec)->compute(y_true, y_pred, grad);
    return Tensor(std::vector<float>{static_cast<float>(value)}, {1});
}

Tensor OneDnnBackend::metric_sum(const MetricSpec& spec, const Tensor& y_true, const Tensor& y_pred) {
    const Tensor t = y_true.astype(DType::float32);
    const float* y = t.data<float>();
    const float* p = y_pred.data<float>();
    const int64_t K = y_pred.ndim() ? y_pred.dim(-1) : 1;
    const int64_t rows = K > 0 ? y_pred.numel() / K : 0;
    double sum = 0.0;
    switch (spec.kind) {
        case MetricKind::binary_accuracy:
            for (int64_t i = 0; i < y_pred.numel(); ++i) sum += y[i] == (p[i] > spec.threshold ? 1.0f : 0.0f);
            break;
        case MetricKind::categorical_accuracy:
            for (int64_t r = 0; r < rows; ++r) sum += argmax_row(y, r, K) == argmax_row(p, r, K);
            break;
        case MetricKind::sparse_categorical_accuracy:
            for (int64_t r = 0; r < rows; ++r) sum += y[r] == static_cast<float>(argmax_row(p, r, K));
            break;
        case MetricKind::mean_squared_error:
        case MetricKind::mean_absolute_error:
            for (int64_t r = 0; r < rows; ++r) {
                double row = 0.0;
                for (int64_t j = 0; j < K; ++j) {
                    const double d = double(y[r * K + j]) - p[r * K + j];
                    row += spec.kind == MetricKind::mean_squared_error ? d * d : std::fabs(d);
                }
                sum += row / static_cast<double>(K);
            }
            break;
    }
    return Tensor(std::vector<float>{static_cast<float>(sum)}, {1});
}

}  // namespace keras::backend
