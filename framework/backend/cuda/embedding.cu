// Embedding gather and its scatter-add gradient.
#include "kernels.hpp"

namespace keras::backend::kernels {

namespace {

// One thread per output element (id, column). Out-of-range ids write zeros and report their
// position through atomicMin, so the host can name the first bad one without a second pass.
template <typename Id>
__global__ void gather_kernel(const Id* ids, const float* table, float* out, int64_t count, int64_t vocab,
                              int64_t width, long long* first_bad) {
    const int64_t total = count * width;
    for (int64_t o = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; o < total; o += int64_t{gridDim.x} * blockDim.x) {
        const int64_t i = o / width, j = o % width;
        const int64_t v = static_cast<int64_t>(ids[i]);
        if (v < 0 || v >= vocab) {
            out[o] = 0.0f;
            if (j == 0) atomicMin(first_bad, static_cast<long long>(i));
        } else {
            out[o] = table[v * width + j];
        }
    }
}

// One thread per gradient element; rows shared by several ids meet in atomicAdd.
template <typename Id>
__global__ void scatter_add_kernel(const Id* ids, const float* dy, float* dtable, int64_t count, int64_t vocab,
                                   int64_t width) {
    const int64_t total = count * width;
    for (int64_t o = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; o < total; o += int64_t{gridDim.x} * blockDim.x) {
        const int64_t i = o / width, j = o % width;
        const int64_t v = static_cast<int64_t>(ids[i]);
        if (v >= 0 && v < vocab) atomicAdd(&dtable[v * width + j], dy[o]);
    }
}

template <typename Id>
cudaError_t launch_gather(const Id* ids, const float* table, float* out, int64_t count, int64_t vocab, int64_t width,
                          long long* first_bad, cudaStream_t stream) {
    if (count * width > 0)
        gather_kernel<<<blocks_for(count * width), kThreads, 0, stream>>>(ids, table, out, count, vocab, width, first_bad);
    return cudaGetLastError();
}

template <typename Id>
cudaError_t launch_scatter_add(const Id* ids, const float* dy, float* dtable, int64_t count, int64_t vocab,
                               int64_t width, cudaStream_t stream) {
    if (count * width > 0)
        scatter_add_kernel<<<blocks_for(count * width), kThreads, 0, stream>>>(ids, dy, dtable, count, vocab, width);
    return cudaGetLastError();
}

}  // namespace

cudaError_t embedding_gather(const int32_t* ids, const float* table, float* out, int64_t count, int64_t vocab,
                             int64_t width, long long* first_bad, cudaStream_t stream) {
    return launch_gather(ids, table, out, count, vocab, width, first_bad, stream);
}

cudaError_t embedding_gather(const int64_t* ids, const float* table, float* out, int64_t count, int64_t vocab,
                             int64_t width, long long* first_bad, cudaStream_t stream) {
    return launch_gather(ids, table, out, count, vocab, width, first_bad, stream);
}

cudaError_t embedding_scatter_add(const int32_t* ids, const float* dy, float* dtable, int64_t count, int64_t vocab,
                                  int64_t width, cudaStream_t stream) {
    return launch_scatter_add(ids, dy, dtable, count, vocab, width, stream);
}

cudaError_t embedding_scatter_add(const int64_t* ids, const float* dy, float* dtable, int64_t count, int64_t vocab,
                                  int64_t width, cudaStream_t stream) {
    return launch_scatter_add(ids, dy, dtable, count, vocab, width, stream);
}

}  // namespace keras::backend::kernels
