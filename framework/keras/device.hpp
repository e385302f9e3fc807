// Device: where a tensor's storage lives, "cpu" or "cuda:N" (like torch::Device).
// The default device for new models comes from set_default_device(), else from the environment
// variable KERASCPP_DEVICE (cpu | cuda | cuda:N, read once), else the CPU.
#pragma once

#include "keras/export.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace keras {

// Where tensors live and ops run: the CPU or CUDA GPU number N.
class KERAS_API Device {
public:
    // The kind of device.
    enum class Type { cpu, cuda };

    constexpr Device() = default;
    static constexpr Device cpu() { return Device(); }
    static constexpr Device cuda(int index = 0) { return Device(Type::cuda, index); }
    // "cpu", "cuda" (= "cuda:0") or "cuda:N"; anything else is a ValueError quoting the text.
    static Device parse(std::string_view text);

    constexpr Type type() const { return type_; }
    constexpr int index() const { return index_; }
    constexpr bool is_cpu() const { return type_ == Type::cpu; }
    constexpr bool is_cuda() const { return type_ == Type::cuda; }
    friend constexpr bool operator==(const Device&, const Device&) = default;

private:
    constexpr Device(Type type, int index) : type_(type), index_(index) {}
    Type type_ = Type::cpu;
    int index_ = 0;   // always 0 for the CPU
};

// "cpu" or "cuda:0".
KERAS_API std::string to_string(Device device);

// The device new models and their weights use. Setting a CUDA device checks that it can be used
// (RuntimeError saying whether the build lacks CUDA or the machine lacks a GPU).
KERAS_API void set_default_device(Device device);
// The device set_default_device() last set (the CPU, or $KERASCPP_DEVICE, until then).
KERAS_API Device default_device();

namespace cuda {
KERAS_API bool is_built();          // this kerascpp was compiled with the CUDA backend
KERAS_API int device_count();       // usable GPUs: 0 when not built or none is present
KERAS_API bool is_available();      // is_built() and device_count() > 0
// Why CUDA device `index` cannot be used ("" when it can): names the missing build or missing GPU.
KERAS_API std::string unavailable_reason(int index = 0);

// What the caching allocator and the stream of one GPU have done so far (for benchmarks and tests).
struct KERAS_API MemoryStats {
    size_t driver_allocations = 0;   // cudaMalloc calls: stop growing once a training loop is warm
    size_t bytes_in_use = 0;         // held by live tensors (rounded up to the allocator's size classes)
    size_t peak_bytes_in_use = 0;
    size_t bytes_cached = 0;         // freed by tensors, kept for reuse
    size_t host_synchronizations = 0;  // times the host waited for the GPU (copies to the host)
};
// RuntimeError (saying why) when CUDA device `index` cannot be used.
KERAS_API MemoryStats memory_stats(int index = 0);
}  // namespace cuda

}  // namespace keras
