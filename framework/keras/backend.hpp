// The backend interface: what a device must compute for the layers, losses and optimizers.
// Internal: not installed (the layers, losses and metrics call it; programs use the public headers).
// Layers call these with tensors in Keras's canonical layouts (kernels (in, units), RNN gates in
// Keras order); each backend converts to its library's layouts inside. Adding a device means
// implementing this interface, not touching the layers.
#pragma once

#include <any>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "keras/activations.hpp"
#include "keras/backend_types.hpp"
#include "keras/tensor.hpp"

// KERAS_BACKEND_API marks the few internal symbols libkerascpp exports for its CUDA library
// (libkerascpp-cuda.so, loaded on first use of a GPU; see framework/backend/cuda_library.hpp): the
// Backend base class (its host fallbacks and type info), get(), and the RNN input checks. The CUDA
// library uses libkerascpp's copies rather than its own, so there is one backend registry, one CPU
// backend and one set of tensors per process. Not for programs: this header is not installed.
#define KERAS_BACKEND_API __attribute__((visibility("default")))

namespace keras::backend {

// Weights in Keras's layout: kernel (C, G*H), recurrent_kernel (H, G*H),
// bias (G*H), or (2, 3*H) for GRU reset_after; bias undefined when use_bias is false.
struct RnnWeights {
    Tensor kernel, recurrent_kernel, bias;
};

// Keras's dropout masks where the step loop applies them. LSTM / GRU with recurrent_dropout run
// Keras's cell "implementation 1", which draws one mask per gate (SimpleRNN: G = 1). Kept entries
// are 1 / (1 - rate); each mask is the same at every step. Undefined = no mask.
struct RnnDropoutMasks {
    Tensor input = {};       // (N, G*C): gate g's mask on x_t in columns g*C .. g*C + C - 1
    Tensor recurrent = {};   // (N, G*H): gate g's mask on h_{t-1} before its recurrent product
    bool any() const { return input.defined() || recurrent.defined(); }
};

struct RnnForward {
    Tensor sequences;     // (N, T, H): the output at every step, in processing order
    Tensor h;             // (N, H): final hidden state
    // (N, H): final cell state (LSTM only). Read it through final_c(): where producing it costs a
    // backend extra work (oneDNN with lengths: its primitive has no c at each sample's last real
    // step), the backend leaves c undefined and sets compute_c, so callers that never read c never
    // pay for it. compute_c reads the forward's inputs, as the backward pass does.
    mutable Tensor c;
    std::any saved;       // whatever the backward pass needs (workspace, inputs)
    mutable std::function<Tensor()> compute_c = {};
    const Tensor& final_c() const {
        if (compute_c) {
            c = compute_c();
            compute_c = nullptr;
        }
        return c;
    }
};

struct RnnGradients {
    Tensor dx;                 // (N, T, C)
    Tensor dh0, dc0;           // (N, H)
    RnnWeights dweights;       // same shapes as the weights (bias undefined when use_bias is false)
};

// Which implementation runs a given RNN spec (shown in summary() and logs).
struct RnnPath {
    bool fused = false;        // true: the library's RNN primitive; false: the step-by-step fallback
    std::string description;   // e.g. "oneDNN lstm" or "fallback loop (activation='relu' unsupported by oneDNN lstm)"
};

// ---- Shared by every backend (framework/backend/rnn_contract.cpp), so the backends cannot drift.
//
// The fused-vs-step-loop rule. A backend describes what its library can do; rnn_path_for decides:
// - the library's fused RNN runs every spec it supports (`unsupported` empty), with or without
//   per-sample lengths: a backend whose library lacks something for lengths (oneDNN: c at each
//   sample's last real step) makes up for it inside, never by asking the layer;
// - a spec it does not support runs the step loop, described as step_loop + ": " + the reason;
// - dropout masks (training with dropout / recurrent_dropout) run the step loop whatever the spec:
//   no library primitive masks x_t and h_{t-1} per gate and step. rnn_path notes it for a layer with
//   recurrent_dropout, whose training always has such masks.
struct RnnLibrary {
    std::string fused;               // the fused path's description, e.g. "oneDNN lstm" or "cuDNN gru"
    std::string unsupported;         // why the library cannot run the spec; empty when it can
    std::string step_loop;           // how this backend's step loop is named, e.g. "fallback loop"
    std::string dropout_step_loop;   // the same for training with recurrent_dropout, with its reason
};
KERAS_BACKEND_API RnnPath rnn_path_for(const RnnSpec& spec, const RnnLibrary& library);
// Whether a forward runs the step loop: the spec's path is not fused, or dropout masks are given.
inline bool runs_step_loop(const RnnPath& path, const RnnDropoutMasks& masks) { return !path.fused || masks.any(); }

// Gates per cell in Keras's layout: 1 (SimpleRNN), 4 (LSTM), 3 (GRU).
int64_t rnn_gate_count(RnnCell cell);
// ValueError naming the layer unless x is float32 (N, T >= 1, C), the weights have Keras's shapes
// for the spec (see RnnWeights), h0 / c0 are undefined or float32 (N, H), all on `device`.
KERAS_BACKEND_API void check_rnn_inputs(const RnnSpec& spec, const Tensor& x, const RnnWeights& w, const Tensor& h0,
                                        const Tensor& c0, Device device);
// ValueError naming the layer unless lengths is empty or N values in [0, T].
KERAS_BACKEND_API void check_rnn_lengths(const RnnSpec& spec, const std::vector<int32_t>& lengths, int64_t N, int64_t T);


// The generic tensor ops keras::ops runs on (float32 unless said; see keras/ops.hpp for the meaning).
enum class UnaryOp { negative, exp, log, tanh, sigmoid, relu, sqrt, square, abs, sign, reciprocal };
// Comparisons give float32 1 / 0.
enum class BinaryOp {
    add, subtract, multiply, divide, maximum, minimum, power,
    greater, greater_equal, less, less_equal, equal, not_equal
};
enum class ReduceOp { sum, mean, max, min };

// ---- 1-D windows, shared by the convolution and the poolings: output step o reads input steps
// o * stride + j * dilation - pad_before for taps j = 0 .. size - 1; steps outside [0, T) are padding
// (zeros for a convolution, skipped by the poolings).
struct Window1D {
    int64_t size = 1, stride = 1, dilation = 1, pad_before = 0, pad_after = 0;
    int64_t span() const { return (size - 1) * dilation + 1; }
    // Output steps for `steps` input steps; 0 when the padded input is shorter than a window.
    int64_t out_steps(int64_t steps) const {
        const int64_t padded = steps + pad_before + pad_after;
        return padded >= span() ? (padded - span()) / stride + 1 : 0;
    }
    // Keras's padding for `steps` input steps: "valid" (none), "same" (ceil(steps / stride) outputs,
    // the smaller half of the padding in front, as TensorFlow does) or "causal" (span - 1 in front).
    KERAS_BACKEND_API static Window1D for_padding(int64_t size, int64_t stride, int64_t dilation,
                                                  const std::string& padding, int64_t steps);
};
enum class PoolKind { max, average };   // average: over each window's real steps (padding excluded)
// A pooling's output and what its backward needs (oneDNN's max pooling: the workspace of argmaxes).
struct PoolForward {
    Tensor y;
    std::any saved;
};

// A normalization's output and what its backward needs (oneDNN: the means and variances). Batch
// normalization also hands back the batch's statistics, per channel, for the moving averages.
struct NormForward {
    Tensor y;
    std::any saved;
    Tensor mean = {}, variance = {};
};

// What a step of the training / inference loops is doing; the CPU backend times each kind apart.
enum class StepKind { train, test, predict };

class KERAS_BACKEND_API Backend {
public:
    virtual ~Backend() = default;
    virtual Device device() const = 0;
    virtual std::string name() const = 0;

