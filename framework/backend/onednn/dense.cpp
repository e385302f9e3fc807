// Dense on oneDNN's matmul: y = x @ kernel + bias, and its backward as two more matmuls.
#include <fmt/format.h>

#include "keras/errors.hpp"
#include "onednn_backend.hpp"

namespace keras::backend {

using dnnl::memory;

namespace {
// A row-major (rows, cols) matrix, or its transpose viewed through strides (no copy).
memory::desc matrix_desc(int64_t rows, int64_t cols, bool transposed,
                         memory::data_type type = memory::data_type::f32) {
    return transposed ? memory::desc({rows, cols}, type, memory::dims{1, rows})
                      : memory::desc({rows, cols}, type, memory::dims{cols, 1});
}
}  // namespace

// C (m, n) = op(A) (m, k) @ op(B) (k, n) [+ bias (1, n)]; with bf16, A and B are bfloat16 (C and the
// bias stay float32: oneDNN accumulates in float32).
dnnl::matmul OneDnnBackend::matmul_for(int64_t m, int64_t k, int64_t n, bool transpose_a, bool transpose_b,
                                       bool bias, bool bf16) {
    std::lock_guard lock(matmul_mutex_);
    return matmul_cache_.get_or_create(MatmulKey{m, k, n, transpose_a, transpose_b, bias, bf16, primitive_threads()}, [&] {
        const auto in_type = bf16 ? memory::data_type::bf16 : memory::data_type::f32;
        const auto a = matrix_desc(m, k, transpose_a, in_type);
        const auto b = matrix_desc(k, n, transpose_b, in_type);
        const auto c = matrix_desc(m, n, false);
        const auto attr = user_scratchpad();
        return dnnl::matmul(bias ? dnnl_compat::make_pd<dnnl::matmul>(engine_, attr, a, b, matrix_desc(1, n, false), c)
                                 : dnnl_compat::make_pd<dnnl::matmul>(engine_, attr, a, b, c));
    });
}

Tensor OneDnnBackend::matmul_bias(const Tensor& x, const Tensor& kernel, const Tensor& bias) {
    const int64_t m = x.dim(0), k = x.dim(1), n = kernel.dim(1);
    if (kernel.dim(0) != k)
        value_error("matmul: input has {} features but the kernel expects {} (kernel shape {})", k, kernel.dim(0),
                    shape_str(kernel.shape()));
    Tensor y({m, n}, DType::float32);
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, wrap(engine_, matrix_desc(m, k, false), x)},
                                         {DNNL_ARG_WEIGHTS, wrap(engine_, matrix_desc(k, n, false), kernel)},
                                         {DNNL_ARG_DST, wrap(engine_, matrix_desc(m, n, false), y)}};
    if (bias.defined()) args.emplace(DNNL_ARG_BIAS, wrap(engine_, matrix_desc(1, n, false), bias));
    run(matmul_for(m, k, n, false, false, bias.defined()), std::move(args));
    return y;
}

void OneDnnBackend::matmul_bias_backward(const Tensor& x, const Tensor& kernel, const Tensor& dy, Tensor& dx,
                                         Tensor& dkernel, Tensor* dbias) {
    const int64_t m = x.dim(0), k = x.dim(1), n = kernel.dim(1);
    // dx (m, k) = dy (m, n) @ kernel^T (n, k)
    dx = Tensor({m, k}, DType::float32);
    run(matmul_for(m, n, k, false, true, false),
        {{DNNL_ARG_SRC, wrap(engine_, matrix_desc(m, n, false), dy)},
         {DNNL_ARG_WEIGHTS, wrap(engine_, matrix_desc(n, k, true), kernel)},
         {DNNL_ARG_DST, wrap(engine_, matrix_desc(m, k, false), dx)}});
    // dkernel (k, n) = x^T (k, m) @ dy (m, n)
    dkernel = Tensor({k, n}, DType::float32);
    run(matmul_for(k, m, n, true, false, false),
        {{DNNL_ARG_SRC, wrap(engine_, matrix_desc(k, m, true), x)},
         {DNNL_ARG_WEIGHTS, wrap(engine_, matrix_desc(m, n, false), dy)},
         {DNNL_ARG_DST, wrap(engine_, matrix_desc(k, n, false), dkernel)}});
    if (dbias) {
        *dbias = Tensor::zeros({n});
        float* db = dbias->data<float>();
        const float* g = dy.data<float>();
        for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) db[j] += g[i * n + j];
    }
}

