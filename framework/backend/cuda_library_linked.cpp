// load_cuda_library() for the internal archive (the project's tests, tools and benchmark), which
// holds the CUDA backend's objects itself: no library to open. libkerascpp uses
// cuda_library_loader.cpp instead.
#include "cuda_library.hpp"

namespace keras::backend {

const CudaLibrary* load_cuda_library(std::string* /*why*/) { return kerascpp_cuda_library(); }

}  // namespace keras::backend
