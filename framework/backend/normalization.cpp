// Backend's default layer and batch normalization, composed of the backend's generic ops (reductions,
// then element-wise), so they run on whatever device the backend is for. The CPU backend overrides
// them with oneDNN's primitives (onednn/normalization.cpp).
//
// Both see x as rows (R, C) with gamma / beta per column. They differ in which axis the statistics
// run over: along each row (layer normalization: axis 1) or down each column (batch: axis 0).
#include "keras/backend.hpp"

namespace keras::backend {

namespace {

// x normalized along `axis`, with its statistics: mean and 1 / sqrt(variance + epsilon), keeping the
// reduced axis (size 1) so they broadcast back.
struct Normalized {
    Tensor xhat, mean, variance, inv;
};

Normalized normalize(Backend& b, const Tensor& rows, float epsilon, int axis) {
    Normalized n;
    n.mean = b.reduce(ReduceOp::mean, rows, {axis});
    const Tensor centered = b.binary(BinaryOp::subtract, rows, n.mean);
    n.variance = b.reduce(ReduceOp::mean, b.binary(BinaryOp::multiply, centered, centered), {axis});
    const Tensor shifted = b.binary(BinaryOp::add, n.variance, Tensor::full({1}, epsilon, b.device()));
    n.inv = b.unary(UnaryOp::reciprocal, b.unary(UnaryOp::sqrt, shifted));
    n.xhat = b.binary(BinaryOp::multiply, centered, n.inv);
    return n;
}

Tensor as_rows(const Tensor& x) {
    const int64_t width = x.dim(x.ndim() - 1);
    return x.reshape({x.numel() / width, width});
}

Tensor scale_and_shift(Backend& b, Tensor y, const Tensor& gamma, const Tensor& beta) {
    if (gamma.defined()) y = b.binary(BinaryOp::multiply, y, gamma);
    if (beta.defined()) y = b.binary(BinaryOp::add, y, beta);
    return y;
}

// With g = dy * gamma (the gradient of x-hat), along the statistics' axis:
// dx = inv * (g - mean(g) - x-hat * mean(g * x-hat)); dgamma = sum over rows of dy * x-hat, dbeta of dy.
void normalization_backward(Backend& b, const Tensor& x, const Tensor& gamma, const Tensor& beta, float epsilon,
                            int axis, const Tensor& dy, Tensor& dx, Tensor& dgamma, Tensor& dbeta) {
    const Normalized n = normalize(b, as_rows(x), epsilon, axis);
    const Tensor dy_rows = as_rows(dy);
    const int64_t width = dy_rows.dim(1);
    if (beta.defined()) dbeta = b.reduce(ReduceOp::sum, dy_rows, {0}).reshape({width});
    if (gamma.defined())
        dgamma = b.reduce(ReduceOp::sum, b.binary(BinaryOp::multiply, dy_rows, n.xhat), {0}).reshape({width});
    const Tensor g = gamma.defined() ? b.binary(BinaryOp::multiply, dy_rows, gamma) : dy_rows;
    const Tensor g_mean = b.reduce(ReduceOp::mean, g, {axis});
    const Tensor g_xhat_mean = b.reduce(ReduceOp::mean, b.binary(BinaryOp::multiply, g, n.xhat), {axis});
    const Tensor inner = b.binary(BinaryOp::subtract, b.binary(BinaryOp::subtract, g, g_mean),
                                  b.binary(BinaryOp::multiply, n.xhat, g_xhat_mean));
    dx = b.binary(BinaryOp::multiply, inner, n.inv).reshape(x.shape());
}

}  // namespace

NormForward Backend::layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float epsilon,
                                bool /*training*/) {
    const Tensor y = scale_and_shift(*this, normalize(*this, as_rows(x), epsilon, 1).xhat, gamma, beta);
    return {y.reshape(x.shape()), {}};
}

void Backend::layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& beta, float epsilon,
                                  const NormForward& /*fwd*/, const Tensor& dy, Tensor& dx, Tensor& dgamma,
                                  Tensor& dbeta) {
    normalization_backward(*this, x, gamma, beta, epsilon, 1, dy, dx, dgamma, dbeta);
}

NormForward Backend::batch_norm_training(const Tensor& x, const Tensor& gamma, const Tensor& beta, float epsilon) {
    const Normalized n = normalize(*this, as_rows(x), epsilon, 0);
    const int64_t width = x.dim(x.ndim() - 1);
    NormForward out{scale_and_shift(*this, n.xhat, gamma, beta).reshape(x.shape()), {}};
    out.mean = n.mean.reshape({width});
    out.variance = n.variance.reshape({width});
    return out;
}

void Backend::batch_norm_training_backward(const Tensor& x, const Tensor& gamma, const Tensor& beta, float epsilon,
                                           const NormForward& /*fwd*/, const Tensor& dy, Tensor& dx, Tensor& dgamma,
                                           Tensor& dbeta) {
    normalization_backward(*this, x, gamma, beta, epsilon, 0, dy, dx, dgamma, dbeta);
}

}  // namespace keras::backend