    // ---- The loops of fit / evaluate / predict bracket every batch with these, from the thread that
    // runs the batch. The CPU backend picks its thread count for the step (see onednn/threads.cpp).
    virtual void begin_step(StepKind) {}
    virtual void end_step(StepKind, int64_t /*samples*/) {}

    // ---- Dense: y = x @ kernel + bias, x (M, C), kernel (C, U), bias (U) or undefined.
    virtual Tensor matmul_bias(const Tensor& x, const Tensor& kernel, const Tensor& bias) = 0;
    // dx = dy @ kernel^T, dkernel = x^T @ dy, dbias = sum_rows(dy) (dbias only if bias defined).
    virtual void matmul_bias_backward(const Tensor& x, const Tensor& kernel, const Tensor& dy,
                                      Tensor& dx, Tensor& dkernel, Tensor* dbias) = 0;

    // ---- Mixed precision (bfloat16 compute, float32 tensors and weights): the kernels below round
    // their inputs and weights to bfloat16 and accumulate in float32; forward outputs are rounded to
    // bfloat16 (the layer's compute dtype), gradients stay float32. bfloat16_unsupported_reason() is
    // empty when this device can; else it says why not, and the *_bf16 kernels are the float32 ones
    // (the defaults below), as are RNN calls with spec.precision == bfloat16.
    virtual std::string bfloat16_unsupported_reason() { return "this backend has no bfloat16 kernels yet"; }
    virtual Tensor matmul_bias_bf16(const Tensor& x, const Tensor& kernel, const Tensor& bias) {
        return matmul_bias(x, kernel, bias);
    }
    virtual void matmul_bias_backward_bf16(const Tensor& x, const Tensor& kernel, const Tensor& dy, Tensor& dx,
                                           Tensor& dkernel, Tensor* dbias) {
        matmul_bias_backward(x, kernel, dy, dx, dkernel, dbias);
    }
    virtual Tensor embedding_bf16(const Tensor& ids, const Tensor& table, const std::string& layer_name) {
        return embedding(ids, table, layer_name);
    }

