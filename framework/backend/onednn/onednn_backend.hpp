// The CPU backend: oneDNN primitives for the heavy work (matmul, eltwise, RNN cells), plain loops
// for the light work (embedding gather, optimizer updates). The definitions are split by topic:
// dense.cpp, eltwise.cpp, embedding.cpp, rnn.cpp (oneDNN RNN primitives), rnn_fallback.cpp
// (step-by-step loop for options the primitives lack), optimizer_updates.cpp.
#pragma once

#include <map>
#include <string>

#include <oneapi/dnnl/dnnl.hpp>

#include "keras/backend.hpp"

namespace keras::backend {

class OneDnnBackend final : public Backend {
public:
    OneDnnBackend();
    Device device() const override { return Device::cpu(); }
    std::string name() const override { return "oneDNN CPU"; }

    dnnl::engine& engine() { return engine_; }
    dnnl::stream& stream() { return stream_; }

    Tensor matmul_bias(const Tensor& x, const Tensor& kernel, const Tensor& bias) override;
    void matmul_bias_backward(const Tensor& x, const Tensor& kernel, const Tensor& dy, Tensor& dx,
                              Tensor& dkernel, Tensor* dbias) override;

    Tensor activation(Activation a, const Tensor& x) override;
    Tensor activation_backward(Activation a, const Tensor& x, const Tensor& y, const Tensor& dy) override;

    Tensor embedding(const Tensor& ids, const Tensor& table, const std::string& layer_name) override;
    Tensor embedding_backward(const Tensor& ids, const Tensor& dy, int64_t vocab) override;

    RnnPath rnn_path(const RnnSpec& spec) override;
    RnnForward rnn_forward(const RnnSpec& spec, const Tensor& x, const RnnWeights& w, const Tensor& h0,
                           const Tensor& c0, bool training, const RnnDropoutMasks& masks = {},
                           const std::vector<int32_t>& lengths = {}) override;
    RnnGradients rnn_backward(const RnnSpec& spec, const RnnWeights& w, RnnForward& fwd,
                              const Tensor& d_sequences, const Tensor& dh, const Tensor& dc) override;

    Tensor gather_steps(const Tensor& x, const std::vector<int32_t>& idx, int64_t steps) override;
    Tensor scatter_add_steps(const Tensor& y, const std::vector<int32_t>& idx, int64_t steps) override;

    Tensor mean_over_steps(const Tensor& x) override;
    Tensor mean_over_steps_backward(const Tensor& dy, int64_t steps) override;

    Tensor multiply(const Tensor& a, const Tensor& b) override;
    Tensor add(const Tensor& a, const Tensor& b) override;
    void scale_(Tensor& x, float factor) override;
    double sum_squares(const Tensor& x) override;
    void clip_(Tensor& x, float lo, float hi) override;

    void sgd_update(Tensor& param, const Tensor& grad, Tensor& momentum, float lr, float momentum_factor,
                    bool nesterov) override;
    void adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, Tensor& vhat, float lr,
                     float beta_1, float beta_2, float epsilon, int64_t step) override;
    void rmsprop_update(Tensor& param, const Tensor& grad, Tensor& velocity, Tensor& momentum,
                        Tensor& average_grad, float lr, float rho, float momentum_factor,
                        float epsilon) override;
    void adagrad_update(Tensor& param, const Tensor& grad, Tensor& accumulator, float lr,
                        float epsilon) override;

    Tensor loss(const LossSpec& spec, const Tensor& y_true, const Tensor& y_pred, const Tensor& mask,
                Tensor* grad) override;
    Tensor metric_sum(const MetricSpec& spec, const Tensor& y_true, const Tensor& y_pred,
                      const Tensor& mask) override;

    Tensor unary(UnaryOp op, const Tensor& x) override;
    Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) override;
    Tensor reduce(ReduceOp op, const Tensor& x, const std::vector<int>& axes) override;
    Tensor softmax(const Tensor& x, int axis, bool log) override;
    Tensor matmul(const Tensor& a, const Tensor& b) override;
    Tensor transpose(const Tensor& x, const std::vector<int>& perm) override;
    Tensor concatenate(const std::vector<Tensor>& xs, int axis) override;
    Tensor slice(const Tensor& x, const std::vector<int64_t>& start, const Shape& shape) override;
    Tensor slice_backward(const Tensor& dy, const Shape& full, const std::vector<int64_t>& start) override;
    Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) override;
    Tensor take(const Tensor& x, const Tensor& indices, int axis) override;
    Tensor take_backward(const Tensor& dy, const Tensor& indices, int axis, const Shape& x_shape) override;
    Tensor clip(const Tensor& x, float lo, float hi) override;

private:
    // matmul primitives by "m,k,n,transposes,bias": built once per shape, executed many times.
    dnnl::matmul& matmul_for(int64_t m, int64_t k, int64_t n, bool transpose_a, bool transpose_b, bool bias);

    dnnl::engine engine_;
    dnnl::stream stream_;
    std::map<std::string, dnnl::matmul> matmul_cache_;
    // RNN primitives, scratchpads and workspaces by shape (rnn.cpp); created on first use.
    struct RnnCache;
    std::shared_ptr<RnnCache> rnn_cache_;
};

// Step-by-step RNN used when a spec cannot run on a oneDNN primitive (rnn_fallback.cpp).
// masks: Keras's per-gate dropout masks (see RnnDropoutMasks), applied at every step; lengths as in
// Backend::rnn_forward (empty: every sample T steps).
RnnForward rnn_fallback_forward(const RnnSpec& spec, const Tensor& x, const RnnWeights& w, const Tensor& h0,
                                const Tensor& c0, const RnnDropoutMasks& masks = {},
                                const std::vector<int32_t>& lengths = {});
RnnGradients rnn_fallback_backward(const RnnSpec& spec, const RnnWeights& w, RnnForward& fwd,
                                   const Tensor& d_sequences, const Tensor& dh, const Tensor& dc);
// The input checks are the contract's (check_rnn_inputs / check_rnn_lengths in keras/backend.hpp).

// ---- Per-sample lengths on the CPU (rnn_lengths.cpp), shared by the primitive and the step loop.
// x (N, T, C) with each sample's first lengths[n] steps reversed (all T when lengths is empty);
// padding steps stay put. Its own inverse.
Tensor reverse_valid_steps(const Tensor& x, const std::vector<int32_t>& lengths);
// (N, H): row n = per_step[(len - 1) * step_stride + n * row_stride ...], or initial's row (zeros
// when undefined) for len == 0.
Tensor states_at_lengths(const float* per_step, int64_t step_stride, int64_t row_stride, const Tensor& initial,
                         const std::vector<int32_t>& lengths, int64_t H);
// (N, T, H): d_sequences (undefined = zeros) at t < len, zeros after, plus dh (undefined = none)
// at step len - 1.
Tensor sequences_gradient_at_lengths(const Tensor& d_sequences, const Tensor& dh, const std::vector<int32_t>& lengths,
                                     int64_t T, int64_t H);
// d_initial[n] += d_final[n] for the samples of length 0 (their final state IS the initial one).
void add_rows_of_empty_samples(Tensor& d_initial, const Tensor& d_final, const std::vector<int32_t>& lengths);

}  // namespace keras::backend
