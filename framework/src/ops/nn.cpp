// matmul, embedding lookup, dropout and layer normalization, and their gradients.
#include <numeric>

#include "keras/errors.hpp"
#include "keras/random.hpp"
#include "ops_internal.hpp"

namespace keras::ops {

using detail::backend_of;

namespace {
// x with its last two axes swapped (no recording: for gradients).
Tensor swap_last(const Tensor& x) {
    std::vector<int> perm(x.ndim());
    std::iota(perm.begin(), perm.end(), 0);
    std::swap(perm[x.ndim() - 1], perm[x.ndim() - 2]);
    return backend_of(x).transpose(x, perm);
}

Shape padded(const Shape& shape, int rank) {
    Shape s(rank - shape.size(), 1);
    s.insert(s.end(), shape.begin(), shape.end());
    return s;
}

Tensor with_rank(const Tensor& x, int rank) { return x.reshape(padded(x.shape(), rank)); }
}  // namespace

Tensor matmul(const Operand& x1, const Operand& x2) {
    const Device d = detail::common_device("matmul", {&x1, &x2});
    Tensor a = x1.tensor.to(d), b = x2.tensor.to(d);
    detail::check_float("matmul", a);
    detail::check_float("matmul", b);
    if (a.ndim() == 0 || b.ndim() == 0) value_error("ops.matmul: operands must have rank >= 1 (use ops.multiply for scalars)");
    // NumPy: a 1-D first operand is a row (that axis is dropped after), a 1-D second one a column.
    if (a.ndim() == 1) return squeeze(matmul(expand_dims(a, 0), b), -2);
    if (b.ndim() == 1) return squeeze(matmul(a, expand_dims(b, 1)), -1);
    if (a.dim(-1) != b.dim(-2))
        value_error("ops.matmul: the last axis of x1 {} and the second-to-last of x2 {} differ ({} vs {})",
                    shape_str(a.shape()), shape_str(b.shape()), a.dim(-1), b.dim(-2));
    const int rank = std::max(a.ndim(), b.ndim());
    const Tensor ar = with_rank(a, rank), br = with_rank(b, rank);
    Tensor y = backend_of(ar).matmul(ar, br);
    return autodiff::record("matmul", y, {a, b}, [ar = ar.detached(), br = br.detached(), as = a.shape(), bs = b.shape()](const Tensor& dy) {
        // dA = dY @ B^T and dB = A^T @ dY, summed over the batch axes each operand was broadcast along.
        const Tensor da = backend_of(dy).matmul(dy, swap_last(br));
        const Tensor db = backend_of(dy).matmul(swap_last(ar), dy);
        return std::vector<Tensor>{detail::sum_to(da, padded(as, da.ndim())).reshape(as),
                                   detail::sum_to(db, padded(bs, db.ndim())).reshape(bs)};
    });
}

Tensor embedding(const Tensor& ids, const Operand& embeddings) {
    const Tensor& table = embeddings.tensor;
    if (table.ndim() != 2)
        value_error("ops.embedding: the table must be (input_dim, output_dim); received shape {}", shape_str(table.shape()));
    return take(table, ids, 0);
}

Tensor dropout(const Tensor& x, float rate) {
    if (!(rate >= 0.0f && rate < 1.0f))
        value_error("ops.dropout: Invalid value received for argument `rate`. Expected a float value between 0 and 1. "
                    "Received: rate={}", rate);
    if (rate == 0.0f) return x;
    return multiply(x, random::dropout_mask(x.shape(), rate, x.device()));   // the Dropout layer's draws
}

namespace {
// Layer normalization written with the ops above (recorded op by op): any axes, and rms_scaling.
Tensor composed_layer_normalization(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                    const std::vector<int>& axes, const Shape& param_shape, float epsilon,
                                    bool rms_scaling) {
    const Tensor g = gamma.defined() ? reshape(gamma, param_shape) : Tensor();
    const Tensor mean = ops::mean(x, axes, true);
    const Tensor variance = ops::mean(square(subtract(x, mean)), axes, true);
    Tensor inv = reciprocal(sqrt(add(variance, epsilon)));
    if (rms_scaling) return g.defined() ? multiply(multiply(x, inv), g) : multiply(x, inv);
    if (g.defined()) inv = multiply(inv, g);
    Tensor shift = negative(multiply(mean, inv));
    if (beta.defined()) shift = add(shift, reshape(beta, param_shape));
    return add(multiply(x, inv), shift);
}
}  // namespace

Tensor layer_normalization(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Axes& axis, float epsilon,
                           bool rms_scaling) {
    const std::string op = "layer_normalization";
    detail::check_float(op, x);
    const std::vector<int> axes = detail::normalize_axes(op, axis, x.ndim());
    Shape param_shape(x.ndim(), 1);
    int64_t normalized = 1;
    for (int a : axes) param_shape[a] = x.dim(a), normalized *= x.dim(a);
    for (const auto& [name, p] : {std::pair{"gamma", &gamma}, std::pair{"beta", &beta}}) {
        if (!p->defined()) continue;
        detail::check_float(op, *p);
        if (p->device() != x.device())
            value_error("ops.{}: x is on {} but {} is on {}", op, to_string(x.device()), name, to_string(p->device()));
        if (p->numel() != normalized)
            value_error("ops.{}: {} has shape {} but the normalized axes of x {} hold {} values", op, name,
                        shape_str(p->shape()), shape_str(x.shape()), normalized);
    }
    const bool last_axis = axes.size() == 1 && axes[0] == x.ndim() - 1;
    if (!last_axis || rms_scaling || x.numel() == 0)
        return composed_layer_normalization(x, gamma, beta, axes, param_shape, epsilon, rms_scaling);

    const int64_t width = x.dim(-1);
    const Tensor g = gamma.defined() ? reshape(gamma, {width}) : Tensor();
    const Tensor b = beta.defined() ? reshape(beta, {width}) : Tensor();
    backend::NormForward fwd = backend_of(x).layer_norm(x, g, b, epsilon, autodiff::recording());
    const Tensor y = fwd.y;
    // An undefined gamma / beta is no input to the tape, and its gradient stays undefined.
    return autodiff::record(op, y, {x, g, b}, [x = x.detached(), g = g.detached(), b = b.detached(), epsilon,
                                               fwd = std::move(fwd)](const Tensor& dy) {
        Tensor dx, dg, db;
        backend_of(dy).layer_norm_backward(x, g, b, epsilon, fwd, dy, dx, dg, db);
        return std::vector<Tensor>{dx, dg, db};
    });
}

}  // namespace keras::ops
