// Losses and metrics on the GPU (kernels in losses_metrics.cu): the result stays on the device as a
// (1,) float tensor, so the training step queues the loss, its gradient and the metric sums without
// waiting; the host reads them when it needs the numbers.
#include <algorithm>

#include "cuda_backend.hpp"
#include "cuda_check.hpp"
#include "kernels.hpp"
#include "keras/errors.hpp"
#include "keras/losses.hpp"

namespace keras::backend {

namespace {
const float* in(const Tensor& t) { return static_cast<const float*>(t.raw()); }

// 8 bytes of device memory for one double accumulator (there is no float64 dtype).
Tensor double_scratch(Device device) { return Tensor({1}, DType::int64, device); }
double* as_double(Tensor& t) { return static_cast<double*>(t.raw()); }

// The output's mask on the device (undefined without one), and the weight of each real step in the
// loss: 1/rows without a mask, Keras's masked 1/valid with one (0 when all steps are masked).
struct DeviceMask {
    Tensor mask;
    double step_weight = 0.0;
    const float* data() const { return mask.defined() ? static_cast<const float*>(mask.raw()) : nullptr; }
};
DeviceMask device_mask(const Tensor& mask, const Shape& y_pred_shape, Device device) {
    const std::vector<double> weights = losses::position_weights(mask, y_pred_shape);   // checks the mask's shape
    DeviceMask out;
    for (double w : weights) out.step_weight = std::max(out.step_weight, w);
    if (mask.defined()) out.mask = mask.astype(DType::float32).to(device);
    return out;
}
}  // namespace

Tensor CudaBackend::loss(const LossSpec& spec, const Tensor& y_true, const Tensor& y_pred, const Tensor& mask,
                         Tensor* grad) {
    check_on_device(y_true, "loss target");
    check_on_device(y_pred, "loss prediction");
    make_current();
    if (grad) *grad = Tensor(y_pred.shape(), DType::float32, device());
    float* g = grad ? static_cast<float*>(grad->raw()) : nullptr;
    Tensor sum = double_scratch(device());
    Tensor value({1}, DType::float32, device());
    const int64_t K = y_pred.ndim() ? y_pred.dim(-1) : 1;
    const int64_t rows = K > 0 ? y_pred.numel() / K : 0;
    const DeviceMask m = device_mask(mask, y_pred.shape(), device());
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
            CUDA_CHECK(kernels::elementwise_loss(kind, spec.label_smoothing, in(y_true), in(y_pred), g, rows, K, m.data(),
                                                 m.step_weight, as_double(sum), stream_));
            break;
        }
        case LossKind::categorical_crossentropy:
        case LossKind::sparse_categorical_crossentropy: {
            const bool sparse = spec.kind == LossKind::sparse_categorical_crossentropy;
            if (y_true.numel() != (sparse ? rows : y_pred.numel()))
                value_error("loss: target {} does not fit prediction {}", shape_str(y_true.shape()),
                            shape_str(y_pred.shape()));
            CUDA_CHECK(kernels::crossentropy_rows(sparse, spec.from_logits, spec.label_smoothing, in(y_true), in(y_pred),
                                                  g, rows, K, m.data(), m.step_weight, as_double(sum), stream_));
            break;
        }
    }
    CUDA_CHECK(kernels::scaled_to_float(as_double(sum), 1.0, static_cast<float*>(value.raw()), stream_));
    return value;
}

Tensor CudaBackend::metric_sum(const MetricSpec& spec, const Tensor& y_true, const Tensor& y_pred,
                               const Tensor& mask) {
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
    const DeviceMask m = device_mask(mask, y_pred.shape(), device());
    Tensor sum = double_scratch(device());
    Tensor value({1}, DType::float32, device());
    CUDA_CHECK(kernels::metric_rows(kind, spec.threshold, in(y_true), in(y_pred), rows, K, m.data(), as_double(sum),
                                    stream_));
    CUDA_CHECK(kernels::scaled_to_float(as_double(sum), 1.0, static_cast<float*>(value.raw()), stream_));
    return value;
}

}  // namespace keras::backend