// ---- bfloat16 (mixed_bfloat16): the same products on bfloat16 copies of the operands.
static memory wrap16(const dnnl::engine& engine, const memory::desc& desc, const Bf16Buffer& b) {
    return memory(desc, engine, const_cast<uint16_t*>(b.data()));
}

Tensor OneDnnBackend::matmul_bias_bf16(const Tensor& x, const Tensor& kernel, const Tensor& bias) {
    if (!bfloat16_unsupported_reason().empty()) return matmul_bias(x, kernel, bias);
    const int64_t m = x.dim(0), k = x.dim(1), n = kernel.dim(1);
    if (kernel.dim(0) != k)
        value_error("matmul: input has {} features but the kernel expects {} (kernel shape {})", k, kernel.dim(0),
                    shape_str(kernel.shape()));
    const auto bf16 = memory::data_type::bf16;
    const Bf16Buffer x16 = to_bf16(x), kernel16 = to_bf16(kernel);
    Tensor y({m, n}, DType::float32);
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, wrap16(engine_, matrix_desc(m, k, false, bf16), x16)},
                                         {DNNL_ARG_WEIGHTS, wrap16(engine_, matrix_desc(k, n, false, bf16), kernel16)},
                                         {DNNL_ARG_DST, wrap(engine_, matrix_desc(m, n, false), y)}};
    if (bias.defined()) args.emplace(DNNL_ARG_BIAS, wrap(engine_, matrix_desc(1, n, false), bias));
    run(matmul_for(m, k, n, false, false, bias.defined(), true), std::move(args));
    round_to_bf16_(y);   // the layer's output is in its compute dtype, as Keras's
    return y;
}

void OneDnnBackend::matmul_bias_backward_bf16(const Tensor& x, const Tensor& kernel, const Tensor& dy, Tensor& dx,
                                              Tensor& dkernel, Tensor* dbias) {
    if (!bfloat16_unsupported_reason().empty()) return matmul_bias_backward(x, kernel, dy, dx, dkernel, dbias);
    const int64_t m = x.dim(0), k = x.dim(1), n = kernel.dim(1);
    const auto bf16 = memory::data_type::bf16;
    const Bf16Buffer x16 = to_bf16(x), kernel16 = to_bf16(kernel), dy16 = to_bf16(dy);
    // dx (m, k) = dy (m, n) @ kernel^T (n, k); the gradients come out in float32 (oneDNN's accumulator).
    dx = Tensor({m, k}, DType::float32);
    run(matmul_for(m, n, k, false, true, false, true),
        {{DNNL_ARG_SRC, wrap16(engine_, matrix_desc(m, n, false, bf16), dy16)},
         {DNNL_ARG_WEIGHTS, wrap16(engine_, matrix_desc(n, k, true, bf16), kernel16)},
         {DNNL_ARG_DST, wrap(engine_, matrix_desc(m, k, false), dx)}});
    // dkernel (k, n) = x^T (k, m) @ dy (m, n)
    dkernel = Tensor({k, n}, DType::float32);
    run(matmul_for(k, m, n, true, false, false, true),
        {{DNNL_ARG_SRC, wrap16(engine_, matrix_desc(k, m, true, bf16), x16)},
         {DNNL_ARG_WEIGHTS, wrap16(engine_, matrix_desc(m, n, false, bf16), dy16)},
         {DNNL_ARG_DST, wrap(engine_, matrix_desc(k, n, false), dkernel)}});
    if (dbias) {
        *dbias = Tensor::zeros({n});
        float* db = dbias->data<float>();
        const float* g = dy.data<float>();
        for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) db[j] += g[i * n + j];
    }
}

}  // namespace keras::backend
