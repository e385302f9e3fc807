// Launchers for our CUDA kernels (*.cu). Plain pointers and sizes, so the .cu files need no
// kerascpp types beyond Activation, and nvcc never sees fmt or the Tensor class. Every launcher
// returns cudaGetLastError() (wrap calls in CUDA_CHECK) and
// only queues work on `stream`: none of them waits for the device.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "keras/activations.hpp"

namespace keras::backend::kernels {

// ---- activations (eltwise.cu); softmax over rows of `cols` values
cudaError_t activation_forward(Activation a, const float* x, float* y, int64_t n, cudaStream_t stream);
cudaError_t activation_backward(Activation a, const float* x, const float* y, const float* dy, float* dx, int64_t n,
                         cudaStream_t stream);
cudaError_t softmax_forward(const float* x, float* y, int64_t rows, int64_t cols, cudaStream_t stream);
cudaError_t softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t cols, cudaStream_t stream);

// ---- element-wise helpers (eltwise.cu)
cudaError_t multiply(const float* a, const float* b, float* out, int64_t n, cudaStream_t stream);
cudaError_t add(const float* a, const float* b, float* out, int64_t n, cudaStream_t stream);
cudaError_t scale(float* x, float factor, int64_t n, cudaStream_t stream);
cudaError_t clip(float* x, float lo, float hi, int64_t n, cudaStream_t stream);
// *result (device memory) = sum of x[i]^2, accumulated in double.
cudaError_t sum_squares(const float* x, int64_t n, double* result, cudaStream_t stream);
// x (n, t, c) -> y (n, c) mean over t, and its backward dx (n, t, c) = dy / t.
cudaError_t mean_over_steps(const float* x, float* y, int64_t n, int64_t t, int64_t c, cudaStream_t stream);
cudaError_t mean_over_steps_backward(const float* dy, float* dx, int64_t n, int64_t t, int64_t c, cudaStream_t stream);

// ---- whole time steps (time_steps.cu). x (N, S, F) -> out (N, steps, F): out[n, s] = x[n, idx[n, s]],
// zeros where idx is -1. scatter_add_steps: out (N, steps, F), already zeroed, gets
// out[n, idx[n, s]] += y[n, s] for y (N, S, F). idx is a device array, checked by the caller.
cudaError_t gather_steps(const float* x, const int32_t* idx, float* out, int64_t N, int64_t S, int64_t steps,
                         int64_t F, cudaStream_t stream);
cudaError_t scatter_add_steps(const float* y, const int32_t* idx, float* out, int64_t N, int64_t S, int64_t steps,
                              int64_t F, cudaStream_t stream);

// ---- embedding (embedding.cu). out (count, width) = table[ids]; an id outside [0, vocab) gives a
// row of zeros and lowers *first_bad (device memory, preset above any position) to its flat position.
cudaError_t embedding_gather(const int32_t* ids, const float* table, float* out, int64_t count, int64_t vocab,
                      int64_t width, long long* first_bad, cudaStream_t stream);
cudaError_t embedding_gather(const int64_t* ids, const float* table, float* out, int64_t count, int64_t vocab,
                      int64_t width, long long* first_bad, cudaStream_t stream);
// dtable (vocab, width), zeroed by the caller, += dy rows at ids (ids outside [0, vocab) are
// skipped). atomicAdd: rows hit by several ids are summed in an order that varies from run to run,
// so the result is not bit-deterministic (it differs from the CPU's sum by rounding only).
cudaError_t embedding_scatter_add(const int32_t* ids, const float* dy, float* dtable, int64_t count, int64_t vocab,
                                  int64_t width, cudaStream_t stream);
cudaError_t embedding_scatter_add(const int64_t* ids, const float* dy, float* dtable, int64_t count, int64_t vocab,
                                  int64_t width, cudaStream_t stream);

// ---- optimizer updates (optimizer_updates.cu): one kernel for the whole update of one variable,
// the formulas of the CPU backend (onednn/optimizer_updates.cpp). Optional slots are nullptr.
cudaError_t sgd_update(float* param, const float* grad, float* momentum, float lr, float momentum_factor, bool nesterov,
                int64_t n, cudaStream_t stream);
// alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t), computed on the host.
cudaError_t adam_update(float* param, const float* grad, float* m, float* v, float* vhat, float alpha, float beta_1,
                 float beta_2, float epsilon, int64_t n, cudaStream_t stream);
cudaError_t rmsprop_update(float* param, const float* grad, float* velocity, float* momentum, float* average_grad,
                    float lr, float rho, float momentum_factor, float epsilon, int64_t n, cudaStream_t stream);
cudaError_t adagrad_update(float* param, const float* grad, float* accumulator, float lr, float epsilon, int64_t n,
                    cudaStream_t stream);

// ---- losses and metrics (losses_metrics.cu), in double inside as the CPU's formulas are.
// *sum (one device double) receives the weighted sum of the per-step values (a step is a row of K
// values along the last axis); the launchers zero it first. mask (nullable, one float per step):
// steps where it is 0 weigh nothing and their targets are not read; the other steps weigh
// step_weight (the loss's 1/rows, or Keras's masked 1/valid). grad (nullable) receives d(sum)/d(p).
enum class ElementwiseLoss { binary_crossentropy, binary_crossentropy_logits, mean_squared_error, mean_absolute_error };
// Element-wise losses: a step's value is the mean of its K elements' terms.
cudaError_t elementwise_loss(ElementwiseLoss kind, float label_smoothing, const float* y, const float* p, float* grad,
                             int64_t rows, int64_t K, const float* mask, double step_weight, double* sum,
                             cudaStream_t stream);
// Crossentropy of `rows` rows of K values; y holds rows x K targets, or one class id per row when sparse.
cudaError_t crossentropy_rows(bool sparse, bool from_logits, float label_smoothing, const float* y, const float* p,
                              float* grad, int64_t rows, int64_t K, const float* mask, double step_weight, double* sum,
                              cudaStream_t stream);
enum class RowMetric { binary_accuracy, categorical_accuracy, sparse_categorical_accuracy, mean_squared_error,
                       mean_absolute_error };
// Sum over rows of the metric's per-row values (y as for crossentropy_rows). Without a mask
// binary_accuracy adds the matches of the row's elements; with one (nullable), the real rows add
// their value, binary_accuracy the mean of its matches.
cudaError_t metric_rows(RowMetric kind, float threshold, const float* y, const float* p, int64_t rows, int64_t K,
                        const float* mask, double* sum, cudaStream_t stream);
// out[0] = float(sum[0] * scale)
cudaError_t scaled_to_float(const double* sum, double scale, float* out, cudaStream_t stream);

// Launch geometry shared by the element-wise kernels: 256 threads, grid-stride loops.
constexpr int kThreads = 256;
inline unsigned blocks_for(int64_t n) {
    const int64_t b = (n + kThreads - 1) / kThreads;
    return static_cast<unsigned>(b < 1 ? 1 : (b > 65535 * 8 ? 65535 * 8 : b));
}

}  // namespace keras::backend::kernels
