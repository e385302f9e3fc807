// The CPU's elementwise broadcasts and reductions over every axis pattern: host/host_ops.cpp's loops
// (three plain loops once the shapes are collapsed, rows eight at a time for trailing reductions, the
// general walk otherwise) and the oneDNN backend (its primitives, or those loops where oneDNN would
// run a reference kernel or a slow one), against a naive double-precision computation written here.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "backend/host/host_ops.hpp"
#include "keras/backend.hpp"
#include "keras/tensor.hpp"

using namespace keras;
using backend::BinaryOp;
using backend::ReduceOp;

namespace {
Tensor irregular(const Shape& shape, double phase) {
    const int64_t n = num_elements(shape);
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>(std::sin(0.37 * double(i) + phase) * 2.0 + 0.1);
    return Tensor(v, shape);
}

// Index of element `flat` of `out` in a dense tensor of `shape` broadcast to `out` (right-aligned).
int64_t source_index(int64_t flat, const Shape& out, const Shape& shape) {
    int64_t index = 0, stride = 1;
    const size_t offset = out.size() - shape.size();
    for (int d = static_cast<int>(out.size()) - 1; d >= 0; --d) {
        const int64_t i = flat % out[d];
        flat /= out[d];
        if (d >= static_cast<int>(offset)) {
            const int64_t size = shape[d - offset];
            if (size != 1) index += i * stride;
            stride *= size;
        }
    }
    return index;
}

double naive_binary(BinaryOp op, double a, double b) {
    switch (op) {
        case BinaryOp::add: return a + b;
        case BinaryOp::subtract: return a - b;
        case BinaryOp::multiply: return a * b;
        case BinaryOp::divide: return a / b;
        case BinaryOp::equal: return a == b;
        default: return 0;
    }
}

void check_binary(BinaryOp op, const Shape& sa, const Shape& sb) {
    const Tensor a = irregular(sa, 0.2), b = irregular(sb, 1.3);
    const Shape out = backend::host::broadcast_shapes(sa, sb);
    const Tensor host = backend::host::binary(op, a, b);
    const Tensor cpu = backend::get(Device::cpu()).binary(op, a, b);
    REQUIRE(host.shape() == out);
    REQUIRE(cpu.shape() == out);
    for (int64_t i = 0; i < num_elements(out); ++i) {
        const double want = naive_binary(op, a.data<float>()[source_index(i, out, sa)], b.data<float>()[source_index(i, out, sb)]);
        CHECK(host.data<float>()[i] == doctest::Approx(want).epsilon(1e-6));
        CHECK(cpu.data<float>()[i] == doctest::Approx(want).epsilon(1e-6));
    }
}

void check_reduce(ReduceOp op, const Shape& shape, const std::vector<int>& axes) {
    const Tensor x = irregular(shape, 0.5);
    Shape out = shape;
    for (int a : axes) out[a] = 1;
    const int64_t n_out = num_elements(out);
    std::vector<double> want(static_cast<size_t>(n_out), op == ReduceOp::max ? -1e300 : op == ReduceOp::min ? 1e300 : 0.0);
    for (int64_t i = 0; i < num_elements(shape); ++i) {
        // The output element of x's element i: its index with the reduced axes at 0.
        int64_t rest = i, o = 0, stride = 1;
        for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {
            const int64_t k = rest % shape[d];
            rest /= shape[d];
            if (out[d] != 1) o += k * stride;
            stride *= out[d];
        }
        const double v = x.data<float>()[i];
        double& w = want[o];
        w = op == ReduceOp::max ? std::max(w, v) : op == ReduceOp::min ? std::min(w, v) : w + v;
    }
    const double count = double(num_elements(shape)) / double(n_out);
    const Tensor host = backend::host::reduce(op, x, axes);
    const Tensor cpu = backend::get(Device::cpu()).reduce(op, x, axes);
    REQUIRE(host.shape() == out);
    REQUIRE(cpu.shape() == out);
    for (int64_t i = 0; i < n_out; ++i) {
        const double w = op == ReduceOp::mean ? want[i] / count : want[i];
        // The host loops add in double, in index order, as this does: the same float comes out.
        CHECK(host.data<float>()[i] == static_cast<float>(w));
        CHECK(cpu.data<float>()[i] == doctest::Approx(w).epsilon(1e-5).scale(1.0));
    }
}

// Every subset of a shape's axes (the empty one aside).
std::vector<std::vector<int>> axis_subsets(int rank) {
    std::vector<std::vector<int>> out;
    for (int mask = 1; mask < (1 << rank); ++mask) {
        std::vector<int> axes;
        for (int d = 0; d < rank; ++d)
            if (mask & (1 << d)) axes.push_back(d);
        out.push_back(axes);
    }
    return out;
}
}  // namespace

TEST_CASE("binary ops broadcast over leading, middle, trailing and several axes as NumPy does") {
    const std::vector<std::pair<Shape, Shape>> cases = {
        {{6, 5, 4, 3}, {6, 5, 1, 3}},   // a max-pooling gradient: the window axis
        {{6, 5, 4, 3}, {1, 5, 4, 3}},   // leading
        {{6, 5, 4, 3}, {6, 5, 4, 1}},   // trailing
        {{6, 5, 4, 3}, {3}},            // per channel, lower rank
        {{6, 5, 4, 3}, {5, 1, 1}},      // middle axes, lower rank
        {{6, 5, 4, 3}, {6, 1, 4, 1}},   // alternating: more than three collapsed axes
        {{6, 1, 4, 3}, {1, 5, 1, 3}},   // both operands broadcast
        {{2, 3, 2, 3, 2}, {2, 1, 2, 1, 2}},
        {{7, 1}, {1, 9}},
        {{4, 3}, {}},                   // a scalar
        {{}, {4, 3}},
        {{1, 1, 1}, {1, 1, 1}},
        {{5, 4}, {5, 4}}};
    for (BinaryOp op : {BinaryOp::add, BinaryOp::subtract, BinaryOp::multiply, BinaryOp::divide, BinaryOp::equal})
        for (const auto& [sa, sb] : cases) {
            CAPTURE(shape_str(sa));
            CAPTURE(shape_str(sb));
            check_binary(op, sa, sb);
        }
}

TEST_CASE("reductions over every subset of axes of 2-D to 4-D shapes, size-1 axes included") {
    // {17, 256} and {9, 300}: rows at and past the longest the backend leaves to the host loops
    for (const Shape& shape : std::vector<Shape>{{7, 5}, {6, 5, 4}, {4, 1, 5, 3}, {3, 4, 5, 2}, {17, 256}, {9, 300}})
        for (const auto& axes : axis_subsets(static_cast<int>(shape.size())))
            for (ReduceOp op : {ReduceOp::sum, ReduceOp::mean, ReduceOp::max, ReduceOp::min}) {
                CAPTURE(shape_str(shape));
                CAPTURE(axes.size());
                CAPTURE(axes.front());
                check_reduce(op, shape, axes);
            }
}
