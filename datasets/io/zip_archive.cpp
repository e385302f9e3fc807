#include "io/zip_archive.hpp"

#include <fmt/ranges.h>
#include <zip.h>

#include "keras/errors.hpp"

namespace keras::io {

namespace {
// A member larger than this is refused before anything is allocated: imdb.npz's biggest is ~40 MB,
// and a forged size field must not make us reserve gigabytes.
constexpr zip_uint64_t kMaxMemberBytes = zip_uint64_t{1} << 31;

std::string libzip_message(int code) {
    zip_error_t error;
    zip_error_init_with_code(&error, code);
    std::string message = zip_error_strerror(&error);
    zip_error_fini(&error);
    return message;
}
}  // namespace

ZipArchive::ZipArchive(const std::filesystem::path& path) : path_(path) {
    int code = 0;
    // ZIP_CHECKCONS: also cross-check the central directory against the local headers, so a
    // truncated or spliced file fails here rather than halfway through a member.
    archive_ = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &code);
    if (archive_ == nullptr)
        runtime_error("Cannot read zip file {}: {}", path.string(), libzip_message(code));
}

ZipArchive::~ZipArchive() {
    if (archive_ != nullptr) zip_discard(archive_);
}

std::vector<std::string> ZipArchive::names() const {
    std::vector<std::string> out;
    const zip_int64_t count = zip_get_num_entries(archive_, 0);
    for (zip_int64_t i = 0; i < count; ++i) {
        const char* name = zip_get_name(archive_, static_cast<zip_uint64_t>(i), 0);
        if (name != nullptr) out.emplace_back(name);
    }
    return out;
}

bool ZipArchive::contains(const std::string& name) const {
    return zip_name_locate(archive_, name.c_str(), 0) >= 0;
}

namespace {

zip_stat_t member_stat(zip* archive, const std::filesystem::path& path, const std::string& name,
                       const std::vector<std::string>& names) {
    zip_stat_t stat;
    zip_stat_init(&stat);
    if (zip_stat(archive, name.c_str(), 0, &stat) != 0)
        runtime_error("{}: no member '{}' in the zip file (it holds: {})", path.string(), name, fmt::join(names, ", "));
    if ((stat.valid & ZIP_STAT_SIZE) == 0 || (stat.valid & ZIP_STAT_COMP_SIZE) == 0 || stat.size > kMaxMemberBytes)
        runtime_error("{}: member '{}' declares an unusable size", path.string(), name);
    return stat;
}

}  // namespace

uint64_t ZipArchive::compressed_size(const std::string& name) const {
    return member_stat(archive_, path_, name, names()).comp_size;
}

std::string ZipArchive::read_prefix(const std::string& name, size_t n) const {
    const zip_stat_t stat = member_stat(archive_, path_, name, names());
    zip_file_t* file = zip_fopen(archive_, name.c_str(), 0);
    if (file == nullptr)
        runtime_error("{}: cannot open member '{}': {}", path_.string(), name, zip_strerror(archive_));
    std::string bytes(static_cast<size_t>(std::min<zip_uint64_t>(n, stat.size)), '\0');
    const zip_int64_t got = bytes.empty() ? 0 : zip_fread(file, bytes.data(), bytes.size());
    zip_fclose(file);   // the CRC is checked only when a member is read to its end, by read()
    if (got < 0) runtime_error("{}: member '{}' is corrupt (cannot inflate its first bytes)", path_.string(), name);
    bytes.resize(static_cast<size_t>(got));
    return bytes;
}

std::string ZipArchive::read(const std::string& name, uint64_t max_bytes) const {
    const zip_stat_t stat = member_stat(archive_, path_, name, names());
    if (stat.size > max_bytes)
        runtime_error("{}: member '{}' declares {} bytes, more than the {} its contents allow", path_.string(), name,
                      stat.size, max_bytes);
    zip_file_t* file = zip_fopen(archive_, name.c_str(), 0);
    if (file == nullptr)
        runtime_error("{}: cannot open member '{}': {}", path_.string(), name, zip_strerror(archive_));
    // libzip stops at the declared size, which is checked above: inflating ends there.
    std::string bytes(static_cast<size_t>(stat.size), '\0');
    zip_uint64_t done = 0;
    while (done < stat.size) {
        const zip_int64_t got = zip_fread(file, bytes.data() + done, stat.size - done);
        if (got <= 0) {
            const std::string why = got < 0 ? zip_error_strerror(zip_file_get_error(file)) : "unexpected end of data";
            zip_fclose(file);
            runtime_error("{}: member '{}' is corrupt ({} after {} of {} bytes)", path_.string(), name, why, done,
                          stat.size);
        }
        done += static_cast<zip_uint64_t>(got);
    }
    // libzip verifies the CRC when the whole member has been read; zip_fclose reports a mismatch.
    const int closed = zip_fclose(file);
    if (closed != 0)
        runtime_error("{}: member '{}' is corrupt ({})", path_.string(), name, libzip_message(closed));
    return bytes;
}

}  // namespace keras::io
