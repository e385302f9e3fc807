// Exceptions named after the Python ones Keras raises, so messages read the same.
#pragma once

#include "keras/export.hpp"

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace keras {

// Python's ValueError: a wrong argument, shape, name or file content.
struct KERAS_API ValueError : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};
// Python's RuntimeError: something failed while running (a file, a download, a device).
struct KERAS_API RuntimeError : std::runtime_error {
    using std::runtime_error::runtime_error;
};
// Python's NotImplementedError: a method a subclass must provide was not.
struct NotImplementedError : RuntimeError {
    using RuntimeError::RuntimeError;
};

template <typename... Args>
// Throws ValueError with an fmt-formatted message.
[[noreturn]] void value_error(fmt::format_string<Args...> format, Args&&... args) {
    throw ValueError(fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
// Throws RuntimeError with an fmt-formatted message.
[[noreturn]] void runtime_error(fmt::format_string<Args...> format, Args&&... args) {
    throw RuntimeError(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace keras
