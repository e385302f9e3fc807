// gather_steps / scatter_add_steps on the GPU (kernels in time_steps.cu): the index tables are
// computed on the host by the caller, checked here, and uploaded.
#include <algorithm>

#include "cuda_backend.hpp"
#include "cuda_check.hpp"
#include "kernels.hpp"
#include "keras/errors.hpp"
#include "step_indices.hpp"

namespace keras::backend {

Tensor CudaBackend::gather_steps(const Tensor& x, const std::vector<int32_t>& idx, int64_t steps) {
    check_on_device(x, "gather_steps input");
    const int64_t N = x.dim(0), S = x.dim(1), F = x.numel() / std::max<int64_t>(1, N * S);
    check_step_indices("gather_steps", idx, N * steps, S);
    make_current();
    const Tensor device_idx = Tensor(idx, {static_cast<int64_t>(idx.size())}).to(device());
    Tensor out({N, steps, F}, DType::float32, device());
    CUDA_CHECK(kernels::gather_steps(static_cast<const float*>(x.raw()), static_cast<const int32_t*>(device_idx.raw()),
                                     static_cast<float*>(out.raw()), N, S, steps, F, stream_));
    return out;
}

Tensor CudaBackend::scatter_add_steps(const Tensor& y, const std::vector<int32_t>& idx, int64_t steps) {
    check_on_device(y, "scatter_add_steps input");
    const int64_t N = y.dim(0), S = y.dim(1), F = y.numel() / std::max<int64_t>(1, N * S);
    check_step_indices("scatter_add_steps", idx, N * S, steps);
    make_current();
    const Tensor device_idx = Tensor(idx, {static_cast<int64_t>(idx.size())}).to(device());
    Tensor out = Tensor::zeros({N, steps, F}, DType::float32, device());
    CUDA_CHECK(kernels::scatter_add_steps(static_cast<const float*>(y.raw()),
                                          static_cast<const int32_t*>(device_idx.raw()), static_cast<float*>(out.raw()),
                                          N, S, steps, F, stream_));
    return out;
}

}  // namespace keras::backend
