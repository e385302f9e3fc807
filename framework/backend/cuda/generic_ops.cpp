// The generic tensor ops (keras::ops) on the GPU: shapes, strides and checks here, the kernels in
// generic_ops.cu, matmul on cuBLAS. Results match host/host_ops.cpp: same shapes and dtypes, the
// same formulas. Nothing here waits for the GPU.
//
// Broadcasting, transposes, slices and concatenation are all one idea: a walk over the output's
// index space reading (or writing) each operand through its own strides, 0 along broadcast axes.
#include <array>
#include <climits>

#include "cuda_backend.hpp"
#include "cuda_check.hpp"
#include "generic_kernels.hpp"
#include "host/host_ops.hpp"
#include "keras/errors.hpp"

namespace keras::backend {

namespace gk = generic_kernels;

namespace {

const float* f32(const Tensor& t) { return static_cast<const float*>(t.raw()); }
float* f32(Tensor& t) { return static_cast<float*>(t.raw()); }

using host::broadcast_strides;   // the host loops' stride rules, shared
using host::strides_of;

bool walkable(size_t rank) { return rank <= static_cast<size_t>(gk::kMaxDims); }

template <int N>
gk::Walk<N> make_walk(const Shape& dims, const std::array<std::vector<int64_t>, N>& strides) {
    gk::Walk<N> w;
    w.ndim = static_cast<int>(dims.size());
    for (size_t d = 0; d < dims.size(); ++d) {
        w.dims[d] = dims[d];
        for (int k = 0; k < N; ++k) w.stride[k][d] = strides[k][d];
    }
    return w;
}

gk::Unary kernel_op(UnaryOp op) {
    switch (op) {
        case UnaryOp::negative: return gk::Unary::negative;
        case UnaryOp::exp: return gk::Unary::exp;
        case UnaryOp::log: return gk::Unary::log;
        case UnaryOp::tanh: return gk::Unary::tanh;
        case UnaryOp::sigmoid: return gk::Unary::sigmoid;
        case UnaryOp::relu: return gk::Unary::relu;
        case UnaryOp::sqrt: return gk::Unary::sqrt;
        case UnaryOp::square: return gk::Unary::square;
        case UnaryOp::abs: return gk::Unary::abs;
        case UnaryOp::sign: return gk::Unary::sign;
        case UnaryOp::reciprocal: return gk::Unary::reciprocal;
    }
    value_error("unary: unknown op {}", static_cast<int>(op));
}

gk::Binary kernel_op(BinaryOp op) {
    switch (op) {
        case BinaryOp::add: return gk::Binary::add;
        case BinaryOp::subtract: return gk::Binary::subtract;
        case BinaryOp::multiply: return gk::Binary::multiply;
        case BinaryOp::divide: return gk::Binary::divide;
        case BinaryOp::maximum: return gk::Binary::maximum;
        case BinaryOp::minimum: return gk::Binary::minimum;
        case BinaryOp::power: return gk::Binary::power;
        case BinaryOp::greater: return gk::Binary::greater;
        case BinaryOp::greater_equal: return gk::Binary::greater_equal;
        case BinaryOp::less: return gk::Binary::less;
        case BinaryOp::less_equal: return gk::Binary::less_equal;
        case BinaryOp::equal: return gk::Binary::equal;
        case BinaryOp::not_equal: return gk::Binary::not_equal;
    }
    value_error("binary: unknown op {}", static_cast<int>(op));
}

gk::Reduce kernel_op(ReduceOp op) {
    switch (op) {
        case ReduceOp::sum: return gk::Reduce::sum;
        case ReduceOp::mean: return gk::Reduce::mean;
        case ReduceOp::max: return gk::Reduce::max;
        case ReduceOp::min: return gk::Reduce::min;
    }
    value_error("reduce: unknown op {}", static_cast<int>(op));
}

void check_axis(const char* op, int axis, int ndim) {
    if (axis < 0 || axis >= ndim) value_error("{}: axis {} is out of range for rank {}", op, axis, ndim);
}

// Product of shape[begin, end).
int64_t extent(const Shape& shape, int begin, int end) {
    int64_t n = 1;
    for (int i = begin; i < end; ++i) n *= shape[i];
    return n;
}

// Calls f with the indices' device pointer typed by their dtype.
template <typename F>
void with_indices(const Tensor& indices, F&& f) {
    if (indices.dtype() == DType::int32) f(static_cast<const int32_t*>(indices.raw()));
    else f(static_cast<const int64_t*>(indices.raw()));
}

bool fits_int(int64_t v) { return v <= INT_MAX; }
}  // namespace

void CudaBackend::check_placed(const Tensor& t, const char* what) const {
    if (!t.defined()) value_error("{} backend: {} is undefined", to_string(device()), what);
    if (t.device() != device())
        value_error("{} backend: {} is on {}, expected {} (move it with .to())", to_string(device()), what,
                    to_string(t.device()), to_string(device()));
}

void CudaBackend::copy_strided(const void* src, void* dst, size_t element_size, const Shape& dims,
                               const std::vector<int64_t>& src_strides, const std::vector<int64_t>& dst_strides) {
    make_current();
    CUDA_CHECK(gk::strided_copy(src, dst, element_size, make_walk<2>(dims, {src_strides, dst_strides}),
                                num_elements(dims), stream_));
}

Tensor CudaBackend::unary(UnaryOp op, const Tensor& x) {
    check_on_device(x, "unary operand");
    make_current();
    Tensor y(x.shape(), DType::float32, device());
    CUDA_CHECK(gk::unary(kernel_op(op), f32(x), f32(y), x.numel(), stream_));
    return y;
}

Tensor CudaBackend::clip(const Tensor& x, float lo, float hi) {
    check_on_device(x, "clip operand");
    make_current();
    Tensor y(x.shape(), DType::float32, device());
    CUDA_CHECK(gk::clip(f32(x), f32(y), lo, hi, x.numel(), stream_));
    return y;
}

Tensor CudaBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b) {
    check_on_device(a, "binary operand");
    check_on_device(b, "binary operand");
    const Shape out = host::broadcast_shapes(a.shape(), b.shape());   // ValueError naming both shapes
    if (!walkable(out.size())) return Backend::binary(op, a, b);
    make_current();
    Tensor y(out, DType::float32, device());
    const auto walk = make_walk<2>(out, {broadcast_strides(a.shape(), out), broadcast_strides(b.shape(), out)});
    CUDA_CHECK(gk::binary(kernel_op(op), f32(a), f32(b), f32(y), walk, y.numel(), stream_));
    return y;
}

