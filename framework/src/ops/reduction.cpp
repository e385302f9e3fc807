// Reductions and softmax, and their gradients.
#include <cmath>
#include <optional>

#include "keras/errors.hpp"
#include "ops_internal.hpp"

namespace keras::ops {

using backend::BinaryOp;
using backend::ReduceOp;
using detail::backend_of;

namespace {
Shape without_axes(const Shape& shape, const std::vector<int>& axes) {
    Shape out;
    for (int i = 0; i < static_cast<int>(shape.size()); ++i)
        if (std::find(axes.begin(), axes.end(), i) == axes.end()) out.push_back(shape[i]);
    return out;
}

Tensor reduction(const std::string& name, ReduceOp op, const Tensor& x, const Axes& axis, bool keepdims) {
    detail::check_float(name, x);
    const auto axes = detail::normalize_axes(name, axis, x.ndim());
    for (int a : axes)
        if (x.shape()[a] == 0 && (op == ReduceOp::max || op == ReduceOp::min))
            value_error("ops.{}: cannot reduce axis {} of size 0 (shape {})", name, a, shape_str(x.shape()));
    Tensor kept = axes.empty() ? x.detached() : backend_of(x).reduce(op, x, axes);   // reduced axes have size 1
    const Shape out_shape = keepdims ? kept.shape() : without_axes(x.shape(), axes);
    Tensor y = kept.reshape(out_shape);
    auto backward = [op, x = x.detached(), kept = kept.detached()](const Tensor& dy) {
        // Spread dy back over the reduced axes: every position for sum / mean, the extreme
        // positions (shared equally between ties) for max / min.
        const Tensor g = detail::expand_to(dy.reshape(kept.shape()), x.shape());
        if (op == ReduceOp::sum) return std::vector<Tensor>{g};
        if (op == ReduceOp::mean) {
            const double count = static_cast<double>(x.numel()) / std::max<int64_t>(kept.numel(), 1);
            return std::vector<Tensor>{backend_of(g).binary(BinaryOp::multiply, g,
                                                            Tensor::full({}, static_cast<float>(1.0 / count), g.device()))};
        }
        const Tensor hit = backend_of(x).binary(BinaryOp::equal, x, kept);
        std::vector<int> axes;
        for (int i = 0; i < x.ndim(); ++i)
            if (kept.shape()[i] == 1 && x.shape()[i] != 1) axes.push_back(i);
        const Tensor ties = axes.empty() ? hit : backend_of(hit).reduce(ReduceOp::sum, hit, axes);
        const Tensor share = backend_of(hit).binary(BinaryOp::divide, hit, ties);
        return std::vector<Tensor>{backend_of(g).binary(BinaryOp::multiply, g, share)};
    };
    return autodiff::record(name, y, {x}, backward);
}

Tensor softmax_op(const std::string& name, const Tensor& x, int axis, bool log) {
    detail::check_float(name, x);
    if (x.ndim() == 0) value_error("ops.{}: expected a tensor of rank >= 1, received a scalar", name);
    const int a = detail::normalize_axis(name, axis, x.ndim());
    Tensor y = backend_of(x).softmax(x, a, log);
    return autodiff::record(name, y, {x}, [y = y.detached(), a, log](const Tensor& dy) {
        auto& be = backend_of(dy);
        if (log) {   // dx = dy - softmax * sum(dy)
            const Tensor total = be.reduce(ReduceOp::sum, dy, {a});
            const Tensor p = be.unary(backend::UnaryOp::exp, y);
            return std::vector<Tensor>{be.binary(BinaryOp::subtract, dy, be.binary(BinaryOp::multiply, p, total))};
        }
        // dx = y * (dy - sum(dy * y))
        const Tensor dot = be.reduce(ReduceOp::sum, be.binary(BinaryOp::multiply, dy, y), {a});
        return std::vector<Tensor>{be.binary(BinaryOp::multiply, y, be.binary(BinaryOp::subtract, dy, dot))};
    });
}
// Index of the extreme value of each line along `axis`, computed on the host.
Tensor arg_extreme(const std::string& name, const Tensor& x, std::optional<int> axis, bool keepdims, bool largest) {
    if (axis && x.ndim() == 0) value_error("ops.{}: axis {} given for a scalar", name, *axis);
    const int a = axis ? detail::normalize_axis(name, *axis, x.ndim()) : 0;
    const Tensor host = x.device().is_cpu() ? x : x.to(Device::cpu());
    const Shape in_shape = axis ? x.shape() : Shape{x.numel()};
    const int64_t n = in_shape[a];
    if (n == 0) value_error("ops.{}: cannot take the {} of an empty axis (shape {})", name, name, shape_str(x.shape()));
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < a; ++i) outer *= in_shape[i];
    for (size_t i = a + 1; i < in_shape.size(); ++i) inner *= in_shape[i];
    // v beats best when strictly more extreme, or when it is the first NaN.
    auto beats = [largest](double v, double best) {
        if (std::isnan(best)) return false;
        return std::isnan(v) || (largest ? v > best : v < best);
    };
    std::vector<int32_t> out(static_cast<size_t>(outer * inner));
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
            int64_t best = 0;
            for (int64_t k = 1; k < n; ++k)
                if (beats(host.item((o * n + k) * inner + i), host.item((o * n + best) * inner + i))) best = k;
            out[o * inner + i] = static_cast<int32_t>(best);
        }
    Shape out_shape;
    for (int i = 0; i < x.ndim(); ++i)
        if (keepdims || (axis && i != a)) out_shape.push_back(keepdims && (!axis || i == a) ? 1 : x.shape()[i]);
    return Tensor(out, out_shape).to(x.device());
}
}  // namespace

Tensor argmax(const Tensor& x, std::optional<int> axis, bool keepdims) { return arg_extreme("argmax", x, axis, keepdims, true); }
Tensor argmin(const Tensor& x, std::optional<int> axis, bool keepdims) { return arg_extreme("argmin", x, axis, keepdims, false); }

Tensor sum(const Tensor& x, const Axes& axis, bool keepdims) { return reduction("sum", ReduceOp::sum, x, axis, keepdims); }
Tensor mean(const Tensor& x, const Axes& axis, bool keepdims) { return reduction("mean", ReduceOp::mean, x, axis, keepdims); }
Tensor max(const Tensor& x, const Axes& axis, bool keepdims) { return reduction("max", ReduceOp::max, x, axis, keepdims); }
Tensor min(const Tensor& x, const Axes& axis, bool keepdims) { return reduction("min", ReduceOp::min, x, axis, keepdims); }

Tensor softmax(const Tensor& x, int axis) { return softmax_op("softmax", x, axis, false); }
Tensor log_softmax(const Tensor& x, int axis) { return softmax_op("log_softmax", x, axis, true); }

}  // namespace keras::ops
