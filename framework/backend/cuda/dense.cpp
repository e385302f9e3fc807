// Dense on cuBLAS: y = x @ kernel + bias and its backward, in Keras's row-major layouts.
//
// cuBLAS is column-major: a row-major (r, c) matrix is the column-major (c, r) matrix, its
// transpose. So y (M, U) = x (M, C) @ K (C, U) is computed as y^T = K^T @ x^T, which cuBLAS reads
// straight from the row-major buffers with no copies (the usual transpose trick).
// FP32 throughout: the handle's math mode is set to CUBLAS_PEDANTIC_MATH here, so no TF32 tensor
// cores (~1e-3 relative error) and the GPU matches the CPU to ~1e-6.
#include <algorithm>

#include "cuda_backend.hpp"
#include "cuda_check.hpp"
#include "dense_kernels.hpp"
#include "keras/errors.hpp"

namespace keras::backend {

namespace {

const float* f32(const Tensor& t) { return static_cast<const float*>(t.raw()); }
float* f32(Tensor& t) { return static_cast<float*>(t.raw()); }

// Column-major C (m, n) = op(A) (m, k) @ op(B) (k, n) [+ C when accumulate].
void gemm(cublasHandle_t h, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a,
          int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate) {
    if (m == 0 || n == 0) return;
    const float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    auto ld = [](int64_t v) { return static_cast<int>(std::max<int64_t>(v, 1)); };   // cuBLAS wants >= 1
    // A host-side setting, cheap: kept here so nothing else sharing the handle can turn TF32 on for us.
    CUBLAS_CHECK(cublasSetMathMode(h, CUBLAS_PEDANTIC_MATH));
    CUBLAS_CHECK(cublasSgemm(h, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                             static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), &one, a,
                             ld(lda), b, ld(ldb), &beta, c, ld(ldc)));
}

void check_matrix(const Tensor& t, const char* what) {
    if (t.ndim() != 2 || t.dtype() != DType::float32)
        value_error("matmul: {} must be a float32 matrix, got {} {}", what, to_string(t.dtype()), shape_str(t.shape()));
}

}  // namespace

Tensor CudaBackend::matmul_bias(const Tensor& x, const Tensor& kernel, const Tensor& bias) {
    check_on_device(x, "matmul input");
    check_on_device(kernel, "matmul kernel");
    check_matrix(x, "input");
    check_matrix(kernel, "kernel");
    const int64_t m = x.dim(0), k = x.dim(1), n = kernel.dim(1);
    if (kernel.dim(0) != k)
        value_error("matmul: input has {} features but the kernel expects {} (kernel shape {})", k, kernel.dim(0),
                    shape_str(kernel.shape()));
    if (bias.defined()) {
        check_on_device(bias, "matmul bias");
        if (bias.shape() != Shape{n})
            value_error("matmul: bias must have shape {}, got {}", shape_str({n}), shape_str(bias.shape()));
    }
    make_current();
    Tensor y({m, n}, DType::float32, device());
    if (bias.defined()) cuda_kernels::broadcast_rows(f32(y), f32(bias), m, n, stream_);
    // y^T (n, m) = K^T (n, k) @ x^T (k, m): K row-major is K^T column-major (ld n), x likewise (ld k).
    gemm(cublas_, false, false, n, m, k, f32(kernel), n, f32(x), k, f32(y), n,
         bias.defined());
    return y;
}

void CudaBackend::matmul_bias_backward(const Tensor& x, const Tensor& kernel, const Tensor& dy, Tensor& dx,
                                       Tensor& dkernel, Tensor* dbias) {
    check_on_device(x, "matmul input");
    check_on_device(kernel, "matmul kernel");
    check_on_device(dy, "matmul output gradient");
    const int64_t m = x.dim(0), k = x.dim(1), n = kernel.dim(1);
    if (dy.shape() != Shape{m, n})
        value_error("matmul backward: output gradient must have shape {}, got {}", shape_str({m, n}),
                    shape_str(dy.shape()));
    make_current();
    // dx (m, k) = dy (m, n) @ K^T: column-major dx^T (k, m) = K (k, n) @ dy^T (n, m);
    // K (k, n) is the transpose of the column-major K^T we hold (ld n).
    dx = Tensor({m, k}, DType::float32, device());
    gemm(cublas_, true, false, k, m, n, f32(kernel), n, f32(dy), n, f32(dx), k,
         false);
    // dK (k, n) = x^T @ dy: column-major dK^T (n, k) = dy^T (n, m) @ x (m, k); x is the transpose of
    // the column-major x^T we hold (ld k).
    dkernel = Tensor({k, n}, DType::float32, device());
    gemm(cublas_, false, true, n, k, m, f32(dy), n, f32(x), k, f32(dkernel), n,
         false);
    if (dbias) {
        *dbias = Tensor({n}, DType::float32, device());
        cuda_kernels::sum_rows(f32(dy), f32(*dbias), m, n, stream_);
    }
}

}  // namespace keras::backend
