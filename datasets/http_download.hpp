// One download through libcurl into a file, with the download progress bar. Internal to get_file.
#pragma once

#include <filesystem>
#include <string>

namespace keras::utils {

// Writes the body of `url` to `destination` (created or truncated). Throws keras::RuntimeError
// "URL fetch failure on <url>: <cause>" on an HTTP error status, a transfer cut short, a stalled or
// refused connection, or a write error; the caller removes the partial file.
void download_to_file(const std::string& url, const std::filesystem::path& destination);

}  // namespace keras::utils