    // ---- Activations over any shape; softmax over the last axis.
    virtual Tensor activation(Activation a, const Tensor& x) = 0;
    virtual Tensor activation_backward(Activation a, const Tensor& x, const Tensor& y, const Tensor& dy) = 0;

    // ---- Embedding: ids (int32 or int64, any shape) -> (..., D). Out-of-range ids throw ValueError
    // naming the layer, the value and its position.
    virtual Tensor embedding(const Tensor& ids, const Tensor& table, const std::string& layer_name) = 0;
    // d_table (V, D) = scatter-add of dy rows at ids.
    virtual Tensor embedding_backward(const Tensor& ids, const Tensor& dy, int64_t vocab) = 0;

    // ---- Recurrent layers. x (N, T, C); h0 / c0 (N, H) or undefined for zeros. Every backend
    // checks its inputs with check_rnn_inputs / check_rnn_lengths and picks its path with
    // rnn_path_for / runs_step_loop (above); per-sample lengths never change the path.
    virtual RnnPath rnn_path(const RnnSpec& spec) = 0;
    // masks: Keras's dropout masks (see RnnDropoutMasks); no library primitive can apply them per
    // gate and step, so a backend runs its step loop; the backward sees the same masks.
    // lengths: empty, or N per-sample lengths in [0, T] for RIGHT-PACKED input (packed sequences):
    // sample n's real steps are x[n, 0:len[n]]. Outputs at t >= len[n] are unspecified (never read
    // them); h / final_c() are the states after step len[n] - 1, or h0 / c0 when len[n] == 0. Lengths need
    // go_backwards false (the caller orders the steps). The backward pass then ignores d_sequences
    // at t >= len[n], injects dh / dc at step len[n] - 1, and gives dx = 0 at t >= len[n].
    virtual RnnForward rnn_forward(const RnnSpec& spec, const Tensor& x, const RnnWeights& w,
                                   const Tensor& h0, const Tensor& c0, bool training,
                                   const RnnDropoutMasks& masks = {}, const std::vector<int32_t>& lengths = {}) = 0;
    // d_sequences (N, T, H) or undefined; dh / dc (N, H) or undefined (gradient of the final states).
    virtual RnnGradients rnn_backward(const RnnSpec& spec, const RnnWeights& w, RnnForward& fwd,
                                      const Tensor& d_sequences, const Tensor& dh, const Tensor& dc) = 0;

    // ---- Moving whole time steps (masked RNNs pack and unpack their sequences with these).
    // x (N, S, F), idx N*steps entries (row-major (N, steps)), each in [-1, S):
    // out (N, steps, F) with out[n, s] = x[n, idx[n, s]], or zeros where idx[n, s] == -1.
    virtual Tensor gather_steps(const Tensor& x, const std::vector<int32_t>& idx, int64_t steps) = 0;
    // The adjoint: y (N, S, F), idx N*S entries in [-1, steps): out (N, steps, F) starts at zero and
    // out[n, idx[n, s]] += y[n, s] (entries -1 are dropped).
    virtual Tensor scatter_add_steps(const Tensor& y, const std::vector<int32_t>& idx, int64_t steps) = 0;

    // ---- (N, T, C) -> (N, C) mean over the steps axis, and its backward (dy / T at every step).
    virtual Tensor mean_over_steps(const Tensor& x) = 0;
    virtual Tensor mean_over_steps_backward(const Tensor& dy, int64_t steps) = 0;

