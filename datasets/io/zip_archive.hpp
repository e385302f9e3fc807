// Read-only access to the members of a zip file (what numpy's savez / savez_compressed write),
// through libzip, which inflates and checks every member's CRC. Internal: not an installed header.
#pragma once

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
    // does not inflate, or fails its CRC.
    std::string read(const std::string& name) const;

private:
    std::filesystem::path path_;
    zip* archive_ = nullptr;
};

}  // namespace keras::io
