// Per-sample lengths on the CPU (RIGHT-PACKED input, see Backend::rnn_forward): oneDNN's RNN
// primitives have no sequence lengths, so both the primitive and the step loop run all T steps and
// these helpers make the result exact for each sample's first len steps:
// - forward: the final states are read at step len - 1 (the steps after it never touch them);
// - backward: the output gradient is zeroed at t >= len and the final states' gradient enters at
//   step len - 1, so the steps past len receive no gradient and add nothing to any gradient
//   (their backward is a product with zeros);
// - go_backwards: each sample's first len steps are reversed and run forwards (padding stays put).
#include <algorithm>
#include <cstring>

#include "keras/errors.hpp"
#include "onednn_backend.hpp"

namespace keras::backend {

Tensor reverse_valid_steps(const Tensor& x, const std::vector<int32_t>& lengths) {
    const int64_t N = x.dim(0), T = x.dim(1), C = x.dim(2);
    Tensor out(x.shape(), DType::float32);
    const float* src = x.data<float>();
    float* dst = out.data<float>();
    for (int64_t n = 0; n < N; ++n) {
        const int64_t len = lengths.empty() ? T : lengths[n];
        for (int64_t t = 0; t < T; ++t) {
            const int64_t from = t < len ? len - 1 - t : t;
            std::memcpy(dst + (n * T + t) * C, src + (n * T + from) * C, sizeof(float) * C);
        }
    }
    return out;
}

Tensor states_at_lengths(const float* per_step, int64_t step_stride, int64_t row_stride, const Tensor& initial,
                         const std::vector<int32_t>& lengths, int64_t H) {
    const int64_t N = static_cast<int64_t>(lengths.size());
    Tensor out = Tensor::zeros({N, H});
    float* dst = out.data<float>();
    for (int64_t n = 0; n < N; ++n) {
        const int64_t len = lengths[n];
        if (len > 0) std::memcpy(dst + n * H, per_step + (len - 1) * step_stride + n * row_stride, sizeof(float) * H);
        else if (initial.defined()) std::memcpy(dst + n * H, initial.data<float>() + n * H, sizeof(float) * H);
    }
    return out;
}

Tensor sequences_gradient_at_lengths(const Tensor& d_sequences, const Tensor& dh, const std::vector<int32_t>& lengths,
                                     int64_t T, int64_t H) {
    const int64_t N = static_cast<int64_t>(lengths.size());
    Tensor out = Tensor::zeros({N, T, H});
    float* dst = out.data<float>();
    for (int64_t n = 0; n < N; ++n) {
        const int64_t len = lengths[n];
        if (d_sequences.defined())
            std::memcpy(dst + n * T * H, d_sequences.data<float>() + n * T * H, sizeof(float) * len * H);
        if (dh.defined() && len > 0)
            for (int64_t j = 0; j < H; ++j) dst[(n * T + len - 1) * H + j] += dh.data<float>()[n * H + j];
    }
    return out;
}

void add_rows_of_empty_samples(Tensor& d_initial, const Tensor& d_final, const std::vector<int32_t>& lengths) {
    if (!d_final.defined() || !d_initial.defined()) return;
    const int64_t H = d_final.dim(1);
    for (size_t n = 0; n < lengths.size(); ++n)
        if (lengths[n] == 0)
            for (int64_t j = 0; j < H; ++j)
                d_initial.data<float>()[n * H + j] += d_final.data<float>()[n * H + j];
}

}  // namespace keras::backend