    // ---- Element-wise helpers.
    virtual Tensor multiply(const Tensor& a, const Tensor& b) = 0;      // same shapes
    virtual Tensor add(const Tensor& a, const Tensor& b) = 0;           // same shapes
    virtual void scale_(Tensor& x, float factor) = 0;                    // in place
    virtual double sum_squares(const Tensor& x) = 0;
    virtual void clip_(Tensor& x, float lo, float hi) = 0;               // in place

    // ---- Optimizer updates, in place, following Keras 3's formulas (see optimizers.hpp).
    // `momentum` undefined means plain SGD.
    virtual void sgd_update(Tensor& param, const Tensor& grad, Tensor& momentum, float lr,
                            float momentum_factor, bool nesterov) = 0;
    // step is the 1-based iteration used for bias correction; vhat defined means amsgrad.
    virtual void adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, Tensor& vhat,
                             float lr, float beta_1, float beta_2, float epsilon, int64_t step) = 0;
    // momentum defined when momentum_factor > 0; average_grad defined when centered.
    virtual void rmsprop_update(Tensor& param, const Tensor& grad, Tensor& velocity, Tensor& momentum,
                                Tensor& average_grad, float lr, float rho, float momentum_factor,
                                float epsilon) = 0;
    virtual void adagrad_update(Tensor& param, const Tensor& grad, Tensor& accumulator, float lr,
                                float epsilon) = 0;

    // ---- Losses and metrics. y_true: float32 with y_pred's shape, or class ids as float32 (N,) or
    // (N, 1) for the sparse kinds, already checked against y_pred (shapes, id range) by the caller.
    // mask: undefined, or the output's mask (float32 of y_pred's shape without its last axis, 1 = a real
    // step, 0 = padding; on the host, where masks live): masked steps are skipped as in Keras.
    // The batch-mean loss as a float32 tensor of shape (1,) on y_pred's device (no host wait), and
    // d(loss)/d(y_pred) into *grad when grad is not null. With a mask the mean is Keras's masked one,
    // sum(loss * mask) / sum(mask) over the steps (see losses::position_weights).
    virtual Tensor loss(const LossSpec& spec, const Tensor& y_true, const Tensor& y_pred, const Tensor& mask,
                        Tensor* grad) = 0;
    // The sum of the metric's per-position values over the batch, float32 (1,) on y_pred's device.
    // With a mask: the sum over the real steps of each step's value (binary_accuracy: the mean of the
    // step's elements); Metric::add_masked_position_sum turns it into the running mean.
    virtual Tensor metric_sum(const MetricSpec& spec, const Tensor& y_true, const Tensor& y_pred, const Tensor& mask) = 0;

    // ---- 1-D convolution and pooling, channels last (keras::ops::conv / max_pool / average_pool check
    // the shapes first). The defaults (framework/backend/conv_pool.cpp) compose this backend's generic
    // ops (windows gathered by take, then matmul or a reduction), so they run on any device; a backend
    // overrides them with its library's primitives.
    // x (N, T, C), kernel (K, C / groups, F) in Keras's layout -> (N, To, F); output channel f reads
    // group f / (F / groups), input channels of that group only.
    virtual Tensor conv1d(const Window1D& w, int64_t groups, const Tensor& x, const Tensor& kernel);
    // dx (N, T, C) and dkernel (K, C / groups, F).
    virtual void conv1d_backward(const Window1D& w, int64_t groups, const Tensor& x, const Tensor& kernel,
                                 const Tensor& dy, Tensor& dx, Tensor& dkernel);
    // x (N, T, C) -> y (N, To, C). The backward gives each window's gradient to its first maximum (max) or spreads it evenly over the
    // window's real steps (average); fwd is the forward's result, made with training = true.
    virtual PoolForward pool1d(PoolKind kind, const Window1D& w, const Tensor& x, bool training);
    virtual Tensor pool1d_backward(PoolKind kind, const Window1D& w, const Tensor& x, const PoolForward& fwd,
                                   const Tensor& dy);

