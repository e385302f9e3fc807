// How Dense's three products map onto cuBLAS's column-major SGEMM, as plain host data, so the
// arguments (the part that is easy to get wrong) are unit-tested on any machine.
//
// cuBLAS computes C (m, n) = op(A) (m, k) @ op(B) (k, n), every matrix column-major with a leading
// dimension. A row-major (r, c) buffer read column-major is the (c, r) transpose, so Keras's row-major
// y = x @ K is computed as y^T = K^T @ x^T straight from the row-major buffers, with no copies.
#pragma once

#include <cstdint>

namespace keras::backend::dense_gemm {

enum class Operand { x, kernel, dy };

struct GemmCall {
    bool trans_a = false, trans_b = false;
    int64_t m = 0, n = 0, k = 0;
    Operand a = Operand::x, b = Operand::x;
    int64_t lda = 1, ldb = 1, ldc = 1;
};

// x (M, C), kernel (C, U), dy / y (M, U), all row-major.
GemmCall forward(int64_t M, int64_t C, int64_t U);    // y  (M, U) = x @ kernel
GemmCall grad_x(int64_t M, int64_t C, int64_t U);     // dx (M, C) = dy @ kernel^T
GemmCall grad_kernel(int64_t M, int64_t C, int64_t U);   // dkernel (C, U) = x^T @ dy

}  // namespace keras::backend::dense_gemm
