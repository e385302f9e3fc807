// Public loaders promise keras errors only. A library's own exception that gets past our checks
// (nlohmann's JSON errors, fmt's, std::filesystem's, std::bad_alloc or std::length_error from a size
// we failed to bound) becomes a keras error naming the file, never a foreign type the caller does not
// expect. Internal: not installed.
#pragma once

#include <new>
#include <stdexcept>
#include <string>

#include "keras/errors.hpp"

namespace keras::saving {

template <typename F> decltype(auto) keras_errors_only(const std::string& file, F&& load) {
    try {
        return load();
    } catch (const ValueError&) {
        throw;
    } catch (const RuntimeError&) {
        throw;
    } catch (const std::bad_alloc&) {
        runtime_error("Cannot load '{}': out of memory (the file asks for more than is available)", file);
    } catch (const std::exception& e) {
        value_error("Cannot load '{}': {}", file, e.what());
    }
}

}  // namespace keras::saving
