// The CUDA backend lives in a library of its own, libkerascpp-cuda.so, which libkerascpp opens with
// dlopen on the first use of a CUDA device: a CPU-only program then never loads cudart, cuBLAS or
// cuDNN (cuBLASLt alone is 541 MB). The one thing libkerascpp looks up in it is the C function
// kerascpp_cuda_library(), which returns the table below. The CUDA library links libkerascpp and
// uses its tensors, registry and CPU backend (the KERAS_BACKEND_API symbols of backend.hpp), so each
// of those exists once per process. See docs/gpu.md.
//
// The project's tests and tools link the internal archive, which holds the CUDA objects too: there
// load_cuda_library() returns the linked-in table (cuda_library_linked.cpp) instead of opening the
// shared library (cuda_library_loader.cpp, libkerascpp only).
#pragma once

#include <memory>
#include <string>

#include "keras/backend.hpp"
#include "keras/device.hpp"

namespace keras::distribute {
class Communicator;
}

namespace keras::backend {

// What the CUDA library offers libkerascpp. Both are built from one source tree: the backend
// interface between them is internal, so the loader accepts only a library of its own version.
struct CudaLibrary {
    // KERASCPP_VERSION_STRING of the build that made the library. Stays the first field in every
    // version, so the loader can read it from any library and refuse a mismatch.
    const char* kerascpp_version;
    // How many GPUs the CUDA runtime reports; 0 with *reason set (the runtime's words) when none.
    int (*device_count)(std::string* reason);
    // A new backend for GPU `index` (in [0, device_count())); the registry keeps it for good.
    Backend* (*create_backend)(int index);
    // The backend's device memory, its allocator's statistics, and the release of its cached blocks
    // (at exit). `backend` is one that create_backend returned.
    DeviceMemory* (*memory_of)(Backend* backend);
    cuda::MemoryStats (*memory_stats)(Backend* backend);
    void (*release_cached)(Backend* backend);
    // A NCCL communicator on GPU `device`, bootstrapped over `host` (MPI; every worker calls it
    // together), or nullptr in a build without NCCL (-Dnccl). backend/cuda/nccl_communicator.cpp.
    std::shared_ptr<distribute::Communicator> (*create_nccl_communicator)(std::shared_ptr<distribute::Communicator> host,
                                                                          int device);
};

// The CUDA library's table, or nullptr with *why set: the library was not found (where it looked and
// dlopen's message), is not a kerascpp CUDA library, or is of another kerascpp version. Loaded once.
const CudaLibrary* load_cuda_library(std::string* why);

}  // namespace keras::backend

// The entry point of libkerascpp-cuda.so (framework/backend/cuda/cuda_library.cpp).
extern "C" __attribute__((visibility("default"))) const keras::backend::CudaLibrary* kerascpp_cuda_library();