Tensor CudaBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b) {
    check_on_device(cond, "where condition");
    check_on_device(a, "where operand");
    check_on_device(b, "where operand");
    const Shape out = host::broadcast_shapes(host::broadcast_shapes(cond.shape(), a.shape()), b.shape());
    if (!walkable(out.size())) return Backend::where(cond, a, b);
    make_current();
    Tensor y(out, DType::float32, device());
    const auto walk = make_walk<3>(out, {broadcast_strides(cond.shape(), out), broadcast_strides(a.shape(), out),
                                         broadcast_strides(b.shape(), out)});
    CUDA_CHECK(gk::where(f32(cond), f32(a), f32(b), f32(y), walk, y.numel(), stream_));
    return y;
}

// Two walks over x: `outer` visits the first element of each output (x's shape with the reduced
// axes set to 1), `reduced` the elements that fold into it (the reduced axes alone).
Tensor CudaBackend::reduce(ReduceOp op, const Tensor& x, const std::vector<int>& axes) {
    check_on_device(x, "reduce operand");
    for (int a : axes) check_axis("reduce", a, x.ndim());
    if (!walkable(x.shape().size())) return Backend::reduce(op, x, axes);
    const auto strides = strides_of(x.shape());
    Shape out = x.shape(), reduced_dims;
    std::vector<int64_t> reduced_strides;
    for (int a : axes) {
        out[a] = 1;
        reduced_dims.push_back(x.shape()[a]);
        reduced_strides.push_back(strides[a]);
    }
    make_current();
    Tensor y(out, DType::float32, device());
    CUDA_CHECK(gk::reduce(kernel_op(op), f32(x), f32(y), make_walk<1>(out, {strides}), y.numel(),
                          make_walk<1>(reduced_dims, {reduced_strides}), num_elements(reduced_dims), stream_));
    return y;
}

Tensor CudaBackend::softmax(const Tensor& x, int axis, bool log) {
    check_on_device(x, "softmax operand");
    if (x.ndim() > 0) check_axis("softmax", axis, x.ndim());
    // x as (outer, n, inner) with n along `axis`; a scalar is one row of one element.
    const int a = x.ndim() > 0 ? axis : 0;
    const int64_t n = x.ndim() > 0 ? x.shape()[a] : 1;
    const int64_t outer = extent(x.shape(), 0, a);
    const int64_t inner = x.ndim() > 0 ? extent(x.shape(), a + 1, x.ndim()) : 1;
    make_current();
    Tensor y(x.shape(), DType::float32, device());
    CUDA_CHECK(gk::softmax(f32(x), f32(y), outer, n, inner, log, stream_));
    return y;
}

