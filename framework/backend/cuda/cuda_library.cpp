// libkerascpp-cuda.so's entry point: the table libkerascpp looks up after opening the library
// (framework/backend/cuda_library.hpp). Backends are created here and handed over to libkerascpp's
// registry (backend_registry.cpp), which keeps one per GPU for the life of the process.
#include "cuda_library.hpp"

#include "cuda_backend.hpp"
#include "keras/version.hpp"

namespace keras::backend {
namespace {

// Only this file's backends reach these: the static_cast is the inverse of create_backend's upcast.
CudaBackend& as_cuda(Backend* backend) { return *static_cast<CudaBackend*>(backend); }

Backend* create_backend(int index) { return new CudaBackend(index); }

DeviceMemory* memory_of(Backend* backend) { return &as_cuda(backend); }

cuda::MemoryStats memory_stats(Backend* backend) {
    CudaBackend& b = as_cuda(backend);
    const CachingAllocator::Stats a = b.allocator().stats();
    return {.driver_allocations = a.raw_allocations,
            .bytes_in_use = a.in_use_bytes,
            .peak_bytes_in_use = a.peak_in_use_bytes,
            .bytes_cached = a.cached_bytes,
            .host_synchronizations = b.host_synchronizations()};
}

void release_cached(Backend* backend) { as_cuda(backend).allocator().release_cached(); }

}  // namespace

#ifdef KERASCPP_HAVE_NCCL
// nccl_communicator.cpp
std::shared_ptr<distribute::Communicator> create_nccl_communicator(std::shared_ptr<distribute::Communicator> host,
                                                                   int device);
#endif

namespace {

}  // namespace
}  // namespace keras::backend

const keras::backend::CudaLibrary* kerascpp_cuda_library() {
    static const keras::backend::CudaLibrary library{
        .kerascpp_version = KERASCPP_VERSION_STRING,
        .device_count = &keras::backend::cuda_device_count,
        .create_backend = &keras::backend::create_backend,
        .memory_of = &keras::backend::memory_of,
        .memory_stats = &keras::backend::memory_stats,
        .release_cached = &keras::backend::release_cached,
#ifdef KERASCPP_HAVE_NCCL
        .create_nccl_communicator = &keras::backend::create_nccl_communicator,
#else
        .create_nccl_communicator = nullptr,
#endif
    };
    return &library;
}
