// Backend's default generic ops for devices without kernels of their own: the inputs go to the host,
// the CPU backend computes, the result comes back to the first input's device. Correct on any
// device; a device backend overrides an op to make it fast there.
#include "keras/backend.hpp"

namespace keras::backend {

namespace {
Backend& cpu() { return get(Device::cpu()); }
Tensor host(const Tensor& t) { return t.to(Device::cpu()); }
}  // namespace

Tensor Backend::unary(UnaryOp op, const Tensor& x) { return cpu().unary(op, host(x)).to(device()); }

Tensor Backend::binary(BinaryOp op, const Tensor& a, const Tensor& b) {
    return cpu().binary(op, host(a), host(b)).to(device());
}

Tensor Backend::reduce(ReduceOp op, const Tensor& x, const std::vector<int>& axes) {
    return cpu().reduce(op, host(x), axes).to(device());
}

Tensor Backend::softmax(const Tensor& x, int axis, bool log) { return cpu().softmax(host(x), axis, log).to(device()); }

Tensor Backend::matmul(const Tensor& a, const Tensor& b) { return cpu().matmul(host(a), host(b)).to(device()); }

Tensor Backend::transpose(const Tensor& x, const std::vector<int>& perm) {
    return cpu().transpose(host(x), perm).to(device());
}

Tensor Backend::concatenate(const std::vector<Tensor>& xs, int axis) {
    std::vector<Tensor> on_host;
    for (const auto& x : xs) on_host.push_back(host(x));
    return cpu().concatenate(on_host, axis).to(device());
}

Tensor Backend::slice(const Tensor& x, const std::vector<int64_t>& start, const Shape& shape) {
    return cpu().slice(host(x), start, shape).to(device());
}

Tensor Backend::slice_backward(const Tensor& dy, const Shape& full, const std::vector<int64_t>& start) {
    return cpu().slice_backward(host(dy), full, start).to(device());
}

Tensor Backend::where(const Tensor& cond, const Tensor& a, const Tensor& b) {
    return cpu().where(host(cond), host(a), host(b)).to(device());
}

Tensor Backend::take(const Tensor& x, const Tensor& indices, int axis) {
    return cpu().take(host(x), host(indices), axis).to(device());
}

Tensor Backend::take_backward(const Tensor& dy, const Tensor& indices, int axis, const Shape& x_shape) {
    return cpu().take_backward(host(dy), host(indices), axis, x_shape).to(device());
}

Tensor Backend::clip(const Tensor& x, float lo, float hi) { return cpu().clip(host(x), lo, hi).to(device()); }

}  // namespace keras::backend
