// Backend's default layer normalization over the last axis, composed of the backend's generic ops
// (reductions over each row, then element-wise), so it runs on whatever device the backend is for.
// The CPU backend overrides it with oneDNN's layer_normalization primitive (onednn/layer_norm.cpp).
#include "keras/backend.hpp"

namespace keras::backend {

namespace {

// x (R, C) normalized per row, and each row's 1 / sqrt(variance + epsilon) (R, 1).
struct Normalized {
    Tensor xhat, inv;
};

Normalized normalize(Backend& b, const Tensor& rows, float epsilon) {
    const Tensor mean = b.reduce(ReduceOp::mean, rows, {1});
    const Tensor centered = b.binary(BinaryOp::subtract, rows, mean);
    const Tensor variance = b.reduce(ReduceOp::mean, b.binary(BinaryOp::multiply, centered, centered), {1});
    const Tensor shifted = b.binary(BinaryOp::add, variance, Tensor::full({1}, epsilon, b.device()));
    const Tensor inv = b.unary(UnaryOp::reciprocal, b.unary(UnaryOp::sqrt, shifted));
    return {b.binary(BinaryOp::multiply, centered, inv), inv};
}

Tensor as_rows(const Tensor& x) {
    const int64_t width = x.dim(x.ndim() - 1);
    return x.reshape({x.numel() / width, width});
}

}  // namespace

NormForward Backend::layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float epsilon,
                                bool /*training*/) {
    Tensor y = normalize(*this, as_rows(x), epsilon).xhat;
    if (gamma.defined()) y = binary(BinaryOp::multiply, y, gamma);
    if (beta.defined()) y = binary(BinaryOp::add, y, beta);
    return {y.reshape(x.shape()), {}};
}

// With g = dy * gamma (the gradient of x-hat): dx = inv * (g - mean(g) - x-hat * mean(g * x-hat)) per row.
void Backend::layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& beta, float epsilon,
                                  const NormForward& /*fwd*/, const Tensor& dy, Tensor& dx, Tensor& dgamma,
                                  Tensor& dbeta) {
    const Normalized n = normalize(*this, as_rows(x), epsilon);
    const Tensor dy_rows = as_rows(dy);
    const int64_t width = dy_rows.dim(1);
    if (beta.defined()) dbeta = reduce(ReduceOp::sum, dy_rows, {0}).reshape({width});
    if (gamma.defined())
        dgamma = reduce(ReduceOp::sum, binary(BinaryOp::multiply, dy_rows, n.xhat), {0}).reshape({width});
    const Tensor g = gamma.defined() ? binary(BinaryOp::multiply, dy_rows, gamma) : dy_rows;
    const Tensor g_mean = reduce(ReduceOp::mean, g, {1});
    const Tensor g_xhat_mean = reduce(ReduceOp::mean, binary(BinaryOp::multiply, g, n.xhat), {1});
    const Tensor inner = binary(BinaryOp::subtract, binary(BinaryOp::subtract, g, g_mean),
                                binary(BinaryOp::multiply, n.xhat, g_xhat_mean));
    dx = binary(BinaryOp::multiply, inner, n.inv).reshape(x.shape());
}

}  // namespace keras::backend
