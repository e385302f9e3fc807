// Loss values with their gradients, and metric sums, on the GPU. Each term is computed in double
// with the formulas of framework/src/losses.cpp and metrics.cpp; partial sums meet in a double
// atomicAdd, so only the order of additions differs from the CPU.
#include "kernels.hpp"

namespace keras::backend::kernels {

namespace {

// keras.config.epsilon() clipping bounds, as float32 values (see losses.cpp).
__device__ const double kClipLow = static_cast<double>(1e-7f);
__device__ const double kClipHigh = static_cast<double>(1.0f - 1e-7f);

// Adds every thread's partial into *sum: a warp-level sum first, so one atomic per warp rather than
// per thread. Every thread of the block must call it (all do, after their grid-stride loop).
__device__ void add_to_sum(double partial, double* sum) {
    for (int offset = 16; offset > 0; offset /= 2) partial += __shfl_down_sync(0xffffffffu, partial, offset);
    if ((threadIdx.x & 31) == 0) atomicAdd(sum, partial);
}

__device__ double sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    const double e = exp(x);
    return e / (1.0 + e);
}

__device__ double loss_term(ElementwiseLoss kind, double ls, double y, double p, double* d) {
    switch (kind) {
        case ElementwiseLoss::binary_crossentropy_logits: {
            y = y * (1.0 - ls) + 0.5 * ls;
            *d = sigmoid(p) - y;
            return fmax(p, 0.0) - p * y + log1p(exp(-fabs(p)));
        }
        case ElementwiseLoss::binary_crossentropy: {
            y = y * (1.0 - ls) + 0.5 * ls;
            const double q = fmin(fmax(p, kClipLow), kClipHigh);
            *d = (p < kClipLow || p > kClipHigh) ? 0.0 : -y / q + (1.0 - y) / (1.0 - q);
            return -(y * log(q) + (1.0 - y) * log(1.0 - q));
        }
        case ElementwiseLoss::mean_squared_error:
            *d = 2.0 * (p - y);
            return (p - y) * (p - y);
        case ElementwiseLoss::mean_absolute_error:
            *d = p > y ? 1.0 : (p < y ? -1.0 : 0.0);
            return fabs(p - y);
    }
    return 0.0;
}

// The weight of step r: 0 where the mask is 0, else step_weight.
__device__ double step_weight_of(const float* mask, double step_weight, int64_t r) {
    return mask && mask[r] == 0.0f ? 0.0 : step_weight;
}

__global__ void elementwise_loss_kernel(ElementwiseLoss kind, float ls, const float* y, const float* p, float* grad,
                                        int64_t n, int64_t K, const float* mask, double step_weight, double* sum) {
    double partial = 0.0;
    for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
        const double w = step_weight_of(mask, step_weight, i / K) / static_cast<double>(K);
        if (w == 0.0) {   // a masked step: its target is not read
            if (grad) grad[i] = 0.0f;
            continue;
        }
        double d = 0.0;
        partial += w * loss_term(kind, ls, y[i], p[i], &d);
        if (grad) grad[i] = static_cast<float>(w * d);
    }
    add_to_sum(partial, sum);
}

// The row's target j: smoothed one-hot (categorical) or the indicator of the class id (sparse).
__device__ double target(bool sparse, double ls, const float* y, int64_t r, int64_t j, int64_t K) {
    if (sparse) return static_cast<int64_t>(y[r]) == j ? 1.0 : 0.0;
    return y[r * K + j] * (1.0 - ls) + ls / static_cast<double>(K);
}

// One thread per row (rows are few, K small to moderate in these models).
__global__ void crossentropy_rows_kernel(bool sparse, bool from_logits, float ls, const float* y, const float* p,
                                         float* grad, int64_t rows, int64_t K, const float* mask, double step_weight,
                                         double* sum) {
    double partial = 0.0;
    for (int64_t r = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; r < rows; r += int64_t{gridDim.x} * blockDim.x) {
        const float* x = p + r * K;
        float* g = grad ? grad + r * K : nullptr;
        const double w = step_weight_of(mask, step_weight, r);
        if (w == 0.0) {   // a masked step: its targets are not read
            if (g)
                for (int64_t j = 0; j < K; ++j) g[j] = 0.0f;
            continue;
        }
        double loss = 0.0;
        if (from_logits) {
            // log_softmax(x)_j = x_j - logsumexp(x); d/dx_k = softmax_k * sum(t) - t_k.
            double mx = x[0];
            for (int64_t j = 1; j < K; ++j) mx = fmax(mx, static_cast<double>(x[j]));
            double sum_exp = 0.0, sum_t = 0.0;
            for (int64_t j = 0; j < K; ++j) sum_exp += exp(x[j] - mx);
            const double log_sum = mx + log(sum_exp);
            for (int64_t j = 0; j < K; ++j) {
                const double t = target(sparse, ls, y, r, j, K);
                loss -= t * (x[j] - log_sum);
                sum_t += t;
            }
            if (g)
                for (int64_t j = 0; j < K; ++j)
                    g[j] = static_cast<float>((exp(x[j] - log_sum) * sum_t - target(sparse, ls, y, r, j, K)) * w);
        } else {
            // Normalise to q = p / S, clip, -sum t log q; dL/dp_k = (a_k - sum_j a_j q_j) / S with
            // a_j = dL/dq_j, zero where the clip is active.
            double S = 0.0;
            for (int64_t j = 0; j < K; ++j) S += x[j];
            double a_dot_q = 0.0;
            for (int64_t j = 0; j < K; ++j) {
                const double q = x[j] / S, t = target(sparse, ls, y, r, j, K);
                loss -= t * log(fmin(fmax(q, kClipLow), kClipHigh));
                const bool clipped = q < kClipLow || q > kClipHigh;
                a_dot_q += (clipped ? 0.0 : -t / q) * q;
            }
            if (g)
                for (int64_t j = 0; j < K; ++j) {
                    const double q = x[j] / S, t = target(sparse, ls, y, r, j, K);
                    const double a = (q < kClipLow || q > kClipHigh) ? 0.0 : -t / q;
                    g[j] = static_cast<float>((a - a_dot_q) / S * w);
                }
        }
        partial += w * loss;
    }
    add_to_sum(partial, sum);
}

