// load_cuda_library() for libkerascpp: opens libkerascpp-cuda.so on first use of a CUDA device.
// Where it looks: the file KERASCPP_CUDA_LIBRARY names, when set (and nowhere else); otherwise the
// folder libkerascpp itself was loaded from (so the build tree and any installed prefix work without
// LD_LIBRARY_PATH), then the dynamic loader's usual search.
#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

#include <fmt/format.h>

#include "cuda_library.hpp"
#include "keras/version.hpp"

#ifndef KERASCPP_CUDA_LIBRARY_NAME
#error "meson.build defines KERASCPP_CUDA_LIBRARY_NAME (the CUDA library's SONAME)"
#endif

namespace keras::backend {
namespace {

constexpr const char* kLibraryName = KERASCPP_CUDA_LIBRARY_NAME;
constexpr const char* kEntryPoint = "kerascpp_cuda_library";

// The folder of the file this function was loaded from (libkerascpp.so), or "" if unknown.
std::string own_folder() {
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&own_folder), &info) == 0 || info.dli_fname == nullptr) return "";
    return std::filesystem::path(info.dli_fname).parent_path().string();
}

std::string dl_error() {
    const char* e = dlerror();
    return e ? e : "unknown dlopen error";
}

// dlopen's handle for the CUDA library and *file the path or name it opened, or nullptr with *why
// saying where it looked. RTLD_NOW: a missing CUDA runtime symbol fails here, not in the middle of
// a training step.
void* open_library(std::string* file, std::string* why) {
    const char* forced = std::getenv("KERASCPP_CUDA_LIBRARY");
    if (forced != nullptr && *forced != '\0') {
        *file = forced;
        if (void* handle = dlopen(forced, RTLD_NOW | RTLD_LOCAL)) return handle;
        *why = fmt::format("the CUDA backend library {} (named by KERASCPP_CUDA_LIBRARY) could not be loaded: {}",
                           forced, dl_error());
        return nullptr;
    }
    const std::string folder = own_folder();
    if (!folder.empty()) {
        *file = folder + "/" + kLibraryName;
        // Present but not loadable (e.g. libcudnn missing): that error is the one to report.
        std::error_code unreadable;
        if (std::filesystem::exists(*file, unreadable)) {
            if (void* handle = dlopen(file->c_str(), RTLD_NOW | RTLD_LOCAL)) return handle;
            *why = fmt::format("the CUDA backend library {} could not be loaded: {}", *file, dl_error());
            return nullptr;
        }
    }
    *file = kLibraryName;
    if (void* handle = dlopen(kLibraryName, RTLD_NOW | RTLD_LOCAL)) return handle;
    *why = fmt::format("the CUDA backend library {} could not be loaded: {} (looked in {}, then the dynamic "
                       "loader's search path; install it beside libkerascpp or set KERASCPP_CUDA_LIBRARY to its path)",
                       kLibraryName, dl_error(), folder.empty() ? "libkerascpp's folder (unknown)" : folder);
    return nullptr;
}

// The library's table once its entry point and version check out, else nullptr with *why.
const CudaLibrary* entry_table(void* handle, const std::string& file, std::string* why) {
    dlerror();   // clear any earlier error
    void* entry = dlsym(handle, kEntryPoint);
    if (entry == nullptr) {
        *why = fmt::format("{} is not kerascpp's CUDA backend library: {}", file, dl_error());
        return nullptr;
    }
    using EntryFn = const CudaLibrary* (*)();
    const CudaLibrary* table = reinterpret_cast<EntryFn>(entry)();
    // kerascpp_version is the table's first field in every version, so an older table reads safely.
    if (table == nullptr || std::string(table->kerascpp_version) != KERASCPP_VERSION_STRING) {
        *why = fmt::format("{} was built for kerascpp {}, but this libkerascpp is {}: install the two from one build",
                           file, table ? table->kerascpp_version : "(unknown)", KERASCPP_VERSION_STRING);
        return nullptr;
    }
    return table;
}

}  // namespace

const CudaLibrary* load_cuda_library(std::string* why) {
    std::string file;
    void* handle = open_library(&file, why);
    if (handle == nullptr) return nullptr;
    const CudaLibrary* table = entry_table(handle, file, why);
    // Kept open for good once accepted: the backends it creates live until the process ends.
    if (table == nullptr) dlclose(handle);
    return table;
}

}  // namespace keras::backend
