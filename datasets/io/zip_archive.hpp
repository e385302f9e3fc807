// Read-only access to the members of a zip file (what numpy's savez / savez_compressed write),
// through libzip, which inflates and checks every member's CRC. Internal: not an installed header.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

struct zip;

namespace keras::io {

class ZipArchive {
public:
    explicit ZipArchive(const std::filesystem::path& path);
    ~ZipArchive();
    ZipArchive(const ZipArchive&) = delete;
    ZipArchive& operator=(const ZipArchive&) = delete;

    std::vector<std::string> names() const;
    bool contains(const std::string& name) const;
    // The member's uncompressed bytes; a RuntimeError naming the file and member if it is missing,
    // does not inflate, fails its CRC, or would inflate to more than max_bytes (checked against the
    // declared size first, then while inflating, so a forged size cannot make us inflate a bomb).
    std::string read(const std::string& name, uint64_t max_bytes) const;
    // Its first min(n, size) uncompressed bytes (to read a header before deciding how much to inflate).
    std::string read_prefix(const std::string& name, size_t n) const;
    // Its compressed size in the archive.
    uint64_t compressed_size(const std::string& name) const;

private:
    std::filesystem::path path_;
    zip* archive_ = nullptr;
};

}  // namespace keras::io
