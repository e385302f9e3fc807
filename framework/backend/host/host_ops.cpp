#include "host_ops.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "activation_formulas.hpp"
#include "keras/errors.hpp"

namespace keras::backend::host {

std::vector<int64_t> strides_of(const Shape& shape) {
    std::vector<int64_t> s(shape.size(), 1);
    for (int i = static_cast<int>(shape.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * shape[i + 1];
    return s;
}

std::vector<int64_t> broadcast_strides(const Shape& shape, const Shape& out) {
    const auto own = strides_of(shape);
    std::vector<int64_t> s(out.size(), 0);
    const size_t offset = out.size() - shape.size();
    for (size_t i = 0; i < shape.size(); ++i) s[offset + i] = shape[i] == 1 ? 0 : own[i];
    return s;
}

namespace {

// Calls f(flat output index, offsets...) for every element of `out`, with one offset per stride set.
template <size_t N, typename F>
void for_each_index(const Shape& out, const std::array<std::vector<int64_t>, N>& strides, F&& f) {
    const int64_t total = num_elements(out);
    const int nd = static_cast<int>(out.size());
    std::vector<int64_t> idx(nd, 0);
    std::array<int64_t, N> off{};
    for (int64_t i = 0; i < total; ++i) {
        f(i, off);
        for (int d = nd - 1; d >= 0; --d) {   // odometer step, keeping the offsets in step
            if (++idx[d] < out[d]) {
                for (size_t k = 0; k < N; ++k) off[k] += strides[k][d];
                break;
            }
            for (size_t k = 0; k < N; ++k) off[k] -= strides[k][d] * (out[d] - 1);
            idx[d] = 0;
        }
    }
}

int64_t index_at(const Tensor& ids, int64_t i) {
    return ids.dtype() == DType::int64 ? ids.data<int64_t>()[i] : ids.data<int32_t>()[i];
}
}  // namespace

Shape broadcast_shapes(const Shape& a, const Shape& b) {
    Shape out(std::max(a.size(), b.size()), 1);
    for (size_t i = 0; i < out.size(); ++i) {
        const int64_t da = i < out.size() - a.size() ? 1 : a[i - (out.size() - a.size())];
        const int64_t db = i < out.size() - b.size() ? 1 : b[i - (out.size() - b.size())];
        if (da != db && da != 1 && db != 1)
            value_error("Cannot broadcast shapes {} and {}: axis {} has sizes {} and {}", shape_str(a), shape_str(b),
                        i, da, db);
        out[i] = da == 1 ? db : da;
    }
    return out;
}

namespace {
// max / min that return a NaN operand (std::max / std::min return the first operand when either
// is NaN, so maximum(0, NaN) would be 0): NaN propagates as in numpy and Keras.
template <typename T>
T nan_max(T a, T b) {
    return (a > b || a != a) ? a : b;
}
template <typename T>
T nan_min(T a, T b) {
    return (a < b || a != a) ? a : b;
}
}  // namespace

float unary(UnaryOp op, float x) {
    switch (op) {
        case UnaryOp::negative: return -x;
        case UnaryOp::exp: return std::exp(x);
        case UnaryOp::log: return std::log(x);
        case UnaryOp::tanh: return std::tanh(x);
        case UnaryOp::sigmoid: return 1.0f / (1.0f + std::exp(-x));
        case UnaryOp::relu: return activation_formulas::value(Activation::relu, x);
        case UnaryOp::sqrt: return std::sqrt(x);
        case UnaryOp::square: return x * x;
        case UnaryOp::abs: return std::fabs(x);
        case UnaryOp::sign: return x != x ? x : static_cast<float>((x > 0.0f) - (x < 0.0f));
        case UnaryOp::reciprocal: return 1.0f / x;
    }
    return x;
}

float binary(BinaryOp op, float a, float b) {
    switch (op) {
        case BinaryOp::add: return a + b;
        case BinaryOp::subtract: return a - b;
        case BinaryOp::multiply: return a * b;
        case BinaryOp::divide: return a / b;
        case BinaryOp::maximum: return nan_max(a, b);
        case BinaryOp::minimum: return nan_min(a, b);
        case BinaryOp::power: return std::pow(a, b);
        case BinaryOp::greater: return a > b;
        case BinaryOp::greater_equal: return a >= b;
        case BinaryOp::less: return a < b;
        case BinaryOp::less_equal: return a <= b;
        case BinaryOp::equal: return a == b;
        case BinaryOp::not_equal: return a != b;
    }
    return a;
}

Tensor unary(UnaryOp op, const Tensor& x) {
    Tensor y(x.shape(), DType::float32);
    const float* px = x.data<float>();
    float* py = y.data<float>();
    const int64_t n = x.numel();   // hoisted: numel() multiplies the shape out on every call
    for (int64_t i = 0; i < n; ++i) py[i] = unary(op, px[i]);
    return y;
}

namespace {
// A broadcast seen with as few axes as it has: adjacent axes merge where every operand steps through
// them as through one (both broadcast, or both contiguous), and size-1 axes drop. (30, 24, 4, 64)
// against (30, 24, 1, 64) is (720, 4, 64) against strides (64, 0, 1).
template <size_t N>
struct Collapsed {
    Shape out;
    std::array<std::vector<int64_t>, N> strides;
};

template <size_t N>
Collapsed<N> collapse(const Shape& out, const std::array<std::vector<int64_t>, N>& strides) {
    Collapsed<N> c;
    for (size_t d = 0; d < out.size(); ++d) {
        if (out[d] == 1) continue;
        bool merges = !c.out.empty();
        for (size_t k = 0; k < N && merges; ++k) merges = c.strides[k].back() == strides[k][d] * out[d];
        if (merges) {
            c.out.back() *= out[d];
            for (size_t k = 0; k < N; ++k) c.strides[k].back() = strides[k][d];
        } else {
            c.out.push_back(out[d]);
            for (size_t k = 0; k < N; ++k) c.strides[k].push_back(strides[k][d]);
        }
    }
    return c;
}

// Collapsed to at most three axes, padded in front with size-1 ones to exactly three.
template <size_t N>
bool as_three_axes(Collapsed<N>& c) {
    if (c.out.size() > 3) return false;
    while (c.out.size() < 3) {
        c.out.insert(c.out.begin(), 1);
        for (auto& s : c.strides) s.insert(s.begin(), 0);
    }
    return true;
}
}  // namespace

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
    const Shape out = broadcast_shapes(a.shape(), b.shape());
    Tensor y(out, DType::float32);
    const float* pa = a.data<float>();
    const float* pb = b.data<float>();
    float* py = y.data<float>();
    const std::array<std::vector<int64_t>, 2> strides{broadcast_strides(a.shape(), out), broadcast_strides(b.shape(), out)};
    Collapsed<2> c = collapse<2>(out, strides);
    if (!as_three_axes(c)) {
        for_each_index<2>(out, strides, [&](int64_t i, const std::array<int64_t, 2>& off) { py[i] = binary(op, pa[off[0]], pb[off[1]]); });
        return y;
    }
    // Three plain loops over the collapsed axes: the general odometer above costs tens of ns an
    // element, this a few (a max-pooling gradient broadcasts over a middle axis, for one).
    const auto& [sa, sb] = c.strides;
    const int64_t n0 = c.out[0], n1 = c.out[1], n2 = c.out[2];
    for (int64_t i0 = 0; i0 < n0; ++i0)
        for (int64_t i1 = 0; i1 < n1; ++i1) {
            const float* ra = pa + i0 * sa[0] + i1 * sa[1];
            const float* rb = pb + i0 * sb[0] + i1 * sb[1];
            float* ry = py + (i0 * n1 + i1) * n2;
            for (int64_t i2 = 0; i2 < n2; ++i2) ry[i2] = binary(op, ra[i2 * sa[2]], rb[i2 * sb[2]]);
        }
    return y;
}

namespace {
// Each of n rows of `length` values added (or maxed, minned) into acc[row], in order along the row.
// Eight rows at a time: one row's additions form a chain of dependent adds, eight rows eight
// independent chains (the same order within each row, so the same bits as one row at a time).
template <typename Accumulate>
void reduce_rows_with(const float* x, int64_t n, int64_t length, double* acc, Accumulate accumulate) {
    constexpr int64_t kRows = 8;
    int64_t row = 0;
    for (; row + kRows <= n; row += kRows) {
        double a[kRows];
        for (int64_t k = 0; k < kRows; ++k) a[k] = acc[row + k];
        const float* base = x + row * length;
        for (int64_t i = 0; i < length; ++i)
            for (int64_t k = 0; k < kRows; ++k) accumulate(a[k], base[k * length + i]);
        for (int64_t k = 0; k < kRows; ++k) acc[row + k] = a[k];
    }
    for (; row < n; ++row)
        for (int64_t i = 0; i < length; ++i) accumulate(acc[row], x[row * length + i]);
}

void reduce_rows(ReduceOp op, const float* x, int64_t n, int64_t length, double* acc) {
    if (op == ReduceOp::max) reduce_rows_with(x, n, length, acc, [](double& a, double v) { a = nan_max(a, v); });
    else if (op == ReduceOp::min) reduce_rows_with(x, n, length, acc, [](double& a, double v) { a = nan_min(a, v); });
    else reduce_rows_with(x, n, length, acc, [](double& a, double v) { a += v; });
}
}  // namespace

Tensor reduce(ReduceOp op, const Tensor& x, const std::vector<int>& axes) {
    Shape out = x.shape();
    for (int a : axes) out[a] = 1;
    const int64_t count = out.empty() ? 1 : x.numel() / std::max<int64_t>(num_elements(out), 1);
    const double init = op == ReduceOp::max ? -std::numeric_limits<double>::infinity()
                        : op == ReduceOp::min ? std::numeric_limits<double>::infinity() : 0.0;
    std::vector<double> acc(num_elements(out), init);
    const float* px = x.data<float>();
    auto accumulate = [op](double& a, double v) {
        if (op == ReduceOp::max) a = nan_max(a, v);
        else if (op == ReduceOp::min) a = nan_min(a, v);
        else a += v;
    };
    // x seen as (kept, reduced, kept) when the reduced axes are adjacent (after collapsing): plain
    // loops, adding each output's values in the same order as the general walk below.
    const std::array<std::vector<int64_t>, 1> strides{broadcast_strides(out, x.shape())};
    const Collapsed<1> c = collapse<1>(x.shape(), strides);
    const auto& so = c.strides[0];   // 0 on the reduced axes
    // The one reduced axis r, with kept axes at most on either side of it.
    const size_t r = so.size() == 1 || (so.size() >= 2 && so[0] == 0) ? 0 : 1;
    const bool middle_reduced = !so.empty() && so.size() <= r + 2 && so[r] == 0 && (r == 0 || so[0] != 0) &&
                                (so.size() == r + 1 || so[r + 1] != 0);
    if (middle_reduced) {
        const int64_t n0 = r == 1 ? c.out[0] : 1, n1 = c.out[r], n2 = so.size() == r + 2 ? c.out[r + 1] : 1;
        if (n2 == 1) {   // the innermost axis: rows of n1 values
            reduce_rows(op, px, n0, n1, acc.data());
        } else
        for (int64_t i0 = 0; i0 < n0; ++i0) {
            double* row = acc.data() + i0 * n2;
            for (int64_t i1 = 0; i1 < n1; ++i1) {
                const float* rx = px + (i0 * n1 + i1) * n2;
                for (int64_t i2 = 0; i2 < n2; ++i2) accumulate(row[i2], rx[i2]);
            }
        }
    } else {
        // Walk x; its offset in `out` drops the reduced axes (stride 0 there).
        for_each_index<1>(x.shape(), strides, [&](int64_t i, const std::array<int64_t, 1>& off) { accumulate(acc[off[0]], px[i]); });
    }
    Tensor y(out, DType::float32);
    float* py = y.data<float>();
    for (size_t i = 0; i < acc.size(); ++i)
        py[i] = static_cast<float>(op == ReduceOp::mean ? acc[i] / static_cast<double>(count) : acc[i]);
    return y;
}

Tensor softmax(const Tensor& x, int axis, bool log) {
    Tensor y(x.shape(), DType::float32);
    const int64_t n = x.shape()[axis], inner = strides_of(x.shape())[axis], outer = x.numel() / std::max<int64_t>(n * inner, 1);
    const float* px = x.data<float>();
    float* py = y.data<float>();
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t in = 0; in < inner; ++in) {
            const int64_t base = o * n * inner + in;
            float mx = -std::numeric_limits<float>::infinity();
            for (int64_t k = 0; k < n; ++k) mx = nan_max(mx, px[base + k * inner]);   // a NaN row: all NaN
            double sum = 0;
            for (int64_t k = 0; k < n; ++k) sum += std::exp(double(px[base + k * inner]) - mx);
            for (int64_t k = 0; k < n; ++k) {
                const double z = double(px[base + k * inner]) - mx;
                py[base + k * inner] = static_cast<float>(log ? z - std::log(sum) : std::exp(z) / sum);
            }
        }
    return y;
}

Tensor matmul(const Tensor& a, const Tensor& b) {
    const int nd = a.ndim();
    const int64_t m = a.dim(-2), k = a.dim(-1), n = b.dim(-1);
    Shape batch_a(a.shape().begin(), a.shape().end() - 2), batch_b(b.shape().begin(), b.shape().end() - 2);
    const Shape batch = broadcast_shapes(batch_a, batch_b);
    Shape out = batch;
    out.push_back(m);
    out.push_back(n);
    Tensor y = Tensor::zeros(out, DType::float32);
    const float* pa = a.data<float>();
    const float* pb = b.data<float>();
    float* py = y.data<float>();
    auto sa = broadcast_strides(batch_a, batch), sb = broadcast_strides(batch_b, batch);
    for (auto& s : sa) s *= m * k;
    for (auto& s : sb) s *= k * n;
    (void)nd;
    for_each_index<2>(batch, {sa, sb}, [&](int64_t i, const std::array<int64_t, 2>& off) {
        const float* A = pa + off[0];
        const float* B = pb + off[1];
        float* Y = py + i * m * n;
        for (int64_t r = 0; r < m; ++r)
            for (int64_t c = 0; c < k; ++c) {
                const float av = A[r * k + c];
                for (int64_t j = 0; j < n; ++j) Y[r * n + j] += av * B[c * n + j];
            }
    });
    return y;
}

Tensor transpose(const Tensor& x, const std::vector<int>& perm) {
    Shape out(perm.size());
    const auto own = strides_of(x.shape());
    std::vector<int64_t> s(perm.size());
    for (size_t i = 0; i < perm.size(); ++i) out[i] = x.shape()[perm[i]], s[i] = own[perm[i]];
    Tensor y(out, x.dtype());
    const size_t es = dtype_size(x.dtype());
    const char* px = static_cast<const char*>(x.raw());
    char* py = static_cast<char*>(y.raw());
    for_each_index<1>(out, {s}, [&](int64_t i, const std::array<int64_t, 1>& off) {
        std::copy_n(px + off[0] * es, es, py + i * es);
    });
    return y;
}

Tensor concatenate(const std::vector<Tensor>& xs, int axis) {
    Shape out = xs.at(0).shape();
    out[axis] = 0;
    for (const auto& x : xs) out[axis] += x.shape()[axis];
    Tensor y(out, xs[0].dtype());
    const size_t es = dtype_size(xs[0].dtype());
    const int64_t outer = num_elements(Shape(out.begin(), out.begin() + axis));
    const int64_t inner = num_elements(Shape(out.begin() + axis + 1, out.end()));
    char* py = static_cast<char*>(y.raw());
    int64_t col = 0;   // where this input's block starts along `axis`
    for (const auto& x : xs) {
        const int64_t block = x.shape()[axis] * inner;
        const char* px = static_cast<const char*>(x.raw());
        for (int64_t o = 0; o < outer; ++o)
            std::copy_n(px + o * block * es, block * es, py + (o * out[axis] * inner + col * inner) * es);
        col += x.shape()[axis];
    }
    return y;
}

Tensor slice(const Tensor& x, const std::vector<int64_t>& start, const Shape& shape) {
    Tensor y(shape, x.dtype());
    const size_t es = dtype_size(x.dtype());
    const auto s = strides_of(x.shape());
    int64_t base = 0;
    for (size_t i = 0; i < start.size(); ++i) base += start[i] * s[i];
    const char* px = static_cast<const char*>(x.raw()) + base * es;
    char* py = static_cast<char*>(y.raw());
    for_each_index<1>(shape, {s}, [&](int64_t i, const std::array<int64_t, 1>& off) {
        std::copy_n(px + off[0] * es, es, py + i * es);
    });
    return y;
}

Tensor slice_backward(const Tensor& dy, const Shape& full, const std::vector<int64_t>& start) {
    Tensor dx = Tensor::zeros(full, DType::float32);
    const auto s = strides_of(full);
    int64_t base = 0;
    for (size_t i = 0; i < start.size(); ++i) base += start[i] * s[i];
    float* px = dx.data<float>() + base;
    const float* pg = dy.data<float>();
    for_each_index<1>(dy.shape(), {s}, [&](int64_t i, const std::array<int64_t, 1>& off) { px[off[0]] = pg[i]; });
    return dx;
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
    const Shape out = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape()), b.shape());
    Tensor y(out, DType::float32);
    const float* pc = cond.data<float>();
    const float* pa = a.data<float>();
    const float* pb = b.data<float>();
    float* py = y.data<float>();
    for_each_index<3>(out, {broadcast_strides(cond.shape(), out), broadcast_strides(a.shape(), out),
                            broadcast_strides(b.shape(), out)},
                      [&](int64_t i, const std::array<int64_t, 3>& off) {
                          py[i] = pc[off[0]] != 0.0f ? pa[off[1]] : pb[off[2]];
                      });
    return y;
}

