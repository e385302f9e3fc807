// Losses and metrics on the GPU (kernels in losses_metrics.cu): the result stays on the device as a
// (1,) float tensor, so the training step queues the loss, its gradient and the metric sums without
// waiting; the host reads them when it needs the numbers.
#include "cuda_backend.hpp"
#include "cuda_check.hpp"
#include "kernels.hpp"
#include "keras/errors.hpp"

namespace keras::backend {

namespace {
const float* in(const Tensor& t) { return static_cast<const float*>(t.raw()); }

// 8 bytes of device memory for one double accumulator (there is no float64 dtype).
Tensor double_scratch(Device device) { return Tensor({1}, DType::int64, device); }
double* as_double(Tensor& t) { return static_cast<double*>(t.raw()); }
}  // namespace

Tensor CudaBackend::loss(const LossSpec& spec, const Tensor& y_true, const Tensor& y_pred, Tensor* grad) {
    check_on_device(y_true, "loss target");
    check_on_device(y_pred, "loss prediction");
    make_current();
    if (grad) *grad = Tensor(y_pred.shape(), DType::float32, device());
    float* g = grad ? static_cast<float*>(grad->raw()) : nullptr;
    Tensor sum = double_scratch(device());
    Tensor value({1}, DType::float32, device());
    const int64_t K = y_pred.ndim() ? y_pred.dim(-1) : 1;
    const int64_t rows = K > 0 ? y_pred.numel() / K : 0;
    int64_t terms = 0;   // the mean is over elements (element-wise losses) or rows (crossentropies)
    switch (spec.kind) {
        case LossKind::binary_crossentropy:
        case LossKind::mean_squared_error:
        case LossKind::mean_absolute_error: {
            if (y_true.numel() != y_pred.numel())
                value_error("loss: target {} and prediction {} differ in size", shape_str(y_true.shape()),
                            shape_str(y_pred.shape()));
            const auto kind = spec.kind == LossKind::binary_crossentropy
                                  ? (spec.from_logits ? kernels::ElementwiseLoss::binary_crossentropy_logits
                                                      : kernels::ElementwiseLoss::binary_crossentropy)
                                  : (spec.kind == LossKind::mean_squared_error ? kernels::ElementwiseLoss::mean_squared_error
                                                                               : kernels::ElementwiseLoss::mean_absolute_error);
            terms = y_pred.numel();
            CUDA_CHECK(kernels::elementwise_loss(kind, spec.label_smoothing, in(y_true), in(y_pred), g, terms,
                                                 as_double(sum), stream_));
            break;
        }
        case LossKind::categorical_crossentropy:
        case LossKind::sparse_categorical_crossentropy: {
            const bool sparse = spec.kind == LossKind::sparse_categorical_crossentropy;
            if (y_true.numel() != (sparse ? rows : y_pred.numel()))
                value_error("loss: target {} does not fit prediction {}", shape_str(y_true.shape()),
                            shape_str(y_pred.shape()));
            terms = rows;
            CUDA_CHECK(kernels::crossentropy_rows(sparse, spec.from_logits, spec.label_smoothing, in(y_true), in(y_pred),
                                                  g, rows, K, as_double(sum), stream_));
            break;
        }
    }
    CUDA_CHECK(kernels::scaled_to_float(as_double(sum), terms ? 1.0 / static_cast<double>(terms) : 0.0,
                                        static_cast<float*>(value.raw()), stream_));
    return value;
}

Tensor CudaBackend::metric_sum(const MetricSpec& spec, const Tensor& y_true, const Tensor& y_pred) {
    check_on_device(y_true, "metric target");
    check_on_device(y_pred, "metric prediction");
    make_current();
    const int64_t K = y_pred.ndim() ? y_pred.dim(-1) : 1;
    const int64_t rows = K > 0 ? y_pred.numel() / K : 0;
    const bool sparse = spec.kind == MetricKind::sparse_categorical_accuracy;
    if (y_true.numel() != (sparse ? rows : y_pred.numel()))
        value_error("metric: target {} does not fit prediction {}", shape_str(y_true.shape()), shape_str(y_pred.shape()));
    kernels::RowMetric kind = kernels::RowMetric::binary_accuracy;
    switch (spec.kind) {
        case MetricKind::binary_accuracy: kind = kernels::RowMetric::binary_accuracy; break;
        case MetricKind::categorical_accuracy: kind = kernels::RowMetric::categorical_accuracy; break;
        case MetricKind::sparse_categorical_accuracy: kind = kernels::RowMetric::sparse_categorical_accuracy; break;
        case MetricKind::mean_squared_error: kind = kernels::RowMetric::mean_squared_error; break;
        case MetricKind::mean_absolute_error: kind = kernels::RowMetric::mean_absolute_error; break;
    }
    Tensor sum = double_scratch(device());
    Tensor value({1}, DType::float32, device());
    CUDA_CHECK(kernels::metric_rows(kind, spec.threshold, in(y_true), in(y_pred), rows, K, as_double(sum), stream_));
    CUDA_CHECK(kernels::scaled_to_float(as_double(sum), 1.0, static_cast<float*>(value.raw()), stream_));
    return value;
}

}  // namespace keras::backend
