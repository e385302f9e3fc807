// Fused optimizer updates: each reads a variable's gradient and slots once and writes them once, in
// one kernel. Same formulas, in the same float operations, as onednn/optimizer_updates.cpp.
#include "kernels.hpp"

namespace keras::backend::kernels {

namespace {

#define GRID_STRIDE(i, n) \
    for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < (n); i += int64_t{gridDim.x} * blockDim.x)

__global__ void sgd_kernel(float* p, const float* g, float* m, float lr, float mu, bool nesterov, int64_t n) {
    GRID_STRIDE(i, n) {
        if (!m) {
            p[i] -= lr * g[i];
        } else {
            m[i] = mu * m[i] - lr * g[i];
            p[i] += nesterov ? mu * m[i] - lr * g[i] : m[i];
        }
    }
}

__global__ void adam_kernel(float* p, const float* g, float* m, float* v, float* vhat, float alpha, float beta_1,
                            float beta_2, float epsilon, int64_t n) {
    const float one_minus_b1 = 1.0f - beta_1, one_minus_b2 = 1.0f - beta_2;
    GRID_STRIDE(i, n) {
        const float gi = g[i];
        const float mi = m[i] + (gi - m[i]) * one_minus_b1;
        const float vi = v[i] + (gi * gi - v[i]) * one_minus_b2;
        m[i] = mi;
        v[i] = vi;
        float denominator_v = vi;
        if (vhat) {   // AMSGrad: the running maximum of v
            denominator_v = fmaxf(vhat[i], vi);
            vhat[i] = denominator_v;
        }
        p[i] -= mi * alpha / (sqrtf(denominator_v) + epsilon);
    }
}

__global__ void rmsprop_kernel(float* p, const float* g, float* v, float* mom, float* mg, float lr, float rho,
                               float mu, float epsilon, int64_t n) {
    const float one_minus_rho = 1.0f - rho;
    GRID_STRIDE(i, n) {
        const float gi = g[i];
        v[i] = rho * v[i] + one_minus_rho * gi * gi;
        float increment;
        if (mg) {   // centered: divide by the variance estimate v - mg^2
            mg[i] = rho * mg[i] + one_minus_rho * gi;
            increment = lr * gi / sqrtf(v[i] - mg[i] * mg[i] + epsilon);
        } else {
            increment = lr * gi / sqrtf(v[i] + epsilon);
        }
        if (mom) {
            mom[i] = mu * mom[i] + increment;
            p[i] -= mom[i];
        } else {
            p[i] -= increment;
        }
    }
}

__global__ void adagrad_kernel(float* p, const float* g, float* acc, float lr, float epsilon, int64_t n) {
    GRID_STRIDE(i, n) {
        acc[i] += g[i] * g[i];
        p[i] -= lr * g[i] / sqrtf(acc[i] + epsilon);
    }
}

#undef GRID_STRIDE

}  // namespace

cudaError_t sgd_update(float* param, const float* grad, float* momentum, float lr, float momentum_factor,
                       bool nesterov, int64_t n, cudaStream_t stream) {
    if (n > 0) sgd_kernel<<<blocks_for(n), kThreads, 0, stream>>>(param, grad, momentum, lr, momentum_factor, nesterov, n);
    return cudaGetLastError();
}

cudaError_t adam_update(float* param, const float* grad, float* m, float* v, float* vhat, float alpha, float beta_1,
                        float beta_2, float epsilon, int64_t n, cudaStream_t stream) {
    if (n > 0) adam_kernel<<<blocks_for(n), kThreads, 0, stream>>>(param, grad, m, v, vhat, alpha, beta_1, beta_2, epsilon, n);
    return cudaGetLastError();
}

cudaError_t rmsprop_update(float* param, const float* grad, float* velocity, float* momentum, float* average_grad,
                           float lr, float rho, float momentum_factor, float epsilon, int64_t n, cudaStream_t stream) {
    if (n > 0)
        rmsprop_kernel<<<blocks_for(n), kThreads, 0, stream>>>(param, grad, velocity, momentum, average_grad, lr, rho,
                                                               momentum_factor, epsilon, n);
    return cudaGetLastError();
}

cudaError_t adagrad_update(float* param, const float* grad, float* accumulator, float lr, float epsilon, int64_t n,
                           cudaStream_t stream) {
    if (n > 0) adagrad_kernel<<<blocks_for(n), kThreads, 0, stream>>>(param, grad, accumulator, lr, epsilon, n);
    return cudaGetLastError();
}

}  // namespace keras::backend::kernels
