// Reading a tar archive (plain, .tar.gz or any filter libarchive knows) member by member, in one
// pass: the aclImdb tarball and text_dataset_from_directory's archives. Internal: not installed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

struct archive;
struct archive_entry;

namespace keras::io {

class TarArchive {
public:
    // A RuntimeError naming the file when it cannot be opened as an archive.
    explicit TarArchive(const std::filesystem::path& path);
    ~TarArchive();
    TarArchive(const TarArchive&) = delete;
    TarArchive& operator=(const TarArchive&) = delete;

    // Moves to the next member; false at the end. A RuntimeError naming the file when it is corrupt.
    bool next();
    // The current member's path as stored ("" when it has none) and whether it is a regular file /
    // a folder.
    std::string path() const;
    bool is_file() const;
    bool is_folder() const;
    // The current member's bytes. A RuntimeError naming the file and member when it cannot be read or
    // holds more than max_bytes (checked against its header first, then while inflating: a small
    // compressed archive can inflate to gigabytes).
    std::string read(uint64_t max_bytes);

private:
    std::string error() const;
    std::filesystem::path path_;
    archive* archive_ = nullptr;
    archive_entry* entry_ = nullptr;
};

}  // namespace keras::io