// Each operand is first expanded to the full batch shape where it broadcasts (a strided copy),
// so one strided-batched SGEMM does every product. Row-major Y (M, N) is column-major Y^T (N, M)
// = B^T (N, K) @ A^T (K, M), which cuBLAS reads straight from the row-major buffers (as Dense does).
Tensor CudaBackend::matmul(const Tensor& a, const Tensor& b) {
    check_on_device(a, "matmul operand");
    check_on_device(b, "matmul operand");
    if (a.ndim() < 2 || a.ndim() != b.ndim() || a.dim(-1) != b.dim(-2))
        value_error("matmul: operands {} and {} need one rank >= 2 and matching inner sizes", shape_str(a.shape()),
                    shape_str(b.shape()));
    const int64_t m = a.dim(-2), k = a.dim(-1), n = b.dim(-1);
    const Shape batch = host::broadcast_shapes(Shape(a.shape().begin(), a.shape().end() - 2),
                                               Shape(b.shape().begin(), b.shape().end() - 2));
    const int64_t count = num_elements(batch);
    Shape out = batch;
    out.push_back(m);
    out.push_back(n);
    if (!walkable(out.size()) || !fits_int(m) || !fits_int(n) || !fits_int(k) || !fits_int(count))
        return Backend::matmul(a, b);
    make_current();
    if (num_elements(out) == 0) return Tensor(out, DType::float32, device());
    if (k == 0) return Tensor::zeros(out, DType::float32, device());   // empty sums
    auto expanded = [&](const Tensor& t) {
        Shape full = batch;
        full.push_back(t.dim(-2));
        full.push_back(t.dim(-1));
        if (t.shape() == full) return t;
        Tensor e(full, DType::float32, device());
        copy_strided(t.raw(), e.raw(), sizeof(float), full, broadcast_strides(t.shape(), full), strides_of(full));
        return e;
    };
    const Tensor ea = expanded(a), eb = expanded(b);
    Tensor y(out, DType::float32, device());
    const float one = 1.0f, zero = 0.0f;
    CUBLAS_CHECK(cublasSetMathMode(cublas_, CUBLAS_PEDANTIC_MATH));   // FP32, no TF32 (see dense.cpp)
    CUBLAS_CHECK(cublasSgemmStridedBatched(cublas_, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(m),
                                           static_cast<int>(k), &one, f32(eb), static_cast<int>(n), k * n, f32(ea),
                                           static_cast<int>(k), m * k, &zero, f32(y), static_cast<int>(n), m * n,
                                           static_cast<int>(count)));
    return y;
}

Tensor CudaBackend::transpose(const Tensor& x, const std::vector<int>& perm) {
    check_placed(x, "transpose operand");
    if (static_cast<int>(perm.size()) != x.ndim())
        value_error("transpose: {} axes for a tensor of rank {}", perm.size(), x.ndim());
    for (int p : perm) check_axis("transpose", p, x.ndim());
    if (!walkable(perm.size())) return Backend::transpose(x, perm);
    const auto own = strides_of(x.shape());
    Shape out(perm.size());
    std::vector<int64_t> src_strides(perm.size());
    for (size_t i = 0; i < perm.size(); ++i) out[i] = x.shape()[perm[i]], src_strides[i] = own[perm[i]];
    Tensor y(out, x.dtype(), device());
    copy_strided(x.raw(), y.raw(), dtype_size(x.dtype()), out, src_strides, strides_of(out));
    return y;
}

// Each input, viewed as (outer, its size along axis * inner), is a block of columns of the output
// viewed as (outer, total size along axis * inner).
Tensor CudaBackend::concatenate(const std::vector<Tensor>& xs, int axis) {
    if (xs.empty()) value_error("concatenate: needs at least one tensor");
    for (const auto& x : xs) check_placed(x, "concatenate operand");
    check_axis("concatenate", axis, xs[0].ndim());
    Shape out = xs[0].shape();
    out[axis] = 0;
    for (const auto& x : xs) {
        Shape s = x.shape();
        if (s.size() == out.size()) s[axis] = xs[0].shape()[axis];
        if (s != xs[0].shape() || x.dtype() != xs[0].dtype())
            value_error("concatenate: {} ({}) does not match {} ({}) except along axis {}", shape_str(x.shape()),
                        to_string(x.dtype()), shape_str(xs[0].shape()), to_string(xs[0].dtype()), axis);
        out[axis] += x.shape()[axis];
    }
    Tensor y(out, xs[0].dtype(), device());
    const size_t es = dtype_size(xs[0].dtype());
    const int64_t outer = extent(out, 0, axis), inner = extent(out, axis + 1, static_cast<int>(out.size()));
    int64_t col = 0;   // where this input's block starts along `axis`
    for (const auto& x : xs) {
        const int64_t block = x.shape()[axis] * inner;
        char* dst = static_cast<char*>(y.raw()) + col * inner * es;
        copy_strided(x.raw(), dst, es, {outer, block}, {block, 1}, {out[axis] * inner, 1});
        col += x.shape()[axis];
    }
    return y;
}

