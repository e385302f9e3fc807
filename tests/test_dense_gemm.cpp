// The cuBLAS arguments of the GPU Dense (framework/backend/cuda/dense_gemm.hpp), checked on the CPU:
// a column-major SGEMM written from cuBLAS's definition (C = op(A) op(B), column j of a matrix with
// leading dimension ld starting at element j * ld), fed the row-major Keras buffers exactly as the
// GPU backend feeds cuBLAS, must give the reference's y, dx and dkernel.
#include <doctest/doctest.h>

#include <vector>

#include "backend/cuda/dense_gemm.hpp"
#include "keras/backend.hpp"
#include "reference/reference.hpp"

namespace dg = keras::backend::dense_gemm;

namespace {

// cublasSgemm(transa, transb, m, n, k, alpha = 1, A, lda, B, ldb, beta = 0, C, ldc), in double.
void sgemm_column_major(const dg::GemmCall& g, const ref::Vec& A, const ref::Vec& B, ref::Vec& C) {
    // op(A)(i, l): A is (m, k) column-major, or (k, m) when transposed.
    auto a = [&](int64_t i, int64_t l) { return g.trans_a ? A[i * g.lda + l] : A[l * g.lda + i]; };
    auto b = [&](int64_t l, int64_t j) { return g.trans_b ? B[l * g.ldb + j] : B[j * g.ldb + l]; };
    for (int64_t j = 0; j < g.n; ++j)
        for (int64_t i = 0; i < g.m; ++i) {
            double s = 0.0;
            for (int64_t l = 0; l < g.k; ++l) s += a(i, l) * b(l, j);
            C[j * g.ldc + i] = s;
        }
}

struct Buffers {
    ref::Vec x, kernel, dy;
    const ref::Vec& operator[](dg::Operand o) const {
        return o == dg::Operand::x ? x : o == dg::Operand::kernel ? kernel : dy;
    }
};

ref::Vec run(const dg::GemmCall& g, const Buffers& bufs, size_t out_size) {
    ref::Vec out(out_size, -99.0);
    sgemm_column_major(g, bufs[g.a], bufs[g.b], out);
    return out;
}

}  // namespace

TEST_CASE("Dense's SGEMM plans give x @ kernel, dy @ kernel^T and x^T @ dy in row-major layout") {
    struct Shape3 {
        int M, C, U;
    };
    for (const Shape3 s : {Shape3{5, 3, 4}, Shape3{1, 7, 1}, Shape3{6, 1, 9}, Shape3{64, 16, 1}}) {
        INFO("M=" << s.M << " C=" << s.C << " U=" << s.U);
        const Buffers b{ref::random_vec(s.M * s.C, 1), ref::random_vec(s.C * s.U, 2), ref::random_vec(s.M * s.U, 3)};
        const auto y = run(dg::forward(s.M, s.C, s.U), b, s.M * s.U);
        CHECK(ref::max_abs_diff(y, ref::dense_forward(b.x, s.M, s.C, b.kernel, s.U, {}, "linear")) < 1e-12);
        const auto grads = ref::dense_backward(b.x, s.M, s.C, b.kernel, s.U, {}, "linear", b.dy);
        CHECK(ref::max_abs_diff(run(dg::grad_x(s.M, s.C, s.U), b, s.M * s.C), grads.dx) < 1e-12);
        CHECK(ref::max_abs_diff(run(dg::grad_kernel(s.M, s.C, s.U), b, s.C * s.U), grads.dkernel) < 1e-12);
    }
}

TEST_CASE("leading dimensions stay >= 1 for empty matrices, as cuBLAS requires") {
    for (const auto& g : {dg::forward(0, 0, 0), dg::grad_x(0, 0, 0), dg::grad_kernel(0, 0, 0)}) {
        CHECK(g.lda >= 1);
        CHECK(g.ldb >= 1);
        CHECK(g.ldc >= 1);
    }
}
