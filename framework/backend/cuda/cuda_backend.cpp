#include "cuda_backend.hpp"

#include <fmt/format.h>

#include "cuda_check.hpp"
#include "keras/errors.hpp"

namespace keras::backend {

int cuda_device_count(std::string* reason) {
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
        if (reason) *reason = fmt::format("cudaGetDeviceCount failed: {}", cuda_error_text(status));
        cudaGetLastError();   // clear the sticky error so later probes report afresh
        return 0;
    }
    if (count == 0 && reason) *reason = "cudaGetDeviceCount reports 0 devices";
    return count;
}

CudaBackend::CudaBackend(int index) : index_(index) {
    make_current();
    // Non-blocking: our stream must not wait for work other libraries queue on the legacy stream.
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    CUBLAS_CHECK(cublasCreate(&cublas_));
    CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
    CUDNN_CHECK(cudnnCreate(&cudnn_));
    CUDNN_CHECK(cudnnSetStream(cudnn_, stream_));
    const std::string device_name = to_string(device());
    CachingAllocator::RawMemory raw{
        .allocate = [this](size_t bytes) -> void* {
            make_current();
            void* ptr = nullptr;
            const cudaError_t status = cudaMalloc(&ptr, bytes);
            if (status == cudaErrorMemoryAllocation) {
                cudaGetLastError();   // not sticky: the allocator may free its cache and retry
                return nullptr;
            }
            CUDA_CHECK(status);
            return ptr;
        },
        // cudaFree synchronises the device first, so no queued kernel still uses the block.
        .release = [](void* ptr) { cudaFree(ptr); },
        .device_name = device_name,
    };
    allocator_ = std::make_unique<CachingAllocator>(std::move(raw));
}

// Only runs at exit (the registry owns the backends): errors are ignored because the CUDA runtime
// may already be unloading.
CudaBackend::~CudaBackend() {
    rnn_cache_.reset();   // its buffers go back to the allocator first
    allocator_.reset();
    if (cudnn_) cudnnDestroy(cudnn_);
    if (cublas_) cublasDestroy(cublas_);
    if (stream_) cudaStreamDestroy(stream_);
}

std::string CudaBackend::name() const {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, index_) != cudaSuccess) return fmt::format("cuDNN {}", to_string(device()));
    return fmt::format("cuDNN {} ({})", to_string(device()), prop.name);
}

void CudaBackend::make_current() const { CUDA_CHECK(cudaSetDevice(index_)); }

void CudaBackend::wait_for_stream() {
    ++host_synchronizations_;
    CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaBackend::check_on_device(const Tensor& t, const char* what) const {
    if (!t.defined()) value_error("{} backend: {} is undefined", to_string(device()), what);
    if (t.device() != device())
        value_error("{} backend: {} is on {}, expected {} (move it with .to())", to_string(device()), what,
                    to_string(t.device()), to_string(device()));
    if (t.dtype() != DType::float32)
        value_error("{} backend: {} must be float32, got {}", to_string(device()), what, to_string(t.dtype()));
}

// ---------------------------------------------------------------- memory

void* CudaBackend::allocate(size_t bytes) { return allocator_->allocate(bytes); }

void CudaBackend::deallocate(void* ptr, size_t) noexcept { allocator_->deallocate(ptr); }

// From pageable host memory cudaMemcpyAsync returns once the bytes are staged, so the caller may
// reuse `src` at once, and the copy stays ordered with the kernels on our stream.
void CudaBackend::copy_from_host(void* dst, const void* src, size_t bytes) {
    make_current();
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
}

void CudaBackend::copy_to_host(void* dst, const void* src, size_t bytes) {
    make_current();
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
    wait_for_stream();
    finish_id_check();   // the stream is idle: report bad Embedding ids now rather than later
}

void CudaBackend::copy_on_device(void* dst, const void* src, size_t bytes) {
    make_current();
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_));
}

void CudaBackend::set_zero(void* ptr, size_t bytes) {
    make_current();
    CUDA_CHECK(cudaMemsetAsync(ptr, 0, bytes, stream_));
}

}  // namespace keras::backend
