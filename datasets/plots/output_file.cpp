#include "plots/output_file.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>

#include "keras/errors.hpp"
#include "saving/atomic_write.hpp"

namespace keras::plots {

std::string extension_of(const std::string& path) {
    std::string ext = std::filesystem::path(path).extension().string();
    if (!ext.empty()) ext.erase(0, 1);
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    return ext;
}

void require_extension(const std::string& path, const std::string& extension, const std::string& what) {
    if (extension_of(path) != extension)
        value_error("{} writes {}: give a path ending in '.{}' (got '{}')", what, extension, extension, path);
}

void write_file_atomically(const std::string& path, const std::string& text) {
    saving::atomic_write(path, [&](const std::string& temp) {
        std::ofstream out(temp, std::ios::binary | std::ios::trunc);
        out << text;
        out.flush();
        if (!out) runtime_error("Cannot write '{}' (for '{}')", temp, path);
    });
}

}  // namespace keras::plots