Tensor take(const Tensor& x, const Tensor& indices, int axis) {
    Shape out(x.shape().begin(), x.shape().begin() + axis);
    out.insert(out.end(), indices.shape().begin(), indices.shape().end());
    out.insert(out.end(), x.shape().begin() + axis + 1, x.shape().end());
    Tensor y(out, x.dtype());
    const size_t es = dtype_size(x.dtype());
    const int64_t outer = num_elements(Shape(x.shape().begin(), x.shape().begin() + axis));
    const int64_t inner = num_elements(Shape(x.shape().begin() + axis + 1, x.shape().end()));
    const int64_t n = x.shape()[axis], k = indices.numel();
    const char* px = static_cast<const char*>(x.raw());
    char* py = static_cast<char*>(y.raw());
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t j = 0; j < k; ++j)
            std::copy_n(px + (o * n + index_at(indices, j)) * inner * es, inner * es, py + (o * k + j) * inner * es);
    return y;
}

Tensor take_backward(const Tensor& dy, const Tensor& indices, int axis, const Shape& x_shape) {
    Tensor dx = Tensor::zeros(x_shape, DType::float32);
    const int64_t outer = num_elements(Shape(x_shape.begin(), x_shape.begin() + axis));
    const int64_t inner = num_elements(Shape(x_shape.begin() + axis + 1, x_shape.end()));
    const int64_t n = x_shape[axis], k = indices.numel();
    const float* pg = dy.data<float>();
    float* px = dx.data<float>();
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t j = 0; j < k; ++j) {
            float* row = px + (o * n + index_at(indices, j)) * inner;
            const float* g = pg + (o * k + j) * inner;
            for (int64_t c = 0; c < inner; ++c) row[c] += g[c];
        }
    return dx;
}

Tensor clip(const Tensor& x, float lo, float hi) {
    Tensor y(x.shape(), DType::float32);
    const float* px = x.data<float>();
    float* py = y.data<float>();
    const int64_t n = x.numel();
    for (int64_t i = 0; i < n; ++i) py[i] = std::min(std::max(px[i], lo), hi);
    return y;
}

}  // namespace keras::backend::host