namespace {
// ValueError unless the block of `shape` at `start` lies inside `full`.
void check_block(const char* op, const Shape& full, const std::vector<int64_t>& start, const Shape& shape) {
    bool ok = start.size() == full.size() && shape.size() == full.size();
    for (size_t i = 0; ok && i < full.size(); ++i)
        ok = start[i] >= 0 && shape[i] >= 0 && start[i] + shape[i] <= full[i];
    if (!ok)
        value_error("{}: the block at {} of shape {} does not fit in {}", op, shape_str(start), shape_str(shape),
                    shape_str(full));
}

// Flat offset of `start` in a dense tensor of `full`.
int64_t offset_of(const Shape& full, const std::vector<int64_t>& start) {
    const auto s = strides_of(full);
    int64_t base = 0;
    for (size_t i = 0; i < start.size(); ++i) base += start[i] * s[i];
    return base;
}
}  // namespace

Tensor CudaBackend::slice(const Tensor& x, const std::vector<int64_t>& start, const Shape& shape) {
    check_placed(x, "slice operand");
    check_block("slice", x.shape(), start, shape);
    if (!walkable(shape.size())) return Backend::slice(x, start, shape);
    Tensor y(shape, x.dtype(), device());
    const size_t es = dtype_size(x.dtype());
    const char* src = static_cast<const char*>(x.raw()) + offset_of(x.shape(), start) * es;
    copy_strided(src, y.raw(), es, shape, strides_of(x.shape()), strides_of(shape));
    return y;
}

Tensor CudaBackend::slice_backward(const Tensor& dy, const Shape& full, const std::vector<int64_t>& start) {
    check_on_device(dy, "slice gradient");
    check_block("slice_backward", full, start, dy.shape());
    if (!walkable(full.size())) return Backend::slice_backward(dy, full, start);
    Tensor dx = Tensor::zeros(full, DType::float32, device());
    float* dst = f32(dx) + offset_of(full, start);
    copy_strided(dy.raw(), dst, sizeof(float), dy.shape(), strides_of(dy.shape()), strides_of(full));
    return dx;
}

namespace {
// ValueError unless indices are int32 / int64 on `device` (their range is the caller's check).
void check_indices(const char* op, const Tensor& indices, Device device) {
    if (!indices.defined() || indices.device() != device || indices.dtype() == DType::float32)
        value_error("{}: indices must be int32 or int64 on {}", op, to_string(device));
}
}  // namespace

Tensor CudaBackend::take(const Tensor& x, const Tensor& indices, int axis) {
    check_placed(x, "take operand");
    check_indices("take", indices, device());
    check_axis("take", axis, x.ndim());
    Shape out(x.shape().begin(), x.shape().begin() + axis);
    out.insert(out.end(), indices.shape().begin(), indices.shape().end());
    out.insert(out.end(), x.shape().begin() + axis + 1, x.shape().end());
    const int64_t outer = extent(x.shape(), 0, axis), inner = extent(x.shape(), axis + 1, x.ndim());
    make_current();
    Tensor y(out, x.dtype(), device());
    with_indices(indices, [&](const auto* idx) {
        CUDA_CHECK(gk::take(x.raw(), idx, y.raw(), dtype_size(x.dtype()), outer, x.shape()[axis], indices.numel(),
                            inner, stream_));
    });
    return y;
}

Tensor CudaBackend::take_backward(const Tensor& dy, const Tensor& indices, int axis, const Shape& x_shape) {
    check_on_device(dy, "take gradient");
    check_indices("take_backward", indices, device());
    check_axis("take_backward", axis, static_cast<int>(x_shape.size()));
    const int nd = static_cast<int>(x_shape.size());
    const int64_t outer = extent(x_shape, 0, axis), inner = extent(x_shape, axis + 1, nd);
    if (dy.numel() != outer * indices.numel() * inner)
        value_error("take_backward: gradient {} does not match x {} with indices {} along axis {}",
                    shape_str(dy.shape()), shape_str(x_shape), shape_str(indices.shape()), axis);
    make_current();
    Tensor dx = Tensor::zeros(x_shape, DType::float32, device());
    with_indices(indices, [&](const auto* idx) {
        CUDA_CHECK(gk::take_backward(f32(dy), idx, f32(dx), outer, x_shape[axis], indices.numel(), inner, stream_));
    });
    return dx;
}

}  // namespace keras::backend