__device__ int64_t argmax(const float* x, int64_t K) {
    int64_t best = 0;
    for (int64_t j = 1; j < K; ++j)
        if (x[j] > x[best]) best = j;   // the first maximum on ties, like std::max_element
    return best;
}

__global__ void metric_rows_kernel(RowMetric kind, float threshold, const float* y, const float* p, int64_t rows,
                                   int64_t K, const float* mask, double* sum) {
    double partial = 0.0;
    for (int64_t r = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; r < rows; r += int64_t{gridDim.x} * blockDim.x) {
        if (mask && mask[r] == 0.0f) continue;   // a masked step counts for nothing
        const float* x = p + r * K;
        switch (kind) {
            case RowMetric::binary_accuracy: {
                double matches = 0.0;
                for (int64_t j = 0; j < K; ++j) matches += y[r * K + j] == (x[j] > threshold ? 1.0f : 0.0f) ? 1.0 : 0.0;
                partial += mask ? matches / static_cast<double>(K) : matches;
                break;
            }
            case RowMetric::categorical_accuracy: partial += argmax(y + r * K, K) == argmax(x, K) ? 1.0 : 0.0; break;
            case RowMetric::sparse_categorical_accuracy:
                partial += y[r] == static_cast<float>(argmax(x, K)) ? 1.0 : 0.0;
                break;
            case RowMetric::mean_squared_error:
            case RowMetric::mean_absolute_error: {
                double row = 0.0;
                for (int64_t j = 0; j < K; ++j) {
                    const double d = static_cast<double>(y[r * K + j]) - x[j];
                    row += kind == RowMetric::mean_squared_error ? d * d : fabs(d);
                }
                partial += row / static_cast<double>(K);
                break;
            }
        }
    }
    add_to_sum(partial, sum);
}

__global__ void scaled_to_float_kernel(const double* sum, double scale, float* out) {
    out[0] = static_cast<float>(sum[0] * scale);
}

}  // namespace

cudaError_t elementwise_loss(ElementwiseLoss kind, float label_smoothing, const float* y, const float* p, float* grad,
                             int64_t rows, int64_t K, const float* mask, double step_weight, double* sum,
                             cudaStream_t stream) {
    const cudaError_t status = cudaMemsetAsync(sum, 0, sizeof(double), stream);
    if (status != cudaSuccess) return status;
    const int64_t count = rows * K;
    if (count > 0)
        elementwise_loss_kernel<<<blocks_for(count), kThreads, 0, stream>>>(kind, label_smoothing, y, p, grad, count, K,
                                                                             mask, step_weight, sum);
    return cudaGetLastError();
}

cudaError_t crossentropy_rows(bool sparse, bool from_logits, float label_smoothing, const float* y, const float* p,
                              float* grad, int64_t rows, int64_t K, const float* mask, double step_weight, double* sum,
                              cudaStream_t stream) {
    const cudaError_t status = cudaMemsetAsync(sum, 0, sizeof(double), stream);
    if (status != cudaSuccess) return status;
    if (rows > 0 && K > 0)
        crossentropy_rows_kernel<<<blocks_for(rows), kThreads, 0, stream>>>(sparse, from_logits, label_smoothing, y, p,
                                                                             grad, rows, K, mask, step_weight, sum);
    return cudaGetLastError();
}

cudaError_t metric_rows(RowMetric kind, float threshold, const float* y, const float* p, int64_t rows, int64_t K,
                        const float* mask, double* sum, cudaStream_t stream) {
    const cudaError_t status = cudaMemsetAsync(sum, 0, sizeof(double), stream);
    if (status != cudaSuccess) return status;
    if (rows > 0 && K > 0) metric_rows_kernel<<<blocks_for(rows), kThreads, 0, stream>>>(kind, threshold, y, p, rows, K, mask, sum);
    return cudaGetLastError();
}

cudaError_t scaled_to_float(const double* sum, double scale, float* out, cudaStream_t stream) {
    scaled_to_float_kernel<<<1, 1, 0, stream>>>(sum, scale, out);
    return cudaGetLastError();
}

}  // namespace keras::backend::kernels
