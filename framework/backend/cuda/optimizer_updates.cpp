// Optimizer updates on the GPU: checks here, one fused kernel per update in optimizer_updates.cu.
#include <cmath>

#include "cuda_backend.hpp"
#include "cuda_check.hpp"
#include "kernels.hpp"
#include "keras/errors.hpp"

namespace keras::backend {

namespace {
float* ptr(Tensor& t) { return t.defined() ? static_cast<float*>(t.raw()) : nullptr; }
const float* ptr(const Tensor& t) { return static_cast<const float*>(t.raw()); }

void check_same_size(const Tensor& param, const Tensor& other, const char* what) {
    if (other.numel() != param.numel())
        value_error("{}: shapes {} and {} do not match", what, shape_str(param.shape()), shape_str(other.shape()));
}
}  // namespace

void CudaBackend::sgd_update(Tensor& param, const Tensor& grad, Tensor& momentum, float lr, float momentum_factor,
                             bool nesterov) {
    check_on_device(param, "sgd_update parameter");
    check_on_device(grad, "sgd_update gradient");
    check_same_size(param, grad, "sgd_update");
    if (momentum.defined()) {
        check_on_device(momentum, "sgd_update momentum");
        check_same_size(param, momentum, "sgd_update");
    }
    make_current();
    CUDA_CHECK(kernels::sgd_update(ptr(param), ptr(grad), ptr(momentum), lr, momentum_factor, nesterov, param.numel(),
                                   stream_));
}

void CudaBackend::adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, Tensor& vhat, float lr,
                              float beta_1, float beta_2, float epsilon, int64_t step) {
    check_on_device(param, "adam_update parameter");
    check_on_device(grad, "adam_update gradient");
    check_on_device(m, "adam_update m");
    check_on_device(v, "adam_update v");
    for (const Tensor* t : std::initializer_list<const Tensor*>{&grad, &m, &v}) check_same_size(param, *t, "adam_update");
    if (vhat.defined()) {
        check_on_device(vhat, "adam_update vhat");
        check_same_size(param, vhat, "adam_update");
    }
    // Bias correction folded into the step size, in double on the host as the CPU backend does.
    const double t = static_cast<double>(step);
    const float alpha = static_cast<float>(lr * std::sqrt(1.0 - std::pow(double{beta_2}, t)) /
                                           (1.0 - std::pow(double{beta_1}, t)));
    make_current();
    CUDA_CHECK(kernels::adam_update(ptr(param), ptr(grad), ptr(m), ptr(v), ptr(vhat), alpha, beta_1, beta_2, epsilon,
                                    param.numel(), stream_));
}

void CudaBackend::rmsprop_update(Tensor& param, const Tensor& grad, Tensor& velocity, Tensor& momentum,
                                 Tensor& average_grad, float lr, float rho, float momentum_factor, float epsilon) {
    check_on_device(param, "rmsprop_update parameter");
    check_on_device(grad, "rmsprop_update gradient");
    check_on_device(velocity, "rmsprop_update velocity");
    check_same_size(param, grad, "rmsprop_update");
    check_same_size(param, velocity, "rmsprop_update");
    for (const Tensor* t : std::initializer_list<const Tensor*>{&momentum, &average_grad}) {
        if (!t->defined()) continue;
        check_on_device(*t, "rmsprop_update slot");
        check_same_size(param, *t, "rmsprop_update");
    }
    make_current();
    CUDA_CHECK(kernels::rmsprop_update(ptr(param), ptr(grad), ptr(velocity), ptr(momentum), ptr(average_grad), lr, rho,
                                       momentum_factor, epsilon, param.numel(), stream_));
}

void CudaBackend::adagrad_update(Tensor& param, const Tensor& grad, Tensor& accumulator, float lr, float epsilon) {
    check_on_device(param, "adagrad_update parameter");
    check_on_device(grad, "adagrad_update gradient");
    check_on_device(accumulator, "adagrad_update accumulator");
    check_same_size(param, grad, "adagrad_update");
    check_same_size(param, accumulator, "adagrad_update");
    make_current();
    CUDA_CHECK(kernels::adagrad_update(ptr(param), ptr(grad), ptr(accumulator), lr, epsilon, param.numel(), stream_));
}

}  // namespace keras::backend
