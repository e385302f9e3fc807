#include "keras/device.hpp"

#include <charconv>
#include <cstdlib>
#include <mutex>
#include <optional>

#include "keras/errors.hpp"

namespace keras {

Device Device::parse(std::string_view text) {
    if (text == "cpu") return cpu();
    if (text == "cuda") return cuda(0);
    constexpr std::string_view prefix = "cuda:";
    if (text.substr(0, prefix.size()) == prefix && text.size() > prefix.size()) {
        const std::string_view digits = text.substr(prefix.size());
        int index = -1;
        const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
        if (ec == std::errc() && end == digits.data() + digits.size() && index >= 0 && digits[0] != '+')
            return cuda(index);
    }
    value_error("Invalid device string: '{}'. Expected 'cpu', 'cuda' or 'cuda:N' with N >= 0", text);
}

std::string to_string(Device device) {
    return device.is_cpu() ? "cpu" : "cuda:" + std::to_string(device.index());
}

namespace {

// KERASCPP_DEVICE, read on first use; a bad value is an error every time it is consulted
// (a function-local static whose initialiser throws is retried), so it cannot be silently ignored.
Device device_from_environment() {
    const char* value = std::getenv("KERASCPP_DEVICE");
    if (!value || !*value) return Device::cpu();
    Device device;
    try {
        device = Device::parse(value);
    } catch (const ValueError& e) {
        value_error("KERASCPP_DEVICE='{}' is not a device: expected cpu, cuda or cuda:N", value);
    }
    const std::string why = cuda::unavailable_reason(device.index());
    if (device.is_cuda() && !why.empty()) runtime_error("KERASCPP_DEVICE={}: {}", value, why);
    return device;
}

std::mutex default_mutex;
std::optional<Device> chosen_default;

}  // namespace

void set_default_device(Device device) {
    if (device.is_cuda()) {
        const std::string why = cuda::unavailable_reason(device.index());
        if (!why.empty()) runtime_error("set_default_device({}): {}", to_string(device), why);
    }
    std::lock_guard lock(default_mutex);
    chosen_default = device;
}

Device default_device() {
    {
        std::lock_guard lock(default_mutex);
        if (chosen_default) return *chosen_default;
    }
    static const Device from_environment = device_from_environment();
    return from_environment;
}

}  // namespace keras
