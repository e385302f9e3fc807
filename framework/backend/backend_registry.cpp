// Owns one backend object per device, created on first use.
#include "keras/backend.hpp"
#include "keras/errors.hpp"
#include "onednn/onednn_backend.hpp"

namespace keras::backend {

Backend& get(Device device) {
    if (device == Device::CPU) {
        static OneDnnBackend cpu;
        return cpu;
    }
    runtime_error("No backend for device {}: this build of kerascpp has no CUDA backend", to_string(device));
}

bool has_device(Device device) { return device == Device::CPU; }

}  // namespace keras::backend
