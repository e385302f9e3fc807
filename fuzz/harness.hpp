// What every harness shares: the input written to a file (the loaders take paths) and the contract
// under test, "a loader lets only keras errors out". Anything else (another exception, a crash, a
// sanitizer report) escapes LLVMFuzzerTestOneInput, where libFuzzer (or replay_main.cpp) reports it.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "keras/errors.hpp"

namespace fuzz {

// A folder of this process's own (libFuzzer's -fork / -jobs run several processes), made once and
// reused: every run rewrites the same few paths.
inline const std::filesystem::path& work_dir() {
    static const std::filesystem::path dir = [] {
        auto d = std::filesystem::temp_directory_path() / ("kerascpp_fuzz_" + std::to_string(::getpid()));
        std::filesystem::create_directories(d / "keras_home");
        // A Keras cache of our own, empty: a loader that falls back to the cache finds nothing there
        // (and a download fails fast, the machine being offline) instead of reading ~/.keras.
        ::setenv("KERAS_HOME", (d / "keras_home").c_str(), 1);
        // libFuzzer's fork mode starts a process per job: each removes its folder when it exits.
        std::atexit([] {
            std::error_code ec;
            std::filesystem::remove_all(std::filesystem::temp_directory_path() / ("kerascpp_fuzz_" + std::to_string(::getpid())), ec);
        });
        return d;
    }();
    return dir;
}

inline std::string write_file(const std::string& name, std::string_view bytes) {
    const auto path = work_dir() / name;
    std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path.string();
}

inline std::string_view as_text(const uint8_t* data, size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

// Prints the keras errors when KERASCPP_FUZZ_VERBOSE is set (to see how far an input gets).
inline void note(const std::exception& e) {
    static const bool verbose = ::getenv("KERASCPP_FUZZ_VERBOSE") != nullptr;
    if (verbose) std::fprintf(stderr, "keras error: %s\n", e.what());
}

// Runs `load`, swallowing the errors a loader may throw; everything else propagates.
template <typename F> void keras_errors_only(F&& load) {
    try {
        load();
    } catch (const keras::ValueError& e) {
        note(e);
    } catch (const keras::RuntimeError& e) {
        note(e);
    }
}

}  // namespace fuzz
