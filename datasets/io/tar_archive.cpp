#include "tar_archive.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>

#include "keras/errors.hpp"

namespace keras::io {

TarArchive::TarArchive(const std::filesystem::path& path) : path_(path), archive_(archive_read_new()) {
    if (archive_ == nullptr) runtime_error("{}: cannot read the archive: out of memory", path_.string());
    archive_read_support_filter_all(archive_);
    archive_read_support_format_tar(archive_);
    if (archive_read_open_filename(archive_, path_.c_str(), 1 << 16) != ARCHIVE_OK) {
        const std::string message = error();
        archive_read_free(archive_);
        runtime_error("{}: cannot read the archive: {}", path_.string(), message);
    }
}

TarArchive::~TarArchive() { archive_read_free(archive_); }

// libarchive's message for the last error; it may have none (NULL), which fmt must never see.
std::string TarArchive::error() const {
    const char* message = archive_error_string(archive_);
    return message != nullptr ? message : fmt::format("libarchive error {} with no message", archive_errno(archive_));
}

bool TarArchive::next() {
    const int status = archive_read_next_header(archive_, &entry_);
    if (status == ARCHIVE_EOF) return false;
    if (status != ARCHIVE_OK) runtime_error("{}: corrupt archive: {}", path_.string(), error());
    return true;
}

std::string TarArchive::path() const {
    const char* name = archive_entry_pathname(entry_);
    return name != nullptr ? name : "";
}

bool TarArchive::is_file() const { return archive_entry_filetype(entry_) == AE_IFREG; }
bool TarArchive::is_folder() const { return archive_entry_filetype(entry_) == AE_IFDIR; }

std::string TarArchive::read(uint64_t max_bytes) {
    const auto too_big = [&] {
        runtime_error("{}: member {} holds more than {} bytes, the most read from one file of an archive",
                      path_.string(), path(), max_bytes);
    };
    if (archive_entry_size_is_set(entry_) && static_cast<uint64_t>(archive_entry_size(entry_)) > max_bytes) too_big();
    std::string bytes;
    const void* block;
    size_t size;
    la_int64_t offset;
    int r;
    while ((r = archive_read_data_block(archive_, &block, &size, &offset)) == ARCHIVE_OK) {
        if (bytes.size() + size > max_bytes) too_big();
        bytes.append(static_cast<const char*>(block), size);
    }
    if (r != ARCHIVE_EOF) runtime_error("{}: cannot read {}: {}", path_.string(), path(), error());
    return bytes;
}

}  // namespace keras::io
