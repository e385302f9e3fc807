// The GPU backend: cuDNN for the recurrent layers, cuBLAS for Dense, our own kernels (*.cu) for
// the light work (activations, element-wise ops, embedding, dropout, optimizer updates, losses) and
// the generic tensor ops of keras::ops (cuBLAS for their matmul).
// One CudaBackend per GPU. Everything it does is queued on that GPU's single stream, with the
// cuBLAS and cuDNN handles bound to it, so kernels never need a host synchronisation between them;
// only copies to the host (Tensor::to(cpu), reading a loss value) wait for the stream.
// The definitions are split by topic: cuda_backend.cpp (device, stream, memory), dense.cpp,
// rnn.cpp, eltwise.cpp, embedding.cpp, optimizer_updates.cpp, losses_metrics.cpp, generic_ops.cpp (host side of
// the kernels in *.cu).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "caching_allocator.hpp"
#include "keras/backend.hpp"

namespace keras::backend {

class CudaBackend final : public Backend, public DeviceMemory {
public:
    explicit CudaBackend(int index);   // the caller has checked that GPU `index` exists
    ~CudaBackend() override;
    Device device() const override { return Device::cuda(index_); }
    std::string name() const override;

    cudaStream_t stream() const { return stream_; }
    cublasHandle_t cublas() const { return cublas_; }
    cudnnHandle_t cudnn() const { return cudnn_; }
    CachingAllocator& allocator() { return *allocator_; }
    // Makes this backend's GPU current on the calling thread (cheap; call before raw CUDA calls).
    void make_current() const;
    // How often the host has waited for this GPU's stream (every wait goes through wait_for_stream).
    size_t host_synchronizations() const { return host_synchronizations_; }
    void wait_for_stream();

    // ---- DeviceMemory
    void* allocate(size_t bytes) override;
    void deallocate(void* ptr, size_t bytes) noexcept override;
    void copy_from_host(void* dst, const void* src, size_t bytes) override;
    void copy_to_host(void* dst, const void* src, size_t bytes) override;
    void copy_on_device(void* dst, const void* src, size_t bytes) override;
    void set_zero(void* ptr, size_t bytes) override;

    // ---- Backend
    Tensor matmul_bias(const Tensor& x, const Tensor& kernel, const Tensor& bias) override;
    void matmul_bias_backward(const Tensor& x, const Tensor& kernel, const Tensor& dy, Tensor& dx,
                              Tensor& dkernel, Tensor* dbias) override;

    Tensor activation(Activation a, const Tensor& x) override;
    Tensor activation_backward(Activation a, const Tensor& x, const Tensor& y, const Tensor& dy) override;

    Tensor embedding(const Tensor& ids, const Tensor& table, const std::string& layer_name) override;
    Tensor embedding_backward(const Tensor& ids, const Tensor& dy, int64_t vocab) override;

    RnnPath rnn_path(const RnnSpec& spec) override;
    // Per-sample lengths are cuDNN's padded I/O (rnn.cpp): h / c at each sample's last valid step.
    // Dropout masks run through the CPU backend's step loop (host round trip).
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

    // ---- Generic tensor ops for keras::ops (generic_ops.cpp, kernels in generic_ops.cu, matmul on
    // cuBLAS). Ranks above generic_kernels::kMaxDims (8) go through the host, as Backend's defaults.
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
    // Throws ValueError naming `what` unless t is a defined float32 tensor on this GPU.
    void check_on_device(const Tensor& t, const char* what) const;
    // The same for a tensor of any dtype (the ops that only move elements).
    void check_placed(const Tensor& t, const char* what) const;
    // dst[dst_strides . index] = src[src_strides . index] for every index of `dims` (any dtype of
    // `element_size` bytes; at most generic_kernels::kMaxDims axes).
    void copy_strided(const void* src, void* dst, size_t element_size, const Shape& dims,
                      const std::vector<int64_t>& src_strides, const std::vector<int64_t>& dst_strides);
    // Out-of-range Embedding ids are found on the device without stopping the host: the kernel
    // records the first bad position and an asynchronous copy brings it back. The check completes
    // at the next embedding() call or host copy, which throw the ValueError the CPU would have.
    struct PendingIdCheck {
        bool active = false;
        Tensor ids;                 // kept alive to read the bad value when reporting
        std::string layer_name;
        int64_t vocab = 0;
        Tensor first_bad;           // device int64: flat position of the first bad id
        long long* host = nullptr;  // pinned: the asynchronous copy of first_bad lands here
        cudaEvent_t copied = nullptr;
    };
    void finish_id_check();

    int index_;
    cudaStream_t stream_ = nullptr;
    cublasHandle_t cublas_ = nullptr;
    cudnnHandle_t cudnn_ = nullptr;
    std::unique_ptr<CachingAllocator> allocator_;
    // cuDNN RNN descriptors by shape (rnn.cpp); created on first use, released before the allocator.
    struct RnnCache;
    std::shared_ptr<RnnCache> rnn_cache_;
    std::unique_ptr<PendingIdCheck> pending_ids_;
    size_t host_synchronizations_ = 0;
};

// How many GPUs the CUDA runtime reports; 0 with `reason` set (naming the runtime's error) when
// none can be used, e.g. "cudaGetDeviceCount failed: no CUDA-capable device is detected".
int cuda_device_count(std::string* reason);

}  // namespace keras::backend
