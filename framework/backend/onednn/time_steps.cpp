// Moving whole time steps of (N, S, F) tensors by per-sample index tables (masked RNNs pack their
// real steps to the front and spread the outputs back with these).
#include <algorithm>
#include <cstring>

#include "keras/errors.hpp"
#include "step_indices.hpp"
#include "onednn_backend.hpp"

namespace keras::backend {

Tensor OneDnnBackend::gather_steps(const Tensor& x, const std::vector<int32_t>& idx, int64_t steps) {
    const int64_t N = x.dim(0), S = x.dim(1), F = x.numel() / std::max<int64_t>(1, N * S);
    check_step_indices("gather_steps", idx, N * steps, S);
    Tensor out({N, steps, F}, DType::float32);
    const float* src = x.data<float>();
    float* dst = out.data<float>();
    for (int64_t n = 0; n < N; ++n)
        for (int64_t s = 0; s < steps; ++s) {
            const int32_t from = idx[n * steps + s];
            float* row = dst + (n * steps + s) * F;
            if (from < 0) std::fill_n(row, F, 0.0f);
            else std::memcpy(row, src + (n * S + from) * F, sizeof(float) * F);
        }
    return out;
}

Tensor OneDnnBackend::scatter_add_steps(const Tensor& y, const std::vector<int32_t>& idx, int64_t steps) {
    const int64_t N = y.dim(0), S = y.dim(1), F = y.numel() / std::max<int64_t>(1, N * S);
    check_step_indices("scatter_add_steps", idx, N * S, steps);
    Tensor out = Tensor::zeros({N, steps, F});
    const float* src = y.data<float>();
    float* dst = out.data<float>();
    for (int64_t n = 0; n < N; ++n)
        for (int64_t s = 0; s < S; ++s) {
            const int32_t to = idx[n * S + s];
            if (to < 0) continue;
            float* row = dst + (n * steps + to) * F;
            const float* from = src + (n * S + s) * F;
            for (int64_t f = 0; f < F; ++f) row[f] += from[f];
        }
    return out;
}

}  // namespace keras::backend
