// Owns one backend object per device, created on first use, and answers whether CUDA can be used.
// The CUDA backends come from the CUDA library's table (cuda_library.hpp), loaded on the first
// question about a CUDA device: a CPU-only program never loads it.
#include <memory>
#include <mutex>
#include <vector>

#include "keras/backend.hpp"
#include "keras/device.hpp"
#include "keras/errors.hpp"
#include "onednn/onednn_backend.hpp"

#ifdef KERASCPP_HAVE_CUDA
#include "cuda_library.hpp"
#endif

namespace keras {

namespace cuda {

bool is_built() {
#ifdef KERASCPP_HAVE_CUDA
    return true;
#else
    return false;
#endif
}

#ifdef KERASCPP_HAVE_CUDA
namespace {
// The CUDA library and the runtime's answer, asked once: the number of GPUs does not change while a
// process runs. library is null when the CUDA library could not be loaded (reason says why).
struct Probe {
    const backend::CudaLibrary* library = nullptr;
    int count = 0;
    std::string reason;
};
const Probe& probe() {
    // Never destroyed: tensors released during exit still ask how many GPUs there are.
    static const Probe* const p = [] {
        auto* r = new Probe;
        r->library = backend::load_cuda_library(&r->reason);
        if (r->library) r->count = r->library->device_count(&r->reason);
        return r;
    }();
    return *p;
}
}  // namespace
#endif

int device_count() {
#ifdef KERASCPP_HAVE_CUDA
    return probe().count;
#else
    return 0;
#endif
}

bool is_available() { return device_count() > 0; }

std::string unavailable_reason(int index) {
    const std::string device = to_string(Device::cuda(index));
#ifdef KERASCPP_HAVE_CUDA
    const Probe& p = probe();
    if (p.library == nullptr) return fmt::format("device {} requested, but {}", device, p.reason);
    if (p.count == 0)
        return fmt::format("device {} requested, but this machine has no usable CUDA GPU ({})", device, p.reason);
    if (index < 0 || index >= p.count)
        return fmt::format("device {} requested, but this machine has {} CUDA GPU(s): cuda:0 to cuda:{}", device,
                           p.count, p.count - 1);
    return "";
#else
    return fmt::format("device {} requested, but this build of kerascpp has no CUDA backend "
                       "(it was configured with -Dcuda=disabled or without nvcc and cuDNN)", device);
#endif
}

}  // namespace cuda

namespace backend {

namespace {
#ifdef KERASCPP_HAVE_CUDA
// Created on first use and never destroyed (nor is the table): tensors in static objects may
// release device memory during exit, after function-local statics would have been destroyed.
// Only called for a usable device, so the CUDA library is loaded. Cached blocks go back to the
// driver at exit (the atexit handler runs before the CUDA runtime's own, which was registered
// earlier, when the probe loaded the library and asked for the device count).
Backend& cuda_backend(int index) {
    struct Table {
        std::mutex mutex;
        std::vector<Backend*> backends;
    };
    static Table* const table = [] {
        auto* t = new Table;
        t->backends.resize(static_cast<size_t>(cuda::device_count()), nullptr);
        std::atexit([] {
            for (Backend* b : table->backends)
                if (b) cuda::probe().library->release_cached(b);
        });
        return t;
    }();
    std::lock_guard lock(table->mutex);
    Backend*& slot = table->backends.at(static_cast<size_t>(index));
    if (!slot) slot = cuda::probe().library->create_backend(index);
    return *slot;
}
#endif

void check_cuda_device(Device device) {
    const std::string why = cuda::unavailable_reason(device.index());
    if (!why.empty()) runtime_error("{}", why);
}

#ifdef KERASCPP_HAVE_CUDA
// The backend of a usable GPU, else the error saying why the device cannot be used. Every device
// tensor's allocation and release comes here: a usable device skips building the error text.
Backend& usable_cuda_backend(Device device) {
    if (device.index() < 0 || device.index() >= cuda::device_count()) check_cuda_device(device);
    return cuda_backend(device.index());
}
#else
// A build without CUDA: the error naming the build (check_cuda_device always throws here).
[[noreturn]] void refuse_cuda(Device device) {
    check_cuda_device(device);
    runtime_error("unreachable: {} passed the CUDA check in a build without CUDA", to_string(device));
}
#endif
}  // namespace

Backend& get(Device device) {
    if (device.is_cpu()) {
        static OneDnnBackend cpu;
        OneDnnBackend::prepare_calling_thread();   // a thread's first call: its float mode as the others'
        return cpu;
    }
#ifdef KERASCPP_HAVE_CUDA
    return usable_cuda_backend(device);
#else
    refuse_cuda(device);
#endif
}

bool has_device(Device device) { return device.is_cpu() || cuda::unavailable_reason(device.index()).empty(); }

DeviceMemory& device_memory(Device device) {
    if (device.is_cpu()) runtime_error("device_memory(cpu): CPU tensors use host memory directly");
#ifdef KERASCPP_HAVE_CUDA
    Backend& backend = usable_cuda_backend(device);   // first: throws when the library is missing
    return *cuda::probe().library->memory_of(&backend);
#else
    refuse_cuda(device);
#endif
}

}  // namespace backend

cuda::MemoryStats cuda::memory_stats(int index) {
    backend::check_cuda_device(Device::cuda(index));
#ifdef KERASCPP_HAVE_CUDA
    backend::Backend& backend = backend::cuda_backend(index);
    return probe().library->memory_stats(&backend);
#else
    return {};
#endif
}

}  // namespace keras
