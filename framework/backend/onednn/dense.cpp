// Dense on oneDNN's matmul: y = x @ kernel + bias, and its backward as two more matmuls.
#include <fmt/format.h>

#include "keras/errors.hpp"
#include "onednn_backend.hpp"

namespace keras::backend {

using dnnl::memory;

namespace {
// A row-major (rows, cols) matrix, or its transpose viewed through strides (no copy).
memory::desc matrix_desc(int64_t rows, int64_t cols, bool transposed) {
    return transposed ? memory::desc({rows, cols}, memory::data_type::f32, memory::dims{1, rows})
                      : memory::desc({rows, cols}, memory::data_type::f32, memory::dims{cols, 1});
}
}  // namespace

// C (m, n) = op(A) (m, k) @ op(B) (k, n) [+ bias (1, n)]
dnnl::matmul OneDnnBackend::matmul_for(int64_t m, int64_t k, int64_t n, bool transpose_a, bool transpose_b,
                                       bool bias) {
    std::lock_guard lock(matmul_mutex_);
    return matmul_cache_.get_or_create(MatmulKey{m, k, n, transpose_a, transpose_b, bias, current_threads()}, [&] {
        const auto a = matrix_desc(m, k, transpose_a);
        const auto b = matrix_desc(k, n, transpose_b);
        const auto c = matrix_desc(m, n, false);
        const auto attr = user_scratchpad();
        return dnnl::matmul(bias ? dnnl_compat::make_pd<dnnl::matmul>(engine_, attr, a, b, matrix_desc(1, n, false), c)
                                 : dnnl_compat::make_pd<dnnl::matmul>(engine_, attr, a, b, c));
    });
}

static memory wrap(const dnnl::engine& engine, const memory::desc& desc, const Tensor& t) {
    return memory(desc, engine, const_cast<void*>(t.raw()));
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

}  // namespace keras::backend
