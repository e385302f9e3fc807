// Host stand-ins for the CUDA runtime, cuBLAS and cuDNN entry points the CUDA backend calls (see
// run.sh): device memory is host memory, the stream runs everything at once, SGEMM is a plain loop
// from cuBLAS's column-major definition. Kernels compiled by nvcc must never launch here.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {
void* dummy[4];   // what the handles, the stream and the events point at

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "emulation: %s\n", what);
    std::abort();
}
}  // namespace

// nvcc's registration of its fat binaries (run at start-up) and its launch path.
extern "C" {
void** __cudaRegisterFatBinary(void*) { return dummy; }
void __cudaRegisterFatBinaryEnd(void**) {}
void __cudaUnregisterFatBinary(void**) {}
void __cudaRegisterFunction(void**, const char*, char*, const char*, int, void*, void*, void*, void*, int*) {}
void __cudaRegisterVar(void**, char*, char*, const char*, int, size_t, int, int) {}
unsigned __cudaPushCallConfiguration(dim3, dim3, size_t, void*) { fail("a kernel compiled by nvcc was launched"); }
cudaError_t __cudaPopCallConfiguration(dim3*, dim3*, size_t*, void*) { fail("a kernel compiled by nvcc was launched"); }
}

cudaError_t cudaGetDeviceCount(int* count) {
    *count = 1;
    return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int) {
    std::memset(prop, 0, sizeof *prop);
    std::strcpy(prop->name, "host emulation");
    return cudaSuccess;
}
const char* cudaGetErrorName(cudaError_t) { return "emulationError"; }
const char* cudaGetErrorString(cudaError_t) { return "emulation error"; }
cudaError_t cudaGetLastError() { return cudaSuccess; }
cudaError_t cudaSetDevice(int) { return cudaSuccess; }

// Fresh memory is filled with 0xCD bytes, so a kernel that reads what nobody wrote shows it.
cudaError_t cudaMalloc(void** ptr, size_t bytes) {
    const size_t rounded = (bytes + 255) / 256 * 256;
    *ptr = std::aligned_alloc(256, rounded);
    std::memset(*ptr, 0xCD, rounded);
    return cudaSuccess;
}
cudaError_t cudaFree(void* ptr) {
    std::free(ptr);
    return cudaSuccess;
}
cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned) {
    *ptr = std::malloc(bytes);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind, cudaStream_t) {
    std::memcpy(dst, src, bytes);
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t) {
    std::memset(dst, value, bytes);
    return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) {
    *stream = reinterpret_cast<cudaStream_t>(dummy);
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned) {
    *event = reinterpret_cast<cudaEvent_t>(dummy);
    return cudaSuccess;
}
cudaError_t cudaEventQuery(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) { return cudaSuccess; }
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }

cublasStatus_t cublasCreate_v2(cublasHandle_t* handle) {
    *handle = reinterpret_cast<cublasHandle_t>(dummy);
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy_v2(cublasHandle_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetStream_v2(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t) { return CUBLAS_STATUS_SUCCESS; }
const char* cublasGetStatusName(cublasStatus_t) { return "EMULATION"; }
const char* cublasGetStatusString(cublasStatus_t) { return "emulation"; }

namespace {
// C (m, n) = alpha op(A) op(B) + beta C, every matrix column-major with its leading dimension,
// which must be at least the matrix's row count (cuBLAS refuses less).
void gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const float* A, int lda,
          const float* B, int ldb, float beta, float* C, int ldc) {
    if (lda < (ta == CUBLAS_OP_N ? m : k) || ldb < (tb == CUBLAS_OP_N ? k : n) || ldc < m)
        fail("SGEMM with a leading dimension below the matrix's rows");
    for (int j = 0; j < n; ++j)
        for (int i = 0; i < m; ++i) {
            double acc = 0;
            for (int l = 0; l < k; ++l) {
                const float a = ta == CUBLAS_OP_N ? A[i + l * lda] : A[l + i * lda];
                const float b = tb == CUBLAS_OP_N ? B[l + j * ldb] : B[j + l * ldb];
                acc += double(a) * b;
            }
            C[i + j * ldc] = float(alpha * acc + (beta == 0 ? 0.0 : beta * C[i + j * ldc]));
        }
}
}  // namespace

cublasStatus_t cublasSgemm_v2(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                              const float* alpha, const float* A, int lda, const float* B, int ldb, const float* beta,
                              float* C, int ldc) {
    gemm(ta, tb, m, n, k, *alpha, A, lda, B, ldb, *beta, C, ldc);
    return CUBLAS_STATUS_SUCCESS;
}

// The generic matmul never asks for an empty product (it returns before), so one is an error here.
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float* alpha, const float* A, int lda, long long stride_a,
                                         const float* B, int ldb, long long stride_b, const float* beta, float* C,
                                         int ldc, long long stride_c, int count) {
    if (m <= 0 || n <= 0 || k <= 0 || count <= 0) fail("an empty strided-batched SGEMM");
    for (int b = 0; b < count; ++b)
        gemm(ta, tb, m, n, k, *alpha, A + b * stride_a, lda, B + b * stride_b, ldb, *beta, C + b * stride_c, ldc);
    return CUBLAS_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreate(cudnnHandle_t* handle) {
    *handle = reinterpret_cast<cudnnHandle_t>(dummy);
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroy(cudnnHandle_t) { return CUDNN_STATUS_SUCCESS; }
cudnnStatus_t cudnnSetStream(cudnnHandle_t, cudaStream_t) { return CUDNN_STATUS_SUCCESS; }
const char* cudnnGetErrorString(cudnnStatus_t) { return "emulation"; }