    // ---- Layer normalization over the last axis: x (..., C) as rows of C values, gamma / beta (C) or
    // undefined (no scale / no offset): y = (x - mean) / sqrt(variance + epsilon) * gamma + beta, with
    // each row's mean and (biased) variance. The default (framework/backend/normalization.cpp) composes the
    // generic ops; fwd is the forward's result, made with training = true.
    virtual NormForward layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float epsilon,
                                   bool training);
    // dx, and dgamma / dbeta (C) where gamma / beta are defined.
    virtual void layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& beta, float epsilon,
                                     const NormForward& fwd, const Tensor& dy, Tensor& dx, Tensor& dgamma,
                                     Tensor& dbeta);

    // ---- Batch normalization in training, over the last axis's channels: x (..., C) as rows (R, C),
    // each channel normalized with its mean and (biased) variance over the rows, then * gamma + beta
    // (undefined: none); those statistics (C) come back in fwd.mean / fwd.variance. The default
    // composes the generic ops (framework/backend/normalization.cpp).
    virtual NormForward batch_norm_training(const Tensor& x, const Tensor& gamma, const Tensor& beta, float epsilon);
    // dx, and dgamma / dbeta (C) where gamma / beta are defined (the statistics' gradients included).
    virtual void batch_norm_training_backward(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                              float epsilon, const NormForward& fwd, const Tensor& dy, Tensor& dx,
                                              Tensor& dgamma, Tensor& dbeta);

    // ---- Generic tensor ops, for keras::ops (which checks shapes and axes before calling these).
    // A backend overrides what it has kernels for; the defaults copy to the host, run the CPU
    // backend's, and copy the result back (correct everywhere, fast only on the CPU).
    virtual Tensor unary(UnaryOp op, const Tensor& x);
    // NumPy broadcasting: shapes aligned at the right, sizes equal or 1.
    virtual Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
    // Reduces the given axes (sorted, distinct, in [0, ndim)) to size 1; the rank stays.
    virtual Tensor reduce(ReduceOp op, const Tensor& x, const std::vector<int>& axes);
    // softmax (or log_softmax) along `axis` in [0, ndim).
    virtual Tensor softmax(const Tensor& x, int axis, bool log);
    // (..., M, K) @ (..., K, N) -> (..., M, N); both have the same rank >= 2 and the batch axes
    // broadcast (sizes equal or 1).
    virtual Tensor matmul(const Tensor& a, const Tensor& b);
    // out.shape[i] = x.shape[perm[i]].
    virtual Tensor transpose(const Tensor& x, const std::vector<int>& perm);
    // Same rank, same sizes except along `axis`.
    virtual Tensor concatenate(const std::vector<Tensor>& xs, int axis);
    // The block of `shape` starting at `start`, and its adjoint: dy placed at `start` in zeros of `full`.
    virtual Tensor slice(const Tensor& x, const std::vector<int64_t>& start, const Shape& shape);
    virtual Tensor slice_backward(const Tensor& dy, const Shape& full, const std::vector<int64_t>& start);
    // cond (float32, nonzero = true), a and b broadcast to one shape.
    virtual Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
    // x's entries at `indices` (int32 / int64, in range: checked by the caller) along `axis`:
    // out.shape = x.shape[:axis] + indices.shape + x.shape[axis+1:]; and its adjoint (a scatter-add).
    virtual Tensor take(const Tensor& x, const Tensor& indices, int axis);
    virtual Tensor take_backward(const Tensor& dy, const Tensor& indices, int axis, const Shape& x_shape);
    virtual Tensor clip(const Tensor& x, float lo, float hi);
};

// Raw storage on a device other than the host: Tensor allocates through it and Tensor::to copies
// through it. Work is ordered on the device's stream; copy_to_host returns once the bytes arrived.
class DeviceMemory {
public:
    virtual ~DeviceMemory() = default;
    virtual void* allocate(size_t bytes) = 0;
    virtual void deallocate(void* ptr, size_t bytes) noexcept = 0;
    virtual void copy_from_host(void* dst, const void* src, size_t bytes) = 0;
    virtual void copy_to_host(void* dst, const void* src, size_t bytes) = 0;
    virtual void copy_on_device(void* dst, const void* src, size_t bytes) = 0;
    virtual void set_zero(void* ptr, size_t bytes) = 0;
};

// The backend for a device (the CPU backend always exists; CUDA only when built with it and a GPU
// is present; otherwise RuntimeError naming which of the two is missing).
KERAS_BACKEND_API Backend& get(Device device);
inline Backend& for_tensor(const Tensor& t) { return get(t.device()); }
bool has_device(Device device);
// Memory of a CUDA device (RuntimeError for the CPU, whose tensors use host memory directly).
DeviceMemory& device_memory(Device device);

}  // namespace keras::backend
