// A stand-in for libkerascpp-cuda built for another kerascpp version: libkerascpp must refuse it
// (tests/test_cuda_library.cpp, run with KERASCPP_CUDA_LIBRARY naming this module) before calling
// anything in its table, which is therefore left empty.
#include "cuda_library.hpp"

const keras::backend::CudaLibrary* kerascpp_cuda_library() {
    static const keras::backend::CudaLibrary library{.kerascpp_version = "0.0.0-other", .device_count = nullptr,
                                                     .create_backend = nullptr, .memory_of = nullptr,
                                                     .memory_stats = nullptr, .release_cached = nullptr};
    return &library;
}
