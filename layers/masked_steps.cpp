#include "keras/layers/masked_steps.hpp"

namespace keras::layers {

MaskedSteps masked_steps(const Tensor& mask, bool go_backwards, bool zero_output_for_mask) {
    MaskedSteps m;
    m.batch = mask.dim(0);
    m.steps = mask.dim(1);
    const int64_t N = m.batch, T = m.steps;
    const Tensor host = mask.to(Device::cpu()).astype(DType::float32);
    const float* real = host.data<float>();
    m.lengths.assign(static_cast<size_t>(N), 0);
    m.pack_idx.assign(static_cast<size_t>(N * T), -1);
    m.out_idx.assign(static_cast<size_t>(N * T), -1);
    for (int64_t n = 0; n < N; ++n) {
        int32_t packed = 0;   // real steps seen so far, in processing order
        for (int64_t s = 0; s < T; ++s) {
            const int64_t t = go_backwards ? T - 1 - s : s;   // the input step processed at step s
            const bool is_real = real[n * T + t] != 0.0f;
            if (is_real) m.pack_idx[n * T + packed++] = static_cast<int32_t>(t);
            else m.all_real = false;
            // The output of the last real step so far (carried over), or zeros.
            if (is_real || !zero_output_for_mask) m.out_idx[n * T + s] = packed - 1;
        }
        m.lengths[n] = packed;
    }
    return m;
}

std::vector<int32_t> MaskedSteps::last_out_idx() const {
    std::vector<int32_t> last(static_cast<size_t>(batch));
    for (int64_t n = 0; n < batch; ++n) last[n] = out_idx[n * steps + steps - 1];
    return last;
}

}  // namespace keras::layers
