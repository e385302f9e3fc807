// The generic tensor ops (keras::ops) on the CPU: oneDNN's eltwise, binary, reduction, softmax,
// matmul, concat and reorder primitives where they apply, the loops of host/host_ops.cpp otherwise
// (integer tensors, functions oneDNN lacks, broadcasts its binary primitive cannot express).
#include <numeric>
#include <optional>
#include <string_view>

#include "backend/host/host_ops.hpp"
#include "onednn_backend.hpp"

namespace keras::backend {

using dnnl::algorithm;
using dnnl::memory;

namespace {
// oneDNN has no 0-d memory: a scalar is viewed as (1,).
memory::dims dims_of(const Shape& shape) { return shape.empty() ? memory::dims{1} : memory::dims(shape.begin(), shape.end()); }

memory::dims dense_strides(const memory::dims& dims) {
    memory::dims s(dims.size(), 1);
    for (int i = static_cast<int>(dims.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * dims[i + 1];
    return s;
}

memory::desc plain_desc(const Shape& shape) {
    const auto d = dims_of(shape);
    return memory::desc(d, memory::data_type::f32, dense_strides(d));
}


// eltwise algorithm with its alpha / beta for the unary ops oneDNN has.
struct Eltwise {
    algorithm alg;
    float alpha = 0.0f, beta = 0.0f;
};
std::optional<Eltwise> eltwise_of(UnaryOp op) {
    switch (op) {
        case UnaryOp::negative: return Eltwise{algorithm::eltwise_linear, -1.0f, 0.0f};
        case UnaryOp::exp: return Eltwise{algorithm::eltwise_exp};
        case UnaryOp::log: return Eltwise{algorithm::eltwise_log};
        case UnaryOp::tanh: return Eltwise{algorithm::eltwise_tanh};
        case UnaryOp::sigmoid: return Eltwise{algorithm::eltwise_logistic};
        case UnaryOp::relu: return std::nullopt;   // oneDNN's relu maps NaN to 0: the host loop keeps it
        case UnaryOp::sqrt: return Eltwise{algorithm::eltwise_sqrt};
        case UnaryOp::square: return Eltwise{algorithm::eltwise_square};
        case UnaryOp::abs: return Eltwise{algorithm::eltwise_abs};
        case UnaryOp::reciprocal: return Eltwise{algorithm::eltwise_pow, 1.0f, -1.0f};
        case UnaryOp::sign: return std::nullopt;
    }
    return std::nullopt;
}

std::optional<algorithm> binary_of(BinaryOp op) {
    switch (op) {
        case BinaryOp::add: return algorithm::binary_add;
        case BinaryOp::subtract: return algorithm::binary_sub;
        case BinaryOp::multiply: return algorithm::binary_mul;
        case BinaryOp::divide: return algorithm::binary_div;
        case BinaryOp::maximum: return algorithm::binary_max;
        case BinaryOp::minimum: return algorithm::binary_min;
        case BinaryOp::greater: return algorithm::binary_gt;
        case BinaryOp::greater_equal: return algorithm::binary_ge;
        case BinaryOp::less: return algorithm::binary_lt;
        case BinaryOp::less_equal: return algorithm::binary_le;
        case BinaryOp::equal: return algorithm::binary_eq;
        case BinaryOp::not_equal: return algorithm::binary_ne;
        case BinaryOp::power: return std::nullopt;
    }
    return std::nullopt;
}

bool commutes(BinaryOp op) {
    return op == BinaryOp::add || op == BinaryOp::multiply || op == BinaryOp::maximum || op == BinaryOp::minimum ||
           op == BinaryOp::equal || op == BinaryOp::not_equal;
}

// `shape` padded with leading 1s to `rank` axes.
Shape with_rank(const Shape& shape, size_t rank) {
    Shape out(rank - shape.size(), 1);
    out.insert(out.end(), shape.begin(), shape.end());
    return out;
}

// oneDNN's reference implementations ("ref:any": a broadcast over a middle axis, a reduction over a
// leading one) take tens of ns an element, an order of magnitude above the host loops, which
// collapse such shapes to three axes: those run instead.
bool is_reference(const dnnl::primitive_desc_base& pd) { return std::string_view(pd.impl_info_str()).starts_with("ref"); }

// A reduction of the trailing axes only (rows of `length` values each, length the product of those
// axes); 0 when another axis is reduced too. oneDNN 2.6's jit reduction of short rows runs at about
// 0.5 G values/s (LayerNormalization's mean over 32 features of (32, 200, 32): 0.45 ms), the host's
// row loop (one thread, eight rows at a time) about 10x that, and still ahead up to rows of 384
// values; from 512 on oneDNN's is as fast or faster. Measured in docs/performance.md.
constexpr int64_t kHostRowReduceMaxLength = 256;
int64_t trailing_length(const Shape& x, const Shape& out) {
    int64_t length = 1;
    size_t d = x.size();
    for (; d > 0 && out[d - 1] == 1; --d) length *= x[d - 1];
    for (size_t i = 0; i < d; ++i)
        if (out[i] != x[i]) return 0;
    return length;
}

// oneDNN 2.6 drops a NaN in these (exp gives inf, max / min and clip a bound or the other operand,
// softmax 0 beside it): when an input has one, the host loops run instead, which keep it.
bool nan_sensitive(UnaryOp op) { return op == UnaryOp::exp; }
bool nan_sensitive(BinaryOp op) { return op == BinaryOp::maximum || op == BinaryOp::minimum; }
bool nan_sensitive(ReduceOp op) { return op == ReduceOp::max || op == ReduceOp::min; }
}  // namespace

Tensor OneDnnBackend::unary(UnaryOp op, const Tensor& x) {
    const auto e = eltwise_of(op);
    if (!e || !all_f32({&x}) || (nan_sensitive(op) && has_nan(x))) return host::unary(op, x);
    Tensor y(x.shape(), DType::float32);
    const auto md = plain_desc(x.shape());
    run(dnnl_compat::eltwise(engine_, user_scratchpad(), e->alg, md, e->alpha, e->beta), {{DNNL_ARG_SRC, wrap(engine_, md, x)}, {DNNL_ARG_DST, wrap(engine_, md, y)}});
    return y;
}

Tensor OneDnnBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b) {
    const auto alg = binary_of(op);
    const Shape out = host::broadcast_shapes(a.shape(), b.shape());
    // oneDNN broadcasts only its second input: the first must already have the output's shape.
    const bool swap = a.shape() != out && b.shape() == out && commutes(op);
    const Tensor& s0 = swap ? b : a;
    const Tensor& s1 = swap ? a : b;
    if (!alg || !all_f32({&a, &b}) || s0.shape() != out || out.size() > DNNL_MAX_NDIMS ||
        (nan_sensitive(op) && (has_nan(a) || has_nan(b))))
        return host::binary(op, a, b);
    const auto md0 = plain_desc(out), md1 = plain_desc(with_rank(s1.shape(), out.size()));
    const auto pd = dnnl_compat::make_pd<dnnl::binary>(engine_, user_scratchpad(), *alg, md0, md1, md0);
    if (is_reference(pd)) return host::binary(op, a, b);
    Tensor y(out, DType::float32);
    dnnl::binary prim(pd);
    run(prim, {{DNNL_ARG_SRC_0, wrap(engine_, md0, s0)},
               {DNNL_ARG_SRC_1, wrap(engine_, md1, s1)},
               {DNNL_ARG_DST, wrap(engine_, md0, y)}});
    return y;
}

Tensor OneDnnBackend::reduce(ReduceOp op, const Tensor& x, const std::vector<int>& axes) {
    Shape out = x.shape();
    for (int a : axes) out[a] = 1;
    if (out == x.shape()) return x.clone();   // only size-1 axes: oneDNN refuses a reduction that reduces nothing
    if (!all_f32({&x}) || x.ndim() > DNNL_MAX_NDIMS || (nan_sensitive(op) && has_nan(x)))
        return host::reduce(op, x, axes);
    if (const int64_t length = trailing_length(x.shape(), out); length > 0 && length <= kHostRowReduceMaxLength)
        return host::reduce(op, x, axes);
    const algorithm alg = op == ReduceOp::sum    ? algorithm::reduction_sum
                          : op == ReduceOp::mean ? algorithm::reduction_mean
                          : op == ReduceOp::max  ? algorithm::reduction_max
                                                 : algorithm::reduction_min;
    const auto src = plain_desc(x.shape()), dst = plain_desc(out);
    const auto pd = dnnl_compat::make_pd<dnnl::reduction>(engine_, user_scratchpad(), alg, src, dst, 0.0f, 0.0f);
    if (is_reference(pd)) return host::reduce(op, x, axes);
    Tensor y(out, DType::float32);
    dnnl::reduction prim(pd);
    run(prim, {{DNNL_ARG_SRC, wrap(engine_, src, x)}, {DNNL_ARG_DST, wrap(engine_, dst, y)}});
    return y;
}

Tensor OneDnnBackend::softmax(const Tensor& x, int axis, bool log) {
    if (!all_f32({&x}) || has_nan(x)) return host::softmax(x, axis, log);
    Tensor y(x.shape(), DType::float32);
    const auto md = plain_desc(x.shape());
    run(dnnl_compat::softmax(engine_, user_scratchpad(), md, axis, log),
        {{DNNL_ARG_SRC, wrap(engine_, md, x)}, {DNNL_ARG_DST, wrap(engine_, md, y)}});
    return y;
}

Tensor OneDnnBackend::matmul(const Tensor& a, const Tensor& b) {
    if (!all_f32({&a, &b}) || a.ndim() > DNNL_MAX_NDIMS) return host::matmul(a, b);
    Shape out = host::broadcast_shapes(Shape(a.shape().begin(), a.shape().end() - 2),
                                       Shape(b.shape().begin(), b.shape().end() - 2));
    out.push_back(a.dim(-2));
    out.push_back(b.dim(-1));
    Tensor y(out, DType::float32);
    const auto ma = plain_desc(a.shape()), mb = plain_desc(b.shape()), my = plain_desc(out);
    dnnl::matmul prim(dnnl_compat::make_pd<dnnl::matmul>(engine_, user_scratchpad(), ma, mb, my));
    run(prim, {{DNNL_ARG_SRC, wrap(engine_, ma, a)},
               {DNNL_ARG_WEIGHTS, wrap(engine_, mb, b)},
               {DNNL_ARG_DST, wrap(engine_, my, y)}});
    return y;
}

Tensor OneDnnBackend::transpose(const Tensor& x, const std::vector<int>& perm) {
    if (!all_f32({&x}) || x.ndim() == 0 || x.ndim() > DNNL_MAX_NDIMS) return host::transpose(x, perm);
    // A reorder from x read through permuted strides into a dense output.
    const auto own = dense_strides(dims_of(x.shape()));
    memory::dims dims(perm.size()), strides(perm.size());
    Shape out(perm.size());
    for (size_t i = 0; i < perm.size(); ++i) dims[i] = out[i] = x.shape()[perm[i]], strides[i] = own[perm[i]];
    Tensor y(out, DType::float32);
    const memory src = wrap(engine_, memory::desc(dims, memory::data_type::f32, strides), x);
    memory dst = wrap(engine_, plain_desc(out), y);
    reorder(src, dst);
    return y;
}

Tensor OneDnnBackend::concatenate(const std::vector<Tensor>& xs, int axis) {
    bool f32 = !xs.empty() && xs[0].ndim() > 0 && xs[0].ndim() <= DNNL_MAX_NDIMS;
    for (const auto& x : xs) f32 = f32 && all_f32({&x});
    if (!f32) return host::concatenate(xs, axis);
    std::vector<memory::desc> mds;
    std::unordered_map<int, memory> args;
    Shape out = xs[0].shape();
    out[axis] = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
        mds.push_back(plain_desc(xs[i].shape()));
        args.emplace(DNNL_ARG_MULTIPLE_SRC + static_cast<int>(i), wrap(engine_, mds.back(), xs[i]));
        out[axis] += xs[i].shape()[axis];
    }
    Tensor y(out, DType::float32);
    const auto dst = plain_desc(out);
    args.emplace(DNNL_ARG_DST, wrap(engine_, dst, y));
    run(dnnl_compat::concat(engine_, user_scratchpad(), dst, axis, mds), std::move(args));
    return y;
}

// Slicing, selection and gathers move little data per element: plain loops.
Tensor OneDnnBackend::slice(const Tensor& x, const std::vector<int64_t>& start, const Shape& shape) {
    return host::slice(x, start, shape);
}
Tensor OneDnnBackend::slice_backward(const Tensor& dy, const Shape& full, const std::vector<int64_t>& start) {
    return host::slice_backward(dy, full, start);
}
Tensor OneDnnBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b) { return host::where(cond, a, b); }
Tensor OneDnnBackend::take(const Tensor& x, const Tensor& indices, int axis) { return host::take(x, indices, axis); }
Tensor OneDnnBackend::take_backward(const Tensor& dy, const Tensor& indices, int axis, const Shape& x_shape) {
    return host::take_backward(dy, indices, axis, x_shape);
}

Tensor OneDnnBackend::clip(const Tensor& x, float lo, float hi) {
    if (!all_f32({&x}) || has_nan(x)) return host::clip(x, lo, hi);
    Tensor y(x.shape(), DType::float32);
    const auto md = plain_desc(x.shape());
    run(dnnl_compat::eltwise(engine_, user_scratchpad(), algorithm::eltwise_clip, md, lo, hi), {{DNNL_ARG_SRC, wrap(engine_, md, x)}, {DNNL_ARG_DST, wrap(engine_, md, y)}});
    return y;
}

}  // namespace keras::backend
