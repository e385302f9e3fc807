// The SGEMM arguments of dense_gemm.hpp. Leading dimensions are at least 1, as cuBLAS requires even
// for empty matrices.
#include "dense_gemm.hpp"

#include <algorithm>

namespace keras::backend::dense_gemm {

namespace {
int64_t ld(int64_t v) { return std::max<int64_t>(v, 1); }
}  // namespace

// y^T (U, M) = K^T (U, C) @ x^T (C, M): K row-major is K^T column-major (ld U); x likewise (ld C).
GemmCall forward(int64_t M, int64_t C, int64_t U) {
    return {.trans_a = false, .trans_b = false, .m = U, .n = M, .k = C, .a = Operand::kernel, .b = Operand::x,
            .lda = ld(U), .ldb = ld(C), .ldc = ld(U)};
}

// dx^T (C, M) = K (C, U) @ dy^T (U, M): K is the transpose of the column-major K^T we hold (ld U).
GemmCall grad_x(int64_t M, int64_t C, int64_t U) {
    return {.trans_a = true, .trans_b = false, .m = C, .n = M, .k = U, .a = Operand::kernel, .b = Operand::dy,
            .lda = ld(U), .ldb = ld(U), .ldc = ld(C)};
}

// dK^T (U, C) = dy^T (U, M) @ x (M, C): x is the transpose of the column-major x^T we hold (ld C).
GemmCall grad_kernel(int64_t M, int64_t C, int64_t U) {
    return {.trans_a = false, .trans_b = true, .m = U, .n = C, .k = M, .a = Operand::dy, .b = Operand::x,
            .lda = ld(U), .ldb = ld(C), .ldc = ld(U)};
}

}  // namespace keras::backend::dense_gemm
