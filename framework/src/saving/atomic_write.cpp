#include "saving/atomic_write.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "keras/errors.hpp"
#include "saving/stale_temp_files.hpp"

namespace keras::saving {

namespace {

// mkstemp creates files as 0600; a saved model should get the permissions any new file gets (0666 less
// the umask), as it would from std::ofstream.
bool set_default_permissions(int fd) {
    const mode_t mask = ::umask(0);
    ::umask(mask);
    return ::fchmod(fd, 0666 & ~mask) == 0;
}

void fsync_path(const std::string& path, int flags) {
    const int fd = ::open(path.c_str(), flags);
    if (fd < 0) runtime_error("Cannot open '{}' to flush it: {}", path, std::strerror(errno));
    const int status = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (status != 0) runtime_error("Cannot flush '{}' to disk: {}", path, std::strerror(err));
}

}  // namespace

void atomic_write(const std::string& filepath, const std::function<void(const std::string&)>& write,
                  bool overwrite) {
    namespace fs = std::filesystem;
    const fs::path target(filepath);
    std::error_code ec;
    if (!overwrite && fs::exists(target, ec))
        value_error("File '{}' already exists and overwrite=false.", filepath);
    const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
    if (!fs::is_directory(dir, ec)) value_error("Cannot save to '{}': directory '{}' does not exist.", filepath, dir.string());

    // A killed save leaves its temporary behind: remove those of dead savers first (stale_temp_files.hpp).
    const std::string temp_prefix = fmt::format(".{}.tmp-", target.filename().string());
    remove_stale_temp_files(dir, temp_prefix, "", 1);
    // mkstemp gives a unique name (two savers never share a temporary file); the writer reopens it.
    std::string temp = (dir / fmt::format("{}{}-XXXXXX", temp_prefix, temp_owner_tag())).string();
    const int fd = ::mkstemp(temp.data());
    if (fd < 0) runtime_error("Cannot create a temporary file in '{}': {}", dir.string(), std::strerror(errno));
    const bool permissions_set = set_default_permissions(fd);
    const int chmod_errno = errno;
    ::close(fd);
    try {
        if (!permissions_set)
            runtime_error("Cannot set the permissions of '{}': {}", temp, std::strerror(chmod_errno));
        write(temp);
        fsync_path(temp, O_RDONLY);
        if (::rename(temp.c_str(), filepath.c_str()) != 0)
            runtime_error("Cannot rename '{}' to '{}': {}", temp, filepath, std::strerror(errno));
    } catch (...) {
        fs::remove(temp, ec);
        throw;
    }
    // The rename itself is durable only once the directory entry is on disk.
    fsync_path(dir.string(), O_RDONLY | O_DIRECTORY);
}

}  // namespace keras::saving
