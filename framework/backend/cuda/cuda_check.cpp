#include "cuda_check.hpp"

#include <filesystem>
#include <string>

#include "keras/errors.hpp"

namespace keras::backend {

namespace {
std::string where(const char* file, int line) {
    return std::filesystem::path(file).filename().string() + ":" + std::to_string(line);
}
}  // namespace

const char* cuda_error_text(cudaError_t status) {
    thread_local std::string text;
    text = std::string(cudaGetErrorString(status)) + " (" + cudaGetErrorName(status) + ")";
    return text.c_str();
}

void check_cuda(cudaError_t status, const char* call, const char* file, int line) {
    if (status == cudaSuccess) return;
    runtime_error("CUDA error in {}: {} at {}", call, cuda_error_text(status), where(file, line));
}

void check_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
    if (status == CUBLAS_STATUS_SUCCESS) return;
    runtime_error("cuBLAS error in {}: {} ({}) at {}", call, cublasGetStatusString(status),
                  cublasGetStatusName(status), where(file, line));
}

void check_cudnn(cudnnStatus_t status, const char* call, const char* file, int line) {
    if (status == CUDNN_STATUS_SUCCESS) return;
    runtime_error("cuDNN error in {}: {} at {}", call, cudnnGetErrorString(status), where(file, line));
}

}  // namespace keras::backend
