// Dense on cuBLAS: y = x @ kernel + bias and its backward, in Keras's row-major layouts.
//
// The SGEMM arguments (the row-major / column-major transpose trick) are planned in dense_gemm.cpp,
// host code unit-tested on the CPU against a column-major SGEMM written from cuBLAS's definition.
// FP32 throughout: the handle's math mode is set to CUBLAS_PEDANTIC_MATH here, so no TF32 tensor
// cores (~1e-3 relative error) and the GPU matches the CPU to ~1e-6.
#include "cuda_backend.hpp"
#include "cuda_check.hpp"
#include "dense_gemm.hpp"
#include "dense_kernels.hpp"
#include "keras/errors.hpp"

namespace keras::backend {

namespace {

const float* f32(const Tensor& t) { return static_cast<const float*>(t.raw()); }
float* f32(Tensor& t) { return static_cast<float*>(t.raw()); }

// Runs one planned SGEMM (dense_gemm.hpp) on the operands; C is overwritten, or added to when
// `accumulate` (the forward adds onto the broadcast bias).
void gemm(cublasHandle_t h, const dense_gemm::GemmCall& call, const Tensor& x, const Tensor& kernel, const Tensor& dy,
          float* c, bool accumulate) {
    if (call.m == 0 || call.n == 0) return;
    auto operand = [&](dense_gemm::Operand o) {
        return f32(o == dense_gemm::Operand::x ? x : o == dense_gemm::Operand::kernel ? kernel : dy);
    };
    const float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    // A host-side setting, cheap: kept here so nothing else sharing the handle can turn TF32 on for us.
    CUBLAS_CHECK(cublasSetMathMode(h, CUBLAS_PEDANTIC_MATH));
    CUBLAS_CHECK(cublasSgemm(h, call.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, call.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                             static_cast<int>(call.m), static_cast<int>(call.n), static_cast<int>(call.k), &one,
                             operand(call.a), static_cast<int>(call.lda), operand(call.b), static_cast<int>(call.ldb),
                             &beta, c, static_cast<int>(call.ldc)));
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
    gemm(cublas_, dense_gemm::forward(m, k, n), x, kernel, Tensor(), f32(y), bias.defined());
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
    dx = Tensor({m, k}, DType::float32, device());
    gemm(cublas_, dense_gemm::grad_x(m, k, n), x, kernel, dy, f32(dx), false);
    dkernel = Tensor({k, n}, DType::float32, device());
    gemm(cublas_, dense_gemm::grad_kernel(m, k, n), x, kernel, dy, f32(dkernel), false);
    if (dbias) {
        *dbias = Tensor({n}, DType::float32, device());
        cuda_kernels::sum_rows(f32(dy), f32(*dbias), m, n, stream_);
    }
}

}  // namespace keras::backend
