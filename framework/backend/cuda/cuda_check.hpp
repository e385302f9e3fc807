// Error checks for CUDA runtime, cuBLAS and cuDNN calls: a failed call throws keras::RuntimeError
// naming the call, the library's error string and where it was made, e.g.
//   CUDA error in cudaMalloc(&ptr, bytes): out of memory (cudaErrorMemoryAllocation) at device.cpp:40
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

namespace keras::backend {

void check_cuda(cudaError_t status, const char* call, const char* file, int line);
void check_cublas(cublasStatus_t status, const char* call, const char* file, int line);
void check_cudnn(cudnnStatus_t status, const char* call, const char* file, int line);
// "out of memory (cudaErrorMemoryAllocation)"
const char* cuda_error_text(cudaError_t status);

}  // namespace keras::backend

#define CUDA_CHECK(call) ::keras::backend::check_cuda((call), #call, __FILE__, __LINE__)
#define CUBLAS_CHECK(call) ::keras::backend::check_cublas((call), #call, __FILE__, __LINE__)
#define CUDNN_CHECK(call) ::keras::backend::check_cudnn((call), #call, __FILE__, __LINE__)
